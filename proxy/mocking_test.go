package proxy

import (
	"encoding/json"
	"strings"
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
    plugins: {mocking: {response_schema: {type: object, properties: {a: {type: map}}}}}
    routes: [{paths: [/a]}]
`, "response_schema.properties.a.type"},
		{"schema and example", `
services:
  - id: s
    plugins: {mocking: {response_example: "{}", response_schema: {type: object}}}
    routes: [{paths: [/a]}]
`, "at most one of response_example (or result_content) and response_schema"},
		{"schema example type", `
services:
  - id: s
    plugins: {mocking: {response_schema: {type: object, properties: {num: {type: integer, example: "12"}}}}}
    routes: [{paths: [/a]}]
`, "response_schema.properties.num.example: must be a JSON integer"},
		{"schema array items", `
services:
  - id: s
    plugins: {mocking: {response_schema: {type: array}}}
    routes: [{paths: [/a]}]
`, "response_schema.items: is required"},
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

// TestMockingResponseSchema: APISIX's documented schema; examples are
// used, the rest generated once at load (the same schema, the same body).
func TestMockingResponseSchema(t *testing.T) {
	conf := `
services:
  - id: s
    plugins:
      mocking:
        response_schema:
          type: object
          description: APISIX's sample
          properties:
            field0: {example: abcd, type: string}
            field1: {example: 123.12, type: number}
            field2: {items: {type: string}, type: array}
            field3:
              type: object
              properties:
                field3_1: {type: string}
                field3_2:
                  type: object
                  properties:
                    field3_2_1: {example: true, type: boolean}
                    field3_2_2: {items: {example: 155.55, type: integer}, type: array}
                    num: {type: number}
                    int: {type: integer}
    routes: [{paths: ["/*"]}]
`
	tg := startGateway(t, conf)
	resp := tg.get(t, "/x")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "application/json;charset=utf8", string(resp.Header.ContentType()))
	body := string(resp.Body())
	var v struct {
		Field0 string
		Field1 float64
		Field2 []string
		Field3 struct {
			Field31 string `json:"field3_1"`
			Field32 struct {
				Field321 bool  `json:"field3_2_1"`
				Field322 []any `json:"field3_2_2"`
				Num      float64
				Int      int64
			} `json:"field3_2"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v), body)
	require.Equal(t, "abcd", v.Field0)
	require.Equal(t, 123.12, v.Field1)
	require.True(t, v.Field3.Field32.Field321)
	require.NotEmpty(t, v.Field2)
	require.LessOrEqual(t, len(v.Field2), 3)
	for _, s := range append(v.Field2, v.Field3.Field31) {
		require.Regexp(t, `^[A-Za-z0-9]{1,10}$`, s)
	}
	require.NotEmpty(t, v.Field3.Field32.Field322)
	for _, n := range v.Field3.Field32.Field322 {
		require.Equal(t, 155.0, n, "an integer's example is truncated")
	}
	require.Contains(t, body, `"field3_2_2":[155`)
	require.GreaterOrEqual(t, v.Field3.Field32.Int, int64(0))
	require.LessOrEqual(t, v.Field3.Field32.Num, 1000.0)

	require.Equal(t, body, string(tg.get(t, "/y").Body()), "generated once")
	require.Equal(t, body, string(startGateway(t, conf).get(t, "/x").Body()), "the same schema, the same body")
}
