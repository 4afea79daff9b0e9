package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
)

// gatewayLines are the lines of a text exposition that belong to the
// gateway_ families (the Go and process collectors move between two
// scrapes), in their order.
func gatewayLines(text string) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "gateway_") || strings.HasPrefix(line, "# HELP gateway_") ||
			strings.HasPrefix(line, "# TYPE gateway_") {
			out = append(out, line)
		}
	}
	return out
}

// clientGolangText is the text client_golang writes for everything g
// exports, through the flat collector.
func clientGolangText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var b bytes.Buffer
	for _, mf := range mfs {
		_, err := expfmt.MetricFamilyToText(&b, mf)
		require.NoError(t, err)
	}
	return b.String()
}

// requireSameExposition checks that /metrics writes exactly the families,
// series and values client_golang writes for the same state; only the
// order of the series within a family may differ.
func requireSameExposition(t *testing.T, g *Gateway) string {
	t.Helper()
	got := gatewayLines(scrape(t, g))
	want := gatewayLines(clientGolangText(t, g.Gatherer()))
	comments := func(lines []string) (c []string) {
		for _, l := range lines {
			if strings.HasPrefix(l, "#") {
				c = append(c, l)
			}
		}
		return
	}
	require.Equal(t, comments(want), comments(got), "families, in order")
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)
	return strings.Join(got, "\n")
}

func TestFlatExpositionMatchesClientGolang(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: `+b.port()+`}, {host: localhost, port: `+b.port()+`}]}
    routes: [{id: one, paths: ["/one"]}, {id: two, paths: ["/two/*"]}, {id: idle, paths: ["/idle"]}]
  - id: t
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    routes: [{id: dead, paths: ["/dead"]}]
`)
	for range 3 {
		require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	}
	require.Equal(t, 200, tg.do(t, "POST", "/two/x", nil, "hello").StatusCode())
	require.Equal(t, 502, tg.get(t, "/dead").StatusCode())
	require.Equal(t, 404, tg.get(t, "/nowhere").StatusCode())

	text := requireSameExposition(t, tg.g)
	problems, err := promlint.New(strings.NewReader(scrape(t, tg.g))).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promtool check metrics")
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="one",service="s"} 3`)
	require.Contains(t, text, `gateway_http_requests_total{code="502",route="dead",service="t"} 1`)
	require.Contains(t, text, `gateway_http_requests_total{code="404",route="",service=""} 1`)
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="one",service="s"} 3`)
	require.Contains(t, text, `gateway_http_request_duration_seconds_bucket{route="idle",service="s",le="+Inf"} 0`,
		"a route that served nothing yet has its (zero) histogram, as before")
	require.Contains(t, text, `gateway_http_bytes_total{direction="in",service="s"} 5`)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:1",result="connect_error",upstream="t"} 1`)
	require.Contains(t, text, `gateway_upstream_request_duration_seconds_count{node="127.0.0.1:1",upstream="t"} 1`)
}

// TestFlatExpositionEdgeCases drives the slot tables directly with what
// config validation would not let through: label values to escape, more
// distinct codes than a route's slots, counts from 1e6 on (which the text
// format writes as 1e+06), sums of every size.
func TestFlatExpositionEdgeCases(t *testing.T) {
	g := New(Options{})
	t.Cleanup(g.Close)
	f := g.metrics.flat
	sw := f.beginRoutes(true)
	odd := sw.route(`s"q\x`, "a\nb")
	plain := sw.route("s", "r")
	sw.end()
	f.nodes.begin()
	n := f.node(`u"`, `h\:1`)
	f.nodes.end(time.Now())

	for code := 200; code < 212; code++ { // 12 codes: 8 slots and 4 more
		odd.codes.inc(code)
	}
	odd.codes.inc(999) // out of range: counted as 0
	plain.codes.slots[0].Store(201<<codeShift | 1234567)
	plain.duration.counts[3].Store(1e6)
	plain.duration.counts[numBuckets].Store(7)
	plain.duration.sumNs.Store(123456789012345)
	odd.duration.observe(1500 * time.Microsecond)
	odd.duration.observe(-time.Second)
	odd.duration.observe(time.Hour)
	odd.bytesIn.Add(1e7)
	n.attempts[resultTimeout].Store(3)
	n.duration.observe(time.Second)

	text := requireSameExposition(t, g)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="r",service="s"} 1.234567e+06`)
	require.Contains(t, text, `gateway_http_requests_total{code="211",route="a\nb",service="s\"q\\x"} 1`)
	require.Contains(t, text, `gateway_http_requests_total{code="0",route="a\nb",service="s\"q\\x"} 1`)
	require.Contains(t, text, `gateway_http_request_duration_seconds_bucket{route="a\nb",service="s\"q\\x",le="0.0025"} 2`)
	require.Contains(t, text, `gateway_http_request_duration_seconds_sum{route="a\nb",service="s\"q\\x"} 3600.0015`)
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="r",service="s"} 1.000007e+06`)
	require.Contains(t, text, `gateway_http_bytes_total{direction="in",service="s\"q\\x"} 1e+07`)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="h\\:1",result="timeout",upstream="u\""} 3`)
}

func TestMetricsAcrossReloads(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(routes string) string {
		return `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: ` + b.port() + `}]}
    routes: [` + routes + `]
`
	}
	tg := startGateway(t, conf(`{id: keep, paths: ["/keep"]}, {id: gone, paths: ["/gone"]}`))
	require.Equal(t, 200, tg.get(t, "/keep").StatusCode())
	require.Equal(t, 200, tg.get(t, "/gone").StatusCode())

	require.NoError(t, tg.g.Apply(mustParse(t, conf(`{id: keep, paths: ["/keep", "/k2"]}, {id: new, paths: ["/new"]}`))))
	require.Equal(t, 200, tg.get(t, "/keep").StatusCode())
	text := requireSameExposition(t, tg.g)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="keep",service="s"} 2`,
		"a route that survives a reload keeps its counters")
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="keep",service="s"} 2`)
	require.NotContains(t, text, `route="gone"`, "a removed route is no longer exported")
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="new",service="s"} 0`)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:`+b.port()+`",result="ok",upstream="s"} 3`)

	// Back within the quarantine: the route's slot was kept, unexported.
	require.NoError(t, tg.g.Apply(mustParse(t, conf(`{id: keep, paths: ["/keep"]}, {id: gone, paths: ["/gone"]}`))))
	text = requireSameExposition(t, tg.g)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="gone",service="s"} 1`)
	require.NotContains(t, text, `route="new"`)

	// A node no upstream uses any more is no longer exported either.
	other := startBackend(t, "other", nil)
	require.NoError(t, tg.g.Apply(mustParse(t, strings.Replace(conf(`{id: keep, paths: ["/keep"]}`), b.port(), other.port(), 1))))
	text = requireSameExposition(t, tg.g)
	require.NotContains(t, text, `node="127.0.0.1:`+b.port()+`"`)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:`+other.port()+`",result="ok",upstream="s"} 0`)
}

// TestSlotReuseAfterQuarantine: a slot no config used for slotQuarantine
// is zeroed and handed to the next new key; one within it is not.
func TestSlotReuseAfterQuarantine(t *testing.T) {
	f := newFlatMetrics()
	t0 := time.Now()
	sweep := func(now time.Time, keys ...string) (out []*routeSlot) {
		f.routes.begin()
		for _, k := range keys {
			out = append(out, f.routes.use([]byte(k), func(s *routeSlot) { s.route = k }))
		}
		f.routes.end(now)
		return
	}
	a := sweep(t0, "a")[0]
	a.codes.inc(200)
	require.Len(t, f.routes.slots(), 1)
	sweep(t0.Add(time.Second)) // a retired
	require.Empty(t, f.routes.slots())
	b := sweep(t0.Add(2*time.Second), "b")[0]
	require.NotSame(t, a, b, "a is in quarantine")
	sweep(t0.Add(2*time.Second+slotQuarantine), "b") // a freed
	c := sweep(t0.Add(3*time.Second+slotQuarantine), "b", "c")[1]
	require.Same(t, a, c, "a's slot is reused")
	require.Equal(t, "c", c.route)
	require.False(t, c.codes.any(), "and zeroed")
	require.Len(t, f.routes.slots(), 2)
}

func TestScrapeGzip(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes: [{id: r, paths: ["/r"]}]
`)
	require.Equal(t, 200, tg.get(t, "/r").StatusCode())
	for _, ae := range []string{"gzip", "deflate, gzip;q=0.5", "gzip;q=0", "identity"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Host = "127.0.0.1:9091"
		req.Header.Set("Accept-Encoding", ae)
		tg.g.ControlHandler(nil).ServeHTTP(rec, req)
		require.Equal(t, 200, rec.Code)
		require.Equal(t, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores", rec.Header().Get("Content-Type"))
		body := rec.Body.Bytes()
		if ae == "gzip" || strings.Contains(ae, "q=0.5") {
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), ae)
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			body, err = io.ReadAll(zr)
			require.NoError(t, err)
		} else {
			require.Empty(t, rec.Header().Get("Content-Encoding"), ae)
		}
		require.Contains(t, string(body), `gateway_http_requests_total{code="200",route="r",service="s"} 1`+"\n", ae)
		require.Contains(t, string(body), "# TYPE go_goroutines gauge\n", ae)
	}
}

func TestRouteHistogramsOff(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(metrics string) string {
		return metrics + `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: ` + b.port() + `}]}
    routes: [{id: one, paths: ["/one"]}, {id: two, paths: ["/two"]}]
`
	}
	tg := startGateway(t, conf("metrics: {route_histograms: false}"))
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	require.Equal(t, 200, tg.get(t, "/two").StatusCode())
	require.Equal(t, 404, tg.get(t, "/three").StatusCode())
	text := requireSameExposition(t, tg.g)
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="",service="s"} 2`, "one histogram per service")
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="",service=""} 1`, "and the unrouted requests'")
	require.NotContains(t, text, `gateway_http_request_duration_seconds_count{route="one"`)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="one",service="s"} 1`, "counters stay per route")

	// Back on: per route again, the routes' counts kept from before.
	require.NoError(t, tg.g.Apply(mustParse(t, conf(""))))
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	text = requireSameExposition(t, tg.g)
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="one",service="s"} 1`)
	require.NotContains(t, text, `gateway_http_request_duration_seconds_count{route="",service="s"}`)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="one",service="s"} 2`)
}

// TestMetricsUnderReloadsAndScrapes runs traffic, reloads that add and
// drop routes, and scrapes at once (for the race detector), then checks
// that the surviving route counted every request.
func TestMetricsUnderReloadsAndScrapes(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(extra string) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: ` + b.port() + `}]}
    routes: [{id: keep, paths: ["/keep"]}` + extra + `]
`
	}
	tg := startGateway(t, conf(""))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			extra := ""
			if i%2 == 0 {
				extra = `, {id: x` + itoa(i%6) + `, paths: ["/x"]}`
			}
			require.NoError(t, tg.g.Apply(mustParse(t, conf(extra))))
			_ = scrape(t, tg.g)
		}
	})
	const n = 200
	for range n {
		require.Equal(t, 200, tg.get(t, "/keep").StatusCode())
		tg.get(t, "/x")
	}
	close(done)
	wg.Wait()
	text := requireSameExposition(t, tg.g)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="keep",service="s"} `+itoa(n))
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="keep",service="s"} `+itoa(n))
}

// TestLateWritersDropAddsToAReusedSlot: a WebSocket tunnel, a slow request
// and a streamed (chunked) body that outlive their route, service and node
// by more than the quarantine end after the slots were handed to another
// service; what they count is dropped, not added to the service that
// reused the slots.
func TestLateWritersDropAddsToAReusedSlot(t *testing.T) {
	entered, release := make(chan struct{}, 2), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	ws := wsEcho(0)
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/slow":
			entered <- struct{}{}
			<-release
			ctx.SetBodyString("slow")
			return
		case "/chunked":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				_, _ = w.WriteString("first")
				_ = w.Flush()
				entered <- struct{}{}
				<-release
				_, _ = w.Write(make([]byte, 64<<10))
			})
			return
		}
		ws(ctx)
	})
	svc := func(id string, routes string) string {
		return `  - id: ` + id + `
    upstream: ` + upstreamYAML(b) + `
    routes: [` + routes + `]
`
	}
	conf := func(svcs ...string) *config.Config {
		return mustParse(t, "gateway: {access_log: {enabled: false}}\nservices:\n"+strings.Join(svcs, ""))
	}
	x := svc("x", `{id: x, paths: ["/x"]}`)
	chat := svc("chat", `{id: ws, paths: ["/ws"], enable_websocket: true}, {id: slow, paths: ["/slow"]}, {id: chunked, paths: ["/chunked"]}`)
	fresh := svc("fresh", `{id: f1, paths: ["/f1"]}, {id: f2, paths: ["/f2"]}, {id: f3, paths: ["/f3"]}`)

	g := New(Options{})
	f := g.metrics.flat
	f.routes.quarantine, f.services.quarantine, f.nodes.quarantine = 0, 0, 0
	require.NoError(t, g.Apply(conf(x, chat)))
	tg := serveGateway(t, g)
	t.Cleanup(unblock) // runs before the gateway's cleanup, which waits for the request

	w, resp := wsDial(t, tg.addr, "/ws")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpBinary, make([]byte, 64<<10))
	slow := make(chan *fasthttp.Response, 2)
	for _, path := range []string{"/slow", "/chunked"} {
		go func() {
			r := &fasthttp.Response{}
			req := &fasthttp.Request{}
			req.SetRequestURI("http://" + tg.addr + path)
			_ = testClient.Do(req, r)
			slow <- r
		}()
	}
	<-entered
	<-entered

	service := func(id string) *serviceSlot {
		for _, s := range f.services.slots() {
			if s.svc == id {
				return s
			}
		}
		t.Fatalf("no live slot for service %q", id)
		return nil
	}
	chatSvc := service("chat")
	require.NoError(t, g.Apply(conf(x)))        // chat retired
	require.NoError(t, g.Apply(conf(x)))        // and freed (no quarantine here)
	require.NoError(t, g.Apply(conf(x, fresh))) // fresh takes its slots
	require.Same(t, chatSvc, service("fresh"), "fresh reuses chat's service slot")

	unblock()
	require.Equal(t, 200, (<-slow).StatusCode())
	require.Equal(t, 200, (<-slow).StatusCode())
	w.echo(t, wsOpBinary, make([]byte, 64<<10))
	w.c.Close()
	require.Eventually(t, func() bool { return g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)

	text := scrape(t, g)
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_http_bytes_total{direction="in",service="fresh"}`))
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_http_bytes_total{direction="out",service="fresh"}`))
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_http_request_duration_seconds_count{route="f1",service="fresh"}`))
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_http_request_duration_seconds_count{route="f2",service="fresh"}`))
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_http_request_duration_seconds_count{route="f3",service="fresh"}`))
	require.NotContains(t, text, `gateway_http_requests_total{code="200",route="f`)
	node := `node="` + b.addr + `"`
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_upstream_attempts_total{`+node+`,result="ok",upstream="fresh"}`))
	require.Equal(t, 0.0, sampleValue(t, text, `gateway_upstream_request_duration_seconds_count{`+node+`,upstream="fresh"}`))

	// What fresh serves itself is counted.
	require.Equal(t, 200, tg.get(t, "/f1").StatusCode())
	text = scrape(t, g)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="f1",service="fresh"} 1`)
	require.Equal(t, 1.0, sampleValue(t, text, `gateway_upstream_attempts_total{`+node+`,result="ok",upstream="fresh"}`))
}
