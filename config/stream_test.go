package config

import "testing"

// TCP stream routes are not implemented: their keys fail loading with a
// clear message rather than "unknown key" (or being accepted and ignored).
func TestStreamRouteKeysNotSupported(t *testing.T) {
	runErrCases(t, []errCase{
		{"stream_routes", "stream_routes: [{id: r1, server_port: 3306}]\n" + withRoute("{paths: [/]}"),
			"stream_routes", []string{"is not supported yet"}},
		{"stream_routes empty", "stream_routes: []\n" + withRoute("{paths: [/]}"),
			"stream_routes", []string{"is not supported yet"}},
		{"gateway.stream_listen", "gateway: {stream_listen: [':3306']}\n" + withRoute("{paths: [/]}"),
			"gateway.stream_listen", []string{"is not supported yet"}},
	})
}
