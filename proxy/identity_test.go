package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// TestConsumerCustomIDUpstream: a consumer's labels.custom_id goes
// upstream as X-Consumer-Custom-Id; a client's copy never does.
func TestConsumerCustomIDUpstream(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: auth, paths: ["/auth"], plugins: {key-auth: {}, basic-auth: {}}}
      - {id: open, paths: ["/open"]}
consumers:
  - {username: alice, labels: {custom_id: cust-42}, plugins: {key-auth: {key: ka}}, credentials: [{name: web, plugins: {basic-auth: {username: alice, password: pw}}}]}
  - {username: bob, plugins: {key-auth: {key: kb}}}
`)
	spoof := func(h map[string]string) map[string]string {
		h["X-Consumer-Custom-Id"] = "spoofed"
		return h
	}
	p := &authProbe{t: t, tg: tg, b: b}
	up := p.pass("/auth", spoof(map[string]string{"apikey": "ka"}), "alice", "alice")
	require.Equal(t, []string{"cust-42"}, peekAll(up, "X-Consumer-Custom-Id"))
	up = p.pass("/auth", spoof(map[string]string{"Authorization": basic("alice", "pw")}), "alice", "web")
	require.Equal(t, []string{"cust-42"}, peekAll(up, "X-Consumer-Custom-Id"), "every credential of the consumer")
	up = p.pass("/auth", spoof(map[string]string{"apikey": "kb"}), "bob", "bob")
	require.Empty(t, peekAll(up, "X-Consumer-Custom-Id"), "a consumer without custom_id: the client's copy is removed")

	r := tg.do(t, "GET", "/open", map[string]string{"X-Consumer-Custom-Id": "spoofed", "X_Consumer_Custom_Id": "spoofed"}, "")
	require.Equal(t, 200, r.StatusCode())
	require.Empty(t, peekAll(b.lastRequest(), "X-Consumer-Custom-Id"))
	require.Empty(t, peekAll(b.lastRequest(), "X_Consumer_Custom_Id"))
}

// peekAll returns every value of header name in req.
func peekAll(req *fasthttp.Request, name string) []string {
	var out []string
	for _, v := range req.Header.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}
