package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
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
		{`{name: q, type: STRING, location: QUERY, default_value: a}`, `req_params[0].default_value: not supported yet`},
		{`{name: q, type: STRING, location: QUERY, pass_through: 2}`, `req_params[0].pass_through: not supported yet`},
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
