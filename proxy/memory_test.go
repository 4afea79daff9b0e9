package proxy

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/race"
	"gateway/internal/testconf"
	"gateway/internal/testheap"
)

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
	port := scaleBackend(t)
	yaml := testconf.BenchFull(n, []string{"127.0.0.1:" + port, "localhost:" + port}, "", false)

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
