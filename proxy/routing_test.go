package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestStripPrefixOnAndOff(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: stripped
    path_prefix: /users
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/*"]}, {paths: ["/"]}]
  - id: kept
    path_prefix: /orders
    strip_path_prefix: false
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/{id}"]}]
`)
	cases := []struct{ uri, want string }{
		{"/users/42?a=1&b=2", "b GET /42?a=1&b=2"},
		{"/users", "b GET /"},
		{"/users/", "b GET /"},
		{"/orders/7", "b GET /orders/7"},
		{"/users/a/../b", "b GET /b"},
		{"/users//x", "b GET /x"},
	}
	for _, c := range cases {
		resp := tg.get(t, c.uri)
		require.Equal(t, 200, resp.StatusCode(), c.uri)
		require.Equal(t, c.want, string(resp.Body()), c.uri)
	}
}

func TestPassHostModes(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: pass
    path_prefix: /pass
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/*"]}]
  - id: node
    path_prefix: /node
    upstream: {pass_host: node, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes: [{paths: ["/*"]}]
  - id: rewrite
    path_prefix: /rewrite
    upstream: {pass_host: rewrite, upstream_host: internal.example, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes: [{paths: ["/*"]}]
`)
	tg.do(t, "GET", "/pass/x", map[string]string{"Host": "api.example.com"}, "")
	require.Equal(t, "api.example.com", string(b.lastRequest().Header.Host()))
	tg.do(t, "GET", "/node/x", map[string]string{"Host": "api.example.com"}, "")
	require.Equal(t, "127.0.0.1:"+b.port(), string(b.lastRequest().Header.Host()))
	tg.do(t, "GET", "/rewrite/x", map[string]string{"Host": "api.example.com"}, "")
	require.Equal(t, "internal.example", string(b.lastRequest().Header.Host()))
}

func TestForwardingHeadersUntrustedPeer(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, trusted_addresses: [10.0.0.0/8]}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	tg.do(t, "GET", "/x", map[string]string{
		"Host": "api.example.com", "X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": "evil.example", "X-Real-IP": "9.9.9.9",
	}, "")
	h := &b.lastRequest().Header
	// The peer (127.0.0.1) is not trusted: its claims are not believed.
	require.Equal(t, "1.2.3.4, 127.0.0.1", string(h.Peek("X-Forwarded-For")))
	require.Equal(t, "127.0.0.1", string(h.Peek("X-Real-IP")))
	require.Equal(t, "http", string(h.Peek("X-Forwarded-Proto")))
	require.Equal(t, "api.example.com", string(h.Peek("X-Forwarded-Host")))
	_, port, _ := strings.Cut(tg.addr, ":")
	require.Equal(t, port, string(h.Peek("X-Forwarded-Port")))
}

func TestForwardingHeadersTrustedPeer(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, trusted_addresses: [127.0.0.1, 10.0.0.0/8]}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	// Recursive: the right-most untrusted address is the client.
	tg.do(t, "GET", "/x", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.1.2.3", "X-Forwarded-Proto": "https"}, "")
	h := &b.lastRequest().Header
	require.Equal(t, "203.0.113.9", string(h.Peek("X-Real-IP")))
	require.Equal(t, "203.0.113.9, 10.1.2.3, 127.0.0.1", string(h.Peek("X-Forwarded-For")))
	require.Equal(t, "https", string(h.Peek("X-Forwarded-Proto")), "a trusted proxy's proto is kept")
}

func TestRealIPNonRecursive(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, recursive: false, trusted_addresses: [127.0.0.1, 10.0.0.0/8]}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	tg.do(t, "GET", "/x", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.1.2.3"}, "")
	require.Equal(t, "10.1.2.3", string(b.lastRequest().Header.Peek("X-Real-IP")))
}

func TestHopByHopRemovedBothWays(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Connection", "X-Upstream-Secret")
		ctx.Response.Header.Set("X-Upstream-Secret", "s")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.Response.Header.Set("Proxy-Authenticate", "Basic")
		ctx.Response.Header.Set("Trailer", "X-T")
		ctx.Response.Header.Set("Upgrade", "h2c")
		ctx.Response.Header.Set("X-Kept", "yes")
		ctx.SetBodyString("ok")
	})
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	raw := tg.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Client-Secret\r\nX-Client-Secret: 1\r\n"+
		"Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9v\r\nTE: trailers\r\n"+
		"Trailer: X-T\r\nUpgrade: websocket\r\nX-Other: kept\r\n\r\n")
	h := &b.lastRequest().Header
	for _, k := range []string{"X-Client-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer", "Upgrade"} {
		require.Empty(t, h.Peek(k), "request header %s must not reach the node", k)
	}
	require.Equal(t, "kept", string(h.Peek("X-Other")))
	require.Equal(t, "200", strings.Fields(raw)[1])
	for _, k := range []string{"X-Upstream-Secret", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"} {
		require.NotContains(t, strings.ToLower(raw), strings.ToLower(k)+":", "response header %s must not reach the client", k)
	}
	require.Contains(t, raw, "X-Kept: yes")
}

func TestRequestID(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	resp := tg.do(t, "GET", "/x", map[string]string{"X-Request-Id": "abc-123"}, "")
	require.Equal(t, "abc-123", string(resp.Header.Peek("X-Request-Id")))
	require.Equal(t, "abc-123", string(b.lastRequest().Header.Peek("X-Request-Id")))

	r1 := string(tg.get(t, "/x").Header.Peek("X-Request-Id"))
	sent := string(b.lastRequest().Header.Peek("X-Request-Id"))
	r2 := string(tg.get(t, "/x").Header.Peek("X-Request-Id"))
	require.NotEmpty(t, r1)
	require.Equal(t, r1, sent, "the generated id goes upstream and back")
	require.NotEqual(t, r1, r2)

	// Error responses carry the id too, in the header and the body.
	resp = tg.do(t, "GET", "/nope", map[string]string{"X-Request-Id": `q"uote`}, "")
	resp = tg.do(t, "GET", "/", map[string]string{"Host": "x", "X-Request-Id": `q"uote`}, "")
	require.Equal(t, 200, resp.StatusCode())
}
