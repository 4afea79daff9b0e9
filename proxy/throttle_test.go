package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestKeyAuth(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: open, paths: ["/open"]}
      - {id: locked, paths: ["/locked"], plugins: {key-auth: {}}}
      - {id: hidden, paths: ["/hidden"], plugins: {key-auth: {header: X-Key, query: k, hide_credentials: true}}}
consumers:
  - username: alice
    plugins: {key-auth: {key: alice-key}}
  - username: bob
    credentials:
      - {name: mobile-app, plugins: {key-auth: {key: k-123}}}
`)
	requireGatewayError(t, tg.get(t, "/locked"), 401, "APIG.0303")
	requireGatewayError(t, tg.do(t, "GET", "/locked", map[string]string{"apikey": "nope"}, ""), 401, "APIG.0301")

	require.Equal(t, 200, tg.do(t, "GET", "/locked", map[string]string{"apikey": "alice-key"}, "").StatusCode())
	h := &b.lastRequest().Header
	require.Equal(t, "alice", string(h.Peek("X-Consumer-Username")))
	require.Equal(t, "alice", string(h.Peek("X-Credential-Identifier")))
	require.Equal(t, "alice-key", string(h.Peek("apikey")), "credentials are kept unless hide_credentials")

	require.Equal(t, 200, tg.get(t, "/locked?apikey=k-123").StatusCode())
	require.Equal(t, "bob", string(b.lastRequest().Header.Peek("X-Consumer-Username")))
	require.Equal(t, "mobile-app", string(b.lastRequest().Header.Peek("X-Credential-Identifier")))

	require.Equal(t, 200, tg.do(t, "GET", "/hidden?a=1", map[string]string{"X-Key": "k-123"}, "").StatusCode())
	require.Empty(t, b.lastRequest().Header.Peek("X-Key"), "hide_credentials removes the header")
	resp := tg.get(t, "/hidden?a=1&k=k-123&b=2")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "b GET /hidden?a=1&b=2", string(resp.Body()), "hide_credentials removes the query argument")

	// A client cannot claim an identity on a route without key-auth.
	tg.do(t, "GET", "/open", map[string]string{"X-Consumer-Username": "admin"}, "")
	require.Empty(t, b.lastRequest().Header.Peek("X-Consumer-Username"))
}

func TestThrottleExactCountUnderConcurrency(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    throttle_policy: ten
    upstream: `+upstreamYAML(b)+`
    routes: [{id: r, paths: ["/*"]}]
throttle_policies:
  - {id: ten, api_call_limits: 10, time_interval: 1, time_unit: HOUR}
`)
	var ok, throttled atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			req.SetRequestURI("http://" + tg.addr + "/x")
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp)
			if err := testClient.Do(req, resp); err != nil {
				t.Error(err)
				return
			}
			switch resp.StatusCode() {
			case 200:
				ok.Add(1)
			case 429:
				throttled.Add(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(10), ok.Load())
	require.Equal(t, int64(40), throttled.Load())
	require.Equal(t, int64(10), b.hits.Load())

	resp := tg.get(t, "/x")
	requireGatewayError(t, resp, 429, "APIG.0308")
	require.Equal(t, "10", string(resp.Header.Peek("X-RateLimit-Limit")))
	require.Equal(t, "0", string(resp.Header.Peek("X-RateLimit-Remaining")))
	reset, err := strconv.Atoi(string(resp.Header.Peek("X-RateLimit-Reset")))
	require.NoError(t, err)
	require.True(t, reset > 0 && reset <= 3600, "reset %d", reset)
	require.Equal(t, string(resp.Header.Peek("X-RateLimit-Reset")), string(resp.Header.Peek("Retry-After")))
	require.Contains(t, scrape(t, tg.g), `gateway_throttled_total{counter="api",policy="ten",route="r"} 41`)
}

func TestThrottleHeadersOnAdmittedResponses(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, throttle_policy: p, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
throttle_policies:
  - {id: p, api_call_limits: 100, ip_call_limits: 5, time_interval: 1, time_unit: MINUTE}
`)
	for i := range 5 {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		require.Equal(t, "5", string(resp.Header.Peek("X-RateLimit-Limit")), "the most constrained counter is the IP one")
		require.Equal(t, strconv.Itoa(4-i), string(resp.Header.Peek("X-RateLimit-Remaining")))
		require.Empty(t, resp.Header.Peek("Retry-After"))
	}
	requireGatewayError(t, tg.get(t, "/x"), 429, "APIG.0308")
}

func TestThrottleSharedVersusPerRoute(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: a1, paths: ["/a1"], throttle_policy: per-route}
      - {id: a2, paths: ["/a2"], throttle_policy: per-route}
      - {id: b1, paths: ["/b1"], throttle_policy: shared}
      - {id: b2, paths: ["/b2"], throttle_policy: shared}
throttle_policies:
  - {id: per-route, type: 1, api_call_limits: 2, time_interval: 1, time_unit: HOUR}
  - {id: shared, type: 2, api_call_limits: 2, time_interval: 1, time_unit: HOUR}
`)
	statuses := func(paths ...string) (out []int) {
		for _, p := range paths {
			out = append(out, tg.get(t, p).StatusCode())
		}
		return
	}
	require.Equal(t, []int{200, 200, 429, 200, 200, 429}, statuses("/a1", "/a1", "/a1", "/a2", "/a2", "/a2"))
	require.Equal(t, []int{200, 200, 429, 429}, statuses("/b1", "/b2", "/b1", "/b2"))

	// The routes of a policy share one step and one chain: each rejection
	// is still counted under its own route, and only the counter that
	// rejected has a series.
	m := scrape(t, tg.g)
	for _, r := range []string{"a1", "a2"} {
		require.Contains(t, m, `gateway_throttled_total{counter="api",policy="per-route",route="`+r+`"} 1`+"\n")
	}
	for _, r := range []string{"b1", "b2"} {
		require.Contains(t, m, `gateway_throttled_total{counter="api",policy="shared",route="`+r+`"} 1`+"\n")
	}
	require.NotContains(t, m, `counter="user"`)
}

func TestThrottleUserAppAndSpecials(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, throttle_policy: p, plugins: {key-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
throttle_policies:
  - id: p
    api_call_limits: 100
    user_call_limits: 3
    app_call_limits: 2
    time_interval: 1
    time_unit: HOUR
    specials:
      - {object_type: APP, object_id: vip-app, call_limits: 3}
      - {object_type: USER, object_id: carol, call_limits: 1}
consumers:
  - username: alice
    credentials:
      - {name: app1, plugins: {key-auth: {key: a1}}}
      - {name: app2, plugins: {key-auth: {key: a2}}}
  - username: bob
    credentials:
      - {name: vip-app, plugins: {key-auth: {key: v1}}}
  - username: carol
    plugins: {key-auth: {key: c1}}
`)
	call := func(key string) int {
		return tg.do(t, "GET", "/x", map[string]string{"apikey": key}, "").StatusCode()
	}
	// alice's app1 is capped at 2 by the app limit, and alice at 3 in all.
	require.Equal(t, []int{200, 200, 429}, []int{call("a1"), call("a1"), call("a1")})
	require.Equal(t, []int{200, 429}, []int{call("a2"), call("a2")}, "the user limit counts both apps")
	// bob's vip-app has a special app limit of 3 instead of 2.
	require.Equal(t, []int{200, 200, 200, 429}, []int{call("v1"), call("v1"), call("v1"), call("v1")})
	// carol has a special user limit of 1.
	require.Equal(t, []int{200, 429}, []int{call("c1"), call("c1")})
}

func TestLimitCountPlugin(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: defaults, paths: ["/d"], plugins: {limit-count: {count: 2, time_window: 60}}}
      - {id: custom, paths: ["/c"], plugins: {limit-count: {count: 1, time_window: 60, key_type: var, key: http_x_user, rejected_code: 429, rejected_msg: "slow down", show_limit_quota_header: false}}}
`)
	r := tg.get(t, "/d")
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, "2", string(r.Header.Peek("X-RateLimit-Limit")))
	require.Equal(t, "1", string(r.Header.Peek("X-RateLimit-Remaining")))
	require.Equal(t, 200, tg.get(t, "/d").StatusCode())
	r = tg.get(t, "/d")
	require.Equal(t, 503, r.StatusCode(), "APISIX's default rejected_code")
	require.Equal(t, "0", string(r.Header.Peek("X-RateLimit-Remaining")))

	u1 := map[string]string{"X-User": "u1"}
	require.Equal(t, 200, tg.do(t, "GET", "/c", u1, "").StatusCode())
	r = tg.do(t, "GET", "/c", u1, "")
	require.Equal(t, 429, r.StatusCode())
	require.JSONEq(t, `{"error_msg":"slow down"}`, string(r.Body()))
	require.Empty(t, r.Header.Peek("X-RateLimit-Limit"))
	require.Equal(t, 200, tg.do(t, "GET", "/c", map[string]string{"X-User": "u2"}, "").StatusCode(), "keys count separately")
}

func TestIPRestrictionWithRealIP(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, trusted_addresses: [127.0.0.1]}}
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: allow, paths: ["/allow"], plugins: {ip-restriction: {whitelist: [203.0.113.0/24]}}}
      - {id: deny, paths: ["/deny"], plugins: {ip-restriction: {blacklist: [198.51.100.7], message: "go \"away\""}}}
`)
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	require.Equal(t, 200, tg.do(t, "GET", "/allow", xff("203.0.113.9"), "").StatusCode())
	requireGatewayError(t, tg.do(t, "GET", "/allow", xff("198.51.100.7"), ""), 403, "APIG.0401")
	requireGatewayError(t, tg.get(t, "/allow"), 403, "APIG.0401")
	e := requireGatewayError(t, tg.do(t, "GET", "/deny", xff("198.51.100.7"), ""), 403, "APIG.0401")
	require.Equal(t, `go "away"`, e.Msg, "the plugin's message is the error_msg")
	require.Equal(t, 200, tg.do(t, "GET", "/deny", xff("203.0.113.9"), "").StatusCode())
}

func TestThrottleWindowResets(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, throttle_policy: p, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
throttle_policies:
  - {id: p, api_call_limits: 2, time_interval: 1, time_unit: SECOND}
`)
	// Start right after a second boundary so that three requests share a window.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	require.Equal(t, []int{200, 200, 429}, []int{tg.get(t, "/x").StatusCode(), tg.get(t, "/x").StatusCode(), tg.get(t, "/x").StatusCode()})
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	require.Equal(t, 200, tg.get(t, "/x").StatusCode(), "a fixed window starts over at the next second")
}
