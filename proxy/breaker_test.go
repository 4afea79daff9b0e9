package proxy

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// slowBackend sleeps for delay (settable) before answering 200.
func slowBackend(t *testing.T, delay *atomic.Int64) *backend {
	return startBackend(t, "slow", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(time.Duration(delay.Load()))
		ctx.SetBodyString("ok")
	})
}

// waitOpenElapsed waits out open_breaker_time (1 s in these tests).
func waitOpenElapsed() { time.Sleep(1100 * time.Millisecond) }

func TestBreakerTimeoutCounterMockHalfOpen(t *testing.T) {
	var delay atomic.Int64
	delay.Store(int64(time.Second))
	b := slowBackend(t, &delay)
	core, logs := observer.New(zap.InfoLevel)
	g := New(Options{Logger: zap.New(core)})
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: {timeout: {read: 0.2}, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          breaker:
            breaker_condition: {breaker_type: timeout, breaker_mode: counter, unhealthy_threshold: 3, time_window: 60, open_breaker_time: 1}
            downgrade_default: {type: mock, status_code: 200, result_content: '{"degraded":true}', headers: [{key: X-Degraded, value: "yes"}]}
`)))
	tg := serveGateway(t, g)

	for range 3 {
		require.Equal(t, 504, tg.get(t, "/x").StatusCode())
	}
	require.EqualValues(t, 3, b.hits.Load())
	// Open: the downgrade response, the backend untouched.
	for range 5 {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		require.Equal(t, `{"degraded":true}`, string(resp.Body()))
		require.Equal(t, "yes", string(resp.Header.Peek("X-Degraded")))
	}
	require.EqualValues(t, 3, b.hits.Load())
	m := scrape(t, g)
	require.Contains(t, m, `gateway_breaker_state{route="r"} 1`)
	require.Contains(t, m, `gateway_breaker_transitions_total{route="r",to="open"} 1`)

	// Half-open, the probe times out: open again.
	waitOpenElapsed()
	require.Equal(t, 504, tg.get(t, "/x").StatusCode())
	require.EqualValues(t, 4, b.hits.Load())
	require.Equal(t, `{"degraded":true}`, string(tg.get(t, "/x").Body()))
	require.EqualValues(t, 4, b.hits.Load())

	// Half-open, the backend is fast again: the probe closes the breaker.
	delay.Store(0)
	waitOpenElapsed()
	for range 3 {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		require.Equal(t, "ok", string(resp.Body()))
	}
	require.EqualValues(t, 7, b.hits.Load())

	m = scrape(t, g)
	require.Contains(t, m, `gateway_breaker_state{route="r"} 0`)
	require.Contains(t, m, `gateway_breaker_transitions_total{route="r",to="open"} 2`)
	require.Contains(t, m, `gateway_breaker_transitions_total{route="r",to="half_open"} 2`)
	require.Contains(t, m, `gateway_breaker_transitions_total{route="r",to="closed"} 1`)
	var lines []string
	for _, e := range logs.FilterMessageSnippet("circuit breaker").All() {
		lines = append(lines, e.Message)
		require.Equal(t, "r", e.ContextMap()["route"])
	}
	require.Equal(t, []string{"circuit breaker open", "circuit breaker half_open", "circuit breaker open",
		"circuit breaker half_open", "circuit breaker closed"}, lines, "one log line per transition")
}

// breakerRoute serves route r on backend b with a breaker of the given
// breaker_condition (no downgrade_default).
func breakerRoute(t *testing.T, b *backend, condition string) *testGateway {
	return startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes: [{id: r, paths: ["/*"], plugins: {breaker: {breaker_condition: `+condition+`}}}]
`)
}

func TestBreakerPercentageMinCalls(t *testing.T) {
	b := startBackend(t, "err", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(500) })
	tg := breakerRoute(t, b, `{breaker_type: condition, breaker_mode: percentage, unhealthy_condition: "$context.statusCode >= 500 or $context.backendResponseLatency > 60000", unhealthy_percentage: 50, min_call_threshold: 4, time_window: 60, open_breaker_time: 60}`)
	// Every call fails, but the breaker waits for min_call_threshold calls.
	for range 4 {
		require.Equal(t, 500, tg.get(t, "/x").StatusCode())
	}
	resp := tg.get(t, "/x")
	require.Equal(t, 503, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "circuit breaker is open")
	require.Contains(t, string(resp.Body()), `"error_code":"APIG.0202"`) // BACKEND_UNAVAILABLE
	require.EqualValues(t, 4, b.hits.Load())
}

// TestBreakerPercentageBelowThreshold: matches under unhealthy_percentage
// keep the breaker closed.
func TestBreakerPercentageBelowThreshold(t *testing.T) {
	var n atomic.Int64
	b := startBackend(t, "some", func(ctx *fasthttp.RequestCtx) {
		if n.Add(1)%3 == 0 {
			ctx.SetStatusCode(502)
		}
	})
	tg := breakerRoute(t, b, `{breaker_type: condition, breaker_mode: percentage, unhealthy_condition: "$context.statusCode in 502,503", unhealthy_percentage: 50, min_call_threshold: 2, time_window: 60}`)
	for range 30 {
		tg.get(t, "/x")
	}
	require.EqualValues(t, 30, b.hits.Load(), "a third failing is under 50%%: never open")
}

func TestBreakerStateKeptAcrossReload(t *testing.T) {
	b := startBackend(t, "err", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	conf := func(threshold int) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: ` + upstreamYAML(b) + `
    plugins:
      breaker:
        scope: share
        breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.statusCode == 503", unhealthy_threshold: ` + itoa(threshold) + `, time_window: 60, open_breaker_time: 60}
        downgrade_default: {type: none}
    routes: [{id: a, paths: [/a]}, {id: b, paths: [/b]}]
`
	}
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, conf(2))))
	tg := serveGateway(t, g)
	require.Equal(t, 503, tg.get(t, "/a").StatusCode())
	require.Equal(t, 503, tg.get(t, "/b").StatusCode())
	require.EqualValues(t, 2, b.hits.Load())
	// share: one breaker for both routes, now open.
	resp := tg.get(t, "/a")
	require.Contains(t, string(resp.Body()), "circuit breaker is open")
	require.EqualValues(t, 2, b.hits.Load())
	require.Contains(t, scrape(t, g), `gateway_breaker_state{route="service:s"} 1`)

	// The same config again: still open.
	require.NoError(t, g.Apply(mustParse(t, conf(2))))
	require.Contains(t, string(tg.get(t, "/b").Body()), "circuit breaker is open")
	require.EqualValues(t, 2, b.hits.Load())

	// A changed breaker config starts closed.
	require.NoError(t, g.Apply(mustParse(t, conf(5))))
	resp = tg.get(t, "/b")
	require.Equal(t, 503, resp.StatusCode())
	require.NotContains(t, string(resp.Body()), "circuit breaker")
	require.EqualValues(t, 3, b.hits.Load())
}

func TestBreakerConfigErrors(t *testing.T) {
	svc := func(plugin string) string {
		return "services: [{id: s, upstream: {nodes: [{host: 127.0.0.1, port: 1}]}, routes: [{paths: [/]}], plugins: {" + plugin + "}}]\n"
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"type", svc("breaker: {breaker_condition: {breaker_type: latency}}"), "breaker_type"},
		{"condition variable", svc(`breaker: {breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.foo > 1"}}`), `unknown variable "$context.foo"`},
		{"condition operator", svc(`breaker: {breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.statusCode ~= 5"}}`), "unknown operator"},
		{"condition missing", svc(`breaker: {breaker_condition: {breaker_type: condition}}`), "unhealthy_condition: is empty"},
		{"rules", svc(`breaker: {breaker_condition: {breaker_type: timeout}, downgrade_rules: [{rule_name: x}]}`), "downgrade_rules[0].match_regex: is required"},
		{"downgrade type", svc(`breaker: {breaker_condition: {breaker_type: timeout}, downgrade_default: {type: http}}`), "downgrade_default.type"},
		{"scope", svc(`breaker: {breaker_condition: {breaker_type: timeout}, scope: global}`), "scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustParseErr(tc.yaml)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestAPIBreaker(t *testing.T) {
	var status atomic.Int64
	status.Store(500)
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(int(status.Load())) })
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          api-breaker:
            break_response_code: 502
            break_response_body: broken
            break_response_headers: [{key: X-Broken, value: "1"}]
            max_breaker_sec: 3
            unhealthy: {http_statuses: [500, 503], failures: 2}
            healthy: {successes: 2}
`)))
	tg := serveGateway(t, g)
	require.Equal(t, 500, tg.get(t, "/x").StatusCode())
	require.Equal(t, 500, tg.get(t, "/x").StatusCode())
	// Open for 2^1 s: the break response, the backend untouched.
	resp := tg.get(t, "/x")
	require.Equal(t, 502, resp.StatusCode())
	require.Equal(t, "broken", string(resp.Body()))
	require.Equal(t, "1", string(resp.Header.Peek("X-Broken")))
	require.EqualValues(t, 2, b.hits.Load())
	require.Contains(t, scrape(t, g), `gateway_breaker_state{route="r"} 1`)

	// After the break every request goes through; two healthy ones close.
	status.Store(200)
	time.Sleep(2100 * time.Millisecond)
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	require.Contains(t, scrape(t, g), `gateway_breaker_state{route="r"} 2`)
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	require.EqualValues(t, 4, b.hits.Load())
	m := scrape(t, g)
	require.Contains(t, m, `gateway_breaker_state{route="r"} 0`)
	require.Contains(t, m, `gateway_breaker_transitions_total{route="r",to="closed"} 1`)

	// Counting restarted: one failure does not open it.
	status.Store(503)
	require.Equal(t, 503, tg.get(t, "/x").StatusCode())
	require.Equal(t, 503, tg.get(t, "/x").StatusCode())
	require.Equal(t, 502, tg.get(t, "/x").StatusCode())
	require.EqualValues(t, 6, b.hits.Load())
}

func TestAPIBreakerConfigErrors(t *testing.T) {
	_, err := mustParseErr(`
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    plugins: {api-breaker: {unhealthy: {failures: 3}}}
    routes: [{paths: [/]}]
`)
	require.ErrorContains(t, err, "services[0].plugins.api-breaker.break_response_code")
	_, err = mustParseErr(`
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    plugins: {api-breaker: {break_response_code: 502, max_breaker_sec: 1}}
    routes: [{paths: [/]}]
`)
	require.ErrorContains(t, err, "max_breaker_sec")
}

// TestBreakerFailedReloadKeepsMetric: a config that fails to compile
// leaves the serving breaker's state metric as it was.
func TestBreakerFailedReloadKeepsMetric(t *testing.T) {
	b := startBackend(t, "err", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	conf := func(threshold int, extra string) string {
		return `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: ` + upstreamYAML(b) + `
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          breaker: {breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.statusCode == 503", unhealthy_threshold: ` + itoa(threshold) + `, time_window: 60, open_breaker_time: 60}}
` + extra
	}
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, conf(1, ""))))
	tg := serveGateway(t, g)
	require.Equal(t, 503, tg.get(t, "/x").StatusCode())
	require.Contains(t, scrape(t, g), `gateway_breaker_state{route="r"} 1`)
	// A changed breaker in a config whose traffic-split does not compile.
	cfg, err := mustParseErr(conf(2, "") + `    plugins: {traffic-split: {rules: [{weighted_upstreams: [{upstream_id: nope}]}]}}
`)
	require.NoError(t, err)
	require.Error(t, g.Apply(cfg))
	require.Contains(t, scrape(t, g), `gateway_breaker_state{route="r"} 1`)
	require.Contains(t, string(tg.get(t, "/x").Body()), "circuit breaker is open")
}

// TestBreakerDowngradeRules: the first matching downgrade rule chooses the
// answer of an open breaker; a rule with its own breaker_condition has its
// own breaker; Huawei's sample shape (mock_info, null backends, the
// console's parameter fields) loads.
func TestBreakerDowngradeRules(t *testing.T) {
	b := startBackend(t, "down", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          breaker:
            breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.statusCode == 503", unhealthy_threshold: 2, time_window: 60, open_breaker_time: 60}
            downgrade_default: {type: mock, status_code: 200, result_content: default, headers: [{key: X-Rule, value: default}]}
            downgrade_parameters:
              - {name: reqPath, type: path, value: path, disabled: true, focused: true, id: 92002eqbpilg6g}
              - {name: method, type: method, value: method, disabled: true, focused: true, id: tuvxetsdqvcos8}
              - {name: tier, type: header, value: X-Tier}
              - {name: region, type: query, value: region}
            downgrade_rules:
              - rule_name: gold
                parameters: [tier, region]
                match_regex: '[["tier", "==", "gold"], ["region", "in", ["eu", "us"]]]'
                downgrade_backend: {type: mock, passthrough_infos: null, func_info: null, http_info: null, http_vpc_info: null, mock_info: {status_code: 203, result_content: '{"cached":true}', headers: [{key: X-Rule, value: gold}]}}
              - rule_name: orders
                parameters: [reqPath, method]
                match_regex: '["OR", ["reqPath", "~~", "^/orders"], ["!", "method", "==", "GET"]]'
                breaker_condition: {breaker_type: condition, unhealthy_condition: "$context.statusCode >= 500", unhealthy_threshold: 1, time_window: 60, open_breaker_time: 60}
                downgrade_backend: {type: none}
              - rule_name: silver
                match_regex: '["tier", "==", "silver"]'
`)))
	tg := serveGateway(t, g)

	// Closed: both breakers let requests through.
	require.Equal(t, 503, tg.get(t, "/a").StatusCode())
	require.Equal(t, 503, tg.do(t, "GET", "/b?region=eu", map[string]string{"X-Tier": "gold"}, "").StatusCode())
	require.EqualValues(t, 2, b.hits.Load())

	// The default breaker is open; gold's answer for gold callers in eu/us.
	resp := tg.do(t, "GET", "/b?region=us", map[string]string{"X-Tier": "gold"}, "")
	require.Equal(t, 203, resp.StatusCode())
	require.Equal(t, `{"cached":true}`, string(resp.Body()))
	require.Equal(t, "gold", string(resp.Header.Peek("X-Rule")))
	// Not all of gold's conditions: the next rules, then the default.
	resp = tg.do(t, "GET", "/b?region=asia", map[string]string{"X-Tier": "gold"}, "")
	require.Equal(t, "default", string(resp.Body()))
	// silver has no downgrade_backend or breaker_condition: the default's.
	resp = tg.do(t, "GET", "/b", map[string]string{"X-Tier": "silver"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "default", string(resp.Body()))
	require.EqualValues(t, 2, b.hits.Load())

	// orders has its own breaker, still closed: its first call goes through
	// and opens it (threshold 1); then its own downgrade (none): 503.
	require.Equal(t, 503, tg.get(t, "/orders/1").StatusCode())
	require.EqualValues(t, 3, b.hits.Load())
	resp = tg.do(t, "POST", "/anything", nil, "x")
	require.Equal(t, 503, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "circuit breaker is open")
	require.EqualValues(t, 3, b.hits.Load())

	m := scrape(t, g)
	require.Contains(t, m, `gateway_breaker_state{route="r"} 1`)
	require.Contains(t, m, `gateway_breaker_state{route="r/orders"} 1`)
}

func TestBreakerDowngradeRuleErrors(t *testing.T) {
	svc := func(rules string) string {
		return `services: [{id: s, upstream: {nodes: [{host: 127.0.0.1, port: 1}]}, routes: [{paths: [/]}], plugins: {breaker: {breaker_condition: {breaker_type: timeout}, downgrade_parameters: [{name: tier, type: header, value: X-Tier}], downgrade_rules: [` + rules + `]}}}]` + "\n"
	}
	for _, tc := range []struct{ name, rules, want string }{
		{"undefined", `{rule_name: a, match_regex: '["plan", "==", "x"]'}`, `parameter "plan" is not defined`},
		{"not in rule parameters", `{rule_name: a, parameters: [reqPath], match_regex: '["tier", "==", "x"]'}`, `parameter "tier" is not defined`},
		{"unknown rule parameter", `{rule_name: a, parameters: [plan], match_regex: '["reqPath", "==", "/"]'}`, `downgrade_rules[0].parameters[0]: "plan" is not in downgrade_parameters`},
		{"operator", `{rule_name: a, match_regex: '["tier", "=~", "x"]'}`, `unknown operator "=~"`},
		{"regex", `{rule_name: a, match_regex: '["tier", "~~", "("]'}`, "invalid regex"},
		{"not json", `{rule_name: a, match_regex: 'tier == x'}`, "is not a JSON expression"},
		{"missing", `{rule_name: a}`, "downgrade_rules[0].match_regex: is required"},
		{"name", `{match_regex: '["tier", "==", "x"]'}`, "rule_name: is required"},
		{"duplicate", `{rule_name: a, match_regex: '["tier", "==", "x"]'}, {rule_name: a, match_regex: '["tier", "==", "y"]'}`, "is used by another rule"},
		{"http backend", `{rule_name: a, match_regex: '["tier", "==", "x"]', downgrade_backend: {type: mock, http_info: {address: 10.0.0.1}}}`, "http_info: is not supported yet"},
		{"rule condition", `{rule_name: a, match_regex: '["tier", "==", "x"]', breaker_condition: {breaker_type: latency}}`, "downgrade_rules[0].breaker_condition.breaker_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustParseErr(svc(tc.rules))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := mustParseErr(`services: [{id: s, upstream: {nodes: [{host: 127.0.0.1, port: 1}]}, routes: [{paths: [/]}], plugins: {breaker: {breaker_condition: {breaker_type: timeout}, downgrade_parameters: [{name: ip, type: system, value: nodeName}]}}}]`)
	require.ErrorContains(t, err, `unknown system parameter "nodeName"`)
}
