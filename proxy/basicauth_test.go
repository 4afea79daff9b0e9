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

// authProbe sends requests through an authenticating gateway to one
// backend and checks who the backend was told the consumer is, or that a
// 401 never reached it.
type authProbe struct {
	t    *testing.T
	tg   *testGateway
	b    *backend
	hits int64
}

// pass expects a 200 from the backend with consumer and app upstream, and
// returns what the backend received.
func (p *authProbe) pass(uri string, hdr map[string]string, consumer, app string) *fasthttp.Request {
	p.t.Helper()
	r := p.tg.do(p.t, "GET", uri, hdr, "")
	require.Equal(p.t, 200, r.StatusCode(), string(r.Body()))
	p.hits++
	require.EqualValues(p.t, p.hits, p.b.hits.Load())
	up := p.b.lastRequest()
	require.Equal(p.t, consumer, string(up.Header.Peek("X-Consumer-Username")))
	require.Equal(p.t, app, string(up.Header.Peek("X-Credential-Identifier")))
	return up
}

// refused expects a gateway 401 of the given error code that never
// reached the backend.
func (p *authProbe) refused(t *testing.T, uri string, hdr map[string]string, code string) *fasthttp.Response {
	t.Helper()
	r := p.tg.do(t, "GET", uri, hdr, "")
	require.Equal(t, 401, r.StatusCode(), string(r.Body()))
	require.Contains(t, string(r.Body()), `"error_code":"`+code+`"`)
	require.EqualValues(t, p.hits, p.b.hits.Load(), "the backend was not called")
	return r
}

func authz(v string) map[string]string {
	if v == "" {
		return nil
	}
	return map[string]string{"Authorization": v}
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
	p := &authProbe{t: t, tg: tg, b: b}
	pass := func(uri, auth, consumer, app string) *fasthttp.Request {
		t.Helper()
		return p.pass(uri, authz(auth), consumer, app)
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
			r := p.refused(t, "/keep", authz(c.auth), c.code)
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
	p := &authProbe{t: t, tg: tg, b: b}
	p.pass("/x", map[string]string{"apikey": "alice-key"}, "alice", "alice")
	p.pass("/x", authz(basic("bob", "bob-pw")), "bob", "bob")
	p.pass("/x", map[string]string{"Authorization": basic("bob", "bob-pw"), "apikey": "wrong"}, "bob", "bob")
	// basic-auth found its credential first and refuses it: final, key-auth
	// does not run.
	p.refused(t, "/x", map[string]string{"Authorization": basic("bob", "wrong"), "apikey": "alice-key"}, "APIG.0301")
	// A scheme basic-auth does not read is not its credential: key-auth decides.
	p.pass("/x", map[string]string{"Authorization": "Bearer x", "apikey": "alice-key"}, "alice", "alice")
	// None finds its credential: AUTH_HEADER_MISSING, with basic-auth's
	// challenge.
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer x"}, {"apikey": ""}} {
		r := p.refused(t, "/x", h, "APIG.0303")
		require.Equal(t, `Basic realm="gateway"`, string(r.Header.Peek("WWW-Authenticate")))
	}
}
