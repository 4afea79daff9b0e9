package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat. The kernel
// always reports them in USER_HZ, which is 100 on every Linux architecture
// that Go supports; sysconf(_SC_CLK_TCK) would say the same without cgo.
const clockTick = 10 * time.Millisecond

// procStat is the part of /proc/<pid>/stat that the bench reads.
type procStat struct {
	pid, ppid int
	// utime+stime of the process (all its threads) and cutime+cstime of
	// its children that it has waited for (and that are thus gone).
	self, reaped time.Duration
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so the fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(pid, b)
}

func parseStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime are 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	num := func(k int) int64 {
		v, _ := strconv.ParseInt(string(f[k-3]), 10, 64)
		return v
	}
	return procStat{
		pid:    pid,
		ppid:   int(num(4)),
		self:   time.Duration(num(14)+num(15)) * clockTick,
		reaped: time.Duration(num(16)+num(17)) * clockTick,
	}, nil
}

// treeCPU is the CPU time (user+sys) that the process root and all its
// descendants have used so far, including descendants already reaped. A
// process's cutime counts only children that are gone, so summing it over
// the live tree counts nothing twice. nginx's master and workers and
// caddy's or the gateway's threads are all covered this way.
func treeCPU(root int) (time.Duration, error) {
	tree, err := processTree(root)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, p := range tree {
		sum += p.self + p.reaped
	}
	return sum, nil
}

// processTree returns root and its live descendants, found by walking the
// ppid links of every process in /proc.
func processTree(root int) ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	var rootStat *procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // the process went away between ReadDir and here
		}
		if pid == root {
			rootStat = &st
		}
		children[st.ppid] = append(children[st.ppid], st)
	}
	if rootStat == nil {
		return nil, fmt.Errorf("process %d is gone", root)
	}
	tree := []procStat{*rootStat}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i].pid]...)
	}
	return tree, nil
}

// treeRSS is the resident memory of root and its descendants (VmRSS from
// /proc/<pid>/status), in bytes. Shared pages are counted once per process,
// as ps does.
func treeRSS(root int) (int64, error) {
	tree, err := processTree(root)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range tree {
		kb, err := vmRSS(p.pid)
		if err == nil {
			sum += kb << 10
		}
	}
	return sum, nil
}

func vmRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			fs := bytes.Fields(v) // "12345 kB"
			if len(fs) > 0 {
				return strconv.ParseInt(string(fs[0]), 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// pinSelf moves every thread of this process onto cpus. Threads the Go
// runtime starts later are cloned from these and inherit the mask, so the
// bench's own goroutines (reloads, scrapes, bookkeeping) stay off the CPU
// of the proxy under test.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	tasks, err := filepath.Glob("/proc/self/task/*")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(filepath.Base(t))
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return err
		}
	}
	return nil
}

// cpuList formats cpus for taskset -c.
func cpuList(cpus []int) string {
	var b []byte
	for i, c := range cpus {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	return string(b)
}

// machineBusy is the CPU time all CPUs have spent not idle since boot, from
// the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected %q", line)
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// otherLoad measures how much CPU the processes outside the bench's tree
// (the bench, its backends, load generators and proxies) use meanwhile:
// on a shared machine that is the noise in every figure.
type otherLoad struct {
	t0         time.Time
	busy, self time.Duration
	ok         bool
}

func startOtherLoad() otherLoad {
	busy, err1 := machineBusy()
	self, err2 := treeCPU(os.Getpid())
	return otherLoad{t0: time.Now(), busy: busy, self: self, ok: err1 == nil && err2 == nil}
}

// percent is the CPU the rest of the machine used since start, in percent
// of one CPU. Interrupt time is not charged to processes, so a few percent
// of it show up here even on a quiet machine.
func (o otherLoad) percent() float64 {
	busy, err1 := machineBusy()
	self, err2 := treeCPU(os.Getpid())
	wall := time.Since(o.t0)
	if !o.ok || err1 != nil || err2 != nil || wall <= 0 {
		return 0
	}
	other := (busy - o.busy) - (self - o.self)
	return max(0, 100*other.Seconds()/wall.Seconds())
}
