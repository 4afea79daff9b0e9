package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConsumerRestriction(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    plugins: {key-auth: {}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: white, paths: ["/white"], plugins: {consumer-restriction: {whitelist: [alice]}}}
      - {id: black, paths: ["/black"], plugins: {consumer-restriction: {blacklist: [alice], rejected_code: 401, rejected_msg: "go away"}}}
      - {id: apps, paths: ["/apps"], plugins: {consumer-restriction: {type: credential_name, whitelist: [bound-app]}}}
      - id: methods
        paths: ["/methods"]
        plugins: {consumer-restriction: {allowed_by_methods: [{user: bob, methods: [GET]}]}}
  - id: open
    path_prefix: /open
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/*"], plugins: {consumer-restriction: {whitelist: [alice]}}}]
consumers:
  - {username: alice, plugins: {key-auth: {key: ka}}}
  - username: bob
    credentials:
      - {name: bound-app, plugins: {key-auth: {key: kb1}}}
      - {name: other-app, plugins: {key-auth: {key: kb2}}}
`)
	var hits int64
	ok := func(method, uri, key string) {
		t.Helper()
		r := tg.do(t, method, uri, map[string]string{"apikey": key}, "")
		require.Equal(t, 200, r.StatusCode(), string(r.Body()))
		hits++
		require.EqualValues(t, hits, b.hits.Load())
	}
	refused := func(method, uri, key string, status int, code, msg string) {
		t.Helper()
		e := requireGatewayError(t, tg.do(t, method, uri, map[string]string{"apikey": key}, ""), status, code)
		if msg != "" {
			require.Equal(t, msg, e.Msg)
		}
		require.EqualValues(t, hits, b.hits.Load(), "a refusal never reaches the backend")
	}

	ok("GET", "/white", "ka")
	refused("GET", "/white", "kb1", 403, "APIG.0302", "The consumer is not authorized to access this API")
	refused("GET", "/black", "ka", 401, "APIG.0302", "go away")
	ok("GET", "/black", "kb1")
	ok("GET", "/apps", "kb1")
	refused("GET", "/apps", "kb2", 403, "APIG.0302", "")
	refused("GET", "/apps", "ka", 403, "APIG.0302", "")
	ok("GET", "/methods", "kb1")
	refused("POST", "/methods", "kb2", 403, "APIG.0302", "")
	ok("POST", "/methods", "ka") // not listed: any method
	// Nobody authenticated on a route without an auth plugin.
	refused("GET", "/open/x", "ka", 401, "APIG.0303", "Missing authentication or identity verification")
	// Authentication still comes first.
	refused("GET", "/white", "wrong", 401, "APIG.0301", "")
}

func TestUnauthorizedGatewayResponseIsOverridable(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway_responses: {UNAUTHORIZED: {status: 451, body: '{"code":"$context.error.code"}'}}
services:
  - {id: s, plugins: {key-auth: {}, consumer-restriction: {whitelist: [nobody]}}, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: ka}}}]
`)
	r := tg.do(t, "GET", "/x", map[string]string{"apikey": "ka"}, "")
	require.Equal(t, 451, r.StatusCode())
	require.Equal(t, `{"code":"APIG.0302"}`, string(r.Body()))
}

func TestConsumerRestrictionConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, conf, want string }{
		{"nothing", `{}`, "consumer-restriction: one of whitelist, blacklist or allowed_by_methods is required"},
		{"both lists", `{whitelist: [a], blacklist: [b]}`, "whitelist and blacklist cannot both be set"},
		{"group", `{type: consumer_group_id, whitelist: [a]}`, `consumer-restriction.type: "consumer_group_id" is not supported`},
		{"unknown type", `{type: nope, whitelist: [a]}`, "consumer-restriction.type"},
		{"method", `{allowed_by_methods: [{user: a, methods: [FETCH]}]}`, "allowed_by_methods[0].methods[0]"},
		{"no methods", `{allowed_by_methods: [{user: a}]}`, "allowed_by_methods[0].methods: must list"},
		{"code", `{whitelist: [a], rejected_code: 99}`, "consumer-restriction.rejected_code"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mustParseErr("services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/], plugins: {consumer-restriction: " + c.conf + "}}]}]\n")
			require.ErrorContains(t, err, c.want)
		})
	}
}
