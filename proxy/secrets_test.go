package proxy

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/internal/testlog"
)

// startLoggedGateway is startGateway with the gateway's own log, at debug
// level, written to the returned buffer.
func startLoggedGateway(t *testing.T, yaml string) (*testGateway, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.DebugLevel))
	g := New(Options{Logger: logger})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	return serveGateway(t, g), logs
}

// TestSecretReferenceReproduction is issue 16's reproduction: a consumer
// key written as $env://UKEY authenticates with the variable's value, and
// the reference itself is not a key.
func TestSecretReferenceReproduction(t *testing.T) {
	const secret = "secret-from-env"
	t.Setenv("UKEY", secret)
	b := startBackend(t, "b", nil)
	logPath := filepath.Join(t.TempDir(), "access.log")
	tg, logs := startLoggedGateway(t, `
gateway: {access_log: {enabled: true, path: `+logPath+`}}
services:
  - {id: s, plugins: {key-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: $env://UKEY}}}]
`)
	r := tg.do(t, "GET", "/x", map[string]string{"apikey": secret}, "")
	require.Equal(t, 200, r.StatusCode(), string(r.Body()))
	require.EqualValues(t, 1, b.hits.Load())

	r = tg.do(t, "GET", "/x", map[string]string{"apikey": "$env://UKEY"}, "")
	require.Equal(t, 401, r.StatusCode())
	require.Contains(t, string(r.Body()), `"APIG.0301"`)
	r = tg.do(t, "GET", "/x?apikey=%24env%3A%2F%2FUKEY", nil, "")
	require.Equal(t, 401, r.StatusCode())
	require.EqualValues(t, 1, b.hits.Load(), "the reference never reached the backend as a valid key")

	// A key in the query string is logged as ***.
	r = tg.do(t, "GET", "/x?a=1&apikey="+secret+"&b=2", nil, "")
	require.Equal(t, 200, r.StatusCode())
	r = tg.do(t, "GET", "/x?apikey="+secret+"x", nil, "")
	require.Equal(t, 401, r.StatusCode(), "a wrong key is masked too: it may be someone's real key")

	// Neither the control API, the metrics, the gateway's log nor the
	// access log shows the secret.
	seen := controlText(t, tg.g)
	tg.g.Close() // flushes the access log
	access, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(access), `"consumer":"alice"`, "the access log was written")
	require.Contains(t, string(access), `"uri":"/x?a=1&apikey=***&b=2"`)
	seen = append(seen, logs.String(), string(access))
	for _, s := range seen {
		require.NotContains(t, s, secret)
	}

	// A reload whose variable is gone is a load error naming the path and
	// the variable, never a value.
	os.Unsetenv("UKEY")
	_, err = mustParseErr(`
services:
  - {id: s, plugins: {key-auth: {}}, upstream: ` + upstreamYAML(b) + `, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: $env://UKEY}}}]
`)
	require.ErrorContains(t, err, "consumers[0].plugins.key-auth.key: environment variable UKEY is not set")
}

// controlText is what the control API shows: /v1/config, /v1/routes and
// the metrics, as text.
func controlText(t *testing.T, g *Gateway) []string {
	t.Helper()
	out := []string{scrape(t, g)}
	for _, path := range []string{"/v1/config", "/v1/routes"} {
		code, body := control(t, g, "GET", path, nil)
		require.Equal(t, 200, code, path)
		text, err := json.Marshal(body)
		require.NoError(t, err)
		out = append(out, string(text))
	}
	return out
}

// TestAuthSecretsStayOutOfLogs: each auth plugin's secret, from the
// environment, authenticates, and shows nowhere: not in the control API,
// the metrics, the gateway's log or the access log (credentials sent in
// the query included).
func TestAuthSecretsStayOutOfLogs(t *testing.T) {
	secrets := map[string]string{
		"GW_TEST_PW":   "basic-password-value",
		"GW_TEST_JWT":  "jwt-secret-value",
		"GW_TEST_HMAC": "hmac-secret-value",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	b := startBackend(t, "b", nil)
	logPath := filepath.Join(t.TempDir(), "access.log")
	tg, logs := startLoggedGateway(t, `
gateway: {access_log: {enabled: true, path: `+logPath+`}}
services:
  - {id: s, plugins: {basic-auth: {}, jwt-auth: {}, hmac-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers:
  - username: alice
    credentials:
      - {name: b, plugins: {basic-auth: {username: alice, password: $env://GW_TEST_PW}}}
      - {name: j, plugins: {jwt-auth: {key: alice-jwt, secret: $env://GW_TEST_JWT}}}
      - {name: h, plugins: {hmac-auth: {key_id: alice-hmac, secret_key: $env://GW_TEST_HMAC}}}
`)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "alice-jwt"}).SignedString([]byte(secrets["GW_TEST_JWT"]))
	require.NoError(t, err)
	date := time.Now().UTC().Format(http.TimeFormat)
	p := &authProbe{t: t, tg: tg, b: b}
	p.pass("/x", authz(basic("alice", secrets["GW_TEST_PW"])), "alice", "b")
	p.pass("/x?jwt="+tok, nil, "alice", "j")
	p.pass("/x", map[string]string{"Date": date, "Authorization": hmacSign("alice-hmac", secrets["GW_TEST_HMAC"], "hmac-sha256", "GET", "/x", []string{"@request-target", "date"}, map[string]string{"date": date})}, "alice", "h")
	p.refused(t, "/x", authz(basic("alice", secrets["GW_TEST_PW"]+"x")), "APIG.0301")
	p.refused(t, "/x?jwt="+tok+"x", nil, "APIG.0301")

	seen := controlText(t, tg.g)
	tg.g.Close()
	access, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(access), `"uri":"/x?jwt=***"`)
	seen = append(seen, logs.String(), string(access))
	for _, s := range seen {
		for _, v := range []string{secrets["GW_TEST_PW"], secrets["GW_TEST_JWT"], secrets["GW_TEST_HMAC"], tok} {
			require.NotContains(t, s, v)
		}
	}
}
