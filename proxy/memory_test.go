package proxy

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/race"
	"gateway/internal/testheap"
)

// fullYAML is the bench's `full` scenario as a config of n routes in one
// service: key-auth, a throttle policy with its four counters, chash on a
// header (issue 20's "RSS after full" target).
func fullYAML(port string, n int) string {
	var b strings.Builder
	b.WriteString("gateway: {access_log: {enabled: false}}\n")
	b.WriteString("upstreams:\n  - id: backends\n    type: chash\n    hash_on: header\n    key: X-User-Id\n" +
		"    nodes: [{host: 127.0.0.1, port: " + port + "}, {host: localhost, port: " + port + "}]\n")
	b.WriteString("throttle_policies:\n  - {id: bench, api_call_limits: 2000000000, user_call_limits: 2000000000, " +
		"app_call_limits: 2000000000, ip_call_limits: 2000000000, time_interval: 1, time_unit: SECOND, type: 1}\n")
	b.WriteString("consumers:\n  - username: bench-user\n    credentials:\n" +
		"      - {name: bench-app, plugins: {key-auth: {key: bench-key}}}\n")
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n    throttle_policy: bench\n" +
		"    plugins: {key-auth: {}}\n    routes:\n")
	for i := range n {
		b.WriteString("      - {id: r" + strconv.Itoa(i) + ", paths: [\"/r" + strconv.Itoa(i) + "/*\"]}\n")
	}
	return b.String()
}

// TestLiveHeapFull10kRoutes bounds what a gateway serving the `full`
// config of 10k routes keeps live once every route has served a request
// (its metric slots, throttle counters and upstream connections made):
// the compiled snapshot, the config it serves and the per-route metric
// state. Per-route copies of what every route shares (a throttle policy's
// config and label slices, a key-auth step, plugin chains) cost ~1.1 KB a
// route: 2.7 KB a route live before they were shared, ~1.6 KB after.
func TestLiveHeapFull10kRoutes(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector's shadow memory is not the gateway's")
	}
	if testing.Short() {
		t.Skip("compiles 10k routes")
	}
	const n = scaleRoutes
	yaml := fullYAML(scaleBackend(t), n)

	before := testheap.Live().HeapAlloc
	cfg, err := mustParseErr(yaml)
	require.NoError(t, err)
	g := New(Options{})
	t.Cleanup(g.Close)
	require.NoError(t, g.Apply(cfg))
	var req fasthttp.Request
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	for i := range n {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetHost("bench")
		ctx.Request.Header.Set("apikey", "bench-key")
		ctx.Request.Header.Set("X-User-Id", "u"+strconv.Itoa(i))
		ctx.Request.SetRequestURI("/r" + strconv.Itoa(i) + "/x")
		g.Handler(ctx)
		require.Equal(t, 200, ctx.Response.StatusCode(), "route r%d", i)
	}
	after := testheap.Live().HeapAlloc
	perRoute := float64(after-before) / n
	t.Logf("live heap of the full config, %d routes: %.1f MiB, %.0f bytes a route", n, float64(after-before)/(1<<20), perRoute)
	require.Less(t, perRoute, 2000.0, "live heap per route of the full config")

	// The throttle counters' children are still made on first rejection
	// only: nothing was throttled, so no series.
	require.NotContains(t, scrape(t, g), "gateway_throttled_total{")
}
