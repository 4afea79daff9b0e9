package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// switchable is a backend whose answer can be flipped at run time.
func switchable(t *testing.T, name string, status *atomic.Int32) *backend {
	return startBackend(t, name, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Backend", name)
		ctx.SetStatusCode(int(status.Load()))
	})
}

const fastChecks = `checks:
        active: {http_path: /health, timeout: 0.5, healthy: {interval: 0.05, successes: 2}, unhealthy: {interval: 0.05, http_failures: 2, tcp_failures: 1, timeouts: 1}}
        passive: {unhealthy: {http_statuses: [500, 503], http_failures: 3}}`

func TestBackupsTakeOverWhenPrimariesUnhealthy(t *testing.T) {
	var pStatus, bStatus atomic.Int32
	pStatus.Store(200)
	bStatus.Store(200)
	primary := switchable(t, "primary", &pStatus)
	backup := switchable(t, "backup", &bStatus)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes:
        - {host: 127.0.0.1, port: `+primary.port()+`}
        - {host: 127.0.0.1, port: `+backup.port()+`, priority: -1}
      `+fastChecks+`
    routes: [{paths: ["/*"]}]
`)
	for range 20 {
		require.Equal(t, "primary", string(tg.get(t, "/x").Header.Peek("X-Backend")))
	}
	pStatus.Store(503)
	require.Eventually(t, func() bool {
		return string(tg.get(t, "/x").Header.Peek("X-Backend")) == "backup"
	}, 5*time.Second, 20*time.Millisecond)
	for range 20 {
		require.Equal(t, "backup", string(tg.get(t, "/x").Header.Peek("X-Backend")), "the unhealthy primary gets no traffic")
	}
	require.Contains(t, scrape(t, tg.g), `gateway_upstream_node_healthy{node="127.0.0.1:`+primary.port()+`",upstream="s"} 0`)

	pStatus.Store(200)
	require.Eventually(t, func() bool {
		return string(tg.get(t, "/x").Header.Peek("X-Backend")) == "primary"
	}, 5*time.Second, 20*time.Millisecond, "active probes bring the primary back")
}

func TestPassiveFailuresMarkNodeUnhealthy(t *testing.T) {
	var aStatus, bStatus atomic.Int32
	aStatus.Store(200)
	bStatus.Store(200)
	a := startBackend(t, "a", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Backend", "a")
		// /health says what the node serves: while a answers 500, the
		// active probes of an unhealthy a fail too, so it stays out however
		// slowly the 12 requests below run (a loaded machine).
		ctx.SetStatusCode(int(aStatus.Load()))
	})
	b := switchable(t, "b", &bStatus)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}]
      checks:
        active: {http_path: /health, healthy: {interval: 0, successes: 1}, unhealthy: {interval: 0.05, http_failures: 2}}
        passive: {unhealthy: {http_statuses: [500], http_failures: 3}}
    routes: [{paths: ["/*"]}]
`)
	aStatus.Store(500)
	saw500 := 0
	for range 12 {
		if tg.get(t, "/x").StatusCode() == 500 {
			saw500++
		}
	}
	require.Equal(t, 3, saw500, "after 3 passive http failures node a gets no traffic (500s pass through untouched)")
	aStatus.Store(200)
	// Only the unhealthy interval probes it: active probes of /health bring it back.
	require.Eventually(t, func() bool {
		return string(tg.get(t, "/x").Header.Peek("X-Backend")) == "a"
	}, 5*time.Second, 20*time.Millisecond)
}

func TestAllUnhealthyFailsOpen(t *testing.T) {
	var st atomic.Int32
	st.Store(503)
	a := switchable(t, "a", &st)
	b := switchable(t, "b", &st)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}]
      `+fastChecks+`
    routes: [{paths: ["/*"]}]
`)
	require.Eventually(t, func() bool {
		return len(tg.g.health.Snapshot()) == 1 && tg.g.health.Node("s", a.addr).Down().Load() && tg.g.health.Node("s", b.addr).Down().Load()
	}, 5*time.Second, 20*time.Millisecond)
	resp := tg.get(t, "/x")
	require.Equal(t, 503, resp.StatusCode(), "traffic still flows to the nodes")
	require.Regexp(t, `gateway_upstream_all_unhealthy_total\{upstream="s"\} [1-9]`, scrape(t, tg.g), "the fail-open pick is counted")
}

func TestKilledBackendCausesNoClientErrors(t *testing.T) {
	var ok atomic.Int32
	ok.Store(200)
	a := switchable(t, "a", &ok)
	b := switchable(t, "b", &ok)
	c := switchable(t, "c", &ok)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}, {host: 127.0.0.1, port: `+c.port()+`}]
      `+fastChecks+`
    routes: [{paths: ["/*"]}]
`)
	var failures atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := fasthttp.AcquireRequest()
				req.SetRequestURI("http://" + tg.addr + "/x")
				resp := fasthttp.AcquireResponse()
				if err := testClient.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failures.Add(1)
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	_ = c.srv.Shutdown()
	c.ln.Close()
	require.Eventually(t, func() bool { return tg.g.health.Node("s", c.addr).Down().Load() }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // attempts already in flight settle
	before := attemptsTo(t, tg.g, c.addr)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Zero(t, failures.Load(), "GETs are retried on the other nodes")
	require.Equal(t, before, attemptsTo(t, tg.g, c.addr), "the dead node stops receiving attempts")
}

func attemptsTo(t *testing.T, g *Gateway, addr string) float64 {
	g.stateMu.Lock()
	defer g.stateMu.Unlock()
	total := 0.0
	for k, n := range g.nodes {
		if k == "s|"+addr {
			for i := range n.m.attempts {
				total += float64(n.m.attempts[i].Load())
			}
		}
	}
	return total
}

// A node a reload removes stops being exported in
// gateway_upstream_node_healthy (it stayed forever, which DNS discovery's
// churning addresses would turn into unbounded series).
func TestRemovedNodeLeavesHealthSeries(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	conf := func(ports ...string) string {
		nodes := ""
		for _, p := range ports {
			nodes += `{host: 127.0.0.1, port: ` + p + `}, `
		}
		return `
services:
  - id: s
    upstream:
      nodes: [` + nodes + `]
      ` + fastChecks + `
    routes: [{paths: ["/*"]}]
`
	}
	tg := startGateway(t, conf(a.port(), b.port()))
	series := `gateway_upstream_node_healthy{node="127.0.0.1:` + b.port() + `",upstream="s"}`
	require.Eventually(t, func() bool { return strings.Contains(scrape(t, tg.g), series) }, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, tg.g.Apply(mustParse(t, conf(a.port()))))
	require.NotContains(t, scrape(t, tg.g), series)
	require.Contains(t, scrape(t, tg.g), `gateway_upstream_node_healthy{node="127.0.0.1:`+a.port()+`",upstream="s"}`)
}
