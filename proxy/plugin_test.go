package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/plugin"
)

// stampPlugin exists only in this test: it is registered like any plugin,
// without touching another plugin's file or the handler, and acts on both
// sides of the upstream call.
type stampConfig struct {
	Header string `json:"header"`
	Value  string `json:"value"`
}

func (c *stampConfig) SetDefaults() { c.Header = "X-Stamp" }

func (c *stampConfig) Validate(ch *config.Check) {
	ch.Field("header").HeaderName(c.Header)
	if c.Value == "" {
		ch.Field("value").Errorf("required")
	}
}

type stampStep struct {
	header, value []byte
}

func (s *stampStep) OnRequest(r *plugin.Request) config.ResponseType {
	if len(r.Ctx.Request.Header.Peek("X-Refuse")) > 0 {
		r.Message = []byte("stamp refused it")
		return config.RespAccessDenied
	}
	r.Ctx.Request.Header.SetBytesV("X-Stamped-Consumer", r.Consumer)
	return config.RespNone
}

func (s *stampStep) OnResponse(r *plugin.Request) {
	r.Ctx.Response.Header.SetBytesKV(s.header, s.value)
}

func init() {
	plugin.Register(config.PluginDef{Name: "test-stamp", Priority: 100, Route: func() any { return &stampConfig{} }},
		func(conf any, _ *plugin.Env) (plugin.Step, error) {
			c := conf.(*stampConfig)
			return &stampStep{header: []byte(c.Header), value: []byte(c.Value)}, nil
		})
}

func TestPluginRegisteredOnlyInATestRunsEndToEnd(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
global_plugins: {test-stamp: {value: global}}
services:
  - id: s
    path_prefix: /api
    plugins: {key-auth: {}, test-stamp: {value: from-service}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: plain, paths: ["/plain"]}
      - {id: own, paths: ["/own"], plugins: {test-stamp: {header: X-Route-Stamp, value: from-route}}}
`)
	// The service's config wins over global_plugins; the response step
	// stamps the backend's answer; key-auth ran before it.
	resp := tg.do(t, "GET", "/api/plain", map[string]string{"apikey": "k1"}, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "from-service", string(resp.Header.Peek("X-Stamp")))
	require.Equal(t, "alice", string(b.lastRequest().Header.Peek("X-Stamped-Consumer")))

	// The route's config replaces the service's, as a whole.
	resp = tg.do(t, "GET", "/api/own", map[string]string{"apikey": "k1"}, "")
	require.Equal(t, "from-route", string(resp.Header.Peek("X-Route-Stamp")))
	require.Empty(t, resp.Header.Peek("X-Stamp"))

	// A request step that refuses gets the gateway response it named, and
	// the response step still runs on the gateway-made answer.
	resp = tg.do(t, "GET", "/api/plain", map[string]string{"apikey": "k1", "X-Refuse": "1"}, "")
	require.Equal(t, 403, resp.StatusCode())
	require.Contains(t, string(resp.Body()), "stamp refused it")
	require.Equal(t, "from-service", string(resp.Header.Peek("X-Stamp")))

	// A step with higher priority that refuses stops the chain first.
	resp = tg.do(t, "GET", "/api/plain", nil, "")
	require.Equal(t, 401, resp.StatusCode())

	// Its config is validated with key paths like any other.
	_, err := mustParseErr(`
services: [{id: s, plugins: {test-stamp: {header: "bad header"}}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
	require.ErrorContains(t, err, `services[0].plugins.test-stamp.header: invalid header name "bad header"`)
	require.ErrorContains(t, err, `services[0].plugins.test-stamp.value: required`)
}
