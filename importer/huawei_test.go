package importer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/plugin/keyauth"
	"gateway/plugin/mocking"
)

// The seed samples (testdata/huawei/README.md names their sections):
// everything that can be imported loads; everything else is a warning.
func TestHuaweiSeedSamplesRoundTrip(t *testing.T) {
	r, err := Huawei([]string{"testdata/huawei"})
	require.NoError(t, err)
	cfg := load(t, r)

	up := upstream(t, cfg, "56a7d7358e1b42459c9d730d65b14e59")
	require.Len(t, up.Nodes, 2)
	require.Equal(t, config.Node{Host: "192.168.1.124", Port: 22, Weight: 2}, up.Nodes[1])
	require.Equal(t, "/vpc/demo", up.Checks.Active.HTTPPath)

	require.Len(t, cfg.ThrottlePolicies, 1)
	p := cfg.ThrottlePolicies[0]
	require.Equal(t, int64(800), p.APICallLimits)
	require.Equal(t, int64(600), p.IPCallLimits)
	require.Equal(t, "SECOND", p.TimeUnit)

	require.Len(t, cfg.Consumers, 1)
	require.Equal(t, "app_001", cfg.Consumers[0].Username)
	require.Len(t, cfg.Consumers[0].Credentials, 2)

	require.Equal(t, "RELEASE", cfg.Gateway.Environment)
	require.Len(t, cfg.Environments, 2)
	require.Equal(t, map[string]string{"address": "192.168.1.5"}, cfg.Environments[1].Variables)

	// What the samples hold that this gateway cannot serve.
	requireWarned(t, r, "apis.json: apis[0].auth_type", "AUTHORIZER is not supported", "not imported")
	requireWarned(t, r, "apis.json: apis[1].auth_type", "IAM")
	requireWarned(t, r, "apis.json: apis[2].backend_type", "FUNCTION")
	// The list's second channel has the detail's id (the document's
	// samples share it): the detail, with members, is kept.
	requireWarned(t, r, "vpc_channels.json: vpc_channels[1]: VPC channel 56a7d7358e1b42459c9d730d65b14e59 is also at testdata/huawei/vpc_channel.json, which is kept")
	requireWarned(t, r, "vpc_channels.json: vpc_channels[0].members", "no importable members")
	requireWarned(t, r, "variables.json: variables[0].env_id", "not in the input")
	requireWarned(t, r, "throttle_specials.json: throttle_specials[0]", "app_demo", "not imported")
	requireWarned(t, r, "throttle_applies.json: throttle_applies[0]", "binding not imported")
	requireWarned(t, r, "auths.json: auths[0]", "app_demo", "authorization not imported")
	// Comments name each source object.
	require.Contains(t, string(r.YAML), `# huawei vpc_channel 56a7d7358e1b42459c9d730d65b14e59 "VPC_demo" (testdata/huawei/vpc_channel.json)`)
	require.Contains(t, string(r.YAML), `# huawei throttle 3437448ad06f4e0c91a224183116e965 "throttle_demo" (testdata/huawei/throttles.json: throttles[0])`)
}

func channel(alg string, members string, extra string) string {
	return `{"id": "ch1", "name": "channel_1", "port": 8080, ` + alg + ` "member_type": "ip", "type": 2, "status": 1,
		"members": [` + members + `]` + extra + `}`
}

const twoMembers = `{"host": "10.0.0.1", "weight": 3, "is_backup": false, "port": 0}, {"host": "10.0.0.2", "weight": 1, "is_backup": true, "port": 9090}`

func TestHuaweiBalanceStrategy(t *testing.T) {
	for _, tc := range []struct {
		field string
		typ   config.BalancerType
		key   string
	}{
		{`"balance_strategy": 1,`, config.RoundRobin, ""},
		{`"lb_algorithm": 2,`, config.LeastConn, ""},
		{`"balance_strategy": 3,`, config.CHash, "remote_addr"},
		{`"lb_algorithm": 4,`, config.CHash, "uri"},
		{``, config.RoundRobin, ""},
	} {
		t.Run(tc.field, func(t *testing.T) {
			r := huawei(t, map[string]string{"vpc_channel.json": channel(tc.field, twoMembers, "")})
			up := upstream(t, load(t, r), "ch1")
			require.Equal(t, tc.typ, up.Type)
			if tc.key != "" {
				require.Equal(t, config.HashOnVars, up.HashOn)
				require.Equal(t, tc.key, up.Key)
			}
			require.Empty(t, r.Warnings)
		})
	}
	r := huawei(t, map[string]string{"vpc_channel.json": channel(`"balance_strategy": 9,`, twoMembers, "")})
	require.Equal(t, config.RoundRobin, upstream(t, load(t, r), "ch1").Type)
	requireWarned(t, r, "vpc_channel.json: balance_strategy", "unknown distribution algorithm 9")
}

func TestHuaweiMembersBackupAndHealth(t *testing.T) {
	health := `, "vpc_health_config": {"protocol": "HTTP", "path": "/healthz", "method": "GET", "port": 0,
		"threshold_normal": 2, "threshold_abnormal": 3, "time_interval": 5, "timeout": 2,
		"http_code": "200,204-206", "enable_client_ssl": false, "status": 1, "id": "h1", "vpc_channel_id": "ch1"}`
	r := huawei(t, map[string]string{"vpc_channel.json": channel(`"balance_strategy": 1,`, twoMembers, health)})
	up := upstream(t, load(t, r), "ch1")
	require.Equal(t, []config.Node{
		{Host: "10.0.0.1", Port: 8080, Weight: 3, Priority: 0},  // member port 0: the channel's
		{Host: "10.0.0.2", Port: 9090, Weight: 1, Priority: -1}, // is_backup
	}, up.Nodes)
	a := up.Checks.Active
	require.NotNil(t, a)
	require.Equal(t, config.Scheme("http"), a.Type)
	require.Equal(t, "/healthz", a.HTTPPath)
	require.Equal(t, config.Seconds(2), a.Timeout)
	require.Equal(t, config.Seconds(5), a.Healthy.Interval)
	require.Equal(t, config.Seconds(5), a.Unhealthy.Interval)
	require.Equal(t, 2, a.Healthy.Successes)
	require.Equal(t, []int{200, 204, 205, 206}, a.Healthy.HTTPStatuses)
	require.Equal(t, 3, a.Unhealthy.HTTPFailures)
	require.Equal(t, 3, a.Unhealthy.TCPFailures)
	require.Equal(t, 3, a.Unhealthy.Timeouts)
	require.Empty(t, r.Warnings)
	require.Contains(t, string(r.YAML), "# is_backup")

	// TCP checks, a HEAD method and client certificates.
	health = `, "vpc_health_config": {"protocol": "TCP", "method": "HEAD", "threshold_normal": 1, "threshold_abnormal": 2, "time_interval": 3, "enable_client_ssl": true, "port": 7000}`
	r = huawei(t, map[string]string{"vpc_channel.json": channel("", twoMembers, health)})
	a = upstream(t, load(t, r), "ch1").Checks.Active
	require.Equal(t, config.Scheme("tcp"), a.Type)
	require.Equal(t, 7000, a.Port)
	require.Equal(t, 2, a.Unhealthy.TCPFailures)
	requireWarned(t, r, "vpc_health_config.method", "HEAD")
	requireWarned(t, r, "vpc_health_config.enable_client_ssl")

	// A member without host and unknown member fields are warned about.
	r = huawei(t, map[string]string{"vpc_channel.json": channel("", `{"ecs_id": "e-1", "port": 80}, {"host": "10.0.0.3", "weight": 1, "member_group_name": "blue"}`, "")})
	up = upstream(t, load(t, r), "ch1")
	require.Len(t, up.Nodes, 1)
	requireWarned(t, r, "vpc_channel.json: members[0]", "without host")
	requireWarned(t, r, "vpc_channel.json: members[1].member_group_name", "not supported, not imported")
}

// api is a Huawei API detail response with the given fields.
func api(fields string) string {
	return `{"id": "api1", "name": "get_order", "group_id": "g1", "group_name": "shop", "status": 1, "type": 1,
		"req_protocol": "HTTP", "register_time": "2020-07-31T12:42:51Z", "remark": "Order lookup", ` + fields + `}`
}

func TestHuaweiAPIBackendAndParams(t *testing.T) {
	r := huawei(t, map[string]string{"api.json": api(`"req_method": "GET", "req_uri": "/orders/{id}", "match_mode": "NORMAL",
		"auth_type": "NONE", "backend_type": "HTTP",
		"backend_api": {"url_domain": "10.0.0.9:8080", "req_protocol": "HTTPS", "req_method": "POST", "req_uri": "/v2/orders/{id}",
			"timeout": 5000, "retry_count": "2", "id": "b1", "status": 1, "vpc_channel_status": 2},
		"req_params": [
			{"name": "id", "type": "NUMBER", "location": "PATH", "required": 1, "valid_enable": 1, "min_num": 1, "max_num": 0, "id": "p1", "pass_through": 1},
			{"name": "X-Tenant", "type": "STRING", "location": "HEADER", "required": 2, "max_size": 16, "default_value": "t0", "regular": "^t[0-9]$", "valid_enable": 1, "pass_through": 2, "id": "p2"}],
		"backend_params": [
			{"name": "X-Order-Id", "value": "id", "location": "HEADER", "origin": "REQUEST", "req_param_id": "p1", "id": "bp1"},
			{"name": "channel", "value": "web", "location": "QUERY", "origin": "CONSTANT", "remark": "constant"},
			{"name": "app-id", "value": "$context.appld", "location": "HEADER", "origin": "SYSTEM"},
			{"name": "seg", "value": "x", "location": "PATH", "origin": "CONSTANT"}]`)})
	cfg := load(t, r)
	s := service(t, cfg, "api1")
	require.Equal(t, "get_order", s.Name)
	require.NotNil(t, s.Upstream)
	require.Equal(t, config.SchemeHTTPS, s.Upstream.Scheme)
	require.Equal(t, []config.Node{{Host: "10.0.0.9", Port: 8080, Weight: 1}}, s.Upstream.Nodes)
	require.Equal(t, 2, *s.Upstream.Retries)
	rt := s.Routes[0]
	require.Equal(t, []string{"/orders/{id}"}, rt.Paths)
	require.Equal(t, []string{"GET"}, rt.Methods)
	require.Equal(t, &config.RouteTimeout{Send: 5, Read: 5}, rt.Timeout)
	require.Len(t, rt.ReqParams, 2)
	require.Equal(t, "PATH", rt.ReqParams[0].Location)
	require.Equal(t, int64(1), *rt.ReqParams[0].MinNum)
	require.Nil(t, rt.ReqParams[0].MaxNum, "max_num 0 is the API's 'not set'")
	// Carried over: the gateway builds default_value, regular and
	// pass_through 2 (dropping regular would admit what the source refused).
	require.Equal(t, "t0", *rt.ReqParams[1].DefaultValue)
	require.Equal(t, "^t[0-9]$", *rt.ReqParams[1].Regular)
	require.Equal(t, 2, rt.ReqParams[1].PassThrough)
	require.Equal(t, int64(16), *rt.ReqParams[1].MaxSize)
	require.Equal(t, []config.BackendParam{
		{Name: "X-Order-Id", Location: "HEADER", Origin: "REQUEST", Value: "id"},
		{Name: "channel", Location: "QUERY", Origin: "CONSTANT", Value: "web", Remark: "constant"},
	}, rt.BackendParams)
	require.Contains(t, rt.Plugins, "proxy-rewrite")
	require.Contains(t, string(r.YAML), `uri: "/v2/orders/{id}"`)
	require.Contains(t, string(r.YAML), `method: "POST"`)
	require.Contains(t, string(r.YAML), "# huawei api api1 \"get_order\" (")
	require.Contains(t, string(r.YAML), "# remark: Order lookup")
	requireWarned(t, r, "api.json: backend_params[2].value", `"$context.appld"`)
	requireWarned(t, r, "api.json: backend_params[3].location", "PATH")
}

func TestHuaweiPrefixMatchAndUnknownFields(t *testing.T) {
	r := huawei(t, map[string]string{"apis.json": `{"total": 1, "size": 1, "apis": [` + api(`"req_method": "ANY", "req_uri": "/shop/", "match_mode": "SWA",
		"auth_type": "NONE", "backend_type": "HTTP", "cors": true,
		"backend_api": {"url_domain": "backend.internal", "req_protocol": "HTTP", "req_uri": "/api",
			"vpc_channel_info": {"x": 1}, "retry_count": "-1", "new_field": "v"},
		"policy_https": [{"name": "p"}]`) + `]}`})
	cfg := load(t, r)
	s := service(t, cfg, "api1")
	require.Equal(t, []string{"/shop", "/shop/*"}, s.Routes[0].Paths)
	require.Empty(t, s.Routes[0].Methods)
	require.Equal(t, []config.Node{{Host: "backend.internal", Port: 80, Weight: 1}}, s.Upstream.Nodes)
	require.Contains(t, s.Plugins, "cors")
	require.Contains(t, string(r.YAML), `regex_uri: ["^/shop(.*)$", "/api$1"]`)
	requireWarned(t, r, "apis.json: apis[0].backend_api.vpc_channel_info.x: not supported, not imported")
	requireWarned(t, r, "apis.json: apis[0].backend_api.new_field: not supported, not imported")
	requireWarned(t, r, "apis.json: apis[0].policy_https: not supported, not imported")
}

func TestHuaweiAppAuthAndMock(t *testing.T) {
	r := huawei(t, map[string]string{
		"api.json": api(`"req_method": "GET", "req_uri": "/mock", "auth_type": "APP", "auth_opt": {"app_code_auth_type": "HEADER"},
			"backend_type": "MOCK", "mock_info": {"result_content": "{\"ok\":true}", "status_code": 201, "id": "m1"}`),
		"apps.json": `{"total": 2, "apps": [
			{"id": "a1", "name": "app_demo", "app_key": "k", "app_secret": "416*****ab8", "status": 1, "remark": "Demo app"},
			{"id": "a2", "name": "no codes", "app_key": "k2"}]}`,
		"app_codes.json": `{"app_codes": [{"app_code": "code-123", "app_id": "a1", "id": "c1"}]}`,
	})
	cfg := load(t, r)
	s := service(t, cfg, "api1")
	require.Nil(t, s.Upstream)
	require.Equal(t, AppCodeHeader, config.Plugin[keyauth.Config](s.Plugins, "key-auth").Header)
	m := config.Plugin[mocking.Config](s.Routes[0].Plugins, "mocking")
	require.NotNil(t, m)
	require.Equal(t, 201, m.ResponseStatus)
	require.Equal(t, `{"ok":true}`, m.ResponseExample)
	require.Len(t, cfg.Consumers, 1)
	c := cfg.Consumers[0]
	require.Equal(t, "app_demo", c.Username)
	require.Equal(t, "code-123", config.Plugin[keyauth.Credential](c.Credentials[0].Plugins, "key-auth").Key)
	requireWarned(t, r, "apps.json: apps[1]", "no AppCode")

	// Signature authentication becomes AppCode authentication, said so.
	r = huawei(t, map[string]string{"api.json": api(`"req_method": "GET", "req_uri": "/mock", "auth_type": "APP", "backend_type": "MOCK", "mock_info": {"result_content": "x"}`)})
	load(t, r)
	requireWarned(t, r, "api.json: auth_type", "AK/SK")
}

func TestHuaweiThrottlesSpecialsBindings(t *testing.T) {
	files := map[string]string{
		"apis.json": `{"apis": [` + api(`"req_method": "GET", "req_uri": "/a", "auth_type": "APP", "auth_opt": {"app_code_auth_type": "HEADER"},
			"backend_type": "HTTP", "publish_id": "pub1", "backend_api": {"url_domain": "10.0.0.1:80", "req_uri": "/a"}`) + `,
			{"id": "api2", "name": "second", "req_method": "GET", "req_uri": "/b", "auth_type": "NONE", "backend_type": "HTTP",
			 "backend_api": {"url_domain": "10.0.0.1:80", "req_uri": "/b"}}]}`,
		"throttles.json": `{"throttles": [
			{"id": "t1", "name": "per_api", "api_call_limits": 100, "user_call_limits": 50, "app_call_limits": 20, "ip_call_limits": 30,
			 "time_interval": 1, "time_unit": "MINUTE", "type": 1, "enable_adaptive_control": "FALSE", "bind_num": 1, "is_inclu_special_throttle": 1},
			{"id": "t2", "name": "shared", "api_call_limits": 10, "time_interval": 2, "time_unit": "SECOND", "type": 2, "enable_adaptive_control": "TRUE"}]}`,
		"throttle_specials.json": `{"throttle_specials": [
			{"call_limits": 40, "object_id": "a1", "object_type": "APP", "throttle_id": "t1", "app_name": "app_demo", "id": "s1"},
			{"call_limits": 40, "object_id": "u1", "object_type": "USER", "throttle_id": "t1", "object_name": "tenant"}]}`,
		"throttle_applies.json":    `{"throttle_applies": [{"publish_id": "pub1", "scope": 1, "strategy_id": "t1", "id": "ap1"}]}`,
		"throttle_bound_apis.json": `{"apis": [{"id": "api2", "throttle_apply_id": "ap2", "throttle_name": "shared", "run_env_name": "RELEASE", "req_uri": "/b"}]}`,
		"apps.json":                `{"apps": [{"id": "a1", "name": "app_demo"}]}`,
		"app_codes.json":           `{"app_codes": [{"app_code": "code-1", "app_id": "a1"}]}`,
	}
	r := huawei(t, files)
	cfg := load(t, r)
	require.Len(t, cfg.ThrottlePolicies, 2)
	p := cfg.ThrottlePolicies[0]
	require.Equal(t, config.ThrottlePolicy{ID: "t1", Name: "per_api", APICallLimits: 100, UserCallLimits: 50, AppCallLimits: 20, IPCallLimits: 30,
		TimeInterval: 1, TimeUnit: "MINUTE", Type: 1, Window: p.Window, ThrottleStrategy: p.ThrottleStrategy, AllowDegradation: p.AllowDegradation,
		Specials: []config.Special{{ObjectType: "APP", ObjectID: "app_demo", CallLimits: 40}}}, p)
	require.Equal(t, 2, cfg.ThrottlePolicies[1].Type)
	require.Equal(t, "t1", service(t, cfg, "api1").Routes[0].ThrottlePolicy)
	require.Equal(t, "t2", service(t, cfg, "api2").Routes[0].ThrottlePolicy)
	requireWarned(t, r, "throttles.json: throttles[1].enable_adaptive_control")
	requireWarned(t, r, "throttle_specials.json: throttle_specials[1]", "tenant")
}

func TestHuaweiGatewayResponses(t *testing.T) {
	r := huawei(t, map[string]string{"gateway_response.json": `{"id": "g1", "name": "custom", "default": false, "responses": {
		"THROTTLED": {"status": 429, "body": "{\"msg\":\"slow down\"}", "headers": [{"key": "Retry-Hint", "value": "later"}], "default": false},
		"NOT_FOUND": {"status": 404, "body": "default body", "default": true},
		"DEFAULT_4XX": {"body": "{\"code\":\"4xx\"}", "default": false},
		"AUTHORIZER_FAILURE": {"status": 500, "body": "x", "default": false}}}`})
	cfg := load(t, r)
	require.Equal(t, map[string]config.GatewayResponse{
		"THROTTLED":   {Status: 429, Body: `{"msg":"slow down"}`, Headers: map[string]string{"Retry-Hint": "later"}},
		"DEFAULT_4XX": {Body: `{"code":"4xx"}`},
	}, cfg.GatewayResponses)
	requireWarned(t, r, "responses.AUTHORIZER_FAILURE", "not supported by this build")
}

func TestHuaweiEnvironmentVariables(t *testing.T) {
	r := huawei(t, map[string]string{
		"envs.json": `{"envs": [{"id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "name": "RELEASE"}, {"id": "e2", "name": "DEV", "remark": "dev"}, {"id": "e3", "name": "x"}]}`,
		"variables.json": `{"variables": [
			{"env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "variable_name": "version", "variable_value": "v2", "group_id": "g", "id": "v1"},
			{"env_id": "e2", "variable_name": "version", "variable_value": "dev", "id": "v2"}]}`,
		"api.json": api(`"req_method": "GET", "req_uri": "/#version#/orders", "auth_type": "NONE", "backend_type": "MOCK", "mock_info": {"result_content": "x"}`),
	})
	cfg := load(t, r)
	require.Equal(t, "RELEASE", cfg.Gateway.Environment)
	require.Equal(t, []string{"/v2/orders"}, service(t, cfg, "api1").Routes[0].Paths)
	requireWarned(t, r, "envs.json: envs[2].name", `"x"`)
}

// One JSON object holding several list keys works as well as a file each.
func TestHuaweiOneFileManyKeys(t *testing.T) {
	body := fmt.Sprintf(`{"vpc_channels": [%s], "throttles": [{"id": "t1", "name": "t", "api_call_limits": 5, "time_interval": 1, "time_unit": "SECOND"}], "other": [1]}`,
		channel("", twoMembers, ""))
	r := huawei(t, map[string]string{"export.json": body})
	cfg := load(t, r)
	require.Len(t, cfg.Upstreams, 1)
	require.Len(t, cfg.ThrottlePolicies, 1)
	requireWarned(t, r, "export.json: other", "not a list this importer knows")
	require.True(t, strings.HasPrefix(string(r.YAML), "# Huawei VPC channels\nupstreams:\n"), "%s", r.YAML)
}

func TestHuaweiMicroserviceChannel(t *testing.T) {
	r := huawei(t, map[string]string{"vpc_channels.json": `{"vpc_channels": [{"id": "c3", "name": "ms", "type": 3, "port": 80, "balance_strategy": 1,
		"microservice_info": {"service_type": "CCE"}}]}`})
	cfg := load(t, r)
	require.Empty(t, cfg.Upstreams)
	requireWarned(t, r, "vpc_channels.json: vpc_channels[0].type", "microservice")
}

// Two APIs of different groups may share a path; here they would be one
// route, so the second is refused with a warning, not a broken config.
func TestHuaweiSamePathTwice(t *testing.T) {
	r := huawei(t, map[string]string{"apis.json": `{"apis": [` +
		api(`"req_method": "GET", "req_uri": "/a", "auth_type": "NONE", "backend_type": "MOCK", "mock_info": {"result_content": "1"}`) + `,` +
		strings.Replace(api(`"req_method": "GET", "req_uri": "/a", "auth_type": "NONE", "backend_type": "MOCK", "mock_info": {"result_content": "2"}`), `"api1"`, `"api2"`, 1) + `]}`})
	cfg := load(t, r)
	require.Len(t, cfg.Services, 1)
	requireWarned(t, r, "apis.json: apis[1].req_uri", "GET /a is also the path of the API at", "apis[0]")
}

// Apps authorized to call an APP API (auths) are the only consumers it
// admits; an API no imported app may call is not imported.
func TestHuaweiAppAuthorizations(t *testing.T) {
	appAPI := func(id, uri string) string {
		return strings.Replace(api(`"req_method": "GET", "req_uri": "`+uri+`", "auth_type": "APP", "auth_opt": {"app_code_auth_type": "HEADER"},
			"backend_type": "MOCK", "mock_info": {"result_content": "x"}`), `"api1"`, `"`+id+`"`, 1)
	}
	r := huawei(t, map[string]string{
		"apis.json":      `{"apis": [` + appAPI("api1", "/one") + `,` + appAPI("api2", "/two") + `]}`,
		"apps.json":      `{"apps": [{"id": "a1", "name": "app_demo"}, {"id": "a2", "name": "other"}]}`,
		"app_codes.json": `{"app_codes": [{"app_code": "code-1", "app_id": "a1"}, {"app_code": "code-2", "app_id": "a2"}]}`,
		"auths.json": `{"total": 2, "auths": [
			{"api_id": "api1", "app_name": "app_demo", "env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "env_name": "RELEASE", "api_name": "get_order",
			 "app_id": "a1", "auth_time": "2020-08-04T04:02:22Z", "app_creator": "USER", "id": "au1", "auth_role": "PROVIDER", "app_type": "apig", "auth_tunnel": "NORMAL"},
			{"api_id": "api1", "app_id": "a9", "app_name": "gone"}]}`,
	})
	cfg := load(t, r)
	require.Len(t, cfg.Services, 1)
	require.Contains(t, string(r.YAML), "consumer-restriction:\n        type: \"consumer_name\"\n        whitelist: [\"app_demo\"]")
	require.Contains(t, service(t, cfg, "api1").Plugins, "consumer-restriction")
	requireWarned(t, r, "apis.json: apis[1].auth_type", "no imported app is authorized", "API not imported")
	requireWarned(t, r, "auths.json: auths[1]", "a9 (gone) is not imported")
}
