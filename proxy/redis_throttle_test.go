package proxy

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testredis"
)

// clusterYAML is one service throttled by policy p, counted in the redis
// at addr.
func clusterYAML(b *backend, addr, policy string) string {
	return `
redis:
  - {id: shared, addrs: ["` + addr + `"], timeout_ms: 5000}
services:
  - {id: s, throttle_policy: p, upstream: ` + upstreamYAML(b) + `, routes: [{id: r, paths: ["/*"]}]}
throttle_policies:
  - {id: p, throttle_strategy: cluster, redis_id: shared, ` + policy + `}
`
}

// waitWindowStart waits, on the redis server's clock (the one the admit
// script uses), until a window of length w has at least half of it left,
// so that a burst sent now stays inside one window.
func waitWindowStart(t *testing.T, addr string, w time.Duration) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	now, err := rdb.Time(context.Background()).Result()
	require.NoError(t, err)
	if into := time.Duration(now.UnixNano()) % w; into > w/2 {
		time.Sleep(w - into + 10*time.Millisecond)
	}
}

// Three gateways share one policy (limit 1,000 per 10 s) through one Redis:
// 30 concurrent clients spread over them send 3,000 requests inside one
// window; exactly 1,000 are admitted (fixed) and every rejection is a 429
// with the rate-limit headers. Sliding: never more than the limit.
func TestClusterThrottleExactAcrossGateways(t *testing.T) {
	srv := testredis.Start(t)
	for _, window := range []string{"fixed", "sliding"} {
		t.Run(window, func(t *testing.T) {
			b := startBackend(t, "b", nil)
			yaml := clusterYAML(b, srv.Addr, "api_call_limits: 1000, time_interval: 10, time_unit: SECOND, window: "+window)
			gws := []*testGateway{startGateway(t, yaml), startGateway(t, yaml), startGateway(t, yaml)}
			waitWindowStart(t, srv.Addr, 10*time.Second)

			var admitted, rejected atomic.Int64
			var wg sync.WaitGroup
			for c := range 30 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tg := gws[c%3]
					req := fasthttp.AcquireRequest()
					defer fasthttp.ReleaseRequest(req)
					resp := fasthttp.AcquireResponse()
					defer fasthttp.ReleaseResponse(resp)
					for range 100 {
						req.SetRequestURI("http://" + tg.addr + "/x")
						if err := testClient.Do(req, resp); err != nil {
							t.Error(err)
							return
						}
						switch resp.StatusCode() {
						case 200:
							admitted.Add(1)
						case 429:
							rejected.Add(1)
							h := &resp.Header
							if string(h.Peek("X-RateLimit-Limit")) != "1000" || string(h.Peek("X-RateLimit-Remaining")) != "0" ||
								len(h.Peek("Retry-After")) == 0 || !strings.Contains(string(resp.Body()), "APIG.0308") {
								t.Errorf("rejection without its headers: %s", resp.String())
							}
						default:
							t.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
						}
					}
				}()
			}
			wg.Wait()
			if window == "fixed" {
				require.Equal(t, int64(1000), admitted.Load())
			} else {
				require.LessOrEqual(t, admitted.Load(), int64(1000))
				require.Positive(t, admitted.Load())
			}
			require.Equal(t, int64(3000), admitted.Load()+rejected.Load())
			require.Equal(t, admitted.Load(), b.hits.Load())
			// One round trip per request, all answered.
			total := 0
			for _, tg := range gws {
				m := scrape(t, tg.g)
				require.Equal(t, 0, metricInt(t, m, `gateway_redis_requests_total{redis="shared",result="error"}`))
				total += metricInt(t, m, `gateway_redis_requests_total{redis="shared",result="ok"}`)
				require.Equal(t, 0, metricInt(t, m, `gateway_throttle_degraded{policy="p"}`))
			}
			require.Equal(t, 3000, total)
		})
	}
}

// metricInt reads one sample of a /metrics text.
func metricInt(t *testing.T, metrics, series string) int {
	t.Helper()
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err, line)
			return n
		}
	}
	require.Failf(t, "no sample", "%s not in metrics", series)
	return 0
}

// Redis killed mid-run: requests keep being served on local counters, the
// gauge flips and the log says so once; Redis back: counting returns to
// it, logged once.
func TestClusterThrottleDegradesAndRecovers(t *testing.T) {
	srv := testredis.Start(t)
	b := startBackend(t, "b", nil)
	tg, logs := startLoggedGateway(t, "gateway: {access_log: {enabled: false}}\n"+
		clusterYAML(b, srv.Addr, "api_call_limits: 1000, time_interval: 1, time_unit: HOUR"))
	remaining := func() string {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		return string(resp.Header.Peek("X-RateLimit-Remaining"))
	}
	for i := range 5 {
		require.Equal(t, strconv.Itoa(999-i), remaining())
	}

	srv.Kill()
	for range 20 {
		remaining() // served, counted locally
	}
	m := scrape(t, tg.g)
	require.Equal(t, 1, metricInt(t, m, `gateway_throttle_degraded{policy="p"}`))
	require.Equal(t, 1, strings.Count(logs.String(), "redis unavailable"), logs.String())
	require.Equal(t, 1, metricInt(t, m, `gateway_redis_requests_total{redis="shared",result="error"}`),
		"one failed round trip; the next requests wait for the probe")

	srv.Restart() // empty: the counts start again
	require.Eventually(t, func() bool { return remaining() == "999" }, 10*time.Second, 100*time.Millisecond,
		"counting returns to redis once the probe succeeds")
	require.Equal(t, "998", remaining())
	require.Equal(t, 0, metricInt(t, scrape(t, tg.g), `gateway_throttle_degraded{policy="p"}`))
	require.Equal(t, 1, strings.Count(logs.String(), "redis unavailable"))
	require.Equal(t, 1, strings.Count(logs.String(), "redis available again"))
}

// Without allow_degradation, an unreachable Redis refuses with 503
// THROTTLE_STORE_UNAVAILABLE.
func TestClusterThrottleWithoutDegradation(t *testing.T) {
	srv := testredis.Start(t)
	b := startBackend(t, "b", nil)
	tg := startGateway(t, clusterYAML(b, srv.Addr, "api_call_limits: 10, time_interval: 1, time_unit: HOUR, allow_degradation: false"))
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	srv.Kill()
	for range 3 {
		requireGatewayError(t, tg.get(t, "/x"), 503, "APIG.0309")
	}
	require.Equal(t, int64(1), b.hits.Load())
}

// A reload keeps the redis client (and its connections) when the entry did
// not change; the counters live in Redis and carry on.
func TestClusterThrottleReloadKeepsCounting(t *testing.T) {
	srv := testredis.Start(t)
	b := startBackend(t, "b", nil)
	yaml := "gateway: {access_log: {enabled: false}}\n" + clusterYAML(b, srv.Addr, "api_call_limits: 10, time_interval: 1, time_unit: HOUR")
	tg := startGateway(t, yaml)
	require.Equal(t, "9", string(tg.get(t, "/x").Header.Peek("X-RateLimit-Remaining")))
	require.NoError(t, tg.g.Apply(mustParse(t, yaml+"# reloaded\n")))
	require.Equal(t, "8", string(tg.get(t, "/x").Header.Peek("X-RateLimit-Remaining")))
	require.Equal(t, 1, tg.g.redis.Len())
}

// limit-count with policy redis: two gateways share the count of one key;
// without allow_degradation a dead Redis answers 503.
func TestLimitCountRedisShared(t *testing.T) {
	srv := testredis.Start(t)
	b := startBackend(t, "b", nil)
	yaml := func(degrade string) string {
		return `
redis:
  - {id: shared, addrs: ["` + srv.Addr + `"]}
services:
  - id: s
    upstream: ` + upstreamYAML(b) + `
    routes:
      - id: r
        paths: ["/*"]
        plugins: {limit-count: {count: 4, time_window: 3600, key_type: constant, key: all, rejected_code: 429, policy: redis, redis_id: shared, allow_degradation: ` + degrade + `}}
`
	}
	g1, g2 := startGateway(t, yaml("true")), startGateway(t, yaml("true"))
	for i, tg := range []*testGateway{g1, g2, g1, g2} {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		require.Equal(t, strconv.Itoa(3-i), string(resp.Header.Peek("X-RateLimit-Remaining")))
	}
	require.Equal(t, 429, g1.get(t, "/x").StatusCode())
	require.Equal(t, 429, g2.get(t, "/x").StatusCode())

	// APISIX's inline keys reach the same server and the same counter.
	inline := startGateway(t, strings.Replace(yaml("true"), "redis_id: shared", "redis_host: 127.0.0.1, redis_port: "+strconv.Itoa(srv.Port()), 1))
	resp := inline.get(t, "/x")
	require.Equal(t, 429, resp.StatusCode(), "inline keys share the count")
	require.Equal(t, "4", string(resp.Header.Peek("X-RateLimit-Limit")))
	require.Equal(t, 1, metricInt(t, scrape(t, inline.g), `gateway_redis_requests_total{redis="limit-count:127.0.0.1:`+strconv.Itoa(srv.Port())+`",result="ok"}`))

	strict := startGateway(t, yaml("false"))
	require.Equal(t, 429, strict.get(t, "/x").StatusCode(), "the shared count applies to a third gateway too")
	srv.Kill()
	requireGatewayError(t, strict.get(t, "/x"), 503, "APIG.0309")
	require.Equal(t, 200, g1.get(t, "/x").StatusCode(), "allow_degradation: the local count has room")
}

// A Redis Cluster behind two gateways: a throttle policy's API and IP
// counters (one request's keys share a slot) and limit-count's
// redis-cluster policy count exactly across both.
func TestClusterThrottleOnRedisCluster(t *testing.T) {
	addrs := testredis.StartCluster(t, 3)
	b := startBackend(t, "b", nil)
	yaml := `
redis:
  - {id: rc, addrs: ["` + addrs[0] + `", "` + addrs[1] + `"], cluster: true, timeout_ms: 2000}
services:
  - id: s
    upstream: ` + upstreamYAML(b) + `
    routes:
      - {id: tp, paths: ["/tp"], throttle_policy: p}
      - id: lc
        paths: ["/lc"]
        plugins: {limit-count: {count: 3, time_window: 3600, rejected_code: 429, policy: redis-cluster, redis_id: rc}}
throttle_policies:
  - {id: p, api_call_limits: 100, ip_call_limits: 5, time_interval: 1, time_unit: HOUR, throttle_strategy: cluster, redis_id: rc}
`
	gws := []*testGateway{startGateway(t, yaml), startGateway(t, yaml)}
	codes := map[string][]int{}
	for i := range 8 {
		for _, path := range []string{"/tp", "/lc"} {
			codes[path] = append(codes[path], gws[i%2].get(t, path).StatusCode())
		}
	}
	require.Equal(t, []int{200, 200, 200, 200, 200, 429, 429, 429}, codes["/tp"], "the IP counter (5) is shared")
	require.Equal(t, []int{200, 200, 200, 429, 429, 429, 429, 429}, codes["/lc"])
	for _, tg := range gws {
		require.Equal(t, 0, metricInt(t, scrape(t, tg.g), `gateway_redis_requests_total{redis="rc",result="error"}`))
	}
}

// Changing a redis entry's address on reload swaps the client while load
// runs: no request fails, counting moves to the new server, and the old
// client is retired.
func TestClusterThrottleReloadSwapsRedis(t *testing.T) {
	a, b2 := testredis.Start(t), testredis.Start(t)
	b := startBackend(t, "b", nil)
	yaml := func(addr string) string {
		return "gateway: {access_log: {enabled: false}}\n" +
			clusterYAML(b, addr, "api_call_limits: 100000, time_interval: 1, time_unit: HOUR, allow_degradation: false")
	}
	tg := startGateway(t, yaml(a.Addr))
	var failed, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp)
			for {
				select {
				case <-stop:
					return
				default:
				}
				req.SetRequestURI("http://" + tg.addr + "/x")
				if err := testClient.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	waitServed := func(n int64) {
		for start := served.Load(); served.Load() < start+n; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitServed(50)
	require.NoError(t, tg.g.Apply(mustParse(t, yaml(b2.Addr))))
	waitServed(50)
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load(), "requests failed across the swap")
	require.Equal(t, 1, tg.g.redis.Len(), "the old client is retired")

	// The new server counts from here on.
	rdb := redis.NewClient(&redis.Options{Addr: b2.Addr})
	defer rdb.Close()
	keys, err := rdb.Keys(context.Background(), "gw:tp:*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
}

// cluster_batch: a round trip takes up to N permits for later requests
// of the same counters; within one window nothing is admitted beyond the
// limit, and fewer round trips than requests are made.
func TestClusterThrottleBatch(t *testing.T) {
	srv := testredis.Start(t)
	b := startBackend(t, "b", nil)
	yaml := clusterYAML(b, srv.Addr, "api_call_limits: 100, time_interval: 1, time_unit: HOUR, cluster_batch: 10")
	gws := []*testGateway{startGateway(t, yaml), startGateway(t, yaml), startGateway(t, yaml)}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for c := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				resp := gws[c%3].get(t, "/x")
				switch resp.StatusCode() {
				case 200:
					admitted.Add(1)
				case 429:
				default:
					t.Errorf("status %d", resp.StatusCode())
				}
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, admitted.Load(), int64(100))
	require.Greater(t, admitted.Load(), int64(100-3*9), "permits reserved and left unused are lost, a few batches at most")
	trips := 0
	for _, tg := range gws {
		trips += metricInt(t, scrape(t, tg.g), `gateway_redis_requests_total{redis="shared",result="ok"}`)
	}
	require.Less(t, trips, 300)
}
