package proxy

import (
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
		{`{response-rewrite: {body: "hi"}}`, `response-rewrite.body: not supported yet`},
		{`{response-rewrite: {status_code: 200, vars: [["arg_x", "==", "1"]]}}`, `response-rewrite.vars: not supported yet`},
		{`{response-rewrite: {filters: []}}`, `response-rewrite.filters: not supported yet`},
		{`{response-rewrite: {status_code: 700}}`, `response-rewrite.status_code`},
		{`{response-rewrite: {}}`, `status_code or headers is required`},
		{`{response-rewrite: {headers: {set: {X-A: "$nope"}}}}`, `unknown variable "$nope"`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: ` + tc.conf + `, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
}
