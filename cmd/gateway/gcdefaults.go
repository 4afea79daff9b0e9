package main

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// The gateway is a long-running server whose live heap is mostly its
// compiled config: garbage comes from connections and reloads, not from
// requests. Go's default GOGC=100 collects every time the heap doubles,
// which for a small live heap (a few routes: 3-5 MiB) means a collection
// every few MiB of garbage; for a large one (10,000 routes: ~40 MiB) it is
// already rare. So unless GOGC is set, the percent is chosen after each
// config is applied to give the heap at least minGCHeadroom of room:
// measured (bench, one run, quiet machine), a small config gains 6-9% req
// per CPU-second over GOGC=100, while a 10,000-route config gains nothing
// from GOGC=200 or 400 and only grows (RSS +16 / +30 MiB), so it stays at
// 100. A soft memory limit taken from the container keeps the headroom
// from running into the OOM killer. GOGC and GOMEMLIMIT in the
// environment always win.
const (
	minGCPercent  = 100
	maxGCPercent  = 400
	minGCHeadroom = 16 << 20
	// defaultGCPercent is the percent at start, before a config's live
	// heap is known.
	defaultGCPercent = 200
	// memoryLimitShare of the cgroup's memory.max becomes the soft limit,
	// leaving room for what the Go runtime does not count (stacks of
	// goroutines in syscalls, the kernel's socket buffers are not ours).
	memoryLimitShare = 0.9
)

// cgroupMemoryFiles are where a container's memory limit is read: cgroup
// v2 first, then v1.
var cgroupMemoryFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// runtimeSettings are the GC settings the process runs with and where
// they came from, for the startup log line.
type runtimeSettings struct {
	GCPercent   int
	GCSource    string // "GOGC" or "default"
	LiveHeap    uint64 // bytes live after the last GC, when the percent was chosen from it
	MemoryLimit int64  // bytes; math.MaxInt64 when none
	LimitSource string // "GOMEMLIMIT", "cgroup <file>" or "none"
}

// applyRuntimeDefaults sets GOGC and GOMEMLIMIT when the environment does
// not, and reports what is in effect.
func applyRuntimeDefaults(getenv func(string) string, cgroupFiles []string) runtimeSettings {
	var s runtimeSettings
	if v := getenv("GOGC"); v != "" {
		s.GCSource = "GOGC"
		s.GCPercent = debug.SetGCPercent(-1) // read back what the runtime parsed
		debug.SetGCPercent(s.GCPercent)
	} else {
		s.GCSource = "default"
		s.GCPercent = defaultGCPercent
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		s.LimitSource = "GOMEMLIMIT"
		s.MemoryLimit = debug.SetMemoryLimit(-1)
		return s
	}
	s.LimitSource, s.MemoryLimit = "none", math.MaxInt64
	for _, f := range cgroupFiles {
		limit, ok := readCgroupLimit(f)
		if !ok {
			continue
		}
		s.LimitSource = "cgroup " + f
		s.MemoryLimit = int64(float64(limit) * memoryLimitShare)
		debug.SetMemoryLimit(s.MemoryLimit)
		break
	}
	return s
}

// readCgroupLimit reads a memory limit file: a number of bytes, or "max"
// (v2) / a huge number (v1, the page-rounded maximum) for no limit.
func readCgroupLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<60 {
		return 0, false
	}
	return v, true
}

// gcPercentFor is the percent that gives a live heap of live bytes at
// least minGCHeadroom of room, within [minGCPercent, maxGCPercent].
func gcPercentFor(live uint64) int {
	if live == 0 {
		return maxGCPercent
	}
	p := int((uint64(minGCHeadroom)*100 + live - 1) / live)
	return min(max(p, minGCPercent), maxGCPercent)
}

// tuneGC sets the percent for the config just applied (unless GOGC was
// set). At start it collects first, so that the live heap is the
// config's; after a reload it reads the last collection's figure rather
// than pay a forced collection on every reload.
func tuneGC(s *runtimeSettings, collect bool) {
	if collect {
		// Also gives back to the OS what parsing and compiling the first
		// config used and let go of (a 10k-route YAML file's parse tree
		// is ~13 MB), rather than leave it to the background scavenger.
		debug.FreeOSMemory()
	}
	if s.GCSource != "default" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	s.LiveHeap = sample[0].Value.Uint64()
	s.GCPercent = gcPercentFor(s.LiveHeap)
	debug.SetGCPercent(s.GCPercent)
}
