package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// loadSpec is one run of the load generator.
type loadSpec struct {
	Addr        string        `json:"addr"`
	Connections int           `json:"connections"`
	Duration    time.Duration `json:"duration"`
	Threads     int           `json:"threads"`
	Requests    []reqTemplate `json:"requests"` // sent in random order
	// TLS: connect with TLS (any certificate, no session resumption).
	TLS bool `json:"tls,omitempty"`
	// TCP is the tcp scenario's load (throughput or connect; tcp.go).
	TCP string `json:"tcp,omitempty"`
}

// loadResult is what a load generator measured.
type loadResult struct {
	Requests     int64   `json:"requests"`
	Seconds      float64 `json:"seconds"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	P999Ms       float64 `json:"p999_ms"`
	MaxMs        float64 `json:"max_ms"`
	Non2xx       int64   `json:"non_2xx"`
	SocketErrors int64   `json:"socket_errors"`
}

func (r loadResult) errors() int64 { return r.Non2xx + r.SocketErrors }

func (r loadResult) reqPerSec() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

// window lets the caller sample the proxy's CPU time when the load starts
// and when it stops.
type window struct{ start, stop func() }

// generator runs a closed-loop load against spec.Addr.
type generator interface {
	name() string
	run(ctx context.Context, b *bench, spec *loadSpec, w window) (loadResult, error)
}

// pickGenerator resolves --generator: wrk when asked for or, with auto,
// when installed; else the built-in one.
func pickGenerator(kind string) (generator, error) {
	switch kind {
	case "wrk":
		p, err := exec.LookPath("wrk")
		if err != nil {
			return nil, errors.New("--generator wrk: wrk is not installed (apt-get install wrk)")
		}
		return &wrkGenerator{bin: p}, nil
	case "builtin":
		return builtinGenerator{}, nil
	case "auto":
		if p, err := exec.LookPath("wrk"); err == nil {
			return &wrkGenerator{bin: p}, nil
		}
		return builtinGenerator{}, nil
	}
	return nil, fmt.Errorf("--generator %q: want auto, wrk or builtin", kind)
}

// wrkGenerator runs wrk. wrk's --latency table has no p99.9 and rounds
// its units, so a small Lua done() hook prints the exact figures in
// microseconds; with several request templates a request() hook picks one
// at random from a list that init() formats once per thread.
type wrkGenerator struct{ bin string }

func (w *wrkGenerator) name() string { return "wrk" }

const wrkScript = `-- written by bench: figures for the bench to parse
local reqs = {}
function init(args)
  local f = io.open(%q, "r")
  if f == nil then return end
  for line in f:lines() do
    local path, headers = nil, {}
    for field in string.gmatch(line, "[^\t]+") do
      if path == nil then
        path = field
      else
        local k, v = string.match(field, "^([^:]+): (.*)$")
        headers[k] = v
      end
    end
    reqs[#reqs + 1] = wrk.format("GET", path, headers)
  end
  f:close()
end
%s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%%.0f duration_us=%%.0f connect=%%.0f read=%%.0f write=%%.0f status=%%.0f timeout=%%.0f p50_us=%%.0f p99_us=%%.0f p999_us=%%.0f max_us=%%.0f\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`

const wrkRequestHook = `request = function() return reqs[math.random(#reqs)] end`

func (w *wrkGenerator) run(ctx context.Context, b *bench, spec *loadSpec, win window) (loadResult, error) {
	url := "http://" + spec.Addr
	if spec.TLS {
		url = "https://" + spec.Addr
	}
	var hook, listPath string
	var headerArgs []string
	if len(spec.Requests) == 1 {
		// One request: wrk sends it as is, without calling Lua per request.
		url += spec.Requests[0].Path
		for _, h := range spec.Requests[0].Headers {
			headerArgs = append(headerArgs, "-H", h[0]+": "+h[1])
		}
	} else {
		listPath = b.path("wrk-requests.txt")
		var lines strings.Builder
		for _, r := range spec.Requests {
			lines.WriteString(r.Path)
			for _, h := range r.Headers {
				lines.WriteString("\t" + h[0] + ": " + h[1])
			}
			lines.WriteByte('\n')
		}
		if err := os.WriteFile(listPath, []byte(lines.String()), 0o644); err != nil {
			return loadResult{}, err
		}
		hook = wrkRequestHook
		url += spec.Requests[0].Path
	}
	script := b.path("wrk.lua")
	if err := os.WriteFile(script, fmt.Appendf(nil, wrkScript, listPath, hook), 0o644); err != nil {
		return loadResult{}, err
	}
	secs := max(1, int(math.Round(spec.Duration.Seconds())))
	threads := min(max(spec.Threads, 1), spec.Connections)
	argv := []string{w.bin, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(spec.Connections),
		"-d", strconv.Itoa(secs) + "s", "--latency", "-s", script}
	argv = append(append(argv, headerArgs...), url)
	argv = b.sup.pin.wrap(b.sup.pin.load, argv)
	var out strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// wrk gives no sign when its connections are up; the proxy is idle
	// before and after, so sampling around the process is the window.
	win.start()
	c, err := b.sup.start("wrk", cmd)
	if err != nil {
		return loadResult{}, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		b.sup.stop(c)
		return loadResult{}, ctx.Err()
	}
	win.stop()
	b.sup.stop(c) // reaped already; unregisters it
	if c.err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", c.err, out.String())
	}
	return parseWrk(out.String())
}

// parseWrk reads the BENCH line that the done() hook prints.
func parseWrk(out string) (loadResult, error) {
	var line string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "BENCH ") {
			line = l
		}
	}
	if line == "" {
		return loadResult{}, fmt.Errorf("wrk printed no figures:\n%s", out)
	}
	v := map[string]float64{}
	for _, kv := range strings.Fields(line)[1:] {
		k, s, _ := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return loadResult{}, fmt.Errorf("wrk: bad figure %q", kv)
		}
		v[k] = f
	}
	return loadResult{
		Requests: int64(v["requests"]),
		Seconds:  v["duration_us"] / 1e6,
		P50Ms:    v["p50_us"] / 1e3,
		P99Ms:    v["p99_us"] / 1e3,
		P999Ms:   v["p999_us"] / 1e3,
		MaxMs:    v["max_us"] / 1e3,
		// wrk counts responses with status >= 400 as status errors.
		Non2xx:       int64(v["status"]),
		SocketErrors: int64(v["connect"] + v["read"] + v["write"] + v["timeout"]),
	}, nil
}

// builtinGenerator re-executes the bench binary as the load child, so that
// taskset can place it beside the backends. The child prints "start" once
// its connections are up and "stop" when the time is over, which is where
// the CPU samples are taken, then its result as one JSON line.
type builtinGenerator struct{}

func (builtinGenerator) name() string { return "builtin" }

func (builtinGenerator) run(ctx context.Context, b *bench, spec *loadSpec, win window) (loadResult, error) {
	self, err := os.Executable()
	if err != nil {
		return loadResult{}, err
	}
	specPath := b.path("load-spec.json")
	data, err := json.Marshal(spec)
	if err != nil {
		return loadResult{}, err
	}
	if err := os.WriteFile(specPath, data, 0o644); err != nil {
		return loadResult{}, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return loadResult{}, err
	}
	defer r.Close()
	argv := b.sup.pin.wrap(b.sup.pin.load, []string{self})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+childLoad, loadSpecEnv+"="+specPath)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = w, &stderr
	c, err := b.sup.start("load generator", cmd)
	w.Close()
	if err != nil {
		return loadResult{}, err
	}
	defer b.sup.stop(c)
	stopOnCancel := context.AfterFunc(ctx, func() { b.sup.stop(c) })
	defer stopOnCancel()

	var res loadResult
	var got bool
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		switch line := lines.Text(); line {
		case "start":
			win.start()
		case "stop":
			win.stop()
		default:
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				return loadResult{}, fmt.Errorf("load generator: %v: %q", err, line)
			}
			got = true
		}
	}
	<-c.done
	if ctx.Err() != nil {
		return loadResult{}, ctx.Err()
	}
	if !got {
		return loadResult{}, fmt.Errorf("load generator: %v: %s", c.exitError(), stderr.String())
	}
	return res, nil
}

// loadMain is the built-in generator: spec.Connections connections, each
// sending one request and waiting for its response before the next (a
// closed loop, as wrk does), for spec.Duration.
func loadMain(specPath string, out io.Writer) error {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec loadSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	if spec.TCP != "" {
		return tcpLoadMain(&spec, out)
	}
	if len(spec.Requests) == 0 || spec.Connections < 1 {
		return errors.New("empty load spec")
	}
	raw := make([][]byte, len(spec.Requests))
	for i, t := range spec.Requests {
		raw[i] = rawRequest(spec.Addr, t)
	}
	workers := make([]*loadWorker, spec.Connections)
	for i := range workers {
		w := &loadWorker{addr: spec.Addr, tls: spec.TLS, reqs: raw, rng: uint64(i)*0x9e3779b97f4a7c15 + 1}
		if err := w.connect(); err != nil {
			return err
		}
		workers[i] = w
	}
	fmt.Fprintln(out, "start")
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintln(out, "stop")

	var all hist
	res := loadResult{Seconds: elapsed.Seconds()}
	for _, w := range workers {
		all.merge(&w.h)
		res.Requests += w.n
		res.Non2xx += w.non2xx
		res.SocketErrors += w.sockErrs
		if w.conn != nil {
			w.conn.Close()
		}
	}
	res.P50Ms = ms(all.percentile(0.50))
	res.P99Ms = ms(all.percentile(0.99))
	res.P999Ms = ms(all.percentile(0.999))
	res.MaxMs = ms(time.Duration(all.max))
	return json.NewEncoder(out).Encode(res)
}

// rawRequest is t as HTTP/1.1 bytes, formatted once.
func rawRequest(addr string, t reqTemplate) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bench\r\n", t.Path, addr)
	for _, h := range t.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// loadWorker is one connection of the built-in generator.
type loadWorker struct {
	addr string
	tls  bool
	reqs [][]byte
	rng  uint64

	conn net.Conn
	br   *bufio.Reader
	resp fasthttp.Response
	h    hist

	n, non2xx, sockErrs int64
}

func (w *loadWorker) connect() error {
	c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if w.tls {
		// A full handshake on every connection: no session cache.
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the bench's own certificate
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return err
		}
		_ = tc.SetDeadline(time.Time{})
		c = tc
	}
	w.conn = c
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		w.br.Reset(c)
	}
	return nil
}

// next is xorshift64*: a cheap per-connection random route.
func (w *loadWorker) next() int {
	w.rng ^= w.rng >> 12
	w.rng ^= w.rng << 25
	w.rng ^= w.rng >> 27
	return int(((w.rng * 2685821657736338717) >> 33) % uint64(len(w.reqs)))
}

func (w *loadWorker) loop(deadline time.Time) {
	// A stuck proxy must not hang the run: no exchange may outlive the
	// load by more than this.
	_ = w.conn.SetDeadline(deadline.Add(10 * time.Second))
	for {
		t0 := time.Now()
		if !t0.Before(deadline) {
			return
		}
		if w.conn == nil {
			if err := w.connect(); err != nil {
				w.sockErrs++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_ = w.conn.SetDeadline(deadline.Add(10 * time.Second))
		}
		req := w.reqs[0]
		if len(w.reqs) > 1 {
			req = w.reqs[w.next()]
		}
		_, err := w.conn.Write(req)
		if err == nil {
			w.resp.Reset()
			err = w.resp.Read(w.br)
		}
		if err != nil {
			w.sockErrs++
			w.conn.Close()
			w.conn = nil
			continue
		}
		w.h.record(time.Since(t0))
		w.n++
		if sc := w.resp.StatusCode(); sc < 200 || sc > 299 {
			w.non2xx++
		}
		if w.resp.ConnectionClose() {
			w.conn.Close()
			w.conn = nil
		}
	}
}
