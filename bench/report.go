package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// report is everything one run measured; --json writes it.
type report struct {
	Time      time.Time         `json:"time"`
	Machine   machine           `json:"machine"`
	Options   options           `json:"options"`
	Generator string            `json:"generator"`
	Pinning   string            `json:"pinning"`
	Scenarios []*scenarioResult `json:"scenarios"`
	Ratios    []ratio           `json:"ratios"`
}

type machine struct {
	CPUs     int               `json:"cpus"`
	CPUModel string            `json:"cpu_model"`
	Kernel   string            `json:"kernel"`
	Go       string            `json:"go"`
	Tools    map[string]string `json:"tools"` // versions of wrk and the peers found
}

type scenarioResult struct {
	Name    string            `json:"name"`
	Routes  int               `json:"routes"`
	Targets []*targetResult   `json:"targets"`
	Skipped map[string]string `json:"skipped,omitempty"`
	Notes   []string          `json:"notes,omitempty"`
	TCP     []*tcpResult      `json:"tcp,omitempty"` // the tcp scenario's figures
}

func (s *scenarioResult) skip(log io.Writer, target, why string) {
	if s.Skipped == nil {
		s.Skipped = map[string]string{}
	}
	s.Skipped[target] = why
	fmt.Fprintf(log, "  %s: skipped: %s\n", target, why)
}

func (s *scenarioResult) target(name string) *targetResult {
	for _, t := range s.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// targetResult is one target in one scenario: its turns and their totals.
type targetResult struct {
	Name  string       `json:"name"`
	Turns []turnResult `json:"turns"`
	proxy bool         // has a process of its own to measure

	Requests     int64   `json:"requests"`
	ReqPerSec    float64 `json:"req_per_sec"`
	P50Ms        float64 `json:"p50_ms"` // means over the turns
	P99Ms        float64 `json:"p99_ms"`
	P999Ms       float64 `json:"p999_ms"`
	Errors       int64   `json:"errors"`
	CPUSeconds   float64 `json:"cpu_seconds,omitempty"`
	ReqPerCPUSec float64 `json:"req_per_cpu_sec,omitempty"` // 0 when there is no proxy
	CPUPercent   float64 `json:"cpu_percent,omitempty"`     // of one CPU, over the load windows
	RSSBytes     int64   `json:"rss_bytes,omitempty"`       // after the scenario's last turn
}

// turnResult is one measured load on one target.
type turnResult struct {
	Round int `json:"round"`
	loadResult
	CPUSeconds float64   `json:"cpu_seconds,omitempty"`
	Side       sideStats `json:"side"`
	// BackendCPUSeconds is the backends' CPU time: with the load
	// generator, what the other CPU spends per request.
	BackendCPUSeconds float64 `json:"backend_cpu_seconds"`
	// OtherLoad is the CPU that processes outside the bench used during
	// the turn, in percent of one CPU: the noise of a shared machine.
	OtherLoad float64 `json:"other_load_percent"`
}

func (t turnResult) summary() string {
	s := fmt.Sprintf("%9.0f req/s  p99 %6.2f ms  errors %d", t.reqPerSec(), t.P99Ms, t.errors())
	if t.CPUSeconds > 0 {
		s += fmt.Sprintf("  %8.0f req/CPU-s  cpu %.0f%%", float64(t.Requests)/t.CPUSeconds, 100*t.CPUSeconds/t.Seconds)
	}
	s += fmt.Sprintf("  backends cpu %.0f%%  other load %.0f%%", 100*t.BackendCPUSeconds/t.Seconds, t.OtherLoad)
	if t.Side.Reloads > 0 {
		s += fmt.Sprintf("  reloads %d (failed %d, p50 %.0f ms, max %.0f ms)",
			t.Side.Reloads, t.Side.ReloadFailures, t.Side.ReloadP50Ms, t.Side.ReloadMaxMs)
	}
	return s
}

// aggregate sums the turns: throughput over the total time, CPU over the
// total CPU time, latency percentiles as means of the turns' (wrk reports
// percentiles, not histograms that could be merged).
func (t *targetResult) aggregate() {
	var secs float64
	for _, tr := range t.Turns {
		t.Requests += tr.Requests
		secs += tr.Seconds
		t.Errors += tr.errors()
		t.CPUSeconds += tr.CPUSeconds
		t.P50Ms += tr.P50Ms / float64(len(t.Turns))
		t.P99Ms += tr.P99Ms / float64(len(t.Turns))
		t.P999Ms += tr.P999Ms / float64(len(t.Turns))
	}
	if secs > 0 {
		t.ReqPerSec = float64(t.Requests) / secs
		t.CPUPercent = 100 * t.CPUSeconds / secs
	}
	if t.proxy && t.CPUSeconds > 0 {
		t.ReqPerCPUSec = float64(t.Requests) / t.CPUSeconds
	}
}

// MarshalJSON writes the durations as Go duration strings ("10s") rather
// than as nanoseconds.
func (o options) MarshalJSON() ([]byte, error) {
	type plain options
	return json.Marshal(struct {
		plain
		Duration    string `json:"duration"`
		Warmup      string `json:"warmup"`
		ScrapeEvery string `json:"scrape_every"`
		ReloadEvery string `json:"reload_every"`
	}{plain(o), o.Duration.String(), o.Warmup.String(), o.ScrapeEvery.String(), o.ReloadEvery.String()})
}

func newReport(opts options, b *bench) *report {
	r := &report{Time: time.Now().UTC(), Options: opts, Generator: b.gen.name(), Machine: machineInfo()}
	switch {
	case b.sup.pin.on && b.sup.pin.shared:
		r.Pinning = fmt.Sprintf("proxy on CPU %s, SHARED with the load generator, backends and bench (--cores %d)",
			cpuList(b.sup.pin.proxy), opts.Cores)
	case b.sup.pin.on:
		r.Pinning = fmt.Sprintf("proxy on CPU %s; load generator, backends and bench on CPU %s",
			cpuList(b.sup.pin.proxy), cpuList(b.sup.pin.load))
	default:
		r.Pinning = "none"
	}
	return r
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Tools: map[string]string{}}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	versions := map[string][]string{
		"wrk": {"wrk", "-v"}, "nginx": {"nginx", "-v"}, "haproxy": {"haproxy", "-v"}, "caddy": {"caddy", "version"},
	}
	for name, argv := range versions {
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		// wrk -v exits 1 after printing its version; the output is what
		// counts.
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		m.Tools[name] = strings.TrimSpace(line)
	}
	return m
}

func (r *report) printHeader(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, kernel %s, %s\n", m.CPUs, m.CPUModel, m.Kernel, m.Go)
	for _, name := range append([]string{"wrk"}, peerNames...) {
		if v, ok := m.Tools[name]; ok {
			fmt.Fprintf(w, "  %-8s %s\n", name, v)
		}
	}
	o := r.Options
	gogc := o.GOGC
	if o.GOMEMLIMIT != "" {
		gogc += " GOMEMLIMIT=" + o.GOMEMLIMIT
	}
	fmt.Fprintf(w, "load: %s, %d connections, %s per turn, %d rounds, warmup %s; cores %d (nginx workers, haproxy threads, caddy GOMAXPROCS); gateway GOMAXPROCS=%d GOGC=%s\n",
		r.Generator, o.Connections, o.Duration, o.Rounds, o.Warmup, o.Cores, o.GOMAXPROCS, gogc)
	fmt.Fprintf(w, "pinning: %s\n", r.Pinning)
}

// print writes the scenario's table.
func (s *scenarioResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nscenario %s (%d routes)\n", s.Name, s.Routes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\treq/CPU-s\tvs-nginx\tCPU %\tRSS MiB\t")
	nginx := s.target("nginx")
	for _, t := range s.Targets {
		cpu, vs, pct, rss := "n/a", "", "", ""
		if t.ReqPerCPUSec > 0 {
			cpu = fmt.Sprintf("%.0f", t.ReqPerCPUSec)
			pct = fmt.Sprintf("%.0f", t.CPUPercent)
			if nginx != nil && nginx.ReqPerCPUSec > 0 {
				vs = fmt.Sprintf("%.2f", t.ReqPerCPUSec/nginx.ReqPerCPUSec)
			}
		}
		if t.RSSBytes > 0 {
			rss = fmt.Sprintf("%.1f", float64(t.RSSBytes)/(1<<20))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\t%s\t%s\t\n",
			t.Name, t.ReqPerSec, t.P50Ms, t.P99Ms, t.P999Ms, t.Errors, cpu, vs, pct, rss)
	}
	tw.Flush()
	for _, name := range append([]string{"gateway"}, peerNames...) {
		if why, ok := s.Skipped[name]; ok {
			fmt.Fprintf(w, "  %s: skipped: %s\n", name, why)
		}
	}
	if g := s.target("gateway"); g != nil {
		var side sideStats
		for _, tr := range g.Turns {
			side.Reloads += tr.Side.Reloads
			side.ReloadFailures += tr.Side.ReloadFailures
			side.ReloadMaxMs = max(side.ReloadMaxMs, tr.Side.ReloadMaxMs)
			side.ReloadP50Ms = max(side.ReloadP50Ms, tr.Side.ReloadP50Ms)
			side.Scrapes += tr.Side.Scrapes
			side.ScrapeBytes += tr.Side.ScrapeBytes
			side.AccessLogBytes += tr.Side.AccessLogBytes
		}
		if side.Reloads > 0 {
			fmt.Fprintf(w, "  gateway reloads: %d, failed %d, POST /v1/reload p50 %.0f ms, max %.0f ms; request errors during reloads: %d\n",
				side.Reloads, side.ReloadFailures, side.ReloadP50Ms, side.ReloadMaxMs, g.Errors)
		}
		if side.Scrapes > 0 {
			fmt.Fprintf(w, "  gateway /metrics scrapes: %d, %.1f MiB each\n",
				side.Scrapes, float64(side.ScrapeBytes)/float64(side.Scrapes)/(1<<20))
		}
		if side.AccessLogBytes > 0 && g.Requests > 0 {
			fmt.Fprintf(w, "  gateway access log: %.0f MiB written, ~%.0f bytes per request\n",
				float64(side.AccessLogBytes)/(1<<20), float64(side.AccessLogBytes)/float64(g.Requests))
		}
	}
	var other float64
	for _, t := range s.Targets {
		for _, tr := range t.Turns {
			other = max(other, tr.OtherLoad)
		}
	}
	if other >= 10 {
		fmt.Fprintf(w, "  warning: other processes used up to %.0f%% of a CPU during the turns; the figures are noisy\n", other)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// ratio is one target of performance.md, measured in this run.
type ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value,omitempty"`
	Target string  `json:"target,omitempty"` // empty: informative only
	Met    bool    `json:"met"`
	NA     string  `json:"na,omitempty"` // why it could not be computed
}

func findTarget(scs []*scenarioResult, scenario, target string) *targetResult {
	for _, s := range scs {
		if s.Name == scenario {
			return s.target(target)
		}
	}
	return nil
}

// computeRatios works out the performance.md targets from the results.
func computeRatios(scs []*scenarioResult) []ratio {
	cpuRatio := func(name, scA, a, scB, b string, op string, want float64) ratio {
		r := ratio{Name: name}
		if op != "" {
			r.Target = fmt.Sprintf("%s %.2f", op, want)
		}
		x, y := findTarget(scs, scA, a), findTarget(scs, scB, b)
		switch {
		case x == nil || x.ReqPerCPUSec == 0:
			r.NA = fmt.Sprintf("%s did not run in %s", a, scA)
		case y == nil || y.ReqPerCPUSec == 0:
			r.NA = fmt.Sprintf("%s did not run in %s", b, scB)
		default:
			r.Value = x.ReqPerCPUSec / y.ReqPerCPUSec
			r.Met = op == "" || r.Value >= want
		}
		return r
	}
	rs := []ratio{
		cpuRatio("gateway/nginx req per CPU-s, basic", "basic", "gateway", "basic", "nginx", ">=", 1.0),
		cpuRatio("gateway full/basic req per CPU-s", "full", "gateway", "basic", "gateway", ">=", 0.85),
		cpuRatio("gateway throttle-cluster/full req per CPU-s", "throttle-cluster", "gateway", "full", "gateway", "", 0),
	}
	p99 := ratio{Name: "gateway p99 / nginx p99, basic", Target: "<= 1.00"}
	g, n := findTarget(scs, "basic", "gateway"), findTarget(scs, "basic", "nginx")
	if g == nil || n == nil || n.P99Ms == 0 {
		p99.NA = "gateway and nginx did not both run in basic"
	} else {
		p99.Value = g.P99Ms / n.P99Ms
		p99.Met = p99.Value <= 1.0
	}
	rs = append(rs, p99,
		cpuRatio("gateway/caddy req per CPU-s, basic", "basic", "gateway", "basic", "caddy", ">=", 2.5),
		cpuRatio("gateway/nginx req per CPU-s, tls (keep-alive)", "tls", "gateway", "tls", "nginx", ">=", 0.8),
		cpuRatio("gateway/nginx handshakes per CPU-s, tls-handshake", "tls-handshake", "gateway", "tls-handshake", "nginx", "", 0))

	rss := ratio{Name: "gateway RSS after full, MiB", Target: "< 100"}
	if g := findTarget(scs, "full", "gateway"); g != nil && g.RSSBytes > 0 {
		rss.Value = float64(g.RSSBytes) / (1 << 20)
		rss.Met = rss.Value < 100
	} else {
		rss.NA = "full did not run"
	}
	rs = append(rs, rss)

	rel := ratio{Name: "errors during reloads", Target: "== 0"}
	if g := findTarget(scs, "reload", "gateway"); g != nil {
		var reloads, failed int
		for _, tr := range g.Turns {
			reloads += tr.Side.Reloads
			failed += tr.Side.ReloadFailures
		}
		rel.Value = float64(g.Errors + int64(failed))
		rel.Met = g.Errors == 0 && failed == 0 && reloads > 0
		if reloads == 0 {
			rel.NA = "no reload happened"
		}
	} else {
		rel.NA = "reload did not run"
	}
	rs = append(rs, rel)

	// Informative: the other peers and the large table.
	rs = append(rs,
		cpuRatio("gateway/haproxy req per CPU-s, basic", "basic", "gateway", "basic", "haproxy", "", 0),
		cpuRatio("gateway/nginx req per CPU-s, routes-10k", "routes-10k", "gateway", "routes-10k", "nginx", "", 0),
		cpuRatio("gateway routes-10k/basic req per CPU-s", "routes-10k", "gateway", "basic", "gateway", "", 0),
	)
	for _, s := range scs {
		if s.target("baseline") != nil {
			rs = append(rs, cpuRatio("gateway/baseline req per CPU-s, "+s.Name, s.Name, "gateway", s.Name, "baseline", "", 0),
				pairedRatio(s, "gateway", "baseline"))
		}
	}
	return rs
}

// pairedRatio is the median over the rounds of a's req/CPU-s divided by
// b's in the same round. Turns of one round run back to back, so on a
// shared machine this is steadier than the ratio of the totals.
func pairedRatio(s *scenarioResult, a, b string) ratio {
	r := ratio{Name: fmt.Sprintf("%s/%s req per CPU-s, %s, median of rounds", a, b, s.Name)}
	x, y := s.target(a), s.target(b)
	var rs []float64
	for i := range min(len(x.Turns), len(y.Turns)) {
		tx, ty := x.Turns[i], y.Turns[i]
		if tx.CPUSeconds > 0 && ty.CPUSeconds > 0 && ty.Requests > 0 {
			rs = append(rs, (float64(tx.Requests)/tx.CPUSeconds)/(float64(ty.Requests)/ty.CPUSeconds))
		}
	}
	if len(rs) == 0 {
		r.NA = "no rounds with CPU time"
		return r
	}
	slices.Sort(rs)
	r.Value = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		r.Value = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return r
}

func printRatios(w io.Writer, rs []ratio) {
	fmt.Fprintln(w, "\ntargets (performance.md), this run:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rs {
		switch {
		case r.NA != "":
			fmt.Fprintf(tw, "  %s\tn/a\t%s\t(%s)\n", r.Name, r.Target, r.NA)
		case r.Target == "":
			fmt.Fprintf(tw, "  %s\t%.2f\t\t\n", r.Name, r.Value)
		default:
			verdict := "MET"
			if !r.Met {
				verdict = "NOT MET"
			}
			fmt.Fprintf(tw, "  %s\t%.2f\t%s\t%s\n", r.Name, r.Value, r.Target, verdict)
		}
	}
	tw.Flush()
}

func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
