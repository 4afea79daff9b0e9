package proxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnvironmentVariablesSubstitutedAtLoad(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(env string) string {
		return `
gateway: {environment: ` + env + `, access_log: {enabled: false}}
environments:
  - {id: e1, name: RELEASE, variables: {backend_host: 127.0.0.1, api_path: v1, vhost: release.example}}
  - {id: e2, name: TEST_ENV, variables: {backend_host: 127.0.0.2, api_path: test, vhost: test.example}}
services:
  - id: s
    path_prefix: "/#api_path#"
    upstream: {pass_host: rewrite, upstream_host: "#vhost#", nodes: [{host: "#backend_host#", port: ` + b.port() + `}]}
    routes:
      - paths: ["/users/*"]
        plugins: {proxy-rewrite: {headers: {set: {X-Env-Host: "#vhost#"}}}}
`
	}
	tg := startGateway(t, conf("RELEASE"))
	resp := tg.get(t, "/v1/users/1")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "b GET /users/1", string(resp.Body()))
	last := b.lastRequest()
	require.Equal(t, "release.example", string(last.Header.Host()))
	require.Equal(t, "release.example", string(last.Header.Peek("X-Env-Host")))
	require.Equal(t, 404, tg.get(t, "/test/users/1").StatusCode())

	// The other environment: its path and values (its node, 127.0.0.2,
	// reaches the same loopback backend).
	cfg := mustParse(t, conf("TEST_ENV"))
	require.Equal(t, "/test", cfg.Services[0].PathPrefix)
	require.Equal(t, "127.0.0.2", cfg.Services[0].Upstream.Nodes[0].Host)
	require.Equal(t, "test.example", cfg.Services[0].Upstream.UpstreamHost)

	for _, tc := range []struct{ yaml, want string }{
		{conf("NOPE"), `gateway.environment: environment "NOPE" is not defined in environments`},
		{`
environments: [{name: RELEASE, variables: {a_var: x}}]
gateway: {environment: RELEASE}
services: [{id: s, path_prefix: "/#missing#", upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`,
			`services[0].path_prefix: variable "missing" is not defined in environment "RELEASE"`},
		{`
services: [{id: s, upstream: {nodes: [{host: "#backend#", port: 1}]}, routes: [{paths: [/]}]}]`,
			`services[0].upstream.nodes[0].host: #backend# needs an environment: gateway.environment selects none`},
		{`
environments: [{name: RELEASE}, {name: RELEASE}, {name: "1x"}]
services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`,
			`environments[1].name: duplicate environment "RELEASE"`},
	} {
		_, err := mustParseErr(tc.yaml)
		require.ErrorContains(t, err, tc.want)
	}
}
