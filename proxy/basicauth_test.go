package proxy

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// require401 checks a gateway 401 of the given error code that never
// reached a backend.
func require401(t *testing.T, r *fasthttp.Response, code string, b *backend, hits int64) {
	t.Helper()
	require.Equal(t, 401, r.StatusCode(), string(r.Body()))
	require.Contains(t, string(r.Body()), `"error_code":"`+code+`"`)
	require.EqualValues(t, hits, b.hits.Load(), "the backend was not called")
}

func TestBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("hashed-pw"), bcrypt.MinCost)
	require.NoError(t, err)
	// PHP's and htpasswd's $2y$ is the same algorithm.
	hashY := "$2y$" + string(hash[4:])
	t.Setenv("GW_TEST_BOB_PW", "bob-from-env")
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    plugins: {basic-auth: {}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: open, paths: ["/keep"]}
      - {id: hidden, paths: ["/hide"], plugins: {basic-auth: {hide_credentials: true}}}
consumers:
  - {username: alice, plugins: {basic-auth: {username: alice, password: alice-pw}}}
  - username: bob
    credentials:
      - {name: env-app, plugins: {basic-auth: {username: bob, password: $env://GW_TEST_BOB_PW}}}
      - {name: hashed-app, plugins: {basic-auth: {username: bob-hashed, password: '`+string(hash)+`'}}}
      - {name: hashed-y, plugins: {basic-auth: {username: bob-y, password: '`+hashY+`'}}}
`)
	get := func(uri, auth string) *fasthttp.Response {
		h := map[string]string{}
		if auth != "" {
			h["Authorization"] = auth
		}
		return tg.do(t, "GET", uri, h, "")
	}
	var hits int64
	pass := func(uri, auth, consumer, app string) *fasthttp.Request {
		t.Helper()
		r := get(uri, auth)
		require.Equal(t, 200, r.StatusCode(), string(r.Body()))
		hits++
		require.EqualValues(t, hits, b.hits.Load())
		up := b.lastRequest()
		require.Equal(t, consumer, string(up.Header.Peek("X-Consumer-Username")))
		require.Equal(t, app, string(up.Header.Peek("X-Credential-Identifier")))
		return up
	}

	up := pass("/keep", basic("alice", "alice-pw"), "alice", "alice")
	require.Equal(t, basic("alice", "alice-pw"), string(up.Header.Peek("Authorization")), "kept without hide_credentials")
	up = pass("/hide", basic("alice", "alice-pw"), "alice", "alice")
	require.Empty(t, up.Header.Peek("Authorization"), "hide_credentials removes it")
	pass("/keep", "basic "+base64.StdEncoding.EncodeToString([]byte("alice:alice-pw")), "alice", "alice")
	pass("/keep", basic("bob", "bob-from-env"), "bob", "env-app")
	for range 3 { // the first verifies with bcrypt, the others hit the cache
		pass("/keep", basic("bob-hashed", "hashed-pw"), "bob", "hashed-app")
	}
	pass("/keep", basic("bob-y", "hashed-pw"), "bob", "hashed-y")

	for _, c := range []struct{ name, auth, code string }{
		{"missing", "", "APIG.0303"},
		{"wrong password", basic("alice", "alice-pw2"), "APIG.0301"},
		{"prefix of the password", basic("alice", "alice-p"), "APIG.0301"},
		{"unknown user", basic("mallory", "alice-pw"), "APIG.0301"},
		{"wrong bcrypt password", basic("bob-hashed", "hashed-px"), "APIG.0301"},
		{"the hash as the password", basic("bob-hashed", string(hash)), "APIG.0301"},
		{"the reference as the password", basic("bob", "$env://GW_TEST_BOB_PW"), "APIG.0301"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), "APIG.0301"},
		{"not base64", "Basic !!!", "APIG.0301"},
		{"another scheme", "Bearer abc", "APIG.0301"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := get("/keep", c.auth)
			require401(t, r, c.code, b, hits)
			require.Equal(t, `Basic realm="gateway"`, string(r.Header.Peek("WWW-Authenticate")))
		})
	}
}

func TestBasicAuthConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, cred, want string }{
		{"no password", `{username: a}`, "consumers[0].plugins.basic-auth.password: required"},
		{"no username", `{password: p}`, "consumers[0].plugins.basic-auth.username: required"},
		{"colon in username", `{username: "a:b", password: p}`, "must not contain ':'"},
		{"bad hash", `{username: a, password: "$2b$10$not-a-hash"}`, "consumers[0].plugins.basic-auth.password: looks like a bcrypt hash"},
		{"provider", `{username: a, password: "$secret://vault/x"}`, `secret provider "vault" is not supported`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mustParseErr("services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]\nconsumers: [{username: a, plugins: {basic-auth: " + c.cred + "}}]\n")
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "not-a-hash")
		})
	}
	_, err := mustParseErr(`
services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]
consumers:
  - {username: a, plugins: {basic-auth: {username: same, password: p1}}}
  - {username: b, plugins: {basic-auth: {username: same, password: p2}}}
`)
	require.ErrorContains(t, err, "consumers[1].plugins.basic-auth.username: duplicate username")
}

// TestSeveralAuthPluginsOnOneRoute: the first authenticator (by priority:
// basic-auth before key-auth) that finds its credential decides alone.
func TestSeveralAuthPluginsOnOneRoute(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, plugins: {key-auth: {}, basic-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
consumers:
  - {username: alice, plugins: {key-auth: {key: alice-key}}}
  - {username: bob, plugins: {basic-auth: {username: bob, password: bob-pw}}}
`)
	do := func(h map[string]string) *fasthttp.Response { return tg.do(t, "GET", "/x", h, "") }
	r := do(map[string]string{"apikey": "alice-key"})
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, "alice", string(b.lastRequest().Header.Peek("X-Consumer-Username")))
	r = do(map[string]string{"Authorization": basic("bob", "bob-pw")})
	require.Equal(t, 200, r.StatusCode())
	require.Equal(t, "bob", string(b.lastRequest().Header.Peek("X-Consumer-Username")))
	r = do(map[string]string{"Authorization": basic("bob", "bob-pw"), "apikey": "wrong"})
	require.Equal(t, 200, r.StatusCode(), "basic-auth found its credential first; key-auth did not run")
	require.EqualValues(t, 3, b.hits.Load())

	r = do(map[string]string{"Authorization": basic("bob", "wrong"), "apikey": "alice-key"})
	require401(t, r, "APIG.0301", b, 3)
	// A scheme basic-auth does not read is not its credential: key-auth decides.
	r = do(map[string]string{"Authorization": "Bearer x", "apikey": "alice-key"})
	require.Equal(t, 200, r.StatusCode())
	// None finds its credential: AUTH_HEADER_MISSING, with basic-auth's
	// challenge.
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer x"}, {"apikey": ""}} {
		r = do(h)
		require401(t, r, "APIG.0303", b, 4)
		require.Equal(t, `Basic realm="gateway"`, string(r.Header.Peek("WWW-Authenticate")))
	}
}
