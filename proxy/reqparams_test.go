package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func TestReqParamsRequiredAndValidated(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/orders/{id}"]
        req_params:
          - {name: id, type: NUMBER, location: PATH, valid_enable: 1, min_num: 1, max_num: 99999}
          - {name: page, type: NUMBER, location: QUERY, required: 1, valid_enable: 1, max_num: 100}
          - {name: state, type: STRING, location: QUERY, valid_enable: 1, enumerations: "open,closed"}
          - {name: X-Tenant, type: STRING, location: HEADER, required: 1, valid_enable: 1, min_size: 2, max_size: 8, sample_value: acme, remark: tenant}
`)
	ok := map[string]string{"X-Tenant": "acme"}
	resp := tg.do(t, "GET", "/orders/42?page=1&state=open", ok, "")
	require.Equal(t, 200, resp.StatusCode())
	require.EqualValues(t, 1, b.hits.Load())

	for _, tc := range []struct {
		uri    string
		hdr    map[string]string
		naming string
	}{
		{"/orders/42", ok, "parameter page (QUERY) is required"},
		{"/orders/42?page=", ok, "parameter page (QUERY) is required"},
		{"/orders/42?page=1", nil, "parameter X-Tenant (HEADER) is required"},
		{"/orders/42?page=101", ok, "parameter page (QUERY) is invalid"},
		{"/orders/42?page=x", ok, "parameter page (QUERY) is invalid"},
		{"/orders/0?page=1", ok, "parameter id (PATH) is invalid"},
		{"/orders/42?page=1&state=lost", ok, "parameter state (QUERY) is invalid"},
		{"/orders/42?page=1", map[string]string{"X-Tenant": "a"}, "parameter X-Tenant (HEADER) is invalid"},
	} {
		resp := tg.do(t, "GET", tc.uri, tc.hdr, "")
		require.Equal(t, 400, resp.StatusCode(), tc.uri)
		require.Contains(t, string(resp.Body()), tc.naming, tc.uri)
	}
	require.EqualValues(t, 1, b.hits.Load())
}

func TestReqParamsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{`{name: id, type: STRING, location: PATH}`, `req_params[0].name: PATH parameter "id" is not a parameter of the route's paths`},
		{`{name: q, type: TEXT, location: QUERY}`, `req_params[0].type`},
		{`{name: q, type: STRING, location: BODY}`, `req_params[0].location`},
		{`{name: q, type: STRING, location: QUERY, min_num: 1}`, `req_params[0].min_num: applies to type NUMBER only`},
		{`{name: q, type: NUMBER, location: QUERY, enumerations: "1,x"}`, `req_params[0].enumerations: "x" is not a NUMBER`},
		{`{name: q, type: STRING, location: QUERY, required: 1, default_value: a}`, `req_params[0].default_value: is only used by an optional parameter`},
		{`{name: q, type: STRING, location: QUERY, default_value: ""}`, `req_params[0].default_value: must not be empty`},
		{`{name: q, type: STRING, location: QUERY, valid_enable: 1, regular: "(a"}`, `req_params[0].regular: invalid regex`},
		{`{name: q, type: STRING, location: QUERY, regular: "a+"}`, `req_params[0].regular: is checked only with valid_enable: 1`},
		{`{name: q, type: STRING, location: QUERY, json_schema: "{}"}`, `req_params[0].json_schema: not supported yet`},
		{`{name: q, type: STRING, location: QUERY, pass_through: 3}`, `req_params[0].pass_through`},
		{`{name: 1q, type: STRING, location: QUERY}`, `req_params[0].name: must be 1 to 32`},
	} {
		_, err := mustParseErr(`
services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/x], req_params: [` + tc.p + `]}]}]`)
		require.ErrorContains(t, err, "services[0].routes[0]."+tc.want, tc.p)
	}
	_, err := mustParseErr(`
services: [{id: s, plugins: {req_params: {}}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/x]}]}]`)
	require.Error(t, err)
}

// TestReqParamsDefaultPassThroughRegular: default_value is forwarded for
// an absent optional parameter (and seen by backend_params),
// pass_through 2 removes a parameter before forwarding (backend_params
// still read it), regular must match the whole value.
func TestReqParamsDefaultPassThroughRegular(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/orders/{id}"]
        req_params:
          - {name: id, type: STRING, location: PATH}
          - {name: page, type: NUMBER, location: QUERY, default_value: "1", valid_enable: 1, max_num: 100}
          - {name: X-Lang, type: STRING, location: HEADER, default_value: en}
          - {name: token, type: STRING, location: QUERY, pass_through: 2}
          - {name: X-Secret, type: STRING, location: HEADER, pass_through: 2}
          - {name: code, type: STRING, location: QUERY, valid_enable: 1, regular: "[A-Z]{3}"}
          - {name: region, type: STRING, location: QUERY, default_value: eu, pass_through: 1}
          - {name: X-Keep, type: STRING, location: HEADER, pass_through: 2}
        backend_params:
          - {name: X-Token, location: HEADER, origin: REQUEST, value: token}
          - {name: reg, location: QUERY, origin: REQUEST, value: region}
          - {name: X-Keep, location: HEADER, origin: CONSTANT, value: backend}
`)
	resp := tg.do(t, "GET", "/orders/42?token=t1&code=ABC&keep=1", map[string]string{"X-Secret": "s", "X-Keep": "client"}, "")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "b GET /orders/42?code=ABC&keep=1&page=1&region=eu&reg=eu", string(resp.Body()))
	last := b.lastRequest()
	require.Equal(t, "en", string(last.Header.Peek("X-Lang")))
	require.Equal(t, "t1", string(last.Header.Peek("X-Token")))
	require.Nil(t, last.Header.Peek("X-Secret"))
	require.Equal(t, "backend", string(last.Header.Peek("X-Keep")), "a header a backend parameter sets is not removed")

	// Sent values win over defaults; a token alone in the query leaves none.
	resp = tg.do(t, "GET", "/orders/42?page=7&region=us&token=t2", map[string]string{"X-Lang": "fr"}, "")
	require.Equal(t, "b GET /orders/42?page=7&region=us&reg=us", string(resp.Body()))
	require.Equal(t, "fr", string(b.lastRequest().Header.Peek("X-Lang")))
	resp = tg.do(t, "GET", "/orders/42?token=t3&page=2&region=x", nil, "")
	require.Equal(t, "b GET /orders/42?page=2&region=x&reg=x", string(resp.Body()))
	// An empty argument counts as missing: the default replaces it.
	resp = tg.do(t, "GET", "/orders/42?page=&q=1", map[string]string{"X-Lang": ""}, "")
	require.Equal(t, "b GET /orders/42?q=1&page=1&region=eu&reg=eu", string(resp.Body()))
	require.Equal(t, []string{"en"}, headerValues(b.lastRequest(), "X-Lang"))

	for _, code := range []string{"ABCD", "xABC", "ab1"} {
		resp = tg.do(t, "GET", "/orders/42?code="+code, nil, "")
		require.Equal(t, 400, resp.StatusCode(), code)
		require.Contains(t, string(resp.Body()), "parameter code (QUERY) is invalid")
		require.Contains(t, string(resp.Body()), `"error_code":"APIG.0201"`) // REQUEST_PARAMETERS_FAILURE
	}
	require.EqualValues(t, 4, b.hits.Load())
}

func headerValues(r *fasthttp.Request, name string) []string {
	var out []string
	for _, v := range r.Header.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

func TestReqParamsDefaultMustPassValidation(t *testing.T) {
	g := New(Options{})
	t.Cleanup(g.Close)
	err := g.Apply(mustParse(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    routes: [{paths: [/x], req_params: [{name: page, type: NUMBER, location: QUERY, default_value: "500", valid_enable: 1, max_num: 100}]}]
`))
	require.ErrorContains(t, err, `req_params[0].default_value: "500" fails the parameter's own validation`)
}

func TestReqParamsPassThroughNeedsAnEditableQuery(t *testing.T) {
	g := New(Options{})
	t.Cleanup(g.Close)
	err := g.Apply(mustParse(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 1}]}
    routes:
      - paths: [/x]
        req_params: [{name: token, type: STRING, location: QUERY, pass_through: 2}]
        plugins: {proxy-rewrite: {use_real_request_uri_unsafe: true}}
`))
	require.ErrorContains(t, err, `req_params[0].pass_through: 2 cannot remove a query argument`)
}
