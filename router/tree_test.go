package router

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestPathPrefixSegments(t *testing.T) {
	for _, prefix := range []string{"/users", "/users/"} {
		t.Run(prefix, func(t *testing.T) {
			r := compile(t,
				svc("users", nil, prefix, true,
					rt("root", "/"),
					rt("id", "/{id}"),
				),
			)
			tests := []struct{ path, want, upstream string }{
				{"/users", "root", "/"},
				{"/users/", "root", "/"},
				{"/users/42", "id", "/42"},
				{"/users/42/", "404", ""},
				{"/usersx", "404", ""},
				{"/usersx/42", "404", ""},
				{"/user", "404", ""},
				{"/", "404", ""},
			}
			for _, tt := range tests {
				m := do(r, "GET", "", tt.path, nil)
				require.Equal(t, tt.want, routeID(m), tt.path)
				require.Equal(t, tt.upstream, string(m.UpstreamPath), tt.path)
			}
		})
	}
}

func TestPathPrefixWildcardRoute(t *testing.T) {
	r := compile(t,
		svc("users", nil, "/users", true, rt("all", "/*")),
		svc("assets", nil, "/assets", true, rt("static", "/static/*")),
	)
	tests := []struct{ path, want, upstream string }{
		// "/*" matches the service-relative "/", so the prefix itself too.
		{"/users", "all", "/"},
		{"/users/", "all", "/"},
		{"/users/a/b", "all", "/a/b"},
		{"/usersx", "404", ""},
		// "/static/*" under "/assets" is "/assets/static/*".
		{"/assets/static/", "static", "/static/"},
		{"/assets/static/a/b.css", "static", "/static/a/b.css"},
		{"/assets/static", "404", ""},
		{"/assets", "404", ""},
		{"/static/a", "404", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m := do(r, "GET", "", tt.path, nil)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.upstream, string(m.UpstreamPath))
		})
	}
}

// The request path S is S + "/" only for the services whose prefix is S:
// an exact "/users/" of a service at "/" must not match "/users".
func TestPrefixRootIsNotATrailingSlashElsewhere(t *testing.T) {
	r := compile(t,
		svc("root", nil, "/", true, rt("slash", "/users/"), rt("star", "/users/*")),
		svc("other", nil, "/users", true, rt("x", "/x")),
	)
	require.Equal(t, "404", routeID(do(r, "GET", "", "/users", nil)))
	require.Equal(t, "slash", routeID(do(r, "GET", "", "/users/", nil)))
	require.Equal(t, "star", routeID(do(r, "GET", "", "/users/y", nil)))
	require.Equal(t, "x", routeID(do(r, "GET", "", "/users/x", nil)))
}

func TestUpstreamPath(t *testing.T) {
	r := compile(t,
		svc("strip", nil, "/s", true, rt("strip", "/", "/a/{id}", "/w/*")),
		svc("keep", nil, "/k/", false, rt("keep", "/", "/a/{id}", "/w/*")),
		svc("root", nil, "/", true, rt("root", "/r/*")),
		svc("empty", nil, "", true, rt("empty", "/e")),
	)
	tests := []struct{ path, want, upstream string }{
		{"/s", "strip", "/"},
		{"/s/", "strip", "/"},
		{"/s/a/1", "strip", "/a/1"},
		{"/s/w/x/y", "strip", "/w/x/y"},
		{"/s//a/./1", "strip", "/a/1"},
		{"/k", "keep", "/k"},
		{"/k/", "keep", "/k/"},
		{"/k/a/1", "keep", "/k/a/1"},
		{"/k/w/../w/x", "keep", "/k/w/x"},
		// With path_prefix "/" (or none), strip changes nothing.
		{"/r/x", "root", "/r/x"},
		{"/e", "empty", "/e"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m := do(r, "GET", "", tt.path, nil)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.upstream, string(m.UpstreamPath))
		})
	}
}

func TestPatterns(t *testing.T) {
	r := compile(t,
		svc("s", nil, "/", true,
			rt("exact", "/v1/orders"),
			rt("brace", "/v1/orders/{id}/items"),
			rt("colon", "/v2/orders/:id/items/:item"),
			rt("static", "/static/*"),
			rt("colon-literal", "/v1/orders:cancel"),
			rt("infix-star", "/a*b"),
			rt("file-prefix", "/files*"),
		),
	)
	type p = []Param
	tests := []struct {
		path, want string
		params     p
	}{
		{"/v1/orders", "exact", p{}},
		{"/v1/orders/", "404", nil},
		{"/v1/orders/42/items", "brace", p{{"id", []byte("42")}}},
		{"/v1/orders//items", "404", nil}, // collapses to /v1/orders/items
		{"/v1/orders/42/items/", "404", nil},
		{"/v1/orders/42", "404", nil},
		{"/v2/orders/7/items/x", "colon", p{{"id", []byte("7")}, {"item", []byte("x")}}},
		{"/v2/orders/7/items/", "404", nil},
		{"/static/", "static", p{}},
		{"/static/a/b.css", "static", p{}},
		{"/static", "404", nil},
		{"/v1/orders:cancel", "colon-literal", p{}},
		{"/a*b", "infix-star", p{}},
		{"/axb", "404", nil},
		{"/files", "file-prefix", p{}},
		{"/filesx/y", "file-prefix", p{}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m := do(r, "GET", "", tt.path, nil)
			require.Equal(t, tt.want, routeID(m))
			switch {
			case tt.params == nil:
			case len(tt.params) == 0:
				require.Empty(t, m.Params)
			default:
				require.Equal(t, tt.params, m.Params)
			}
		})
	}
}

func TestBareWildcardMatchesEverything(t *testing.T) {
	r := compile(t, svc("s", nil, "/", true, rt("all", "/*")))
	for _, path := range []string{"/", "/a", "/a/b/", "//x"} {
		require.Equal(t, "all", routeID(do(r, "GET", "", path, nil)), path)
	}
}

func TestParamValueIsEscapedSegment(t *testing.T) {
	r := compile(t, svc("s", nil, "/u", true, rt("id", "/{id}/x")))
	m := do(r, "GET", "", "/u/a%20b%41/x", nil)
	require.Equal(t, "id", routeID(m))
	require.Equal(t, []Param{{"id", []byte("a%20bA")}}, m.Params)
	require.Equal(t, "/u/{id}/x", m.Pattern)
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		services []config.Service
		path     string
		want     string
	}{
		{
			name: "exact beats parameter",
			services: []config.Service{svc("s", nil, "/", true,
				rt("param", "/a/{x}"), rt("exact", "/a/b"))},
			path: "/a/b", want: "exact",
		},
		{
			name: "exact beats prefix",
			services: []config.Service{svc("s", nil, "/", true,
				rt("prefix", "/a/*"), rt("exact", "/a/b"))},
			path: "/a/b", want: "exact",
		},
		{
			name: "parameter beats prefix",
			services: []config.Service{svc("s", nil, "/", true,
				rt("prefix", "/a/*"), rt("param", "/a/{x}"))},
			path: "/a/b", want: "param",
		},
		{
			// The prefix is found first by a static-first search: the
			// class must still win.
			name: "parameter beats a prefix with more static segments",
			services: []config.Service{svc("s", nil, "/", true,
				rt("prefix", "/a/*"), rt("param", "/{x}/b"))},
			path: "/a/b", want: "param",
		},
		{
			name: "exact beats a longer prefix elsewhere",
			services: []config.Service{svc("s", nil, "/", true,
				rt("prefix", "/a/b/*"), rt("exact", "/a/b/"))},
			path: "/a/b/", want: "exact",
		},
		{
			name: "static segment at the leftmost difference wins",
			services: []config.Service{svc("s", nil, "/", true,
				rt("right", "/{x}/b"), rt("left", "/a/{y}"))},
			path: "/a/b", want: "left",
		},
		{
			name: "leftmost difference beats more static segments",
			services: []config.Service{svc("s", nil, "/", true,
				rt("more", "/{x}/b/c"), rt("left", "/a/{y}/{z}"))},
			path: "/a/b/c", want: "left",
		},
		{
			name: "leftmost difference, deeper",
			services: []config.Service{svc("s", nil, "/", true,
				rt("p2", "/a/{x}/c/{w}"), rt("p1", "/a/b/{y}/{z}"))},
			path: "/a/b/c/d", want: "p1",
		},
		{
			name: "longer prefix wins",
			services: []config.Service{svc("s", nil, "/", true,
				rt("short", "/a/*"), rt("long", "/a/b/*"))},
			path: "/a/b/c", want: "long",
		},
		{
			name: "longer prefix wins over a static-first shorter one",
			services: []config.Service{svc("s", nil, "/", true,
				rt("short", "/a/*"), rt("long", "/{x}/b/*"))},
			path: "/a/b/c", want: "long",
		},
		{
			name: "prefixes of equal length: static at the leftmost difference",
			services: []config.Service{svc("s", nil, "/", true,
				rt("param", "/{x}/*"), rt("static", "/a/*"))},
			path: "/a/b", want: "static",
		},
		{
			name: "byte prefix: longer wins",
			services: []config.Service{svc("s", nil, "/", true,
				rt("short", "/fi*"), rt("long", "/files*"))},
			path: "/files/x", want: "long",
		},
		{
			name: "longer service path_prefix wins, exact",
			services: []config.Service{
				svc("root", nil, "/", true, rt("short", "/api/users")),
				svc("api", nil, "/api", true, rt("long", "/users")),
			},
			path: "/api/users", want: "long",
		},
		{
			name: "longer service path_prefix wins, parameter",
			services: []config.Service{
				svc("root", nil, "/", true, rt("short", "/api/{id}")),
				svc("api", nil, "/api", true, rt("long", "/{id}")),
			},
			path: "/api/1", want: "long",
		},
		{
			name: "longer service path_prefix wins, prefix",
			services: []config.Service{
				svc("root", nil, "/", true, rt("short", "/api/*")),
				svc("api", nil, "/api", true, rt("long", "/*")),
			},
			path: "/api/x", want: "long",
		},
		{
			name: "longer service path_prefix wins for the prefix itself",
			services: []config.Service{
				svc("root", nil, "/", true, rt("short", "/api")),
				svc("api", nil, "/api", true, rt("long", "/")),
			},
			path: "/api", want: "long",
		},
		{
			name: "longer service path_prefix wins over priority",
			services: []config.Service{
				svc("root", nil, "/", true, prio(rt("short", "/api/users"), 10)),
				svc("api", nil, "/api", true, rt("long", "/users")),
			},
			path: "/api/users", want: "long",
		},
		{
			name: "pattern class beats a longer service path_prefix",
			services: []config.Service{
				svc("api", nil, "/api", true, rt("prefix", "/*")),
				svc("root", nil, "/", true, rt("param", "/api/{x}")),
			},
			path: "/api/x", want: "param",
		},
		{
			name: "higher priority wins",
			services: []config.Service{svc("s", nil, "/", true,
				rt("low", "/a"), prio(rt("high", "/a"), 5), prio(rt("neg", "/a"), -1))},
			path: "/a", want: "high",
		},
		{
			name: "priority among parameter patterns of one shape",
			services: []config.Service{svc("s", nil, "/", true,
				rt("low", "/a/{x}"), prio(rt("high", "/a/{y}"), 1))},
			path: "/a/b", want: "high",
		},
		{
			name: "priority does not beat class",
			services: []config.Service{svc("s", nil, "/", true,
				prio(rt("param", "/a/{x}"), 100), rt("exact", "/a/b"))},
			path: "/a/b", want: "exact",
		},
		{
			name: "earlier route in the file wins",
			services: []config.Service{svc("s", nil, "/", true,
				rt("first", "/a"), rt("second", "/a"))},
			path: "/a", want: "first",
		},
		{
			name: "earlier service in the file wins",
			services: []config.Service{
				svc("s1", nil, "/", true, rt("first", "/a")),
				svc("s2", nil, "/", true, rt("second", "/a")),
			},
			path: "/a", want: "first",
		},
		{
			name: "file order among prefixes",
			services: []config.Service{svc("s", nil, "/", true,
				rt("first", "/a/*"), rt("second", "/a/*"))},
			path: "/a/x", want: "first",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := compile(t, tt.services...)
			require.Equal(t, tt.want, routeID(do(r, "GET", "", tt.path, nil)))
		})
	}
}

func TestPathOrderWithinRoute(t *testing.T) {
	r := compile(t, svc("s", nil, "/", true, rt("r", "/a/{first}", "/a/{second}")))
	m := do(r, "GET", "", "/a/x", nil)
	require.Equal(t, "r", routeID(m))
	require.Equal(t, []Param{{"first", []byte("x")}}, m.Params)
	require.Equal(t, "/a/{first}", m.Pattern)
}

// A candidate that fails is skipped and the next one in precedence order
// is tried: down through classes, shapes, priorities and tiers.
func TestSkipToNextCandidate(t *testing.T) {
	x := withVars
	r := compile(t,
		svc("s", nil, "/", true,
			x(rt("exact", "/a/b"), cv("arg_c", "==", "exact")),
			x(rt("left", "/a/{x}"), cv("arg_c", "==", "left")),
			x(prio(rt("right-high", "/{x}/b"), 1), cv("arg_c", "==", "right-high")),
			x(rt("right", "/{y}/b"), cv("arg_c", "==", "right")),
			methods(rt("long-prefix", "/a/b*"), "POST"),
			rt("short-prefix", "/a/*"),
		),
	)
	for _, want := range []string{"exact", "left", "right-high", "right"} {
		m := do(r, "GET", "", "/a/b", vs{v(VarArg, "c", want)})
		require.Equal(t, want, routeID(m))
	}
	require.Equal(t, "long-prefix", routeID(do(r, "POST", "", "/a/b", nil)))
	require.Equal(t, "short-prefix", routeID(do(r, "GET", "", "/a/b", nil)))
	m := do(r, "GET", "", "/a/b", vs{v(VarArg, "c", "right")})
	require.Equal(t, []Param{{"y", []byte("a")}}, m.Params)
}

func TestMethods(t *testing.T) {
	r := compile(t,
		svc("s", nil, "/", true,
			methods(rt("get", "/a"), "GET", "HEAD"),
			methods(rt("post", "/a"), "POST"),
			methods(rt("put", "/a/{x}"), "PUT", "PATCH"),
			methods(rt("del", "/a/*"), "DELETE", "OPTIONS"),
			rt("any", "/any"),
			methods(rt("all", "/all"), "CONNECT", "TRACE", "OPTIONS", "HEAD", "PATCH", "DELETE", "PUT", "POST", "GET"),
			withVars(methods(rt("vars", "/v"), "GET"), cv("arg_x", "==", "1")),
			methods(rt("v-post", "/v"), "POST"),
		),
	)
	tests := []struct{ method, path, want, allow string }{
		{"GET", "/a", "get", ""},
		{"HEAD", "/a", "get", ""},
		{"POST", "/a", "post", ""},
		{"PUT", "/a/1", "put", ""},
		// Fails on methods in exact, parameter and prefix candidates:
		// the union, in canonical order.
		{"TRACE", "/a/1", "405", "PUT, DELETE, PATCH, OPTIONS"},
		{"PUT", "/a", "405", "GET, POST, HEAD"},
		{"DELETE", "/a", "405", "GET, POST, HEAD"},
		{"DELETE", "/a/1", "del", ""},
		{"DELETE", "/a/1/2", "del", ""},
		{"GET", "/a/1/2", "405", "DELETE, OPTIONS"},
		{"GET", "/nothing", "404", ""},
		// No methods: everything, extension methods too.
		{"PROPFIND", "/any", "any", ""},
		{"get", "/a", "405", "GET, POST, HEAD"},
		{"PROPFIND", "/all", "405", "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE, CONNECT"},
		// One candidate failed on vars, the other on methods: 404.
		{"PUT", "/v", "404", ""},
		{"POST", "/v", "v-post", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			m := do(r, tt.method, "", tt.path, nil)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.allow, string(m.Allow))
			if tt.want != "405" {
				require.Nil(t, m.Allow)
			}
		})
	}
}

// A candidate whose methods fail but whose vars fail too cannot be served by
// any method: it makes the answer 404, not 405.
func TestMethodAndVarsFailIs404(t *testing.T) {
	r := compile(t, svc("s", nil, "/", true,
		withVars(methods(rt("a", "/a"), "GET"), cv("arg_x", "==", "1"))))
	require.Equal(t, "404", routeID(do(r, "POST", "", "/a", nil)))
	m := do(r, "POST", "", "/a", vs{v(VarArg, "x", "1")})
	require.Equal(t, "405", routeID(m))
	require.Equal(t, "GET", string(m.Allow))
}
