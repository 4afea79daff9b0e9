package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestAccessLogLines(t *testing.T) {
	b := startBackend(t, "b", nil)
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - {id: s, path_prefix: /api, plugins: {key-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: k}}}]
`)
	tg.do(t, "POST", "/api/x?q=1", map[string]string{"apikey": "k", "X-Request-Id": "rid-9"}, "hello")
	tg.get(t, "/nowhere")
	tg.g.Close() // flushes the buffered log

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		lines = append(lines, m)
	}
	require.Len(t, lines, 2)
	ok := lines[0]
	for _, k := range []string{"time", "request_id", "client_ip", "method", "host", "uri", "status", "bytes_in", "bytes_out",
		"duration_ms", "service", "route", "consumer", "upstream_addr", "upstream_status", "upstream_duration_ms", "attempts", "error_type"} {
		require.Contains(t, ok, k)
	}
	require.Equal(t, "rid-9", ok["request_id"])
	require.Equal(t, "127.0.0.1", ok["client_ip"])
	require.Equal(t, "POST", ok["method"])
	require.Equal(t, "/api/x?q=1", ok["uri"])
	require.EqualValues(t, 200, ok["status"])
	require.EqualValues(t, 5, ok["bytes_in"])
	require.Equal(t, "s", ok["service"])
	require.Equal(t, "r", ok["route"])
	require.Equal(t, "alice", ok["consumer"])
	require.Equal(t, b.addr, ok["upstream_addr"])
	require.EqualValues(t, 200, ok["upstream_status"])
	require.EqualValues(t, 1, ok["attempts"])
	require.Equal(t, "", ok["error_type"])

	miss := lines[1]
	require.EqualValues(t, 404, miss["status"])
	require.Equal(t, "NOT_FOUND", miss["error_type"])
	require.Equal(t, "", miss["service"])
	require.EqualValues(t, 0, miss["attempts"])
}

func TestAccessLogLeavesStreamedBodiesStreaming(t *testing.T) {
	const size = 8 << 20
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStream(&counter{left: size}, -1) // chunked, length unknown
	})
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	client := &fasthttp.Client{StreamResponseBody: true}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + tg.addr + "/x")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	require.NoError(t, client.Do(req, resp))
	require.Equal(t, -1, resp.Header.ContentLength(), "still chunked: the gateway did not buffer the body to log its size")
	n, err := io.Copy(io.Discard, resp.BodyStream())
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
}
