package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnknownKeys(t *testing.T) {
	runErrCases(t, []errCase{
		{"top level", minimal + "extra: 1\n", "extra", []string{"unknown key"}},
		{"gateway", "gateway: {listn: x}\n" + minimal, "gateway.listn", []string{"unknown key"}},
		{"nested", withUpstream("{nodes: [{host: a, port: 1, wieght: 2}]}"), "services[0].upstream.nodes[0].wieght", []string{"unknown key"}},
		{"route", withRoute("{paths: [/x], method: [GET]}"), "services[0].routes[0].method", []string{"unknown key"}},
		{"checks", withUpstream("{nodes: [{host: a, port: 1}], checks: {active: {healthy: {succeses: 2}}}}"),
			"services[0].upstream.checks.active.healthy.succeses", []string{"unknown key"}},
		{"plugin", minimal + "global_plugins: {opa: {}}\n", "global_plugins.opa", []string{`unknown plugin "opa"`}},
		{"plugin config", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, burst: 2}}\n",
			"global_plugins.limit-count.burst", []string{"unknown key"}},
	})
}

func TestWrongTypes(t *testing.T) {
	runErrCases(t, []errCase{
		{"string", "gateway: {listen: 9080}\n" + minimal, "gateway.listen", []string{"expected a string", "got 9080"}},
		{"yaml boolean for a string", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: yes}}}]\n",
			"consumers[0].plugins.key-auth.key", []string{"expected a string, got a boolean (quote it"}},
		{"yaml boolean for a string that is not a secret", "gateway: {log_level: on}\n" + minimal,
			"gateway.log_level", []string{"expected a string, got true (quote it"}},
		{"bool", "gateway: {access_log: {enabled: \"yes\"}}\n" + minimal, "gateway.access_log.enabled", []string{"expected true or false", `got "yes"`}},
		{"integer", "gateway: {max_connections: 1.5}\n" + minimal, "gateway.max_connections", []string{"expected an integer", "got 1.5"}},
		{"integer from string", withUpstream(`{nodes: [{host: a, port: "80"}]}`), "services[0].upstream.nodes[0].port", []string{"expected an integer", `got "80"`}},
		{"seconds", "gateway: {client_read_timeout: 60s}\n" + minimal, "gateway.client_read_timeout", []string{"expected a number", `got "60s"`}},
		{"list", "services: {id: s}\n", "services", []string{"expected a list", "got an object"}},
		{"object", "gateway: [1]\n" + minimal, "gateway", []string{"expected an object", "got a list"}},
		{"map", svc("labels: [a]\nupstream_id: u\nroutes: [{paths: [/]}]") + "upstreams: [{id: u, nodes: [{host: a, port: 1}]}]\n",
			"services[0].labels", []string{"expected an object", "got a list"}},
		{"map value", svc("labels: {team: 7}\nupstream_id: u\nroutes: [{paths: [/]}]") + "upstreams: [{id: u, nodes: [{host: a, port: 1}]}]\n",
			"services[0].labels.team", []string{"expected a string", "got 7"}},
		{"pointer", svc("upstream: nodes\nroutes: [{paths: [/]}]"), "services[0].upstream", []string{"expected an object", `got "nodes"`}},
		{"list item", withUpstream("{nodes: [{host: a, port: 1}], checks: {active: {healthy: {http_statuses: [200, ok]}}}}"),
			"services[0].upstream.checks.active.healthy.http_statuses[1]", []string{"expected an integer", `got "ok"`}},
		{"top level", "[1, 2]\n", "", []string{"must hold an object", "got a list"}},
	})
}

func TestDecodeErrorsAreNotReportedTwice(t *testing.T) {
	// A port that is not a number is one error, not also "must be 1..65535".
	errs := parseErrs(t, withUpstream(`{nodes: [{host: a, port: "80"}]}`), "test.yaml")
	require.Len(t, errs, 1, errs.Error())
	// An upstream of the wrong type is not also reported missing.
	errs = parseErrs(t, svc("upstream: nodes\nroutes: [{paths: [/]}]"), "test.yaml")
	require.Len(t, errs, 1, errs.Error())
	// A top level of the wrong type is the only error.
	errs = parseErrs(t, "just a string\n", "test.yaml")
	require.Len(t, errs, 1, errs.Error())
}

func TestIntegersWrittenAsFloats(t *testing.T) {
	cfg, err := Parse([]byte(`{"gateway": {"max_connections": 1e3, "max_header_size": 2048.0}}`), "c.json")
	require.NoError(t, err)
	require.Equal(t, 1000, cfg.Gateway.MaxConnections)
	require.Equal(t, 2048, cfg.Gateway.MaxHeaderSize)
}

func TestIgnoredFieldsAcceptAnything(t *testing.T) {
	mustParse(t, svc(`
created_at: 1731900000
updated_at: "yesterday"
last_published: {by: ops}
published_gateway_groups_count: [1, 2]
version: null
status: 1
upstream: {nodes: [{host: a, port: 1}], created_at: x}
routes: [{paths: [/], created_at: 1, updated_at: 2}]
`))
}

func TestNullIsAbsent(t *testing.T) {
	cfg := mustParse(t, svc(`
upstream:
  nodes: [{host: a, port: 1}]
  retries: null
  checks:
    active:
      healthy: {http_statuses: null}
routes: [{paths: [/], timeout: null}]
`))
	up := cfg.Services[0].Upstream
	require.Equal(t, 0, *up.Retries)
	require.Equal(t, []int{200, 302}, up.Checks.Active.Healthy.HTTPStatuses)
	require.Nil(t, cfg.Services[0].Routes[0].Timeout)
}

func TestPluginWithoutConfigIsEnabled(t *testing.T) {
	// YAML `key-auth:` with nothing after it is null; naming the plugin
	// still enables it, with its defaults.
	cfg := mustParse(t, svc(`
plugins:
  key-auth:
upstream: {nodes: [{host: a, port: 1}]}
routes: [{paths: [/]}]
`))
	requirePluginJSON(t, `{"header":"apikey","query":"apikey","hide_credentials":false}`, cfg.Services[0].Plugins, "key-auth")
}

func TestListReplacesDefault(t *testing.T) {
	cfg := mustParse(t, withUpstream(`
  nodes: [{host: a, port: 1}]
  checks:
    active: {unhealthy: {http_statuses: [503]}}
    passive: {healthy: {http_statuses: []}}
`))
	c := cfg.Services[0].Upstream.Checks
	require.Equal(t, []int{503}, c.Active.Unhealthy.HTTPStatuses)
	require.Empty(t, c.Passive.Healthy.HTTPStatuses)
}

func TestPartialObjectKeepsDefaults(t *testing.T) {
	cfg := mustParse(t, "gateway: {real_ip: {header: X-Real-IP}, access_log: {path: /var/log/gw.log}}\n"+withUpstream(`
  nodes: [{host: a, port: 1}]
  timeout: {connect: 5}
  keepalive_pool: {size: 10}
  checks:
    active: {healthy: {interval: 3}, unhealthy: {http_failures: 2}}
`))
	g := cfg.Gateway
	require.Equal(t, "X-Real-IP", g.RealIP.Header)
	require.True(t, g.RealIP.Recursive)
	require.True(t, g.AccessLog.Enabled)
	require.Equal(t, "/var/log/gw.log", g.AccessLog.Path)
	up := cfg.Services[0].Upstream
	require.Equal(t, Timeout{Connect: 5, Send: 60, Read: 60}, up.Timeout)
	require.Equal(t, KeepalivePool{Size: 10, IdleTimeout: 60, Requests: 1000}, up.KeepalivePool)
	a := up.Checks.Active
	require.Equal(t, ActiveHealthy{Interval: 3, HTTPStatuses: []int{200, 302}, Successes: 2}, a.Healthy)
	require.Equal(t, 2, a.Unhealthy.HTTPFailures)
	require.Equal(t, 2, a.Unhealthy.TCPFailures)
	require.Equal(t, 3, a.Unhealthy.Timeouts)
}

func TestVarShapes(t *testing.T) {
	cfg := mustParse(t, withRoute(`{paths: ["/{id}"], vars: [
      [arg_debug, "==", "1"],
      ["!", http_x_user, "~~", "^bot"],
      [arg_n, ">", 18],
      [arg_v, "==", 1.50],
      [remote_addr, ipmatch, [10.0.0.0/8, "::1"]],
      [arg_id, in, [1, two, 3]],
      [path_id, "~=", "0"]]}`))
	vars := cfg.Services[0].Routes[0].Vars
	require.Equal(t, []Var{
		{Name: "arg_debug", Op: "==", Value: "1", Ref: VarRef{VarArg, "debug"}},
		{Negate: true, Name: "http_x_user", Op: "~~", Value: "^bot", Ref: VarRef{VarHTTP, "x-user"}},
		{Name: "arg_n", Op: ">", Value: "18", Ref: VarRef{VarArg, "n"}},
		{Name: "arg_v", Op: "==", Value: "1.5", Ref: VarRef{VarArg, "v"}}, // YAML turns 1.50 into the number 1.5
		{Name: "remote_addr", Op: "ipmatch", Values: []string{"10.0.0.0/8", "::1"}, Ref: VarRef{VarRemoteAddr, ""}},
		{Name: "arg_id", Op: "in", Values: []string{"1", "two", "3"}, Ref: VarRef{VarArg, "id"}},
		{Name: "path_id", Op: "~=", Value: "0", Ref: VarRef{VarPath, "id"}},
	}, vars)

	// JSON keeps a number as it was written.
	cfg, err := Parse([]byte(`{"services": [{"id": "s", "upstream": {"nodes": [{"host": "a", "port": 1}]},
		"routes": [{"paths": ["/"], "vars": [["arg_v", "==", 1.50]]}]}]}`), "c.json")
	require.NoError(t, err)
	require.Equal(t, "1.50", cfg.Services[0].Routes[0].Vars[0].Value)
}

func TestVarShapeErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"not a list", withRoute(`{paths: [/x], vars: [uri]}`), "services[0].routes[0].vars[0]", []string{"expected a list", `got "uri"`}},
		{"too short", withRoute(`{paths: [/x], vars: [[uri, "=="]]}`), "services[0].routes[0].vars[0]", []string{"[var, op, value]", "got a list"}},
		{"negation without op", withRoute(`{paths: [/x], vars: [["!", uri, "=="]]}`), "services[0].routes[0].vars[0]", []string{"[var, op, value]"}},
		{"name not a string", withRoute(`{paths: [/x], vars: [[1, "==", x]]}`), "services[0].routes[0].vars[0]", []string{"variable name must be a string, got 1"}},
		{"in with a scalar", withRoute(`{paths: [/x], vars: [[arg_a, in, x]]}`), "services[0].routes[0].vars[0]", []string{`"in" needs a list`, `got "x"`}},
		{"ipmatch with a scalar", withRoute(`{paths: [/x], vars: [[remote_addr, ipmatch, 10.0.0.1]]}`), "services[0].routes[0].vars[0]", []string{`"ipmatch" needs a list`, `got "10.0.0.1"`}},
		{"list for ==", withRoute(`{paths: [/x], vars: [[arg_a, "==", [1]]]}`), "services[0].routes[0].vars[0]", []string{"string or number", "got a list"}},
		{"object in list", withRoute(`{paths: [/x], vars: [[arg_a, in, [{a: 1}]]]}`), "services[0].routes[0].vars[0]", []string{"strings or numbers", "got an object"}},
		{"bool operand", withRoute(`{paths: [/x], vars: [[arg_a, "==", true]]}`), "services[0].routes[0].vars[0]", []string{"got true"}},
	})
}

func TestDuplicateKeys(t *testing.T) {
	errs := parseErrs(t, `{"gateway": {"listen": "a:1", "listen": "b:2"}}`, "c.json")
	requireFieldError(t, errs, "gateway.listen", "duplicate key")

	errs = parseErrs(t, "gateway:\n  listen: a:1\n  listen: b:2\n", "c.yaml")
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].Msg, `key "listen" already set`)
}

func TestSyntaxErrors(t *testing.T) {
	errs := parseErrs(t, "{\n  \"gateway\": {,}\n}", "c.json")
	require.Len(t, errs, 1)
	require.Contains(t, errs.Error(), "invalid JSON: line 2")

	errs = parseErrs(t, `{"gateway": {}} trailing`, "c.json")
	require.Contains(t, errs.Error(), "unexpected data after the top-level value")

	// yaml.v3 numbers its parser's lines from 0 and names the line of the
	// construct left open, or where it noticed when that is line 1: here
	// the end of the file.
	errs = parseErrs(t, "services: [a\n", "c.yaml")
	require.Len(t, errs, 1)
	require.Equal(t, 2, errs[0].Line)
	require.True(t, strings.HasPrefix(errs.Error(), "c.yaml:2: invalid YAML: "), errs.Error())
	errs = parseErrs(t, "a: 1\nb: 2\nc: 3\nd: [1, 2\ne: 5\n", "c.yaml")
	require.Equal(t, "c.yaml:4: invalid YAML: did not find expected ',' or ']'", errs.Error(), "the line the [ is on")
	errs = parseErrs(t, "gateway: {}\nservices: a: b\n", "c.yaml")
	require.Equal(t, "c.yaml:2: invalid YAML: mapping values are not allowed in this context", errs.Error())
}

func TestEmptyFileIsAnError(t *testing.T) {
	for name, doc := range map[string]string{"a.yaml": "", "b.yml": "# only a comment\n", "c.json": " \n", "d.json": "null"} {
		errs := parseErrs(t, doc, name)
		require.Equal(t, "the file is empty", errs.Error(), name)
	}
}

func TestFormatByExtension(t *testing.T) {
	// .json is read as JSON (so duplicate keys are found by the JSON
	// reader); every other name as YAML, which also reads JSON.
	doc := `{"services": [{"id": "s", "upstream": {"nodes": [{"host": "a", "port": 1}]}, "routes": [{"paths": ["/"]}]}]}`
	for _, name := range []string{"c.json", "c.JSON", "c.yaml", "c.yml", "config", ""} {
		cfg, err := Parse([]byte(doc), name)
		require.NoError(t, err, name)
		require.Equal(t, name, cfg.Source)
	}
	_, err := Parse([]byte("services: []\n"), "c.json")
	require.ErrorContains(t, err, "invalid JSON")
}

func TestPathOrder(t *testing.T) {
	// Errors come in the order of their places: list items by index and keys
	// in the schema's order, unknown keys last in their object.
	errs := Errors{
		{Path: "services[10].id", Msg: "x"},
		{Path: "zzz", Msg: "x"},
		{Path: "services[2].routes[0].paths[1]", Msg: "x"},
		{Path: "consumers[0].username", Msg: "x"},
		{Path: "services[2].upstream.nodes[0].port", Msg: "x"},
		{Path: "services[2]", Msg: "x"},
		{Path: "gateway.listen", Msg: "x"},
		{Path: "services[2].id", Msg: "x"},
		{Path: `services[2].labels["a.b"]`, Msg: "x"},
		{Path: "", Msg: "x"},
		{Path: "revision", Msg: "x"},
	}
	sortErrors(errs)
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	require.Equal(t, []string{
		"",
		"revision",
		"gateway.listen",
		"services[2]",
		"services[2].id",
		`services[2].labels["a.b"]`,
		"services[2].upstream.nodes[0].port",
		"services[2].routes[0].paths[1]",
		"services[10].id",
		"consumers[0].username",
		"zzz",
	}, got)
}
