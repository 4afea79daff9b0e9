package config

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGatewayDefaults(t *testing.T) {
	want := Gateway{
		Listen:             "0.0.0.0:9080",
		ControlListen:      "127.0.0.1:9091",
		MaxRequestBodySize: 12582912,
		MaxHeaderSize:      16384,
		ClientReadTimeout:  60,
		ClientIdleTimeout:  60,
		MaxConnections:     10000,
		RealIP:             RealIP{Header: "", TrustedAddresses: nil, Recursive: true},
		// Edge limits (issue 12; README "Security").
		ClientHeaderTimeout:  10,
		ClientWriteTimeout:   60,
		MaxHeaderCount:       100,
		UnderscoresInHeaders: false,
		PathPolicy:           "reject",
		RejectPathParams:     false,
		AccessLog:            AccessLog{Enabled: true, Path: "stdout"},
		LogLevel:             "info",
		ReloadDebounce:       0.2,
		ShutdownTimeout:      30,
		Websocket:            GatewayWebsocket{IdleTimeout: 600}, // issue 15
		Resolver:             Resolver{Timeout: 2},               // issue 21
		Stream:               GatewayStream{IdleTimeout: 600, MaxConnections: 10000},

		MaxResponseHeaderSize: 65536,
		// TLS (issue 14): Mozilla "intermediate".
		TLS: GatewayTLS{MinVersion: "TLSv1.2", Ciphers: DefaultCiphers(), SessionTickets: true},
	}
	require.Equal(t, want, Default().Gateway)
	require.Equal(t, want, mustParse(t, minimal).Gateway)
	require.Equal(t, want, mustParse(t, "gateway: {}\n"+minimal).Gateway)

	def := Default()
	require.Empty(t, def.Services)
	require.Empty(t, def.Upstreams)
	require.Empty(t, def.ThrottlePolicies)
	require.Empty(t, def.Consumers)
	require.Empty(t, def.GatewayResponses)
	require.Empty(t, def.GlobalPlugins)
	require.Empty(t, def.Revision)
	require.Empty(t, def.Source)
	require.Empty(t, validate(def), "the default config is valid")
}

func TestControlListenCanBeDisabled(t *testing.T) {
	cfg := mustParse(t, "gateway: {control_listen: \"\"}\n"+minimal)
	require.Equal(t, "", cfg.Gateway.ControlListen)
}

func TestServiceAndRouteDefaults(t *testing.T) {
	cfg := mustParse(t, svc(`
hosts: [API.Example.com, "*.Example.COM"]
upstream: {nodes: [{host: 10.0.0.1, port: 80}]}
routes:
  - {paths: [/a]}
  - {id: named, paths: [/b]}
  - {name: only-name, paths: [/c]}
`))
	s := cfg.Services[0]
	require.Equal(t, "s", s.Name)
	require.Equal(t, "http", s.Type)
	require.Equal(t, "/", s.PathPrefix)
	require.True(t, s.StripPathPrefix)
	require.Equal(t, []string{"api.example.com", "*.example.com"}, s.Hosts)
	require.Empty(t, s.Plugins)
	require.Empty(t, s.ThrottlePolicy)

	r := s.Routes
	require.Equal(t, "s.0", r[0].ID)
	require.Equal(t, "s.0", r[0].Name)
	require.Equal(t, "named", r[1].ID)
	require.Equal(t, "named", r[1].Name)
	require.Equal(t, "s.2", r[2].ID)
	require.Equal(t, "only-name", r[2].Name)
	require.Equal(t, 0, r[0].Priority)
	require.Empty(t, r[0].Methods)
	require.Empty(t, r[0].Vars)
	require.Nil(t, r[0].Timeout)
	require.False(t, r[0].EnableWebsocket)
}

func TestUpstreamDefaults(t *testing.T) {
	cfg := mustParse(t, svc(`
upstream:
  nodes: [{host: 10.0.0.1, port: 80}, {host: 10.0.0.2, port: 80}, {host: 10.0.0.3, port: 80}]
  checks:
    active: {}
    passive: {}
routes: [{paths: [/]}]
`)+`
  - id: t
    upstream_id: shared
    routes: [{paths: [/t]}]
    hosts: [t.example.com]
upstreams:
  - id: shared
    nodes: [{host: b, port: 1}, {host: c, port: 1}]
  - id: single
    nodes: [{host: d, port: 1}]
  - id: explicit
    retries: 0
    nodes: [{host: e, port: 1}, {host: f, port: 1}]
`)
	up := cfg.Services[0].Upstream
	require.Equal(t, "s", up.ID, "an inline upstream takes its service's id")
	require.Equal(t, "default", up.Name)
	require.Equal(t, SchemeHTTP, up.Scheme)
	require.Equal(t, RoundRobin, up.Type)
	require.Equal(t, HashOnVars, up.HashOn)
	require.Equal(t, "remote_addr", up.Key)
	require.Equal(t, Timeout{Connect: 60, Send: 60, Read: 60}, up.Timeout)
	require.Equal(t, KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000}, up.KeepalivePool)
	require.Equal(t, PassHostPass, up.PassHost)
	require.Empty(t, up.UpstreamHost)
	require.Equal(t, UpstreamTLS{Verify: true}, up.TLS)
	require.Equal(t, Seconds(0), up.RetryTimeout)
	require.Equal(t, 2, *up.Retries, "retries default to len(nodes)-1")
	require.Equal(t, Node{Host: "10.0.0.1", Port: 80, Weight: 1, Priority: 0}, up.Nodes[0])

	require.Equal(t, &ActiveCheck{
		Type:                   "http",
		Timeout:                1,
		Concurrency:            10,
		HTTPPath:               "/",
		HTTPSVerifyCertificate: true,
		Healthy:                ActiveHealthy{Interval: 1, HTTPStatuses: []int{200, 302}, Successes: 2},
		Unhealthy: ActiveUnhealthy{
			Interval:     1,
			HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505},
			HTTPFailures: 5,
			TCPFailures:  2,
			Timeouts:     3,
		},
	}, up.Checks.Active)
	require.Equal(t, &PassiveCheck{
		Type: "http",
		Healthy: PassiveHealthy{
			HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308},
			Successes:    5,
		},
		Unhealthy: PassiveUnhealthy{HTTPStatuses: []int{429, 500, 503}, HTTPFailures: 5, TCPFailures: 2, Timeouts: 7},
	}, up.Checks.Passive)

	require.Equal(t, 1, *cfg.Upstreams[0].Retries)
	require.Equal(t, 0, *cfg.Upstreams[1].Retries)
	require.Equal(t, 0, *cfg.Upstreams[2].Retries, "an explicit retries is kept")
	require.Equal(t, "default", cfg.Upstreams[0].Name)
	require.Equal(t, "shared", cfg.Upstreams[0].ID)
}

func TestDefaultListsAreNotShared(t *testing.T) {
	a := mustParse(t, withUpstream("{nodes: [{host: a, port: 1}], checks: {active: {}}}"))
	a.Services[0].Upstream.Checks.Active.Healthy.HTTPStatuses[0] = 999
	b := mustParse(t, withUpstream("{nodes: [{host: a, port: 1}], checks: {active: {}}}"))
	require.Equal(t, []int{200, 302}, b.Services[0].Upstream.Checks.Active.Healthy.HTTPStatuses)
}

func TestEmptyChecksIsNoChecks(t *testing.T) {
	cfg := mustParse(t, withUpstream("{nodes: [{host: a, port: 1}], checks: {}}"))
	require.Nil(t, cfg.Services[0].Upstream.Checks)
}

func TestPolicyAndPluginDefaults(t *testing.T) {
	cfg := mustParse(t, svc(`
upstream: {nodes: [{host: a, port: 1}]}
plugins:
  key-auth: {}
  limit-count: {count: 10, time_window: 60}
routes: [{paths: [/], throttle_policy: p}]
`)+`
throttle_policies:
  - {id: p, api_call_limits: 100, time_interval: 1, time_unit: SECOND}
`)
	p := cfg.ThrottlePolicies[0]
	require.Equal(t, ThrottlePolicy{
		ID: "p", Name: "p", APICallLimits: 100, TimeInterval: 1, TimeUnit: "SECOND", Type: 1, Window: "fixed", ThrottleStrategy: "local", AllowDegradation: true,
	}, p)
	pl := cfg.Services[0].Plugins
	requirePluginJSON(t, `{"header":"apikey","query":"apikey","hide_credentials":false}`, pl, "key-auth")
	requirePluginJSON(t, `{"count":10,"time_window":60,"key_type":"var","key":"remote_addr","rejected_code":503,
		"rejected_msg":"","show_limit_quota_header":true,"window_type":"fixed","group":"",
		"policy":"local","allow_degradation":true}`, pl, "limit-count")
	require.NotContains(t, pl, "ip-restriction")
}

func TestRevision(t *testing.T) {
	data := []byte(minimal)
	cfg, err := Parse(data, "c.yaml")
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:])[:12], cfg.Revision)
	require.Len(t, cfg.Revision, 12)

	other := mustParse(t, minimal+"\n# another file\n")
	require.NotEqual(t, cfg.Revision, other.Revision)

	kept := mustParse(t, "revision: release-42\n"+minimal)
	require.Equal(t, "release-42", kept.Revision)
}

func TestMetricsRouteHistograms(t *testing.T) {
	cfg, err := Parse([]byte("services: []\n"), "t.yaml")
	require.NoError(t, err)
	require.True(t, cfg.Metrics.RouteHistograms, "on by default")
	cfg, err = Parse([]byte("metrics: {}\n"), "t.yaml")
	require.NoError(t, err)
	require.True(t, cfg.Metrics.RouteHistograms, "on when metrics is present without it")
	cfg, err = Parse([]byte("metrics: {route_histograms: false}\n"), "t.yaml")
	require.NoError(t, err)
	require.False(t, cfg.Metrics.RouteHistograms)
	_, err = Parse([]byte("metrics: {route_histogram: false}\n"), "t.yaml")
	require.ErrorContains(t, err, "metrics.route_histogram")
}
