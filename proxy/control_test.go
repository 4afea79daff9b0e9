package proxy

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func control(t *testing.T, g *Gateway, method, path string, reload func() (string, error)) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, nil)
	req.Host = "127.0.0.1:9091"
	g.ControlHandler(reload).ServeHTTP(rec, req)
	var body map[string]any
	if rec.Header().Get("Content-Type") == "application/json" {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	}
	return rec.Code, body
}

func TestControlAPI(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
revision: rev-1
services:
  - id: s
    hosts: [api.example.com]
    path_prefix: /api
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: get-user, paths: ["/users/{id}"], methods: [GET], priority: 3}
      - {id: rest, paths: ["/*"]}
throttle_policies: [{id: p, api_call_limits: 5, time_interval: 1, time_unit: SECOND}]
consumers: [{username: alice, plugins: {key-auth: {key: k}}}]
`)
	g := tg.g
	code, _ := control(t, g, "GET", "/healthz", nil)
	require.Equal(t, 200, code)
	code, _ = control(t, g, "GET", "/readyz", nil)
	require.Equal(t, 200, code)

	code, cfg := control(t, g, "GET", "/v1/config", nil)
	require.Equal(t, 200, code)
	require.Equal(t, "rev-1", cfg["revision"])
	require.Equal(t, "test.yaml", cfg["source"])
	require.EqualValues(t, 1, cfg["services"])
	require.EqualValues(t, 2, cfg["routes"])
	require.EqualValues(t, 1, cfg["upstreams"])
	require.EqualValues(t, 1, cfg["throttle_policies"])
	require.EqualValues(t, 1, cfg["consumers"])
	require.NotEmpty(t, cfg["loaded_at"])

	code, routes := control(t, g, "GET", "/v1/routes", nil)
	require.Equal(t, 200, code)
	list := routes["routes"].([]any)
	require.Len(t, list, 2)
	first := list[0].(map[string]any)
	require.Equal(t, "get-user", first["route"], "match order: the parameter route before the prefix route")
	require.Equal(t, []any{"/api/users/{id}"}, first["paths"])
	require.Equal(t, []any{"api.example.com"}, first["hosts"])
	require.Equal(t, []any{"GET"}, first["methods"])
	require.EqualValues(t, 3, first["priority"])

	code, body := control(t, g, "POST", "/v1/reload", func() (string, error) { return "rev-2", nil })
	require.Equal(t, 200, code)
	require.Equal(t, "rev-2", body["revision"])
	code, body = control(t, g, "POST", "/v1/reload", func() (string, error) { return "", errors.New("a: bad\nb: worse") })
	require.Equal(t, 400, code)
	require.Equal(t, []any{"a: bad", "b: worse"}, body["errors"])

	g.RecordReload(errors.New("x: broken"))
	_, cfg = control(t, g, "GET", "/v1/config", nil)
	last := cfg["last_reload"].(map[string]any)
	require.Equal(t, false, last["ok"])
	require.Equal(t, []any{"x: broken"}, last["errors"])

	resp := tg.do(t, "POST", "/api/x", map[string]string{"Host": "api.example.com"}, "12345")
	require.Equal(t, 200, resp.StatusCode())
	text := scrape(t, g)
	require.Regexp(t, `gateway_connections_active [1-9]`, text, "the test client's keep-alive connection is open")
	require.Contains(t, text, `gateway_http_bytes_total{direction="in",service="s"} 5`)
	require.Contains(t, text, `gateway_http_bytes_total{direction="out",service="s"} `+itoa(len(resp.Body())))
	require.Contains(t, text, `gateway_http_request_duration_seconds_count{route="rest",service="s"} 1`)
	require.Contains(t, text, `gateway_config_info{revision="rev-1"} 1`)
	require.Contains(t, text, `gateway_config_reloads_total{result="failure"} 1`)
	require.Contains(t, text, "gateway_config_last_reload_success_timestamp_seconds")
	require.Contains(t, text, "go_goroutines")
	require.Contains(t, text, "process_cpu_seconds_total")

	code, hc := control(t, g, "GET", "/v1/healthcheck", nil)
	require.Equal(t, 200, code)
	require.Contains(t, hc, "upstreams")
}
