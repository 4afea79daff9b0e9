package router

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHostTiers(t *testing.T) {
	r := compile(t,
		// File order is the reverse of tier order, so that winning by tier
		// is not winning by file order.
		svc("any", nil, "/", true, rt("any", "/a", "/b", "/c", "/d")),
		svc("wild", []string{"*.example.com"}, "/", true, rt("wild", "/a", "/b")),
		svc("exact", []string{"api.example.com"}, "/", true, rt("exact", "/a")),
	)
	tests := []struct{ host, path, want string }{
		{"api.example.com", "/a", "exact"},
		// Nothing in the exact tier for /b: the wildcard tier answers.
		{"api.example.com", "/b", "wild"},
		// Nor in the wildcard tier for /c: services without hosts.
		{"api.example.com", "/c", "any"},
		{"other.example.com", "/a", "wild"},
		{"other.example.com", "/c", "any"},
		{"example.org", "/a", "any"},
		{"", "/a", "any"},
		{"api.example.com", "/e", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			require.Equal(t, tt.want, routeID(do(r, "GET", tt.host, tt.path, nil)))
		})
	}
}

func TestHostTierFallbackOnMethodsAndVars(t *testing.T) {
	r := compile(t,
		svc("exact", []string{"api.example.com"}, "/", true,
			methods(rt("exact-post", "/m"), "POST"),
			withVars(rt("exact-vars", "/v"), cv("arg_x", "==", "1")),
			methods(rt("exact-put", "/only"), "PUT"),
		),
		svc("any", nil, "/", true,
			methods(rt("any-get", "/m", "/v"), "GET"),
			methods(rt("any-delete", "/only"), "DELETE"),
		),
	)
	x1 := vs{v(VarArg, "x", "1")}
	tests := []struct {
		method, path string
		vars         VarSource
		want, allow  string
	}{
		{"POST", "/m", nil, "exact-post", ""},
		// Fails on methods in the exact tier, the no-host tier matches fully.
		{"GET", "/m", nil, "any-get", ""},
		// Fails on methods in both tiers: 405 with the union.
		{"PUT", "/m", nil, "405", "GET, POST"},
		{"GET", "/v", x1, "exact-vars", ""},
		// Fails on vars in the exact tier, the next tier matches.
		{"GET", "/v", nil, "any-get", ""},
		// Fails on vars in one tier and on methods in the other: 404.
		{"POST", "/v", nil, "404", ""},
		{"GET", "/only", nil, "405", "PUT, DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			m := do(r, tt.method, "api.example.com", tt.path, tt.vars)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.allow, string(m.Allow))
		})
	}
}

func TestWildcardHosts(t *testing.T) {
	r := compile(t,
		svc("short", []string{"*.com"}, "/", true, rt("short", "/a", "/b")),
		svc("long", []string{"*.example.com"}, "/", true, rt("long", "/a")),
		svc("longer", []string{"*.api.example.com"}, "/", true, rt("longer", "/a")),
	)
	tests := []struct{ host, path, want string }{
		// Any depth below the suffix.
		{"a.example.com", "/a", "long"},
		{"a.b.example.com", "/a", "long"},
		{"a.b.c.example.com", "/a", "long"},
		// The longest matching suffix first.
		{"x.api.example.com", "/a", "longer"},
		{"x.y.api.example.com", "/a", "longer"},
		// Not the suffix itself.
		{"example.com", "/a", "short"},
		{"api.example.com", "/a", "long"},
		// Falls back to a shorter suffix when the longer has no route.
		{"x.api.example.com", "/b", "short"},
		{"com", "/a", "404"},
		{".example.com", "/a", "short"},
		{"example.org", "/a", "404"},
		{"notexample.com", "/a", "short"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			require.Equal(t, tt.want, routeID(do(r, "GET", tt.host, tt.path, nil)))
		})
	}
}

func TestHostCaseAndPort(t *testing.T) {
	r := compile(t,
		svc("exact", []string{"API.Example.com"}, "/", true, rt("exact", "/")),
		svc("wild", []string{"*.Wild.COM"}, "/", true, rt("wild", "/")),
		svc("v6", []string{"[::1]"}, "/", true, rt("v6", "/")),
		svc("v6bare", []string{"fe80::2"}, "/", true, rt("v6bare", "/")),
	)
	tests := []struct{ host, want string }{
		{"api.example.com", "exact"},
		{"API.EXAMPLE.COM", "exact"},
		{"api.example.com:8080", "exact"},
		{"Api.Example.Com.:443", "exact"},
		{"x.wild.com", "wild"},
		{"X.WILD.COM:80", "wild"},
		{"[::1]:80", "v6"},
		{"[::1]", "v6"},
		{"[FE80::2]:80", "v6bare"},
		{"other", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			m := do(r, "GET", tt.host, "/", nil)
			require.Equal(t, tt.want, routeID(m))
		})
	}
}

func TestHostListedTwiceAndSharedHosts(t *testing.T) {
	r := compile(t,
		svc("a", []string{"x.com", "X.com", "y.com"}, "/a", true, rt("a", "/")),
		svc("b", []string{"y.com"}, "/b", true, rt("b", "/")),
	)
	require.Equal(t, "a", routeID(do(r, "GET", "x.com", "/a", nil)))
	require.Equal(t, "a", routeID(do(r, "GET", "y.com", "/a", nil)))
	require.Equal(t, "b", routeID(do(r, "GET", "y.com", "/b", nil)))
	require.Equal(t, "404", routeID(do(r, "GET", "x.com", "/b", nil)))
}
