package proxy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestReloadRouteAddedChangedRemoved(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{id: r1, paths: ["/one"]}]}
`)
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	require.Equal(t, 404, tg.get(t, "/two").StatusCode())

	require.NoError(t, tg.g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{id: r2, paths: ["/two"]}]}
`)))
	require.Equal(t, 404, tg.get(t, "/one").StatusCode(), "removed")
	resp := tg.get(t, "/two")
	require.Equal(t, 200, resp.StatusCode(), "added")
	require.Equal(t, "b", string(resp.Header.Peek("X-Backend")), "changed upstream")
}

func TestFailedApplyKeepsServing(t *testing.T) {
	a := startBackend(t, "a", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{paths: ["/one"]}]}
`)
	_, err := mustParseErr(`services: [{id: s, routes: []}]`)
	require.Error(t, err)
	tg.g.RecordReload(err)
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	require.Contains(t, scrape(t, tg.g), `gateway_config_reloads_total{result="failure"} 1`)
}

// TestReloadUnderLoad rewrites the config every 100 ms while 8 clients
// send requests: no request may fail or reach the wrong backend, and the
// backends must see no new connections after the first round.
func TestReloadUnderLoad(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	other := startBackend(t, "other", nil)
	cfg := func(wa, wb int) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    path_prefix: /s
    throttle_policy: big
    upstream: {keepalive_pool: {requests: 100000000}, nodes: [{host: 127.0.0.1, port: ` + a.port() + `, weight: ` + itoa(wa) + `}, {host: 127.0.0.1, port: ` + b.port() + `, weight: ` + itoa(wb) + `}]}
    routes: [{paths: ["/*"]}]
  - id: o
    path_prefix: /o
    upstream: {keepalive_pool: {requests: 100000000}, nodes: [{host: 127.0.0.1, port: ` + other.port() + `}]}
    routes: [{paths: ["/*"]}]
throttle_policies:
  - {id: big, api_call_limits: 100000000, time_interval: 1, time_unit: HOUR}
`
	}
	configs := [2]string{cfg(3, 1), cfg(1, 3)}
	tg := startGateway(t, configs[0])

	var failed, misrouted, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &fasthttp.Client{MaxConnsPerHost: 64, ReadTimeout: 5 * time.Second}
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			path, want := "/s/x", map[string]bool{"a": true, "b": true}
			if i%2 == 1 {
				path, want = "/o/x", map[string]bool{"other": true}
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req.SetRequestURI("http://" + tg.addr + path)
				total.Add(1)
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					continue
				}
				if !want[string(resp.Header.Peek("X-Backend"))] {
					misrouted.Add(1)
				}
			}
		}()
	}
	// First round: both configs serve once, so connections get made.
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, tg.g.Apply(mustParse(t, configs[1])))
	time.Sleep(200 * time.Millisecond)
	goroutinesBefore := runtime.NumGoroutine()

	deadline := time.Now().Add(10 * time.Second)
	if testing.Short() {
		deadline = time.Now().Add(2 * time.Second)
	}
	reloads := 0
	for time.Now().Before(deadline) {
		reloads++
		require.NoError(t, tg.g.Apply(mustParse(t, configs[reloads%2])))
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	t.Logf("%d requests across %d reloads", total.Load(), reloads)
	require.Zero(t, failed.Load(), "failed requests")
	require.Zero(t, misrouted.Load(), "misrouted requests")
	require.Greater(t, total.Load(), int64(reloads))
	// Four clients use each service, so a kept pool never needs more than
	// four connections per node; reconnecting on reload would make one or
	// more per reload.
	for _, be := range []*backend{a, b, other} {
		require.LessOrEqual(t, be.conns.Load(), int64(4), "pools are kept across reloads (%s)", be.name)
	}
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutinesBefore+2 }, 5*time.Second, 50*time.Millisecond,
		"no goroutine leak after %d reloads: before %d, now %d", reloads, goroutinesBefore, runtime.NumGoroutine())
}

func TestReloadKeepsThrottleCounters(t *testing.T) {
	a := startBackend(t, "a", nil)
	base := `
services:
  - {id: s, throttle_policy: p, upstream: ` + upstreamYAML(a) + `, routes: [{id: r, paths: ["/x"]}%s]}
throttle_policies:
  - {id: p, api_call_limits: 3, time_interval: 1, time_unit: HOUR}
`
	tg := startGateway(t, sprintf(base, ""))
	for range 3 {
		require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	}
	// An unrelated change (a new route) must not reset the policy's counters.
	require.NoError(t, tg.g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+sprintf(base, `, {id: r2, paths: ["/y"]}`))))
	require.Equal(t, 429, tg.get(t, "/x").StatusCode())
}

func TestReloadHealthStateSurvives(t *testing.T) {
	var st atomic.Int32
	st.Store(503)
	a := switchable(t, "a", &st)
	good := startBackend(t, "good", nil)
	cfg := func(extra string) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream:
      nodes: [{host: 127.0.0.1, port: ` + a.port() + `}, {host: 127.0.0.1, port: ` + good.port() + `}]
      checks:
        active: {http_path: /h, healthy: {interval: 0.05, successes: 254}, unhealthy: {interval: 30, http_failures: 1}}
    routes: [{paths: ["/*"]}` + extra + `]
`
	}
	tg := startGateway(t, cfg(""))
	require.Eventually(t, func() bool { return tg.g.health.Node("s", a.addr).Down().Load() }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, tg.g.Apply(mustParse(t, cfg(`, {paths: ["/new"]}`))))
	require.True(t, tg.g.health.Node("s", a.addr).Down().Load(), "a reload keeps health state")
	for range 10 {
		require.Equal(t, "good", string(tg.get(t, "/x").Header.Peek("X-Backend")))
	}
}

func TestReloadThatMovesARouteKeepsItsCounters(t *testing.T) {
	a := startBackend(t, "a", nil)
	cfg := func(first string) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, throttle_policy: p, upstream: ` + upstreamYAML(a) + `, routes: [` + first + `{id: r, paths: ["/x"]}]}
throttle_policies:
  - {id: p, api_call_limits: 2, time_interval: 1, time_unit: HOUR}
`
	}
	tg := startGateway(t, cfg(""))
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	require.NoError(t, tg.g.Apply(mustParse(t, cfg(`{id: before, paths: ["/y"]}, `))))
	require.Equal(t, 429, tg.get(t, "/x").StatusCode(), "route r moved in the file but is the same route")
}
