package proxy

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// benchScenarioYAML is the gateway config of the bench's `basic` (full
// false: one catch-all route, round robin over two nodes) or `full`
// scenario (10k routes /r{i}/*, key-auth on the service, a throttle policy
// with four counters whose limits are never reached, chash on X-User-Id,
// the access log to logPath), as bench/scenarios.go writes them.
func benchScenarioYAML(port1, port2 string, full bool, logPath string) string {
	var b strings.Builder
	b.WriteString("gateway:\n  log_level: warn\n")
	if full {
		b.WriteString("  access_log: {enabled: true, path: " + strconv.Quote(logPath) + "}\n")
	} else {
		b.WriteString("  access_log: {enabled: false}\n")
	}
	b.WriteString("upstreams:\n  - id: backends\n")
	if full {
		b.WriteString("    type: chash\n    hash_on: header\n    key: X-User-Id\n")
	}
	b.WriteString("    nodes:\n      - {host: 127.0.0.1, port: " + port1 + "}\n      - {host: 127.0.0.1, port: " + port2 + "}\n")
	if full {
		b.WriteString("throttle_policies:\n  - {id: bench, api_call_limits: 2000000000, user_call_limits: 2000000000, " +
			"app_call_limits: 2000000000, ip_call_limits: 2000000000, time_interval: 1, time_unit: SECOND, type: 1}\n")
		b.WriteString("consumers:\n  - username: bench-user\n    credentials:\n" +
			"      - {name: bench-app, plugins: {key-auth: {key: bench-key}}}\n")
	}
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n")
	if full {
		b.WriteString("    throttle_policy: bench\n    plugins: {key-auth: {}}\n")
	}
	b.WriteString("    routes:\n")
	if !full {
		b.WriteString("      - {id: r0, paths: [\"/*\"]}\n")
		return b.String()
	}
	for i := range scaleRoutes {
		b.WriteString("      - {id: r" + strconv.Itoa(i) + ", paths: [\"/r" + strconv.Itoa(i) + "/*\"]}\n")
	}
	return b.String()
}

// benchScenarioRequests are the raw requests of the scenario, in the
// random order the bench's load sends them (fixed seed).
func benchScenarioRequests(full bool, n int) [][]byte {
	out := make([][]byte, n)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range out {
		var b []byte
		if !full {
			b = append(b, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:9080\r\nUser-Agent: bench\r\n\r\n"...)
		} else {
			r := rnd.IntN(scaleRoutes)
			b = append(b, "GET /r"+strconv.Itoa(r)+"/hello HTTP/1.1\r\nHost: 127.0.0.1:9080\r\nUser-Agent: bench\r\n"...)
			b = append(b, "apikey: bench-key\r\nX-User-Id: u"+strconv.Itoa(r%1000)+"\r\n\r\n"...)
		}
		out[i] = b
	}
	return out
}

// costRunner drives one scenario's gateway in process: each request is
// parsed from its raw bytes, served by Handler against a real loopback
// backend, and its response written out, as the server would.
type costRunner struct {
	g      *Gateway
	scrape http.Handler
	reqs   [][]byte
	next   int
	ctx    *fasthttp.RequestCtx
	rd     *bytes.Reader
	br     *bufio.Reader
	bw     *bufio.Writer
	served int
	cpu    int64
}

func newCostRunner(tb testing.TB, full bool, port1, port2 string) *costRunner {
	tb.Helper()
	return newCostRunnerYAML(tb, full, benchScenarioYAML(port1, port2, full, filepath.Join(tb.TempDir(), "access.log")))
}

// newCostRunnerYAML is newCostRunner over a config of the scenario's shape.
func newCostRunnerYAML(tb testing.TB, full bool, yaml string) *costRunner {
	tb.Helper()
	cfg, err := mustParseErr(yaml)
	require.NoError(tb, err)
	g := New(Options{})
	tb.Cleanup(g.Close)
	require.NoError(tb, g.Apply(cfg))
	r := &costRunner{g: g, reqs: benchScenarioRequests(full, 1<<16), ctx: &fasthttp.RequestCtx{}, rd: bytes.NewReader(nil)}
	if full {
		r.scrape = g.ControlHandler(nil)
	}
	r.br = bufio.NewReader(r.rd)
	r.bw = bufio.NewWriterSize(discard{}, 4096)
	r.ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return r
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// run serves n requests.
func (r *costRunner) run(tb testing.TB, n int) {
	ctx := r.ctx
	for range n {
		r.rd.Reset(r.reqs[r.next])
		r.next = (r.next + 1) & (len(r.reqs) - 1)
		r.br.Reset(r.rd)
		ctx.Request.Reset()
		ctx.Response.Reset()
		if err := ctx.Request.Read(r.br); err != nil {
			tb.Fatal(err)
		}
		r.g.Handler(ctx)
		if ctx.Response.StatusCode() != 200 {
			tb.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		_ = ctx.Response.Write(r.bw)
		r.served++
		// /metrics every 5 s at ~20k req/s.
		if r.scrape != nil && r.served%100000 == 0 {
			scrapeInto(r.scrape, &discardWriter{h: http.Header{}}, true)
		}
	}
	_ = r.bw.Flush()
}

// BenchmarkRequestCost serves the bench's `basic` and `full` requests in
// process, alternating chunks of 1000 so that both see the same machine
// load, and reports the process CPU per request of each and their ratio
// (what issue 20's "full / basic req per CPU-s" compares, less the socket
// work both share). Run with -cpu 1, as the bench's gateway runs.
func BenchmarkRequestCost(b *testing.B) {
	b1, b2 := leanBackend(b), leanBackend(b)
	basic := newCostRunner(b, false, b1.port(), b2.port())
	full := newCostRunner(b, true, b1.port(), b2.port())
	basic.run(b, 5000)
	full.run(b, 20000) // every route once or so, the throttle keys, chash
	b.ResetTimer()
	const chunk = 1000
	for i := 0; i < b.N; i += chunk {
		for _, r := range []*costRunner{basic, full} {
			c0 := processCPU()
			r.run(b, chunk)
			r.cpu += processCPU() - c0
		}
	}
	n := float64((b.N + chunk - 1) / chunk * chunk)
	bc, fc := float64(basic.cpu)/n, float64(full.cpu)/n
	b.ReportMetric(bc, "basic-cpu-ns/req")
	b.ReportMetric(fc, "full-cpu-ns/req")
	b.ReportMetric(fc-bc, "delta-ns/req")
	b.ReportMetric(bc/fc, "full/basic")
}

// BenchmarkRequestCostFull is `full` alone, for a CPU profile.
func BenchmarkRequestCostFull(b *testing.B) { benchOneScenario(b, true) }

// BenchmarkRequestCostBasic is `basic` alone, the base of a profile diff.
func BenchmarkRequestCostBasic(b *testing.B) { benchOneScenario(b, false) }

func benchOneScenario(b *testing.B, full bool) {
	b1, b2 := leanBackend(b), leanBackend(b)
	r := newCostRunner(b, full, b1.port(), b2.port())
	r.run(b, 20000)
	b.ResetTimer()
	c0 := processCPU()
	r.run(b, b.N)
	b.ReportMetric(float64(processCPU()-c0)/float64(b.N), "cpu-ns/req")
}
