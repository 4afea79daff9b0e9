package router

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// The same rules through a config file, with config's defaults
// (strip_path_prefix: true, route IDs) and its decoding of vars.
func TestCompileLoadedConfig(t *testing.T) {
	const file = `
services:
  - id: orders
    hosts: [shop.example.com, "*.shop.example.com"]
    path_prefix: /orders
    upstream: {nodes: [{host: 10.0.0.1, port: 80}]}
    routes:
      - {id: list, methods: [GET], paths: ["/"]}
      - id: get
        methods: [GET, HEAD]
        paths: ["/{order_id}"]
        vars: [["http_x_api_version", "~~", "^v[12]$"]]
      - {paths: ["/{order_id}/items/*"]}
  - id: fallback
    upstream: {nodes: [{host: 10.0.0.2, port: 80}]}
    strip_path_prefix: false
    path_prefix: /orders/
    routes:
      - paths: ["/*"]
        vars: [["!", "remote_addr", "ipmatch", ["10.0.0.0/8"]]]
`
	cfg, err := config.Parse([]byte(file), "gateway.yaml")
	require.NoError(t, err)
	r, err := Compile(cfg)
	require.NoError(t, err)
	require.Equal(t, 4, r.NumRoutes())

	v2 := vs{v(VarHTTP, "x-api-version", "v2"), v(VarRemoteAddr, "", "192.0.2.1")}
	tests := []struct{ method, host, path, want, upstream string }{
		{"GET", "shop.example.com", "/orders", "list", "/"},
		{"GET", "a.shop.example.com:8080", "/orders/", "list", "/"},
		{"GET", "shop.example.com", "/orders/42", "get", "/42"},
		{"HEAD", "SHOP.example.com", "/orders/42", "get", "/42"},
		{"GET", "shop.example.com", "/orders/42/items/a/b", "orders.2", "/42/items/a/b"},
		// "get" fails on methods, the no-host service takes it.
		{"POST", "shop.example.com", "/orders/42", "fallback.0", "/orders/42"},
		{"GET", "other.example.com", "/orders", "fallback.0", "/orders"},
		{"GET", "other.example.com", "/ordersx", "404", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.host+tt.path, func(t *testing.T) {
			m := do(r, tt.method, tt.host, tt.path, v2)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.upstream, string(m.UpstreamPath))
		})
	}
	// From 10/8 the fallback's negated ipmatch fails, and "list" fails on
	// methods: one candidate failed on vars, so 404, not 405.
	m := do(r, "POST", "shop.example.com", "/orders", vs{v(VarRemoteAddr, "", "10.1.1.1")})
	require.Equal(t, "404", routeID(m))
	m = do(r, "GET", "shop.example.com", "/orders", vs{v(VarRemoteAddr, "", "10.1.1.1")})
	require.Equal(t, "list", routeID(m))
}
