package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestSetRespHeadersEachAction(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Override", "backend")
		ctx.Response.Header.Add("X-Override", "backend-2")
		ctx.Response.Header.Set("X-Append", "a")
		ctx.Response.Header.Set("X-Delete", "gone")
		ctx.Response.Header.Set("X-Skip-Present", "backend")
		ctx.Response.Header.Set("X-Add", "backend")
		ctx.SetBodyString("ok")
	})
	tg := startGateway(t, `
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          key-auth: {}
          set_resp_headers:
            response_headers:
              - {name: X-Override, value: gw}
              - {name: X-Append, value: b, action: append}
              - {name: X-Append-Absent, value: only, action: append}
              - {name: X-Delete, action: delete}
              - {name: X-Skip-Present, value: gw, action: skip}
              - {name: X-Skip-Absent, value: gw, action: skip}
              - {name: X-Add, value: gw, action: add}
              - {name: X-Literal, value: "$arg_x #v#"}
`)
	resp := tg.do(t, "GET", "/x?x=1", map[string]string{"apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	h := &resp.Header
	require.Equal(t, []string{"gw"}, values(h, "X-Override"))
	require.Equal(t, []string{"a,b"}, values(h, "X-Append"))
	require.Equal(t, []string{"only"}, values(h, "X-Append-Absent"))
	require.Empty(t, values(h, "X-Delete"))
	require.Equal(t, []string{"backend"}, values(h, "X-Skip-Present"))
	require.Equal(t, []string{"gw"}, values(h, "X-Skip-Absent"))
	require.ElementsMatch(t, []string{"backend", "gw"}, values(h, "X-Add"))
	require.Equal(t, []string{"$arg_x #v#"}, values(h, "X-Literal"))

	// A gateway error gets them too.
	resp = tg.get(t, "/x")
	require.Equal(t, 401, resp.StatusCode())
	require.Equal(t, []string{"gw"}, values(&resp.Header, "X-Override"))
}

func values(h *fasthttp.ResponseHeader, name string) []string {
	var out []string
	for _, v := range h.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

func TestResponseRewriteStatusAndHeaders(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Set", "backend")
		ctx.Response.Header.Set("X-Remove", "backend")
		ctx.Response.Header.Set("X-Add", "backend")
		ctx.SetBodyString("ok")
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins:
          response-rewrite: {status_code: 202, headers: {set: {X-Set: "v-$arg_v", X-New: "n"}, add: {X-Add: gw}, remove: [X-Remove, Server]}}
`)
	resp := tg.get(t, "/x?v=7")
	require.Equal(t, 202, resp.StatusCode())
	require.Equal(t, "ok", string(resp.Body()))
	h := &resp.Header
	require.Equal(t, []string{"v-7"}, values(h, "X-Set"))
	require.Equal(t, []string{"n"}, values(h, "X-New"))
	require.ElementsMatch(t, []string{"backend", "gw"}, values(h, "X-Add"))
	require.Empty(t, values(h, "X-Remove"))
}

func TestResponseHeaderPluginsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{set_resp_headers: {response_headers: [{name: x-demo, value: sss}, {action: append}]}}`, `set_resp_headers.response_headers[1].name: invalid header name ""`},
		{`{set_resp_headers: {response_headers: [{name: X-A, value: v, action: replace}]}}`, `set_resp_headers.response_headers[0].action`},
		{`{set_resp_headers: {response_headers: [{name: X-A, value: v}, {name: x-a, value: w}]}}`, `set_resp_headers.response_headers[1].name: duplicate header`},
		{`{set_resp_headers: {response_headers: [{name: Content-Length, value: "1"}]}}`, `Content-Length cannot be changed`},
		{`{set_resp_headers: {response_headers: []}}`, `at least one header is required`},
		{`{response-rewrite: {body: "hi", filters: [{regex: a, replace: b}]}}`, `at most one of body and filters`},
		{`{response-rewrite: {body: "%%%", body_base64: true}}`, `response-rewrite.body: is not base64`},
		{`{response-rewrite: {status_code: 200, body_base64: true}}`, `response-rewrite.body_base64: needs body`},
		{`{response-rewrite: {filters: [{regex: "(a", replace: b}]}}`, `response-rewrite.filters[0].regex: invalid regex`},
		{`{response-rewrite: {filters: [{regex: "a", replace: b, options: "jox"}]}}`, `response-rewrite.filters[0].options`},
		{`{response-rewrite: {filters: [{regex: "a", replace: b, scope: all}]}}`, `response-rewrite.filters[0].scope`},
		{`{response-rewrite: {filters: [{replace: b}]}}`, `response-rewrite.filters[0].regex: is required`},
		{`{response-rewrite: {status_code: 200, vars: [["resp_status", "==", "1"]]}}`, `response-rewrite.vars[0]: unknown variable "resp_status"`},
		{`{response-rewrite: {status_code: 200, vars: [["status", ">", "x"]]}}`, `is not a number`},
		{`{response-rewrite: {status_code: 700}}`, `response-rewrite.status_code`},
		{`{response-rewrite: {}}`, `status_code, headers, body or filters is required`},
		{`{response-rewrite: {headers: {set: {X-A: "$nope"}}}}`, `unknown variable "$nope"`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: ` + tc.conf + `, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
}

// TestResponseRewriteBody: body replaces the node's body, buffered or
// streamed, and its encoding and validators; Content-Length follows.
func TestResponseRewriteBody(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/stream":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for range 100 {
					w.WriteString("chunk of a long streamed body\n")
					w.Flush()
				}
			})
		case "/404":
			ctx.SetStatusCode(404)
			ctx.SetBodyString("not here")
		default:
			ctx.Response.Header.Set("Content-Encoding", "gzip")
			ctx.Response.Header.Set("ETag", `"v1"`)
			ctx.Response.Header.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
			ctx.SetBody(gzipped(t, strings.Repeat("backend body ", 100)))
		}
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins:
          response-rewrite:
            body: "{\"replaced\":true}"
            headers: {set: {Content-Type: application/json}}
            vars: [["status", "==", 200]]
      - paths: ["/b64"]
        plugins:
          response-rewrite: {body: "aGVsbG8gd29ybGQ=", body_base64: true}
`)
	for _, path := range []string{"/x", "/stream", "/x"} {
		raw := tg.raw(t, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		head, body, _ := strings.Cut(raw, "\r\n\r\n")
		require.Equal(t, `{"replaced":true}`, body, path)
		require.Contains(t, head, "Content-Length: 17\r\n", path)
		require.Contains(t, head, "Content-Type: application/json\r\n", path)
		for _, gone := range []string{"Content-Encoding", "ETag", "Last-Modified", "Transfer-Encoding"} {
			require.NotContains(t, head, gone, path)
		}
	}
	// vars: a 404 is left alone.
	resp := tg.get(t, "/404")
	require.Equal(t, 404, resp.StatusCode())
	require.Equal(t, "not here", string(resp.Body()))

	resp = tg.get(t, "/b64")
	require.Equal(t, "hello world", string(resp.Body()))
	require.EqualValues(t, 5, b.hits.Load())
}

// TestResponseRewriteFilters: regex substitutions on buffered bodies, once
// or global, with captures and options; a compressed body is left alone;
// gzip (a later encoder) compresses the filtered body.
func TestResponseRewriteFilters(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html")
		if string(ctx.Path()) == "/gz" {
			ctx.Response.Header.Set("Content-Encoding", "gzip")
			ctx.SetBody(gzipped(t, "Hello hello HELLO"))
			return
		}
		ctx.SetBodyString("Hello hello HELLO, user 42 and user 7" + strings.Repeat(".", 100))
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins:
          response-rewrite:
            filters:
              - {regex: "hello", scope: global, replace: "bye", options: "ijo"}
              - {regex: "user ([0-9]+)", replace: "id=${1}!"}
            vars: [["sent_http_content_type", "~~", "^text/"], ["arg_skip", "!=", "1"]]
          gzip: {types: ["text/html"], min_length: 1}
`)
	want := "bye bye bye, id=42! and user 7" + strings.Repeat(".", 100)
	resp := tg.get(t, "/x")
	require.Equal(t, want, string(resp.Body()))
	require.Equal(t, len(want), resp.Header.ContentLength())

	resp = tg.do(t, "GET", "/x", map[string]string{"Accept-Encoding": "gzip"}, "")
	require.Equal(t, "gzip", string(resp.Header.Peek("Content-Encoding")))
	plain, err := resp.BodyGunzip()
	require.NoError(t, err)
	require.Equal(t, want, string(plain), "filtered, then compressed")

	resp = tg.get(t, "/x?skip=1")
	require.True(t, strings.HasPrefix(string(resp.Body()), "Hello hello HELLO, user 42"), "vars do not hold")

	resp = tg.get(t, "/gz")
	require.Equal(t, "gzip", string(resp.Header.Peek("Content-Encoding")))
	plain, err = resp.BodyGunzip()
	require.NoError(t, err)
	require.Equal(t, "Hello hello HELLO", string(plain), "a compressed body is not filtered")
}

func gzipped(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := io.WriteString(w, s)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}
