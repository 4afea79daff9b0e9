package router

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/race"
)

func TestRoutesSeqAndOrder(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{
		svc("any", nil, "/", true, rt("any-prefix", "/*"), rt("any-exact", "/a")),
		svc("wild", []string{"*.example.com"}, "/w", true, rt("wild", "/{x}")),
		svc("wilder", []string{"*.a.example.com"}, "/", true, rt("wilder", "/*")),
		svc("exact", []string{"x.com", "*.x.com"}, "/e", true,
			rt("e-param", "/{id}"), prio(rt("e-param-high", "/{id}"), 3), rt("e-multi", "/*", "/long/exact")),
		svc("noid", nil, "/n", false, config.Route{Paths: []string{"/"}}),
	}}
	r, err := Compile(cfg)
	require.NoError(t, err)
	require.Equal(t, 8, r.NumRoutes())

	// Seq: dense, file order.
	var ids []string
	for seq := range r.NumRoutes() {
		rt := r.Route(seq)
		require.Equal(t, seq, rt.Seq)
		ids = append(ids, rt.ID)
	}
	require.Equal(t, []string{"any-prefix", "any-exact", "wild", "wilder", "e-param", "e-param-high", "e-multi", "noid.0"}, ids)

	e := r.Route(6)
	require.Equal(t, 3, e.ServiceSeq)
	require.Same(t, &cfg.Services[3], e.Service)
	require.Same(t, &cfg.Services[3].Routes[2], e.Config)
	require.Equal(t, "/e/*", e.Pattern)
	require.Equal(t, []string{"/e/*", "/e/long/exact"}, e.Patterns)
	require.Equal(t, []string{"x.com", "*.x.com"}, e.Hosts)
	require.Equal(t, "/n/", r.Route(7).Pattern)

	ids = ids[:0]
	for _, rt := range r.Routes() {
		ids = append(ids, rt.ID)
	}
	require.Equal(t, []string{
		// exact host tier: exact, then parameter (priority first), ...
		"e-multi", "e-param-high", "e-param",
		// wildcard tier, longer suffix first
		"wilder", "wild",
		// no host: exact, longest first, then prefix
		"noid.0", "any-exact", "any-prefix",
	}, ids)
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		svc  config.Service
		err  string
	}{
		{"relative path", svc("s", nil, "/", true, rt("r", "x")), `services[0].routes[0].paths[0]: "x" is not a valid path`},
		{"climbing path", svc("s", nil, "/a", true, rt("r", "/../b")), `services[0].routes[0].paths[0]: "/../b" is not a valid path`},
		{"bad escape", svc("s", nil, "/", true, rt("r", "/%zz")), `paths[0]: "/%zz" is not a valid path`},
		{"empty param", svc("s", nil, "/", true, rt("r", "/ok", "/{}")), `services[0].routes[0].paths[1]: path "/{}": invalid parameter name ""`},
		{"empty colon param", svc("s", nil, "/", true, rt("r", "/a/:")), `invalid parameter name ""`},
		{"duplicate param", svc("s", nil, "/", true, rt("r", "/{a}/:a")), `parameter "a" twice`},
		{"method", svc("s", nil, "/", true, methods(rt("r", "/"), "GET", "FETCH")), `services[0].routes[0].methods[1]: unknown method "FETCH"`},
		{"prefix", svc("s", nil, "users", true, rt("r", "/")), `services[0].path_prefix: "users" is not a valid path prefix`},
		{"host star", svc("s", []string{"a.*.com"}, "/", true, rt("r", "/")), `services[0].hosts[0]: invalid host "a.*.com"`},
		{"host bare star", svc("s", []string{"ok.com", "*"}, "/", true, rt("r", "/")), `services[0].hosts[1]: invalid host "*"`},
		{"host empty", svc("s", []string{""}, "/", true, rt("r", "/")), `services[0].hosts[0]: invalid host ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(&config.Config{Services: []config.Service{tt.svc}})
			require.ErrorContains(t, err, tt.err)
		})
	}
}

// TestCompileErrorsAreFieldErrors: Compile reports every problem, not the
// first, as config.Errors with key paths, like the loader.
func TestCompileErrorsAreFieldErrors(t *testing.T) {
	_, err := Compile(&config.Config{Services: []config.Service{
		svc("ok", nil, "/", true, rt("fine", "/fine")),
		svc("s", []string{"ok.com", "a.*.com"}, "users", true,
			methods(rt("r0", "/ok", "x"), "FETCH"),
			withVars(rt("r1", "/{a}/:a"), cv("nope", "==", "1"))),
	}})
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Equal(t, config.Errors{
		{Path: "services[1].path_prefix", Msg: `"users" is not a valid path prefix`},
		{Path: "services[1].hosts[1]", Msg: `invalid host "a.*.com": '*' only as a whole leading label`},
		{Path: "services[1].routes[0].methods[0]", Msg: `unknown method "FETCH"`},
		{Path: "services[1].routes[0].paths[1]", Msg: `"x" is not a valid path (must start with '/', stay below it, and escape '%' properly)`},
		{Path: "services[1].routes[1].vars[0]", Msg: `unknown variable "nope"`},
		{Path: "services[1].routes[1].paths[0]", Msg: `path "/{a}/:a": parameter "a" twice`},
	}, errs)
}

func TestEmptyConfig(t *testing.T) {
	r, err := Compile(&config.Config{})
	require.NoError(t, err)
	require.Equal(t, 0, r.NumRoutes())
	require.Empty(t, r.Routes())
	m := do(r, "GET", "x", "/", nil)
	require.Equal(t, 404, m.Status)
	m = do(r, "GET", "x", "/..", nil)
	require.Equal(t, 400, m.Status)
}

// A Match reused across requests carries nothing over.
func TestMatchReuse(t *testing.T) {
	r := compile(t,
		svc("s", []string{"a.com"}, "/s", true,
			rt("p", "/{a}/{b}"), methods(rt("g", "/g"), "GET")),
		svc("t", nil, "/", false, rt("x", "/x")),
	)
	m := &Match{}
	r.Match(req("GET", "A.com", "/s/1/2", nil), m)
	require.Equal(t, "p", routeID(m))
	require.Len(t, m.Params, 2)
	require.Equal(t, "/1/2", string(m.UpstreamPath))

	r.Match(req("POST", "a.com", "/s/g", nil), m)
	require.Equal(t, "405", routeID(m))
	require.Nil(t, m.Route)
	require.Empty(t, m.Params)
	require.Nil(t, m.UpstreamPath)
	require.Equal(t, "GET", string(m.Allow))

	r.Match(req("GET", "b.com", "/x", nil), m)
	require.Equal(t, "x", routeID(m))
	require.Nil(t, m.Allow)
	require.Empty(t, m.Params)
	require.Equal(t, "/x", string(m.UpstreamPath))
	require.Equal(t, "b.com", string(m.Host))

	r.Match(req("GET", "b.com", "/a/../..", nil), m)
	require.Equal(t, "400", routeID(m))
	require.Nil(t, m.Route)
	require.Nil(t, m.Path)

	// A longer path than the buffer held, then a shorter one.
	long := "/s/" + string(make([]byte, 300)) + "/b"
	r.Match(req("GET", "a.com", long, nil), m)
	require.Equal(t, "p", routeID(m))
	r.Match(req("GET", "a.com", "/s", nil), m)
	require.Equal(t, "404", routeID(m))
}

// allocCases is a set of request shapes over one router: exact, parameter,
// prefix, each host tier, vars with regex, ipmatch, numbers and has, 400,
// 404 and 405.
func allocCases(t testing.TB) (*Router, []*Request) {
	r := compile(t,
		svc("exact", []string{"api.example.com"}, "/users", true,
			methods(rt("get-user", "/{id}"), "GET"),
			rt("root", "/"),
			withVars(rt("regex", "/{id}/orders/{order}"),
				cv("path_order", "~~", "^[0-9]+$"), cv("http_x_user", "~*", "^ALICE$"), not(cv("arg_debug", "==", "1"))),
		),
		svc("wild", []string{"*.example.com"}, "/", false,
			withVars(rt("ip", "/internal/*"), cv("remote_addr", "ipmatch", "", "10.0.0.0/8", "2001:db8::/32")),
			withVars(rt("num", "/n/:n"), cv("path_n", ">=", "10"), cv("http_accept", "has", "json")),
			rt("star", "/static/*"),
		),
		svc("any", nil, "/", true,
			rt("exact", "/health"),
			methods(rt("post", "/submit"), "POST", "PUT"),
			withVars(rt("in", "/in"), cv("consumer_name", "in", "", "a", "b", "c", "d", "e", "f", "g", "h", "bob")),
		),
	)
	vars := vs{
		v(VarHTTP, "x-user", "alice"),
		v(VarRemoteAddr, "", "10.2.3.4"),
		v(VarHTTP, "accept", "text/html, application/json,json"),
		v(VarConsumerName, "", "bob"),
	}
	v6 := vs{v(VarRemoteAddr, "", "2001:db8::1")}
	reqs := []*Request{
		req("GET", "api.example.com", "/users/42", vars),
		req("GET", "API.example.com:8080", "/users", vars),
		req("GET", "api.example.com", "/users/42/orders/7", vars),
		req("GET", "api.example.com", "/users/42/orders/x", vars),
		req("GET", "a.example.com", "/internal/x/y", vars),
		req("GET", "a.example.com", "/internal/x/y", v6),
		req("GET", "a.b.example.com", "/n/12", vars),
		req("GET", "a.b.example.com", "/n/abc", vars),
		req("GET", "a.example.com", "/static/%61/./b/../c.css", vars),
		req("GET", "other.org", "/health", nil),
		req("GET", "other.org", "/in", vars),
		req("GET", "other.org", "/submit", nil),  // 405
		req("GET", "other.org", "/missing", nil), // 404
		req("GET", "other.org", "/../x", nil),    // 400
	}
	return r, reqs
}

func TestMatchAllocs(t *testing.T) {
	r, reqs := allocCases(t)
	m := &Match{}
	want := []string{"get-user", "root", "regex", "404", "ip", "ip", "num", "404", "star", "exact", "in", "405", "404", "400"}
	for i, rq := range reqs {
		r.Match(rq, m)
		require.Equal(t, want[i], routeID(m), "request %d %s", i, rq.Path)
	}
	if race.Enabled {
		t.Skip("allocation counts are not exact under the race detector")
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, rq := range reqs {
			r.Match(rq, m)
		}
	})
	require.Zero(t, allocs)
}

// A config that is large but quick to compile and match keeps the default
// run fast; the 100,000-route numbers are in the benchmarks.
func TestManyRoutes(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	cfg := genConfig(n)
	r, err := Compile(cfg)
	require.NoError(t, err)
	require.Equal(t, n, r.NumRoutes())
	for _, c := range genRequests(cfg) {
		m := do(r, c.method, c.host, c.path, nil)
		require.Equal(t, c.want, routeID(m), fmt.Sprintf("%s%s", c.host, c.path))
	}
}
