package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestRetryOnStatus(t *testing.T) {
	bad := startBackend(t, "bad", func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(503)
		ctx.SetBodyString("bad")
	})
	good := startBackend(t, "good", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      retry_on_statuses: [503]
      nodes: [{host: 127.0.0.1, port: `+bad.port()+`}, {host: 127.0.0.1, port: `+good.port()+`}]
    routes: [{paths: ["/*"]}]
  - id: plain
    hosts: [plain.example.com]
    upstream: `+upstreamYAML(bad, good)+`
    routes: [{paths: ["/*"]}]
`)
	// GET: every 503 from bad is retried on good.
	for range 10 {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		require.Contains(t, string(resp.Body()), "good GET /x")
	}
	require.EqualValues(t, 5, bad.hits.Load(), "round robin sends every other request to bad first")
	require.EqualValues(t, 10, good.hits.Load())

	// POST: a 503 is no proof the request was not processed; not retried.
	got503 := 0
	for range 10 {
		resp := tg.do(t, "POST", "/x", nil, "payload")
		if resp.StatusCode() == 503 {
			require.Equal(t, "bad", string(resp.Body()), "the node's own answer")
			got503++
		}
	}
	require.Equal(t, 5, got503)
	require.EqualValues(t, 15, good.hits.Load())

	// Without retry_on_statuses a status is never retried.
	bad.hits.Store(0)
	got503 = 0
	for range 4 {
		if tg.do(t, "GET", "/y", map[string]string{"Host": "plain.example.com"}, "").StatusCode() == 503 {
			got503++
		}
	}
	require.Equal(t, 2, got503)
	require.EqualValues(t, 2, bad.hits.Load())
}

// TestRetryOnStatusLastAnswerWins: when every node answers a listed
// status, the client gets the last node's answer, not a gateway error.
func TestRetryOnStatusLastAnswerWins(t *testing.T) {
	mk := func(name string) *backend {
		return startBackend(t, name, func(ctx *fasthttp.RequestCtx) {
			ctx.SetStatusCode(502)
			ctx.SetBodyString(name)
		})
	}
	a, b := mk("a"), mk("b")
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      retry_on_statuses: [502]
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}]
    routes: [{paths: ["/*"]}]
`)
	resp := tg.get(t, "/x")
	require.Equal(t, 502, resp.StatusCode())
	require.Contains(t, []string{"a", "b"}, string(resp.Body()))
	require.EqualValues(t, 1, a.hits.Load())
	require.EqualValues(t, 1, b.hits.Load())
}

func TestRetryOnStatusConfig(t *testing.T) {
	_, err := mustParseErr(`
services:
  - id: s
    upstream: {retry_on_statuses: [200], nodes: [{host: 127.0.0.1, port: 1}]}
    routes: [{paths: ["/*"]}]
`)
	require.ErrorContains(t, err, "services[0].upstream.retry_on_statuses[0]")
}
