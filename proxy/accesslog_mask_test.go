package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestMaskQueryArgs(t *testing.T) {
	names := [][]byte{[]byte("apikey"), []byte("token key")}
	for _, tc := range []struct{ in, want string }{
		{"/a", "/a"},
		{"/a?", "/a?"},
		{"/a?q=1", "/a?q=1"},
		{"/a?apikey=s3cret", "/a?apikey=***"},
		{"/a?q=1&apikey=s3cret&r=2", "/a?q=1&apikey=***&r=2"},
		{"/a?apikey=one&apikey=two", "/a?apikey=***&apikey=***"},
		{"/a?apikey=", "/a?apikey="},
		{"/a?apikey", "/a?apikey"},
		{"/a?apikeyx=1&xapikey=2", "/a?apikeyx=1&xapikey=2"},
		{"/a?api%6Bey=s3cret", "/a?api%6Bey=***"}, // key-auth decodes the name, so must we
		{"/a?api%6bey=s3cret", "/a?api%6bey=***"},
		{"/a?token+key=s3cret", "/a?token+key=***"},
		{"/a?token%20key=s3cret", "/a?token%20key=***"},
		{"/a?api%zzkey=s3cret", "/a?api%zzkey=s3cret"},
		{"/a?&&apikey=s3cret&&", "/a?&&apikey=***&&"},
		{"/a?apikey=s3cret#apikey=frag", "/a?apikey=***#apikey=frag"},
		{"/a?q=1#apikey=frag", "/a?q=1#apikey=frag"},
		{"/a?apikey=s=e=c", "/a?apikey=***"},
	} {
		got := maskQueryArgs(nil, []byte(tc.in), names)
		require.Equal(t, tc.want, string(got), tc.in)
	}
}

func TestMaskQueryArgsDoesNotAllocate(t *testing.T) {
	names := [][]byte{[]byte("apikey")}
	uri := []byte("/api/users/42?q=1&apikey=s3cret-value&r=2")
	plain := []byte("/api/users/42?q=1&r=2")
	buf := maskQueryArgs(nil, uri, names) // grows the buffer once
	allocs := testing.AllocsPerRun(1000, func() {
		buf = maskQueryArgs(buf[:0], uri, names)
		_ = maskQueryArgs(buf[:0], plain, names)
	})
	require.Zero(t, allocs)
	require.Equal(t, "/api/users/42?q=1&apikey=***&r=2", string(buf))
}

func readAccessLog(t *testing.T, path string) []map[string]any {
	t.Helper()
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
	return lines
}

// TestAccessLogMasksQueryCredentials: key-auth takes the key from the query
// (`?apikey=` by default, or the route's `query`); the access log's uri
// shows *** instead, whether the key was right, wrong, or the route was
// not found at all.
func TestAccessLogMasksQueryCredentials(t *testing.T) {
	b := startBackend(t, "b", nil)
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - id: s
    path_prefix: /api
    plugins: {key-auth: {}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: r, paths: ["/*"]}
      - {id: custom, paths: ["/custom/*"], plugins: {key-auth: {query: access_token, hide_credentials: true}}}
consumers: [{username: alice, plugins: {key-auth: {key: alice-secret-key}}}]
`)
	resp := tg.get(t, "/api/x?q=1&apikey=alice-secret-key")
	require.Equal(t, 200, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "apikey=alice-secret-key", "the upstream still gets the key (hide_credentials off)")
	resp = tg.get(t, "/api/x?apikey=wrong-guess-key")
	require.Equal(t, 401, resp.StatusCode())
	resp = tg.get(t, "/api/custom/y?access_token=alice-secret-key&z=2")
	require.Equal(t, 200, resp.StatusCode())
	resp = tg.get(t, "/nowhere?apikey=alice-secret-key")
	require.Equal(t, 404, resp.StatusCode())
	tg.g.Close() // flushes the buffered log

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "alice-secret-key")
	require.NotContains(t, string(raw), "wrong-guess-key")
	var uris []string
	for _, l := range readAccessLog(t, path) {
		uris = append(uris, l["uri"].(string))
	}
	require.Equal(t, []string{
		"/api/x?q=1&apikey=***",
		"/api/x?apikey=***",
		"/api/custom/y?access_token=***&z=2",
		"/nowhere?apikey=***",
	}, uris)
}

// TestAccessLogNoKeyAuthKeepsURI: without key-auth nothing is masked.
func TestAccessLogNoKeyAuthKeepsURI(t *testing.T) {
	b := startBackend(t, "b", nil)
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{id: r, paths: ["/*"]}]}
`)
	require.Equal(t, 200, tg.get(t, "/x?apikey=not-a-credential-here").StatusCode())
	tg.g.Close()
	lines := readAccessLog(t, path)
	require.Len(t, lines, 1)
	require.True(t, strings.HasSuffix(lines[0]["uri"].(string), "apikey=not-a-credential-here"))
}

// TestAccessLogMaskingAllocations runs requests with a query credential
// through the handler with the access log on: masking the uri must not
// add allocations to the request path.
func TestAccessLogMaskingAllocations(t *testing.T) {
	b := leanBackend(t)
	path := filepath.Join(t.TempDir(), "access.log")
	g := allocGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - id: s
    plugins: {key-auth: {}}
    upstream: {keepalive_pool: {requests: 100000000}, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes: [{paths: ["/*"]}]
consumers: [{username: alice, plugins: {key-auth: {key: alice-secret-key}}}]
`)
	perReq := proxiedMallocs(t, g, 10000, func(r *fasthttp.Request) {
		r.Header.SetMethod("GET")
		r.SetRequestURI("/users/42?q=1&apikey=alice-secret-key&r=2")
		r.Header.SetHost("api.example.com")
	})
	t.Logf("mallocs per request, access log on, uri masked: %.3f", perReq)
	require.Less(t, perReq, 0.01)
	g.Close() // flushes the access log; Close is idempotent
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "alice-secret-key")
	require.Contains(t, string(raw), `"uri":"/users/42?q=1&apikey=***&r=2"`)
}

// maskRig is a gateway with key-auth on /r/* and the access log (which masks
// key-auth's query argument) in a file, driven in process.
func maskRig(t *testing.T) (*Gateway, string) {
	b := leanBackend(t)
	path := filepath.Join(t.TempDir(), "access.log")
	cfg, err := mustParseErr(`
gateway: {access_log: {enabled: true, path: ` + path + `}}
consumers: [{username: u, plugins: {key-auth: {key: k}}}]
services:
  - {id: s, plugins: {key-auth: {}}, upstream: {nodes: [{host: 127.0.0.1, port: ` + b.port() + `}]}, routes: [{id: r, paths: ["/r/*"]}]}
`)
	require.NoError(t, err)
	g := New(Options{})
	require.NoError(t, g.Apply(cfg))
	return g, path
}

func maskCtx(uri string, keyHeader bool) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("127.0.0.1:9080")
	if keyHeader {
		ctx.Request.Header.Set("apikey", "k")
	}
	return ctx
}

// TestAccessLogMaskNeverWritesIntoARequest (found in review): a line with
// nothing to mask must not leave its request's URI buffer in the pooled
// masking buffer, or the next masked line is written into that buffer: into
// another connection's request.
func TestAccessLogMaskNeverWritesIntoARequest(t *testing.T) {
	g, _ := maskRig(t)
	defer g.Close()
	long := "/r/" + strings.Repeat("a", 80)
	for range 20 {
		ctx1 := maskCtx(long, true) // no query: nothing to mask
		g.Handler(ctx1)
		require.Equal(t, 200, ctx1.Response.StatusCode())
		ctx2 := maskCtx("/r/x?apikey=k", false) // masked
		g.Handler(ctx2)
		require.Equal(t, 200, ctx2.Response.StatusCode())
		require.Equal(t, long, string(ctx1.RequestURI()), "request 1's URI was overwritten by request 2's log line")
	}
}

// TestAccessLogMaskOnOneConnection: the same on one keep-alive connection
// (one ctx): a masked line built over the URI it reads came out garbled,
// arguments after the first overwritten.
func TestAccessLogMaskOnOneConnection(t *testing.T) {
	g, path := maskRig(t)
	ctx := maskCtx("/r/"+strings.Repeat("a", 80), true)
	g.Handler(ctx)
	require.Equal(t, 200, ctx.Response.StatusCode())
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.SetRequestURI("/r/x?apikey=k&apikey=SECRET2")
	ctx.Request.Header.SetHost("127.0.0.1:9080")
	g.Handler(ctx)
	require.Equal(t, 200, ctx.Response.StatusCode())
	g.Close()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "SECRET2")
	require.Contains(t, string(raw), `/r/x?apikey=***&apikey=***`)
}
