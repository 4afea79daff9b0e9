package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/race"
	"gateway/internal/testheap"
)

// scaleRoutes is the route count of the scrape and heap measurements: the
// bench's `full` scenario.
const scaleRoutes = 10000

// scaleYAML is a config of n routes /r{i}/* in one service, on one
// upstream with two nodes, as the bench's routes-10k and full scenarios.
func scaleYAML(port string, n int, extra string) string {
	var b strings.Builder
	b.WriteString("gateway: {access_log: {enabled: false}" + extra + "}\n")
	b.WriteString("upstreams:\n  - id: backends\n    nodes: [{host: 127.0.0.1, port: " + port + "}, {host: localhost, port: " + port + "}]\n")
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n    routes:\n")
	for i := range n {
		b.WriteString("      - {id: r" + strconv.Itoa(i) + ", paths: [\"/r" + strconv.Itoa(i) + "/*\"]}\n")
	}
	return b.String()
}

// scaleBackend serves {"ok":true} on loopback for the scale tests and
// returns its port.
func scaleBackend(tb testing.TB) string {
	tb.Helper()
	body := []byte(`{"ok":true}`)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// scaleGateway is an in-process gateway over n routes, each of which has
// served one request (so that every route has its series), and 404s.
func scaleGateway(tb testing.TB, n int, extra string) *Gateway {
	tb.Helper()
	cfg, err := mustParseErr(scaleYAML(scaleBackend(tb), n, extra))
	require.NoError(tb, err)
	g := New(Options{})
	tb.Cleanup(g.Close)
	require.NoError(tb, g.Apply(cfg))

	var req fasthttp.Request
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	for i := range n + 1 {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetHost("bench")
		if i == n {
			ctx.Request.SetRequestURI("/missing")
		} else {
			ctx.Request.SetRequestURI("/r" + strconv.Itoa(i) + "/x")
		}
		g.Handler(ctx)
	}
	return g
}

// discardWriter is an http.ResponseWriter that keeps nothing, so that a
// scrape measures the handler, not a recorder's buffer.
type discardWriter struct {
	h http.Header
	n int64
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// scrapeInto serves one GET /metrics into w.
func scrapeInto(h http.Handler, w *discardWriter, gzip bool) {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Host = "127.0.0.1:9091"
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	clear(w.h)
	w.n = 0
	h.ServeHTTP(w, req)
}

// TestMetricsScrapeAllocations10kRoutes bounds what one /metrics scrape
// allocates with 10k routes that all served requests (issue 20).
func TestMetricsScrapeAllocations10kRoutes(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates on its own")
	}
	if testing.Short() {
		t.Skip("compiles 10k routes")
	}
	g := scaleGateway(t, scaleRoutes, "")
	h := g.ControlHandler(nil)
	for _, gz := range []bool{false, true} {
		w := &discardWriter{h: http.Header{}}
		scrapeInto(h, w, gz)
		// Cold scrapes, as Prometheus's (every 15 s or so) are: two
		// collections in between empty the sync.Pools, so the reused
		// buffer and gzip writer count too.
		const runs = 3
		var total uint64
		for range runs {
			runtime.GC()
			count := testheap.Count() // the second collection
			scrapeInto(h, w, gz)
			_, bytes := count.Since()
			total += bytes
		}
		perScrape := total / runs
		t.Logf("gzip %v: %d bytes written, %.2f MiB allocated per scrape", gz, w.n, float64(perScrape)/(1<<20))
		require.Less(t, perScrape, uint64(2<<20), "a scrape at 10k routes must allocate < 2 MiB (gzip %v)", gz)
	}
}

// BenchmarkScrape10kRoutes is one /metrics scrape with 10k routes that all
// served a request, plain and gzip-compressed (what Prometheus asks for).
func BenchmarkScrape10kRoutes(b *testing.B) {
	for _, mode := range []struct {
		name  string
		extra string
		gzip  bool
	}{{"text", "", false}, {"gzip", "", true},
		{"text/service-histograms", "}\nmetrics: {route_histograms: false", false},
		{"gzip/service-histograms", "}\nmetrics: {route_histograms: false", true}} {
		b.Run(mode.name, func(b *testing.B) {
			g := scaleGateway(b, scaleRoutes, mode.extra)
			h := g.ControlHandler(nil)
			w := &discardWriter{h: http.Header{}}
			scrapeInto(h, w, mode.gzip)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for b.Loop() {
				scrapeInto(h, w, mode.gzip)
			}
			// CPU time rather than wall time: the machine is shared.
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(w.n), "resp-bytes")
		})
	}
}

// BenchmarkLiveHeap10kRoutes reports the live heap of a gateway that
// compiled 10k routes, each of which served a request.
func BenchmarkLiveHeap10kRoutes(b *testing.B) {
	for b.Loop() {
		before := testheap.Live()
		g := scaleGateway(b, scaleRoutes, "")
		after := testheap.Live()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "live-MiB")
		b.StopTimer()
		g.Close()
		b.StartTimer()
	}
}

// processCPU is the user and system CPU time of the process, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
