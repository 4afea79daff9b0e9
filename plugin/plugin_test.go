package plugin_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/plugin"
	_ "gateway/plugin/builtin"
	"gateway/ratelimit"
	"gateway/router"
)

func compileRoutes(t *testing.T, yaml string) (*config.Config, []*router.Route) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "t.yaml")
	require.NoError(t, err)
	rt, err := router.Compile(cfg)
	require.NoError(t, err)
	return cfg, rt.Routes()
}

const pipelineYAML = `
throttle_policies: [{id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND}]
global_plugins:
  limit-count: {count: 1, time_window: 60}
  ip-restriction: {whitelist: [10.0.0.0/8]}
services:
  - id: s
    throttle_policy: p
    plugins:
      key-auth: {}
      limit-count: {count: 2, time_window: 60}
    upstream: {nodes: [{host: a, port: 1}]}
    routes:
      - {id: inherit, paths: [/a]}
      - {id: own, paths: [/b], plugins: {limit-count: {count: 3, time_window: 60}}}
  - id: bare
    hosts: [bare.test]
    upstream: {nodes: [{host: a, port: 1}]}
    routes: [{id: bare-route, paths: [/c]}]
`

func TestEffectivePrecedenceRouteServiceGlobal(t *testing.T) {
	cfg, routes := compileRoutes(t, pipelineYAML)
	byID := map[string]*router.Route{}
	for _, r := range routes {
		byID[r.ID] = r
	}
	limit := func(id string) any {
		eff, err := plugin.Effective(cfg, byID[id])
		require.NoError(t, err)
		return eff["limit-count"]
	}
	svc, global := cfg.Services[0].Plugins["limit-count"], cfg.GlobalPlugins["limit-count"]
	require.Same(t, svc, limit("inherit"), "the service's plugin replaces the global one")
	require.Same(t, byID["own"].Config.Plugins["limit-count"], limit("own"), "the route's replaces the service's")
	require.Same(t, global, limit("bare-route"), "global_plugins apply where nothing replaces them")

	eff, err := plugin.Effective(cfg, byID["inherit"])
	require.NoError(t, err)
	require.Same(t, &cfg.ThrottlePolicies[0], eff[plugin.ThrottlePolicyPlugin], "throttle_policy joins as a step")
}

func TestChainRunsInPriorityOrder(t *testing.T) {
	cfg, routes := compileRoutes(t, pipelineYAML)
	env := plugin.NewEnv(cfg, ratelimit.NewStore(), nil)
	for _, r := range routes {
		c, err := plugin.Build(env, r)
		require.NoError(t, err)
		switch r.ID {
		case "inherit", "own":
			require.Equal(t, []string{"ip-restriction", "key-auth", plugin.ThrottlePolicyPlugin, "limit-count"}, c.Names())
		case "bare-route":
			require.Equal(t, []string{"ip-restriction", "limit-count"}, c.Names())
		}
	}
}

func TestRegistryRefusesAmbiguity(t *testing.T) {
	require.Panics(t, func() {
		plugin.Register(config.PluginDef{Name: "key-auth", Priority: 1}, nil)
	}, "a second plugin of the same name")
	require.Panics(t, func() {
		plugin.Register(config.PluginDef{Name: "same-priority", Priority: 2500}, nil)
	}, "two plugins of one priority would run in an order left to chance")
}

// TestChainsShareTheirPluginNames: routes with the same plugins share one
// list of names and credential queries per snapshot (10,000 routes of one
// service held 10,000 copies).
func TestChainsShareTheirPluginNames(t *testing.T) {
	cfg, routes := compileRoutes(t, pipelineYAML)
	chains := buildChains(t, cfg, routes)
	inherit, own, bare := chains["inherit"], chains["own"], chains["bare-route"]
	require.Equal(t, inherit.Names(), own.Names())
	require.Same(t, &inherit.Names()[0], &own.Names()[0], "one list for both")
	require.Equal(t, []string{"apikey"}, inherit.CredentialQueries())
	require.Same(t, &inherit.CredentialQueries()[0], &own.CredentialQueries()[0])
	require.Equal(t, []string{"ip-restriction", "limit-count"}, bare.Names(), "other plugins, other list")
	require.Nil(t, bare.CredentialQueries())
}

// TestRoutesWithSharedStepsShareOneChain: key-auth and throttle steps are
// one per config and snapshot (they find their route in the request), so
// the routes that have only those share one chain; a route with a step of
// its own (limit-count) has its own.
func TestRoutesWithSharedStepsShareOneChain(t *testing.T) {
	cfg, routes := compileRoutes(t, `
throttle_policies: [{id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND}]
services:
  - id: s
    throttle_policy: p
    plugins: {key-auth: {}}
    upstream: {nodes: [{host: a, port: 1}]}
    routes:
      - {id: r1, paths: [/a]}
      - {id: r2, paths: [/b]}
      - {id: own, paths: [/c], plugins: {limit-count: {count: 3, time_window: 60}}}
`)
	chains := buildChains(t, cfg, routes)
	require.Same(t, chains["r1"], chains["r2"])
	require.NotSame(t, chains["r1"], chains["own"])
	require.Equal(t, []string{"key-auth", plugin.ThrottlePolicyPlugin, "limit-count"}, chains["own"].Names())
}

// buildChains builds every route's chain in one snapshot's environment.
func buildChains(t *testing.T, cfg *config.Config, routes []*router.Route) map[string]*plugin.Chain {
	t.Helper()
	env := plugin.NewEnv(cfg, ratelimit.NewStore(), nil)
	chains := map[string]*plugin.Chain{}
	for _, r := range routes {
		c, err := plugin.Build(env, r)
		require.NoError(t, err)
		chains[r.ID] = c
	}
	return chains
}
