package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCORSPreflightAnsweredByGateway(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
services:
  - id: s
    plugins:
      key-auth: {}
      cors: {allow_origins: "https://a.example,https://b.example", allow_origins_by_regex: ["^https://[a-z]+\\.c\\.example$"], allow_methods: "GET,POST", allow_headers: "Content-Type,X-Token", expose_headers: "X-Request-Id", max_age: 600, allow_credential: true}
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/api/*"]}]
`)
	pre := map[string]string{"Origin": "https://a.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	resp := tg.do(t, "OPTIONS", "/api/x", pre, "")
	require.Equal(t, 204, resp.StatusCode())
	require.Equal(t, "https://a.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "GET,POST", string(resp.Header.Peek("Access-Control-Allow-Methods")))
	require.Equal(t, "Content-Type,X-Token", string(resp.Header.Peek("Access-Control-Allow-Headers")))
	require.Equal(t, "600", string(resp.Header.Peek("Access-Control-Max-Age")))
	require.Equal(t, "true", string(resp.Header.Peek("Access-Control-Allow-Credentials")))
	require.Equal(t, "Origin", string(resp.Header.Peek("Vary")))
	require.NotEmpty(t, resp.Header.Peek("X-Request-Id"))
	require.Empty(t, resp.Body())
	// Answered before key-auth (no credentials on a preflight), never forwarded.
	require.Zero(t, b.hits.Load())

	// A regex origin.
	pre["Origin"] = "https://shop.c.example"
	resp = tg.do(t, "OPTIONS", "/api/x", pre, "")
	require.Equal(t, 204, resp.StatusCode())
	require.Equal(t, "https://shop.c.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))

	// A disallowed origin: answered, without ACAO.
	pre["Origin"] = "https://evil.example"
	resp = tg.do(t, "OPTIONS", "/api/x", pre, "")
	require.Equal(t, 204, resp.StatusCode())
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"))
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Methods"))
	require.Zero(t, b.hits.Load())

	// An actual request: forwarded, the response gets ACAO and expose.
	resp = tg.do(t, "GET", "/api/x", map[string]string{"Origin": "https://b.example", "apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "https://b.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "X-Request-Id", string(resp.Header.Peek("Access-Control-Expose-Headers")))
	require.Equal(t, "true", string(resp.Header.Peek("Access-Control-Allow-Credentials")))
	require.Equal(t, "Origin", string(resp.Header.Peek("Vary")))
	require.EqualValues(t, 1, b.hits.Load())

	// A gateway error gets them too (the browser can read the 401).
	resp = tg.do(t, "GET", "/api/x", map[string]string{"Origin": "https://b.example"}, "")
	require.Equal(t, 401, resp.StatusCode())
	require.Equal(t, "https://b.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))

	// Disallowed origin on an actual request: no ACAO.
	resp = tg.do(t, "GET", "/api/x", map[string]string{"Origin": "https://evil.example", "apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"))
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Credentials"))

	// OPTIONS that is not a preflight goes to the backend.
	resp = tg.do(t, "OPTIONS", "/api/x", map[string]string{"apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.EqualValues(t, 3, b.hits.Load())
}

func TestCORSDefaultsSendStar(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    plugins: {cors: {}}
    upstream: `+upstreamYAML(b)+`
    routes: [{paths: ["/*"]}]
`)
	resp := tg.do(t, "OPTIONS", "/x", map[string]string{"Origin": "https://any.example", "Access-Control-Request-Method": "PUT"}, "")
	require.Equal(t, 204, resp.StatusCode())
	require.Equal(t, "*", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "*", string(resp.Header.Peek("Access-Control-Allow-Methods")))
	require.Equal(t, "5", string(resp.Header.Peek("Access-Control-Max-Age")))
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Credentials"))
	require.Empty(t, resp.Header.Peek("Vary"))
	resp = tg.do(t, "GET", "/x", map[string]string{"Origin": "https://any.example"}, "")
	require.Equal(t, "*", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	// No Origin: no CORS headers.
	resp = tg.get(t, "/x")
	require.Empty(t, resp.Header.Peek("Access-Control-Allow-Origin"))
}

// huaweiCORSSample is the plugin_content of Huawei's cors plugin sample.
const huaweiCORSSample = `{"allow_origin": "*", "allow_methods": "GET,POST,PUT", "allow_headers": "Content-Type,Accept,Accept-Ranges,Cache-Control", "expose_headers": "X-Request-Id,X-Apig-Latency", "max_age": 172800, "allow_credentials": true}`

func TestCORSHuaweiSampleReflectsOriginAndWarns(t *testing.T) {
	b := startBackend(t, "b", nil)
	yaml := `
services:
  - id: s
    plugins: {cors: ` + huaweiCORSSample + `}
    upstream: ` + upstreamYAML(b) + `
    routes: [{paths: ["/*"]}]
`
	cfg := mustParse(t, yaml)
	require.Len(t, cfg.Warnings, 1)
	require.Equal(t, "services[0].plugins.cors.allow_origin", cfg.Warnings[0].Path)
	require.Contains(t, cfg.Warnings[0].Msg, "every site can make credentialed calls")

	tg := startGateway(t, yaml)
	resp := tg.do(t, "OPTIONS", "/x", map[string]string{"Origin": "https://site.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-anything"}, "")
	require.Equal(t, 204, resp.StatusCode())
	require.Equal(t, "https://site.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "true", string(resp.Header.Peek("Access-Control-Allow-Credentials")))
	require.Equal(t, "GET,POST,PUT", string(resp.Header.Peek("Access-Control-Allow-Methods")))
	require.Equal(t, "172800", string(resp.Header.Peek("Access-Control-Max-Age")))
	require.Equal(t, "Origin", string(resp.Header.Peek("Vary")))
	resp = tg.do(t, "GET", "/x", map[string]string{"Origin": "https://other.example"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "https://other.example", string(resp.Header.Peek("Access-Control-Allow-Origin")))
	require.Equal(t, "X-Request-Id,X-Apig-Latency", string(resp.Header.Peek("Access-Control-Expose-Headers")))
	require.EqualValues(t, 1, b.hits.Load())
}

func TestCORSConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{allow_origins: "*", allow_credential: true}`, `services[0].plugins.cors.allow_origins: "*" cannot be used with allow_credential`},
		{`{allow_origins: "https://a.example", allow_credential: true}`, `services[0].plugins.cors.allow_methods: "*" cannot be used with allow_credential`},
		{`{allow_origin: "*", allow_origins: "https://a.example"}`, `cannot be mixed`},
		{`{allow_origins: "a.example"}`, `services[0].plugins.cors.allow_origins[0]: not an origin`},
		{`{allow_origins_by_regex: ["("]}`, `services[0].plugins.cors.allow_origins_by_regex[0]: error parsing regexp`},
		{`{allow_headers: "bad header"}`, `services[0].plugins.cors.allow_headers[0]: invalid header name`},
		{`{allow_origin_x: "*"}`, `unknown key`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: {cors: ` + tc.conf + `}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
	// `**` is APISIX's explicit "any origin" with credentials.
	_, err := mustParseErr(`
services: [{id: s, plugins: {cors: {allow_origins: "**", allow_methods: "**", allow_headers: "**", allow_credential: true}}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
	require.NoError(t, err)
}
