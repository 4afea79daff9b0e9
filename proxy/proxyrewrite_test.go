package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProxyRewriteRegexHeadersHostMethod(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    path_prefix: /api
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: users
        paths: ["/users/{id}/*"]
        plugins:
          proxy-rewrite:
            regex_uri: ["^/nomatch/(.*)$", "/never/$1", "^/users/([0-9]+)/(.*)$", "/v2/$2/of/$1"]
            host: rewritten.example:8080
            method: POST
            headers:
              set: {X-User: "{id}", X-Cap: "$2-$1", X-Replace: "new"}
              add: {X-Arg: "q=$arg_q", X-Replace: "added-first"}
              remove: [X-Drop]
      - id: tpl
        paths: ["/tpl/{id}"]
        plugins:
          proxy-rewrite: {uri: "/items/{id}?from=$http_x_src&name=$arg_name"}
      - id: raw
        paths: ["/raw/*"]
        plugins:
          proxy-rewrite: {use_real_request_uri_unsafe: true}
      - id: varonly
        paths: ["/var"]
        plugins:
          proxy-rewrite: {uri: "$arg_to"}
`)
	// The regex sees the path after strip_path_prefix; the first matching
	// pair wins; the query follows.
	resp := tg.do(t, "GET", "/api/users/42/orders/7?q=x%0D%0AInjected:%201", map[string]string{"X-Drop": "secret", "X-Replace": "old"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "b POST /v2/orders/7/of/42?q=x%0D%0AInjected:%201", string(resp.Body()))
	last := b.lastRequest()
	require.Equal(t, "rewritten.example:8080", string(last.Header.Host()))
	require.Equal(t, "42", string(last.Header.Peek("X-User")))
	require.Equal(t, "orders/7-42", string(last.Header.Peek("X-Cap")))
	// The decoded CR LF of the argument cannot split the header.
	require.Equal(t, "q=xInjected: 1", string(last.Header.Peek("X-Arg")))
	require.Empty(t, last.Header.Peek("Injected"))
	require.Empty(t, last.Header.Peek("X-Drop"))
	// add, remove, set: set wins over the client's and the added value.
	require.Equal(t, "new", string(last.Header.Peek("X-Replace")))
	require.Len(t, last.Header.PeekAll("X-Replace"), 1)

	// A template uri: path parameter and variables, escaped; the client's
	// query is appended after '&'.
	resp = tg.do(t, "GET", "/api/tpl/9?name=a/b%20c&z=1", map[string]string{"X-Src": "web"}, "")
	require.Equal(t, "b GET /items/9?from=web&name=a%2Fb%20c&name=a/b%20c&z=1", string(resp.Body()))

	// The raw request URI, prefix included.
	resp = tg.rawResponseTo(t, "GET /api/raw/%7Ex?y=1 HTTP/1.1\r\nHost: a\r\n\r\n")
	require.Equal(t, "b GET /api/raw/%7Ex?y=1", string(resp.Body()))

	// A variable renders as one segment and cannot climb the path.
	resp = tg.get(t, "/api/var?to=..")
	require.Equal(t, "b GET /%2E%2E?to=..", string(resp.Body()))
	resp = tg.get(t, "/api/var")
	require.Equal(t, "b GET /", string(resp.Body()))
}

func TestProxyRewriteConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{regex_uri: ["^/(.*)$"]}`, `proxy-rewrite.regex_uri: pattern and replacement pairs, got 1 elements`},
		{`{regex_uri: ["(", "/x"]}`, `proxy-rewrite.regex_uri[0]: error parsing regexp`},
		{`{regex_uri: ["^/(.*)$", "/$2"]}`, `proxy-rewrite.regex_uri[1]: $2 is not a capture of regex_uri (it has 1)`},
		{`{uri: "/a/$nope"}`, `proxy-rewrite.uri: unknown variable "$nope"`},
		{`{uri: "/a/$1"}`, `proxy-rewrite.uri: $1 is not a capture`},
		{`{uri: "/a b"}`, `proxy-rewrite.uri: must not contain spaces`},
		{`{method: HEAD}`, `proxy-rewrite.method`},
		{`{host: "a b"}`, `proxy-rewrite.host: not a host[:port]`},
		{`{headers: {set: {Host: x}}}`, `proxy-rewrite.headers.set.Host: Host is set with proxy-rewrite's host`},
		{`{headers: {add: {"bad name": x}}}`, `invalid header name`},
		{`{headers: {X-A: b}}`, `unknown key`},
		{`{use_real_request_uri_unsafe: true, uri: /x}`, `cannot be used with uri or regex_uri`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: {proxy-rewrite: ` + tc.conf + `}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
}
