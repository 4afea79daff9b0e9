package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/internal/testseed"
)

// Issue 21: the seed APIs' shapes. proxy/seeds_test.go serves each sample
// object; these tests pin down the shapes and their errors.

func TestSeedValueWrapperAndListPage(t *testing.T) {
	cfg := mustParse(t, `
services:
  list:
    - value: {id: a, upstream: {nodes: [{host: 10.0.0.1, port: 80}]}, routes: {list: [{paths: [/a]}], total: 1}}
      warning_msg: ""
    - {id: b, upstream: {nodes: [{host: 10.0.0.1, port: 80}]}, routes: [{value: {paths: [/b]}}]}
  total: 2
consumers: [{value: {username: u, credentials: {list: [{value: {name: c, plugins: {key-auth: {key: k}}}}], total: 1}}}]
`)
	require.Len(t, cfg.Services, 2)
	require.Equal(t, "a", cfg.Services[0].ID)
	require.Equal(t, []string{"/a"}, cfg.Services[0].Routes[0].Paths)
	require.Equal(t, []string{"/b"}, cfg.Services[1].Routes[0].Paths)
	require.Equal(t, "c", cfg.Consumers[0].Credentials[0].Name)

	runErrCases(t, []errCase{
		// Errors inside a wrapper name the object's path, as validation's
		// do, without the wrapper's own key.
		{"error inside value", "services: [{value: {id: s, hosts: 1}}]\n", "services[0].hosts", []string{"expected a list"}},
		{"error inside list page", "services: {list: [{id: s, bogus: 1}], total: 1}\n", "services[0].bogus", []string{"unknown key"}},
		// Anything else beside value or list is not a wrapper.
		{"value with another key", "services: [{value: {id: s}, extra: 1}]\n", "services[0].value", []string{"unknown key"}},
		{"list page with another key", "services: {list: [], total: 0, page: 1}\n", "services", []string{"expected a list"}},
		{"value not an object", "services: [{value: 1}]\n", "services[0].value", []string{"unknown key"}},
	})
}

func TestSeedAPI7ResponseOnlyFields(t *testing.T) {
	cfg := mustParse(t, `
services:
  - id: s
    service_version_id: v1
    service_id: tmpl
    gateway_group_id: g
    gateway_group_name: default
    unhealthy_nodes_count: 0
    publish_time: 1
    status: 1
    version: "1.0"
    upstream: {nodes: [{host: 10.0.0.1, port: 80}], remark: "channel note"}
    routes: [{paths: [/], route_id: r, service_version_id: v1, remark: "API note"}]
consumers: [{id: x, name: y, username: u}]
`)
	require.Equal(t, "API note", cfg.Services[0].Routes[0].Remark)
	require.Equal(t, "channel note", cfg.Services[0].Upstream.Remark)
}

func TestSeedHTTPCodeString(t *testing.T) {
	cfg := mustParse(t, withUpstream(`{nodes: [{host: 10.0.0.1, port: 80}], checks: {
  active: {healthy: {http_statuses: "200,202,300-302"}, unhealthy: {http_statuses: " 500 - 502 , 504"}},
  passive: {healthy: {http_statuses: [200]}, unhealthy: {http_statuses: "503"}}}}`))
	c := cfg.Services[0].Upstream.Checks
	require.Equal(t, []int{200, 202, 300, 301, 302}, c.Active.Healthy.HTTPStatuses)
	require.Equal(t, []int{500, 501, 502, 504}, c.Active.Unhealthy.HTTPStatuses)
	require.Equal(t, []int{200}, c.Passive.Healthy.HTTPStatuses)
	require.Equal(t, []int{503}, c.Passive.Unhealthy.HTTPStatuses)

	up := func(codes string) string {
		return withUpstream(`{nodes: [{host: 10.0.0.1, port: 80}], checks: {active: {healthy: {http_statuses: ` + codes + `}}}}`)
	}
	const path = "services[0].upstream.checks.active.healthy.http_statuses"
	runErrCases(t, []errCase{
		{"not a number", up(`"2xx"`), path, []string{`"200,202,300-399"`, `got "2xx"`}},
		{"empty", up(`""`), path, []string{"separated by commas"}},
		{"empty part", up(`"200,,300"`), path, []string{"separated by commas"}},
		{"backwards range", up(`"299-200"`), path, []string{"must not end before it starts"}},
		{"out of range", up(`"200-600"`), path, []string{"100..599"}},
		{"below the schema's 200", up(`"199"`), path + "[0]", []string{"must be 200..599"}},
		{"a number is no list", up(`200`), path, []string{"expected a list"}},
	})
}

func TestSeedResponseHeadersList(t *testing.T) {
	cfg := mustParse(t, minimal+`
gateway_responses:
  NOT_FOUND: {headers: [{key: X-A, value: "1"}, {key: X-B, value: ""}]}
  THROTTLED: {headers: {X-C: "3"}}
`)
	require.Equal(t, ResponseHeaders{"X-A": "1", "X-B": ""}, cfg.GatewayResponses["NOT_FOUND"].Headers)
	require.Equal(t, ResponseHeaders{"X-C": "3"}, cfg.GatewayResponses["THROTTLED"].Headers)

	gr := func(h string) string { return minimal + "gateway_responses: {NOT_FOUND: {headers: " + h + "}}\n" }
	const path = "gateway_responses.NOT_FOUND.headers"
	runErrCases(t, []errCase{
		{"duplicate, any case", gr(`[{key: X-A, value: "1"}, {key: x-a, value: "2"}]`), path + "[1]", []string{`duplicate header "x-a"`}},
		{"no key", gr(`[{value: "1"}]`), path + "[0].key", []string{"required"}},
		{"unknown field", gr(`[{key: X-A, val: "1"}]`), path + "[0].val", []string{"unknown key"}},
		{"not an object", gr(`["X-A: 1"]`), path + "[0]", []string{"expected an object"}},
		{"null entry", gr(`[null]`), path + "[0]", []string{"got null"}},
		{"bad name", gr(`[{key: "X A", value: "1"}]`), path + `["X A"]`, []string{"invalid header name"}},
		{"a string", gr(`"X-A: 1"`), path, []string{"expected an object"}},
	})
}

func TestSeedHuaweiResponseTypes(t *testing.T) {
	cfg := mustParse(t, minimal+`
gateway_responses:
  DEFAULT_4XX: {body: "4xx"}
  DEFAULT_5XX: {status: 503}
  AUTHORIZER_FAILURE: {body: "{}", default: true, status: 500}
  THIRD_AUTH_FAILURE: {}
`)
	require.Equal(t, "4xx", cfg.GatewayResponses["DEFAULT_4XX"].Body)
	runErrCases(t, []errCase{
		{"customised authorizer response", minimal + "gateway_responses: {AUTHORIZER_FAILURE: {status: 500, body: x}}\n",
			"gateway_responses.AUTHORIZER_FAILURE", []string{"is not supported yet", "custom authorizers", "default: true"}},
		{"customised orchestration response", minimal + "gateway_responses: {ORCHESTRATION_FAILURE: {headers: [{key: X-A, value: b}], default: false}}\n",
			"gateway_responses.ORCHESTRATION_FAILURE", []string{"is not supported yet", "parameter orchestration"}},
		{"unknown type", minimal + "gateway_responses: {DEFAULT_3XX: {status: 300}}\n",
			"gateway_responses.DEFAULT_3XX", []string{`unknown response type "DEFAULT_3XX"`, "NOT_FOUND", "DEFAULT_4XX", "THIRD_AUTH_FAILURE"}},
		{"DEFAULT_4XX status checked", minimal + "gateway_responses: {DEFAULT_4XX: {status: 700}}\n",
			"gateway_responses.DEFAULT_4XX.status", []string{"must be 100..599"}},
		{"DEFAULT_5XX header names checked", minimal + "gateway_responses: {DEFAULT_5XX: {headers: [{key: \"a b\", value: c}]}}\n",
			`gateway_responses.DEFAULT_5XX.headers["a b"]`, []string{"invalid header name"}},
	})
}

func TestSeedHuaweiThrottlePolicy(t *testing.T) {
	doc := testseed.JSON(map[string]any{"throttle_policies": []any{testseed.Load("huawei-throttle-policy.json")}})
	cfg, err := Parse([]byte(doc), "seed.json")
	require.NoError(t, err)
	p := cfg.ThrottlePolicies[0]
	require.Equal(t, "3437448ad06f4e0c91a224183116e965", p.ID)
	require.Equal(t, "throttle_demo", p.Name)
	require.Equal(t, []int64{800, 500, 300, 600, 1}, []int64{p.APICallLimits, p.UserCallLimits, p.AppCallLimits, p.IPCallLimits, p.TimeInterval})
	require.Equal(t, "SECOND", p.TimeUnit)
	require.Contains(t, p.Remark, "Total: 800 calls/second")

	pol := func(v string) string {
		return minimal + "throttle_policies: [{id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND, enable_adaptive_control: " + v + "}]\n"
	}
	mustParse(t, pol(`""`))
	runErrCases(t, []errCase{
		{"adaptive control on", pol(`"TRUE"`), "throttle_policies[0].enable_adaptive_control", []string{`"TRUE" is not supported yet`}},
		{"adaptive control other", pol(`"on"`), "throttle_policies[0].enable_adaptive_control", []string{`must be "TRUE" or "FALSE"`}},
	})
}

func TestSeedGlobalRules(t *testing.T) {
	cfg := mustParse(t, minimal+`
global_plugins: {ip-restriction: {blacklist: [192.0.2.1]}}
global_rules:
  list:
    - {id: z, plugins: {cors: {allow_origins: "https://a.example"}}, created_at: 1, updated_at: 2}
    - value: {id: a, plugins: {limit-count: {count: 5, time_window: 60}}}
      warning_msg: ""
  total: 2
`)
	require.Len(t, cfg.GlobalPlugins, 3)
	for _, name := range []string{"ip-restriction", "cors", "limit-count"} {
		require.Contains(t, cfg.GlobalPlugins, name)
	}
	// A rule with the mocking plugin counts as global_plugins does: the
	// service needs no upstream.
	mustParse(t, `
services: [{id: s, routes: [{paths: [/]}]}]
global_rules: [{id: r, plugins: {mocking: {response_status: 200}}}]
`)

	runErrCases(t, []errCase{
		// Rules merge in id order: "b" comes after "a" whatever the file
		// order, so the conflict is reported at "b".
		{"conflict between rules", minimal + "global_rules: [{id: b, plugins: {cors: {}}}, {id: a, plugins: {cors: {}}}]\n",
			"global_rules[0].plugins.cors", []string{`plugin "cors" is already set by global_rules[1].plugins.cors`}},
		{"conflict with global_plugins", minimal + "global_plugins: {cors: {}}\nglobal_rules: [{id: a, plugins: {cors: {}}}]\n",
			"global_rules[0].plugins.cors", []string{"already set by global_plugins.cors"}},
		{"duplicate id", minimal + "global_rules: [{id: a, plugins: {}}, {id: a, plugins: {}}]\n",
			"global_rules[1].id", []string{"duplicate"}},
		{"id required", minimal + "global_rules: [{plugins: {}}]\n", "global_rules[0].id", []string{"required"}},
		{"plugin checked at the rule's path", minimal + "global_rules: [{id: a, plugins: {limit-count: {count: 0, time_window: 60}}}]\n",
			"global_rules[0].plugins.limit-count.count", nil},
		{"unknown plugin", minimal + "global_rules: [{id: a, plugins: {nope: {}}}]\n", "global_rules[0].plugins.nope", []string{"unknown plugin"}},
	})
}
