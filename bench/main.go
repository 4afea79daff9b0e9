// Command bench is the gateway's load test (performance.md): it starts
// fast backends on loopback, builds the gateway from this tree and
// measures it, in alternating turns under the same closed-loop load,
// against the backends directly (the ceiling) and against nginx, haproxy
// and caddy when they are installed. The figure that compares proxies is
// requests per CPU-second of the proxy's process tree, which stays fair
// when the load generator, not the proxy, is the bottleneck.
//
//	go run ./bench [--scenario basic|routes-10k|full|reload|tls|tls-handshake|throttle-cluster|tcp|all] [--duration 10s]
//	               [--connections 64] [--rounds 2] [--peers nginx,haproxy,caddy|none]
//	               [--generator auto|wrk|builtin] [--json FILE]
//
// On a machine with 2+ CPUs and taskset, the proxy under test runs alone
// on the first CPU and the load generator, the backends and the bench
// itself on the others.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gateway/internal/testcert"
)

// options are the command-line flags.
type options struct {
	Duration    time.Duration `json:"duration"`
	Warmup      time.Duration `json:"warmup"`
	Connections int           `json:"connections"`
	Scenario    string        `json:"scenario"`
	Routes      int           `json:"routes"`
	Peers       []string      `json:"peers"`
	Rounds      int           `json:"rounds"`
	JSON        string        `json:"-"`
	Generator   string        `json:"generator"`
	GOGC        string        `json:"gateway_gogc"`
	GOMAXPROCS  int           `json:"gateway_gomaxprocs"`
	Cores       int           `json:"cores"`
	GOMEMLIMIT  string        `json:"gateway_gomemlimit,omitempty"`
	Pin         bool          `json:"pin"`
	Pprof       string        `json:"-"`
	ScrapeEvery time.Duration `json:"scrape_every"`
	ReloadEvery time.Duration `json:"reload_every"`
	Keep        bool          `json:"-"`
	Baseline    string        `json:"baseline,omitempty"`
	GatewayBin  string        `json:"gateway_bin,omitempty"`
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "load `time` of each measured turn")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured load before a target's first turn")
	fs.IntVar(&o.Connections, "connections", 64, "concurrent keep-alive connections of the load generator")
	fs.StringVar(&o.Scenario, "scenario", "basic", "basic, routes-10k, full, reload, tls, tls-handshake, throttle-cluster, tcp, a comma list, or all")
	fs.IntVar(&o.Routes, "routes", 10000, "routes in the routes-10k, full and reload scenarios")
	peers := fs.String("peers", strings.Join(peerNames, ","), "peer proxies to compare with (comma list), or none")
	fs.IntVar(&o.Rounds, "rounds", 2, "measured turns of each target, taken in alternation")
	fs.StringVar(&o.JSON, "json", "", "write all results to `FILE`")
	fs.StringVar(&o.Generator, "generator", "auto", "load generator: auto (wrk when installed), wrk, builtin")
	fs.StringVar(&o.GOGC, "gogc", "400", "GOGC of the gateway process (\"default\": leave unset)")
	fs.IntVar(&o.GOMAXPROCS, "gomaxprocs", 0, "GOMAXPROCS of the gateway process (0: as many as --cores; -1: leave unset)")
	fs.IntVar(&o.Cores, "cores", 1, "CPUs the proxy under test gets: nginx workers, haproxy threads and caddy's GOMAXPROCS follow it; when it leaves no CPU free, the load generator and backends share the proxy's CPUs")
	fs.StringVar(&o.GOMEMLIMIT, "gomemlimit", "", "GOMEMLIMIT of the gateway process, e.g. 80MiB (default: unset)")
	fs.BoolVar(&o.Pin, "pin", true, "pin the proxy to CPU 0 and the rest to the other CPUs (needs 2+ CPUs and taskset)")
	fs.StringVar(&o.Pprof, "pprof", "", "pass GATEWAY_PPROF=`ADDR` to the gateway (net/http/pprof on ADDR)")
	fs.DurationVar(&o.ScrapeEvery, "scrape-every", 5*time.Second, "interval of /metrics scrapes in full and reload")
	fs.DurationVar(&o.ReloadEvery, "reload-every", 100*time.Millisecond, "interval of config reloads in the reload scenario")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (configs, logs) and print its path")
	fs.StringVar(&o.GatewayBin, "gateway-bin", "", "measure this prebuilt gateway `BINARY` instead of building ./cmd/gateway")
	fs.StringVar(&o.Baseline, "baseline", "", "also measure this prebuilt gateway `BINARY` as target \"baseline\" (A/B of a change)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *peers != "none" && *peers != "" {
		for p := range strings.SplitSeq(*peers, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(peerNames, p) {
				return o, fmt.Errorf("--peers: unknown peer %q (want %s or none)", p, strings.Join(peerNames, ","))
			}
			o.Peers = append(o.Peers, p)
		}
	}
	switch {
	case o.Duration < time.Second:
		return o, errors.New("--duration must be at least 1s")
	case o.Connections < 1:
		return o, errors.New("--connections must be at least 1")
	case o.Rounds < 1:
		return o, errors.New("--rounds must be at least 1")
	case o.Routes < 2:
		return o, errors.New("--routes must be at least 2")
	case o.ReloadEvery <= 0:
		return o, errors.New("--reload-every must be positive")
	case o.Cores < 1:
		return o, errors.New("--cores must be at least 1")
	}
	if o.GOMAXPROCS == 0 {
		o.GOMAXPROCS = o.Cores
	}
	for _, f := range []struct {
		name string
		path *string
	}{{"--baseline", &o.Baseline}, {"--gateway-bin", &o.GatewayBin}} {
		if *f.path == "" {
			continue
		}
		abs, err := filepath.Abs(*f.path)
		if err != nil {
			return o, err
		}
		if _, err := os.Stat(abs); err != nil {
			return o, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.path = abs
	}
	if _, err := scenarios(o.Scenario, o.Routes); err != nil {
		return o, err
	}
	return o, nil
}

// gatewayEnv is the gateway's environment on top of the bench's own, with
// the runtime settings the bench controls replaced rather than inherited.
func (o *options) gatewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "GOGC" && k != "GOMAXPROCS" && k != "GOMEMLIMIT" && k != "GATEWAY_PPROF" {
			env = append(env, kv)
		}
	}
	if o.GOMAXPROCS > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(o.GOMAXPROCS))
	}
	if o.GOGC != "" && o.GOGC != "default" {
		env = append(env, "GOGC="+o.GOGC)
	}
	if o.GOMEMLIMIT != "" {
		env = append(env, "GOMEMLIMIT="+o.GOMEMLIMIT)
	}
	if o.Pprof != "" {
		env = append(env, "GATEWAY_PPROF="+o.Pprof)
	}
	return env
}

func main() {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, opts, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// bench is one run of the tool.
type bench struct {
	opts options
	log  io.Writer // progress; the results go to run's out
	dir  string
	sup  *supervisor
	gen  generator

	gatewayBin   string
	backends     []string
	backendChild *child
	// tlsCert and tlsKey are the self-signed certificate the TLS scenarios
	// serve (gateway and nginx alike).
	tlsCert, tlsKey string
}

func (b *bench) path(name string) string { return filepath.Join(b.dir, name) }

// run is the whole tool: it returns the results it printed on out, with
// progress on log. Every child it started is stopped when it returns.
func run(ctx context.Context, opts options, out, log io.Writer) (*report, error) {
	scs, err := scenarios(opts.Scenario, opts.Routes)
	if err != nil {
		return nil, err
	}
	b := &bench{opts: opts, log: log, sup: &supervisor{}}
	defer b.sup.stopAll()

	if b.gen, err = pickGenerator(opts.Generator); err != nil {
		return nil, err
	}
	if err := b.placeCPUs(); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp("", "gateway-bench-"); err != nil {
		return nil, err
	}
	if opts.Keep {
		fmt.Fprintln(log, "bench: keeping", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}

	rep := newReport(opts, b)
	rep.printHeader(out)
	if b.gatewayBin = opts.GatewayBin; b.gatewayBin == "" {
		fmt.Fprintln(log, "bench: building the gateway")
		b.gatewayBin = b.path("gateway")
		if err := buildGateway(ctx, b.gatewayBin, log); err != nil {
			return nil, err
		}
	}
	if b.backends, err = b.startBackends(); err != nil {
		return nil, fmt.Errorf("backends: %w", err)
	}
	if slices.ContainsFunc(scs, func(sc *scenario) bool { return sc.TLS }) {
		b.tlsCert, b.tlsKey = b.path("bench.crt"), b.path("bench.key")
		pair := testcert.Issue(nil, testcert.Options{}, "localhost", "127.0.0.1")
		if err := os.WriteFile(b.tlsCert, pair.CertPEM, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(b.tlsKey, pair.KeyPEM, 0o600); err != nil {
			return nil, err
		}
	}

	if err := b.startRedis(scs); err != nil {
		return nil, err
	}
	for _, sc := range scs {
		res, err := b.runScenario(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		rep.Scenarios = append(rep.Scenarios, res)
		if sc.TCP {
			res.printTCP(out)
		} else {
			res.print(out)
		}
	}
	rep.Ratios = computeRatios(rep.Scenarios)
	printRatios(out, rep.Ratios)
	if opts.JSON != "" {
		if err := rep.writeJSON(opts.JSON); err != nil {
			return rep, err
		}
		fmt.Fprintln(log, "bench: results written to", opts.JSON)
	}
	return rep, nil
}

// placeCPUs decides the pinning: with 2+ CPUs and taskset, the proxy gets
// the first --cores allowed CPUs and everything else the rest, the bench
// included. When --cores leaves no CPU free, everything shares them: the
// proxy's CPU time is still its own, but the load generator competes with
// it, and the report says so.
func (b *bench) placeCPUs() error {
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) == 0 {
		cpus = []int{0}
	}
	_, tasksetErr := exec.LookPath("taskset")
	switch {
	case !b.opts.Pin:
		fmt.Fprintln(b.log, "bench: pinning off (--pin=false)")
	case len(cpus) < 2:
		fmt.Fprintln(b.log, "bench: one CPU: no pinning; proxy and load share it")
	case tasksetErr != nil:
		fmt.Fprintln(b.log, "bench: taskset not found: no pinning (apt-get install util-linux)")
	default:
		n := min(b.opts.Cores, len(cpus))
		b.sup.pin = pinning{on: true, proxy: cpus[:n], load: cpus[n:]}
		if n == len(cpus) {
			b.sup.pin.load, b.sup.pin.shared = cpus, true
		}
		return pinSelf(b.sup.pin.load)
	}
	return nil
}

// loadThreads is how many threads wrk gets: one per CPU it may use.
func (b *bench) loadThreads() int {
	if b.sup.pin.on {
		return len(b.sup.pin.load)
	}
	return max(1, runtime.NumCPU()/2)
}

// runScenario measures every target of sc in alternating turns.
func (b *bench) runScenario(ctx context.Context, sc *scenario) (*scenarioResult, error) {
	if sc.TCP {
		return b.runTCP(ctx, sc)
	}
	res := &scenarioResult{Name: sc.Name, Routes: sc.Routes}
	fmt.Fprintf(b.log, "bench: scenario %s (%d routes)\n", sc.Name, sc.Routes)
	targets := []target{&directTarget{backend: b.backends[0]}, &gatewayTarget{label: "gateway", bin: b.gatewayBin}}
	if b.opts.Baseline != "" {
		targets = append(targets, &gatewayTarget{label: "baseline", bin: b.opts.Baseline})
	}
	switch {
	case sc.Peers:
		for _, p := range b.opts.Peers {
			if sc.TLS && p != "nginx" {
				res.skip(b.log, p, "the TLS scenarios compare with nginx only")
				continue
			}
			bin, err := exec.LookPath(p)
			if err != nil {
				res.skip(b.log, p, "not installed ("+installHint+")")
				continue
			}
			targets = append(targets, &peerTarget{kind: p, bin: bin})
		}
	case len(b.opts.Peers) > 0:
		res.Notes = append(res.Notes, "peers run only in basic, routes-10k, tls and tls-handshake")
	}

	started := make([]target, 0, len(targets))
	defer func() {
		for _, t := range started {
			t.stop(b)
		}
	}()
	for _, t := range targets {
		t0 := time.Now()
		if err := t.start(ctx, b, sc); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if _, ok := t.(*peerTarget); ok {
				res.skip(b.log, t.name(), "did not start: "+err.Error())
				t.stop(b)
				continue
			}
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
		if t.pid() > 0 {
			fmt.Fprintf(b.log, "  %s ready in %s\n", t.name(), time.Since(t0).Round(time.Millisecond))
		}
		started = append(started, t)
		res.Targets = append(res.Targets, &targetResult{Name: t.name(), proxy: t.pid() > 0})
	}

	reqs := sc.templates()
	if b.opts.Warmup > 0 {
		for _, t := range started {
			if _, err := b.turn(ctx, sc, t, reqs, b.opts.Warmup, false); err != nil {
				return nil, fmt.Errorf("%s warmup: %w", t.name(), err)
			}
		}
	}
	for round := 1; round <= b.opts.Rounds; round++ {
		// Every other round runs the targets in reverse order (A B C, C B
		// A, ...): a turn is measurably affected by the one before it (the
		// backends and the load CPU have just been busy), and reversing
		// spreads that over all targets instead of always favouring the
		// same one.
		for k := range started {
			i := k
			if round%2 == 0 {
				i = len(started) - 1 - k
			}
			t := started[i]
			tr, err := b.turn(ctx, sc, t, reqs, b.opts.Duration, true)
			if err != nil {
				return nil, fmt.Errorf("%s round %d: %w", t.name(), round, err)
			}
			tr.Round = round
			res.Targets[i].Turns = append(res.Targets[i].Turns, tr)
			fmt.Fprintf(b.log, "  round %d/%d %-8s %s\n", round, b.opts.Rounds, t.name(), tr.summary())
		}
	}
	for i, t := range started {
		if t.pid() > 0 {
			if rss, err := treeRSS(t.pid()); err == nil {
				res.Targets[i].RSSBytes = rss
			}
		}
		res.Targets[i].aggregate()
	}
	b.redisNotes(ctx, sc, started, res)
	return res, nil
}

// turn puts one load of duration d on t. When measure is set, the proxy's
// CPU time is sampled at the start and the end of the load, and the
// scenario's side jobs (scrapes, reloads) run during it.
func (b *bench) turn(ctx context.Context, sc *scenario, t target, reqs []reqTemplate, d time.Duration, measure bool) (turnResult, error) {
	spec := &loadSpec{Addr: t.addr(), Connections: b.opts.Connections, Duration: d,
		Threads: b.loadThreads(), Requests: reqs, TLS: sc.TLS && t.pid() > 0}
	g, isGateway := t.(*gatewayTarget)
	if isGateway && sc.AccessLog {
		// Each turn's log starts empty so that its size is the turn's.
		_ = os.Truncate(g.accessLog, 0)
	}
	var tr turnResult
	var cpu0, cpu1, be0, be1 time.Duration
	var cpuErr error
	var side *sideJobs
	pid := t.pid()
	win := window{
		start: func() {
			be0, _ = treeCPU(b.backendChild.pid())
			if pid > 0 {
				cpu0, cpuErr = treeCPU(pid)
			}
			if measure && isGateway {
				side = b.startSide(ctx, sc, g)
			}
		},
		stop: func() {
			if pid > 0 && cpuErr == nil {
				cpu1, cpuErr = treeCPU(pid)
			}
			be1, _ = treeCPU(b.backendChild.pid())
		},
	}
	other := startOtherLoad()
	lr, err := b.gen.run(ctx, b, spec, win)
	tr.OtherLoad = other.percent()
	if side != nil {
		tr.Side = side.stop()
	}
	if err != nil {
		return tr, err
	}
	tr.loadResult = lr
	tr.BackendCPUSeconds = (be1 - be0).Seconds()
	if pid > 0 {
		if cpuErr != nil {
			return tr, fmt.Errorf("cpu time: %w", cpuErr)
		}
		tr.CPUSeconds = (cpu1 - cpu0).Seconds()
	}
	if isGateway && sc.AccessLog {
		tr.Side.AccessLogBytes = g.accessLogSize()
	}
	return tr, nil
}
