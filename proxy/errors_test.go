package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testnet"
)

type errBody struct {
	Code      string `json:"error_code"`
	Msg       string `json:"error_msg"`
	RequestID string `json:"request_id"`
}

func requireGatewayError(t *testing.T, resp *fasthttp.Response, status int, code string) errBody {
	t.Helper()
	require.Equal(t, status, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "application/json", string(resp.Header.ContentType()))
	var e errBody
	require.NoError(t, json.Unmarshal(resp.Body(), &e), string(resp.Body()))
	require.Equal(t, code, e.Code)
	require.NotEmpty(t, e.Msg)
	require.Equal(t, string(resp.Header.Peek("X-Request-Id")), e.RequestID)
	return e
}

// rawResponse parses the text returned by testGateway.raw.
func rawResponse(t *testing.T, raw string) *fasthttp.Response {
	t.Helper()
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufioReader(raw)))
	return resp
}

func TestGatewayErrors(t *testing.T) {
	b := startBackend(t, "b", nil)
	slow := startBackend(t, "slow", func(ctx *fasthttp.RequestCtx) { time.Sleep(2 * time.Second) })
	// A port nothing listens on: connection refused.
	deadPort := testnet.DeadPort(t)

	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_request_body_size: 1000, max_header_size: 4096}
services:
  - id: s
    path_prefix: /ok
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/get"], methods: [GET, HEAD]}]
  - id: dead
    path_prefix: /dead
    upstream: {nodes: [{host: 127.0.0.1, port: `+deadPort+`}]}
    routes: [{paths: ["/*"]}]
  - id: slow
    path_prefix: /slow
    upstream: {timeout: {connect: 1, send: 1, read: 0.3}, nodes: [{host: 127.0.0.1, port: `+slow.port()+`}]}
    routes: [{paths: ["/*"]}]
`)
	requireGatewayError(t, tg.get(t, "/missing"), 404, "APIG.0101")

	resp := tg.do(t, "POST", "/ok/get", nil, "x")
	requireGatewayError(t, resp, 405, "APIG.0102")
	require.Equal(t, "GET, HEAD", string(resp.Header.Peek("Allow")))

	requireGatewayError(t, tg.do(t, "POST", "/ok/get", nil, strings.Repeat("x", 1001)), 413, "APIG.0201")

	raw := tg.raw(t, "GET /ok/get HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("y", 8000)+"\r\n\r\n")
	requireGatewayError(t, rawResponse(t, raw), 431, "APIG.0201")

	raw = tg.raw(t, "POST /ok/get HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	requireGatewayError(t, rawResponse(t, raw), 400, "APIG.0201")
	raw = tg.raw(t, "POST /ok/get HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
	requireGatewayError(t, rawResponse(t, raw), 400, "APIG.0201")
	raw = tg.raw(t, "GET /ok/../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n")
	requireGatewayError(t, rawResponse(t, raw), 400, "APIG.0201")

	requireGatewayError(t, tg.get(t, "/dead/x"), 502, "APIG.0202")
	requireGatewayError(t, tg.get(t, "/slow/x"), 504, "APIG.0203")
	require.Zero(t, b.hits.Load(), "no error case may reach the backend")
}

func TestUpstreamStatusPassesThrough(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(503)
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("backend says no")
	})
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	resp := tg.get(t, "/x")
	require.Equal(t, 503, resp.StatusCode())
	require.Equal(t, "backend says no", string(resp.Body()))
	require.Equal(t, int64(1), b.hits.Load(), "a status from a node is not retried")
}

func TestGatewayResponsesOverride(t *testing.T) {
	tg := startGateway(t, `
gateway_responses:
  NOT_FOUND:
    status: 410
    body: '{"msg":"gone","code":"$context.error.code","id":"$context.requestId"}'
    headers: {X-Why: nothing-here}
services: []
`)
	resp := tg.do(t, "GET", "/x", map[string]string{"X-Request-Id": "rid-1"}, "")
	require.Equal(t, 410, resp.StatusCode())
	require.Equal(t, "nothing-here", string(resp.Header.Peek("X-Why")))
	require.JSONEq(t, `{"msg":"gone","code":"APIG.0101","id":"rid-1"}`, string(resp.Body()))
}
