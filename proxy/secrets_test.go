package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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

	// Neither the control API, the metrics, the gateway's log nor the
	// access log shows the secret.
	seen := controlText(t, tg.g)
	tg.g.Close() // flushes the access log
	access, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(access), `"consumer":"alice"`, "the access log was written")
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
