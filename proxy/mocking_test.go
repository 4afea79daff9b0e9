package proxy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
)

func TestMockingAnswersWithoutTheBackend(t *testing.T) {
	b := startBackend(t, "real", nil)
	tg := startGateway(t, `
consumers: [{username: alice, credentials: [{name: c, plugins: {key-auth: {key: k-alice}}}]}]
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - id: mocked
        paths: [/mock]
        plugins:
          mocking:
            response_status: 201
            content_type: text/plain
            response_example: "hello from the mock"
            response_headers: {X-Env: staging, X-Other: "1"}
      - id: auth
        paths: [/auth]
        plugins:
          key-auth: {}
          mocking: {response_example: '{"ok":1}', with_mock_header: false}
      - id: real
        paths: [/real]
  - id: nobackend
    hosts: [mock.example.com]
    plugins: {mocking: {response_status: 418, response_example: teapot}}
    routes: [{paths: ["/*"]}]
`)
	resp := tg.do(t, "POST", "/mock", nil, "some body")
	require.Equal(t, 201, resp.StatusCode())
	require.Equal(t, "hello from the mock", string(resp.Body()))
	require.Equal(t, "text/plain", string(resp.Header.ContentType()))
	require.Equal(t, "staging", string(resp.Header.Peek("X-Env")))
	require.Equal(t, "1", string(resp.Header.Peek("X-Other")))
	require.Equal(t, "gateway", string(resp.Header.Peek("X-Mock-By")))
	require.NotEmpty(t, resp.Header.Peek("X-Request-Id"))

	// Authentication still runs before the mock answers.
	resp = tg.do(t, "GET", "/auth", nil, "")
	require.Equal(t, 401, resp.StatusCode())
	resp = tg.do(t, "GET", "/auth", map[string]string{"apikey": "k-alice"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, `{"ok":1}`, string(resp.Body()))
	require.Equal(t, "application/json;charset=utf8", string(resp.Header.ContentType()))
	require.Empty(t, resp.Header.Peek("X-Mock-By"))

	// A service without an upstream, every route mocked.
	resp = tg.do(t, "GET", "/x", map[string]string{"Host": "mock.example.com"}, "")
	require.Equal(t, 418, resp.StatusCode())
	require.Equal(t, "teapot", string(resp.Body()))

	require.Zero(t, b.hits.Load(), "a mocked request must not reach the backend")
	resp = tg.get(t, "/real")
	require.Equal(t, 200, resp.StatusCode())
	require.EqualValues(t, 1, b.hits.Load())
}

func TestMockingHuaweiSpelling(t *testing.T) {
	tg := startGateway(t, `
services:
  - id: s
    plugins: {mocking: {status_code: 203, result_content: huawei, headers: [{key: X-A, value: a}]}}
    routes: [{paths: ["/*"]}]
`)
	resp := tg.get(t, "/x")
	require.Equal(t, 203, resp.StatusCode())
	require.Equal(t, "huawei", string(resp.Body()))
	require.Equal(t, "a", string(resp.Header.Peek("X-A")))
}

func TestMockingConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no upstream, one route not mocked", `
services:
  - id: s
    routes: [{paths: [/a], plugins: {mocking: {}}}, {paths: [/b]}]
`, "unless every route has mocking"},
		{"schema", `
services:
  - id: s
    plugins: {mocking: {response_schema: {type: object}}}
    routes: [{paths: [/a]}]
`, "response_schema: is not supported yet"},
		{"both spellings", `
services:
  - id: s
    plugins: {mocking: {response_status: 201, status_code: 202}}
    routes: [{paths: [/a]}]
`, "at most one of response_status and status_code"},
		{"status", `
services:
  - id: s
    plugins: {mocking: {response_status: 99}}
    routes: [{paths: [/a]}]
`, "response_status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustParseErr(tc.yaml)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMockingDelay(t *testing.T) {
	tg := startGateway(t, `
services:
  - id: s
    plugins: {mocking: {delay: 0.3, response_example: late}}
    routes: [{paths: ["/*"]}]
`)
	t0 := time.Now()
	resp := tg.get(t, "/x")
	require.GreaterOrEqual(t, time.Since(t0), 300*time.Millisecond, "the answer waits delay seconds")
	require.Equal(t, "late", string(resp.Body()))
}

// TestMockingAnswersExpectContinue: a mocked route answers a request
// that expects 100-continue at once, without inviting its body.
func TestMockingAnswersExpectContinue(t *testing.T) {
	tg := startGateway(t, `
services:
  - id: s
    plugins: {mocking: {response_status: 202, response_example: mocked}}
    routes: [{paths: ["/*"]}]
`)
	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 202, r.Status)
	require.Equal(t, "mocked", r.Body)
}
