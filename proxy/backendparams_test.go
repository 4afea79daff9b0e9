package proxy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackendParamsHuaweiAPI(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: get-order
        name: get_order
        paths: ["/orders/{id}"]
        plugins: {key-auth: {}}
        req_params:
          - {name: id, type: STRING, location: PATH}
          - {name: note, type: STRING, location: QUERY}
        backend_params:
          - {name: X-Order-Id, location: HEADER, origin: REQUEST, value: id}
          - {name: X-Note, location: HEADER, origin: REQUEST, value: note}
          - {name: channel, location: QUERY, origin: CONSTANT, value: "web shop"}
          - {name: X-Req-Id, location: HEADER, origin: SYSTEM, value: $context.requestId}
          - {name: X-Src, location: HEADER, origin: SYSTEM, value: $context.sourceIp}
          - {name: api, location: QUERY, origin: SYSTEM, value: $context.apiName}
          - {name: X-App, location: HEADER, origin: SYSTEM, value: $context.appName}
          - {name: X-Time, location: HEADER, origin: SYSTEM, value: $context.requestTime}
`)
	resp := tg.do(t, "GET", "/orders/42?x=1", map[string]string{"apikey": "k1", "X-Request-Id": "req-123", "X-Order-Id": "spoofed"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "b GET /orders/42?x=1&channel=web+shop&api=get_order", string(resp.Body()))
	last := b.lastRequest()
	require.Equal(t, "42", string(last.Header.Peek("X-Order-Id")))
	require.Len(t, last.Header.PeekAll("X-Order-Id"), 1)
	require.Equal(t, "req-123", string(last.Header.Peek("X-Req-Id")))
	require.Equal(t, "127.0.0.1", string(last.Header.Peek("X-Src")))
	require.Equal(t, "alice", string(last.Header.Peek("X-App")))
	_, err := time.Parse(time.RFC3339, string(last.Header.Peek("X-Time")))
	require.NoError(t, err)
	// An optional request parameter that was not sent is not added; one
	// that was is, without the control characters its decoding made.
	require.Empty(t, last.Header.Peek("X-Note"))
	resp = tg.do(t, "GET", "/orders/7?note=a%0D%0AX-Evil:%201", map[string]string{"apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	last = b.lastRequest()
	require.Equal(t, "aX-Evil: 1", string(last.Header.Peek("X-Note")))
	require.Empty(t, last.Header.Peek("X-Evil"))
}

func TestBackendParamsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{`{name: user-id, location: PATH, origin: CONSTANT, value: x}`, `backend_params[0].name: a PATH parameter is {name} in proxy-rewrite's uri`},
		{`{name: id, location: QUERY, origin: REQUEST, value: nope}`, `backend_params[0].value: REQUEST origin names a parameter of req_params, "nope" is not one`},
		{`{name: id, location: QUERY, origin: SYSTEM, value: $context.other}`, `backend_params[0].value`},
		{`{name: id, location: BODY, origin: CONSTANT, value: x}`, `backend_params[0].location`},
		{`{name: id, location: QUERY, origin: MAGIC, value: x}`, `backend_params[0].origin`},
	} {
		_, err := mustParseErr(`
services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/x], backend_params: [` + tc.p + `]}]}]`)
		require.ErrorContains(t, err, "services[0].routes[0]."+tc.want, tc.p)
	}
}

// TestBackendParamsPath: a PATH backend parameter fills {name} in
// proxy-rewrite's uri (Huawei's backend req_uri), encoded; it takes
// precedence over a route path parameter of the same name.
func TestBackendParamsPath(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: user
        paths: ["/users/{id}/{tab}"]
        req_params:
          - {name: id, type: STRING, location: PATH}
          - {name: tab, type: STRING, location: PATH}
          - {name: region, type: STRING, location: QUERY}
        backend_params:
          - {name: userId, location: PATH, origin: REQUEST, value: id}
          - {name: region, location: PATH, origin: REQUEST, value: region}
          - {name: ver, location: PATH, origin: CONSTANT, value: "v 2/x"}
          - {name: tab, location: PATH, origin: CONSTANT, value: profile}
        plugins:
          proxy-rewrite: {uri: "/api/{ver}/{region}/users/{userId}/{tab}"}
`)
	resp := tg.get(t, "/users/u%207/orders?region=../eu&q=1")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "b GET /api/v%202%2Fx/..%2Feu/users/u%207/profile?region=../eu&q=1", string(resp.Body()))
	require.EqualValues(t, 1, b.hits.Load())

	resp = tg.get(t, "/users/7/orders?region=..")
	require.Equal(t, "b GET /api/v%202%2Fx/%2E%2E/users/7/profile?region=..", string(resp.Body()), "a value cannot climb the path")
}

func TestBackendParamsPathNeedsTheURI(t *testing.T) {
	g := New(Options{})
	t.Cleanup(g.Close)
	err := g.Apply(mustParse(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    routes:
      - paths: ["/x"]
        backend_params: [{name: ver, location: PATH, origin: CONSTANT, value: v2}]
        plugins: {proxy-rewrite: {uri: "/api/{version}"}}
`))
	require.ErrorContains(t, err, `backend parameter "ver" (location PATH) is not in the backend path: the route's proxy-rewrite uri must hold {ver}`)
}
