package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// specExample is the Example of config.md, verbatim.
const specExample = `
gateway:
  listen: 0.0.0.0:9080
  real_ip: {header: X-Forwarded-For, trusted_addresses: [10.0.0.0/8]}
services:
  - id: users
    hosts: [api.example.com]
    path_prefix: /users
    throttle_policy: standard
    plugins: {key-auth: {}}
    upstream:
      type: chash
      hash_on: header
      key: X-User-Id
      nodes:
        - {host: 10.0.1.10, port: 8080, weight: 100}
        - {host: 10.0.1.11, port: 8080, weight: 100}
        - {host: 10.0.9.10, port: 8080, weight: 100, priority: -1}   # backup
      checks:
        active: {http_path: /healthz, healthy: {interval: 2, successes: 2}, unhealthy: {interval: 1, http_failures: 3}}
        passive: {unhealthy: {http_statuses: [502, 503, 504], http_failures: 3}}
    routes:
      - {name: get-user, paths: ["/{id}"], methods: [GET]}
      - {name: everything-else, paths: ["/*"]}
throttle_policies:
  - {id: standard, api_call_limits: 1000, user_call_limits: 100, app_call_limits: 50, ip_call_limits: 200,
     time_interval: 1, time_unit: MINUTE, type: 1,
     specials: [{object_type: APP, object_id: mobile-app, call_limits: 80}]}
consumers:
  - username: alice
    credentials:
      - {name: mobile-app, plugins: {key-auth: {key: "k-123"}}}
`

func TestSpecExampleLoads(t *testing.T) {
	cfg := mustParse(t, specExample)
	require.Equal(t, RealIP{Header: "X-Forwarded-For", TrustedAddresses: []string{"10.0.0.0/8"}, Recursive: true}, cfg.Gateway.RealIP)

	s := cfg.Services[0]
	require.Equal(t, "users", s.ID)
	require.Equal(t, []string{"api.example.com"}, s.Hosts)
	require.Equal(t, "/users", s.PathPrefix)
	require.Equal(t, "standard", s.ThrottlePolicy)
	requirePluginJSON(t, `{"header":"apikey","query":"apikey","hide_credentials":false}`, s.Plugins, "key-auth")

	up := s.Upstream
	require.Equal(t, CHash, up.Type)
	require.Equal(t, HashOnHeader, up.HashOn)
	require.Equal(t, "X-User-Id", up.Key)
	require.Equal(t, Node{Host: "10.0.9.10", Port: 8080, Weight: 100, Priority: -1}, up.Nodes[2])
	require.Equal(t, 2, *up.Retries)
	require.Equal(t, "/healthz", up.Checks.Active.HTTPPath)
	require.Equal(t, ActiveHealthy{Interval: 2, HTTPStatuses: []int{200, 302}, Successes: 2}, up.Checks.Active.Healthy)
	require.Equal(t, 3, up.Checks.Active.Unhealthy.HTTPFailures)
	require.Equal(t, 2, up.Checks.Active.Unhealthy.TCPFailures)
	require.Equal(t, PassiveUnhealthy{HTTPStatuses: []int{502, 503, 504}, HTTPFailures: 3, TCPFailures: 2, Timeouts: 7}, up.Checks.Passive.Unhealthy)

	require.Equal(t, "users.0", s.Routes[0].ID)
	require.Equal(t, "get-user", s.Routes[0].Name)
	require.Equal(t, []string{"/{id}"}, s.Routes[0].Paths)
	require.Equal(t, []string{"GET"}, s.Routes[0].Methods)
	require.Equal(t, "users.1", s.Routes[1].ID)

	p := cfg.ThrottlePolicies[0]
	require.Equal(t, ThrottlePolicy{
		ID: "standard", Name: "standard", APICallLimits: 1000, UserCallLimits: 100, AppCallLimits: 50, IPCallLimits: 200,
		TimeInterval: 1, TimeUnit: "MINUTE", Type: 1, Window: "fixed", ThrottleStrategy: "local", AllowDegradation: true,
		Specials: []Special{{ObjectType: "APP", ObjectID: "mobile-app", CallLimits: 80}},
	}, p)
	requirePluginJSON(t, `{"key":"k-123"}`, cfg.Consumers[0].Credentials[0].Plugins, "key-auth")
}

// api7PublishedService checks what the API7 example carries.
func api7PublishedService(t *testing.T, cfg *Config) {
	t.Helper()
	require.Len(t, cfg.Services, 1)
	s := cfg.Services[0]
	require.Equal(t, "orders-svc", s.ID)
	require.Equal(t, "orders", s.Name)
	require.Equal(t, map[string]string{"team": "commerce"}, s.Labels)
	require.Equal(t, []string{"shop.example.com", "*.shop.example.com"}, s.Hosts)
	require.Equal(t, "/orders", s.PathPrefix)
	require.True(t, s.StripPathPrefix)

	up := s.Upstream
	require.Equal(t, "orders-svc", up.ID)
	require.Equal(t, CHash, up.Type)
	require.Equal(t, HashOnHeader, up.HashOn)
	require.Equal(t, "X-Customer-Id", up.Key)
	require.Equal(t, 2, *up.Retries)
	require.Equal(t, Timeout{Connect: 6, Send: 6, Read: 15}, up.Timeout)
	require.Equal(t, KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000}, up.KeepalivePool)
	require.Len(t, up.Nodes, 3)
	require.Equal(t, Node{Host: "10.0.1.11", Port: 8080, Weight: 100, Priority: -1}, up.Nodes[2])
	a := up.Checks.Active
	require.Equal(t, "/healthz", a.HTTPPath)
	require.Equal(t, []string{"User-Agent: gateway-health"}, a.ReqHeaders)
	require.Equal(t, Seconds(2), a.Healthy.Interval)
	require.Equal(t, []int{429, 404, 500, 501, 502, 503, 504, 505}, a.Unhealthy.HTTPStatuses)
	require.Equal(t, 7, up.Checks.Passive.Unhealthy.Timeouts)
	require.Len(t, up.Checks.Passive.Healthy.HTTPStatuses, 19)

	r := s.Routes
	require.Len(t, r, 3)
	require.Equal(t, "list-orders", r[0].ID)
	require.Equal(t, &RouteTimeout{Connect: 6, Send: 6, Read: 15}, r[0].Timeout)
	require.Equal(t, "orders-svc", r[0].ServiceID)
	require.Equal(t, []string{"GET", "HEAD"}, r[1].Methods)
	require.Equal(t, []Var{{Name: "http_x_api_version", Op: "~~", Value: "^v[12]$", Ref: VarRef{VarHTTP, "x-api-version"}}}, r[1].Vars)
	require.Equal(t, []string{"/{order_id}/items/*"}, r[2].Paths)
	require.Nil(t, r[2].Timeout)
}

func TestAPI7PublishedServiceFromSpec(t *testing.T) {
	const path = "../../shared/spec/examples/api7-published-service.json"
	if _, err := os.Stat(path); err != nil {
		t.Skip("the spec is not beside this checkout:", err)
	}
	cfg, err := Load(path)
	require.NoError(t, err)
	api7PublishedService(t, cfg)
}

func TestAPI7PublishedService(t *testing.T) {
	cfg, err := Load("testdata/api7-published-service.json")
	require.NoError(t, err)
	require.Equal(t, "testdata/api7-published-service.json", cfg.Source)
	api7PublishedService(t, cfg)
}

func TestYAMLAndJSONLoadTheSame(t *testing.T) {
	yamlDoc := `
revision: r1
gateway:
  listen: 127.0.0.1:8080
  control_listen: ""
  client_read_timeout: 2.5
  real_ip: {header: X-Real-IP, recursive: false}
services:
  - id: svc
    labels: {tier: gold}
    hosts: [Example.COM]
    path_prefix: /api
    strip_path_prefix: false
    upstream_id: shared
    plugins:
      ip-restriction: {blacklist: [192.0.2.0/24]}
    routes:
      - id: r
        paths: ["/items/{id}", /items]
        methods: [GET, POST]
        priority: 5
        vars: [[arg_x, in, [1, b]], ["!", http_x_debug, "==", "1"]]
        timeout: {read: 3}
        enable_websocket: true
upstreams:
  - id: shared
    type: least_conn
    retries: 1
    nodes:
      - {host: backend-1, port: 8080, weight: 3}
      - {host: backend-2, port: 8080}
throttle_policies:
  - {id: p, api_call_limits: 60, time_interval: 1, time_unit: MINUTE, window: sliding}
consumers:
  - username: alice
    labels: {tier: gold}
    plugins: {key-auth: {key: alice-key}}
gateway_responses:
  THROTTLED: {status: 429, body: slow down, headers: {Retry-After: "1"}}
global_plugins:
  limit-count: {count: 100, time_window: 1}
`
	jsonDoc := `{
  "revision": "r1",
  "gateway": {
    "listen": "127.0.0.1:8080",
    "control_listen": "",
    "client_read_timeout": 2.5,
    "real_ip": {"header": "X-Real-IP", "recursive": false}
  },
  "services": [{
    "id": "svc",
    "labels": {"tier": "gold"},
    "hosts": ["Example.COM"],
    "path_prefix": "/api",
    "strip_path_prefix": false,
    "upstream_id": "shared",
    "plugins": {"ip-restriction": {"blacklist": ["192.0.2.0/24"]}},
    "routes": [{
      "id": "r",
      "paths": ["/items/{id}", "/items"],
      "methods": ["GET", "POST"],
      "priority": 5,
      "vars": [["arg_x", "in", [1, "b"]], ["!", "http_x_debug", "==", "1"]],
      "timeout": {"read": 3},
      "enable_websocket": true
    }]
  }],
  "upstreams": [{
    "id": "shared",
    "type": "least_conn",
    "retries": 1,
    "nodes": [{"host": "backend-1", "port": 8080, "weight": 3}, {"host": "backend-2", "port": 8080}]
  }],
  "throttle_policies": [{"id": "p", "api_call_limits": 60, "time_interval": 1, "time_unit": "MINUTE", "window": "sliding"}],
  "consumers": [{"username": "alice", "labels": {"tier": "gold"}, "plugins": {"key-auth": {"key": "alice-key"}}}],
  "gateway_responses": {"THROTTLED": {"status": 429, "body": "slow down", "headers": {"Retry-After": "1"}}},
  "global_plugins": {"limit-count": {"count": 100, "time_window": 1}}
}`
	fromYAML, err := Parse([]byte(yamlDoc), "c.yaml")
	require.NoError(t, err)
	fromJSON, err := Parse([]byte(jsonDoc), "c.json")
	require.NoError(t, err)
	fromYAML.Source, fromJSON.Source = "", ""
	fromYAML.src, fromJSON.src = nil, nil // the digests stay: the same tree hashes the same
	require.Equal(t, fromYAML, fromJSON)

	// Spot checks that the values came through at all.
	require.Equal(t, Seconds(2.5), fromJSON.Gateway.ClientReadTimeout)
	require.Equal(t, []string{"example.com"}, fromJSON.Services[0].Hosts)
	require.Equal(t, []string{"1", "b"}, fromJSON.Services[0].Routes[0].Vars[0].Values)
	require.Equal(t, 1, *fromJSON.Upstreams[0].Retries)
}

func TestLoadFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yml")
	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, path, cfg.Source)
	require.Equal(t, "s", cfg.Services[0].ID)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.True(t, errors.Is(err, fs.ErrNotExist), "got %v", err)

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"services": [{"id": "s"}]}`), 0o600))
	_, err = Load(bad)
	var errs Errors
	require.True(t, errors.As(err, &errs))
	requireFieldError(t, errs, "services[0].routes", "at least one route")
}

func TestErrorText(t *testing.T) {
	e := FieldError{Path: "services[2].upstream.nodes[0].port", Msg: "must be 1..65535, got 0"}
	require.Equal(t, "services[2].upstream.nodes[0].port: must be 1..65535, got 0", e.Error())
	require.Equal(t, "invalid JSON", FieldError{Msg: "invalid JSON"}.Error())
	errs := Errors{e, {Path: "gateway.listen", Msg: "bad"}}
	require.Equal(t, "services[2].upstream.nodes[0].port: must be 1..65535, got 0\ngateway.listen: bad", errs.Error())

	// The example of config.md, produced by loading; a YAML file's errors
	// also say where (issue 20), a JSON file's do not.
	errs = parseErrs(t, withUpstream("{nodes: [{host: a, port: 0}]}"), "c.yaml")
	require.Equal(t, "c.yaml:3: services[0].upstream.nodes[0].port: must be 1..65535, got 0", errs.Error())
	errs = parseErrs(t, `{"services": [{"id": "s", "upstream": {"nodes": [{"host": "a", "port": 0}]}, "routes": [{"paths": ["/"]}]}]}`, "c.json")
	require.Equal(t, "services[0].upstream.nodes[0].port: must be 1..65535, got 0", errs.Error())
}
