package proxy

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/plugin"
	"gateway/transport"
)

// refusePlugin is a test plugin whose compile step fails when its config
// says so: the loader accepts the config, only compile rejects it, as
// no shipped config can make it do (config's validation runs first).
const refusePlugin = "test-refuse"

type refuseConfig struct {
	Refuse bool `json:"refuse"`
}

func init() {
	plugin.Register(config.PluginDef{Name: refusePlugin, Priority: -9999, Route: func() any { return &refuseConfig{} }},
		func(conf any, _ *plugin.Env) (plugin.Step, error) {
			if conf.(*refuseConfig).Refuse {
				return nil, errors.New("refused by the test")
			}
			return struct{}{}, nil
		})
}

// longLived is the gateway's long-lived state by identity, to compare
// before and after a reload.
type longLived struct {
	pools map[string]*transport.Pool
	nodes map[string]*nodeLong
}

func longLivedOf(g *Gateway) longLived {
	g.stateMu.Lock()
	defer g.stateMu.Unlock()
	return longLived{pools: maps.Clone(g.pools), nodes: maps.Clone(g.nodes)}
}

// TestRejectedCompileChangesNothing: a config that loads but does not
// compile leaves the serving snapshot, health checkers, pools and node
// state exactly as they were. Compile has no side effects to roll back: no
// checker for the rejected config's new upstream ever starts (its
// gateway_upstream_node_healthy series would show it), no pool or node
// state is made for its new nodes.
func TestRejectedCompileChangesNothing(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	c := startBackend(t, "c", nil)
	checks := `checks: {active: {http_path: /h, healthy: {interval: 0.05, successes: 1}, unhealthy: {interval: 0.05, http_failures: 1}}}`
	tg := startGateway(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: `+a.port()+`}], `+checks+`}
    routes: [{id: one, paths: ["/one"]}]
`)
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	snap := tg.g.snap.Load()
	before := longLivedOf(tg.g)
	healthBefore := tg.g.health.Snapshot()
	require.Len(t, healthBefore, 1)
	bProbes := b.hits.Load()

	// Everything changes: s gets a second node (a new pool), a new service
	// t with a checked upstream on b and a throttle policy (new counters);
	// one route's plugin refuses.
	next := func(refuse bool) *config.Config {
		return mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+c.port()+`}], `+checks+`}
    routes: [{id: one, paths: ["/one"]}]
  - id: t
    throttle_policy: p
    upstream: {nodes: [{host: 127.0.0.1, port: `+b.port()+`}], `+checks+`}
    routes: [{id: two, paths: ["/two"]}, {id: bad, paths: ["/bad"], plugins: {`+refusePlugin+`: {refuse: `+fmt.Sprint(refuse)+`}}}]
throttle_policies: [{id: p, api_call_limits: 100, time_interval: 1, time_unit: HOUR}]
`)
	}
	counters := tg.g.limits.Len()
	err := tg.g.Apply(next(true))
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Equal(t, config.Errors{{
		Path: "services[1].routes[1]",
		Msg:  `plugin "` + refusePlugin + `": refused by the test`,
		File: "test.yaml", Line: 10, // compile errors are located like load errors (issue 20)
	}}, errs)

	require.Same(t, snap, tg.g.snap.Load(), "the serving snapshot stays")
	require.Equal(t, before, longLivedOf(tg.g), "no pool or node state was made or retired")
	require.Equal(t, counters, tg.g.limits.Len(), "no throttle counter was made")
	require.Nil(t, tg.g.health.Node("t", b.addr), "no health state for the rejected upstream")
	healthAfter := tg.g.health.Snapshot()
	require.Len(t, healthAfter, 1)
	require.Equal(t, "s", healthAfter[0].ID)
	require.Len(t, healthAfter[0].Nodes, 1, "the serving upstream's nodes are the old ones")
	require.Same(t, tg.g.health.Node("s", a.addr), snap.upstreams["s"].nodes[0].health, "the serving snapshot's health state is the manager's")
	require.Equal(t, bProbes, b.hits.Load(), "no probe reached the rejected upstream's node")
	require.Zero(t, c.hits.Load())
	require.False(t, strings.Contains(scrape(t, tg.g), `upstream="t"`), "no metric series for the rejected upstream")
	require.Equal(t, 200, tg.get(t, "/one").StatusCode())
	require.Equal(t, 404, tg.get(t, "/two").StatusCode())

	// The same config without the refusal commits: now t is checked and
	// s has its new pool; a's pool and node state are the same objects.
	require.NoError(t, tg.g.Apply(next(false)))
	after := longLivedOf(tg.g)
	require.Len(t, after.pools, 3)
	require.Len(t, after.nodes, 3)
	for k, p := range before.pools {
		require.Same(t, p, after.pools[k], "pool %s survives", k)
	}
	for k, n := range before.nodes {
		require.Same(t, n, after.nodes[k], "node state %s survives", k)
	}
	require.NotNil(t, tg.g.health.Node("t", b.addr))
	require.Same(t, tg.g.health.Node("t", b.addr), tg.g.snap.Load().upstreams["t"].nodes[0].health,
		"commit wires health state into the snapshot before publishing it")
	require.Greater(t, tg.g.limits.Len(), counters, "the policy's counters")
	require.Equal(t, 200, tg.get(t, "/two").StatusCode())
}

// TestCompileHasNoSideEffects: compile alone, even of a config that
// compiles, creates, registers or starts nothing; commit does.
func TestCompileHasNoSideEffects(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{paths: ["/one"]}]}
`)
	before := longLivedOf(tg.g)
	snap := tg.g.snap.Load()
	s, p, err := tg.g.compile(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{paths: ["/one"]}]}
  - id: t
    upstream:
      nodes: [{host: 127.0.0.1, port: `+b.port()+`}]
      checks: {active: {http_path: /h, healthy: {interval: 0.05, successes: 1}, unhealthy: {interval: 0.05, http_failures: 1}}}
    routes: [{paths: ["/two"]}]
`))
	require.NoError(t, err)
	require.Len(t, p.pools, 2)
	require.Len(t, p.checked, 1)
	require.Equal(t, before, longLivedOf(tg.g))
	require.Same(t, snap, tg.g.snap.Load())
	require.Empty(t, tg.g.health.Snapshot())
	metrics := scrape(t, tg.g)
	require.False(t, strings.Contains(metrics, `upstream="t"`), "compile made no metric series")
	require.False(t, strings.Contains(metrics, `service="t"`), "compile made no metric series")

	old := tg.g.commit(s, p)
	require.Same(t, snap, old)
	require.Len(t, longLivedOf(tg.g).pools, 2)
	require.NotNil(t, tg.g.health.Node("t", b.addr))
	require.Equal(t, 200, tg.get(t, "/two").StatusCode())
}

// TestCompileErrorsPrintOneWay: a compile error is config.Errors with key
// paths, and Apply's error, POST /v1/reload's answer and GET /v1/config's
// last_reload show it in the same lines.
func TestCompileErrorsPrintOneWay(t *testing.T) {
	a := startBackend(t, "a", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{paths: ["/one"]}]}
`)
	bad := mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - id: s
    upstream: `+upstreamYAML(a)+`
    routes:
      - {paths: ["/one"], plugins: {`+refusePlugin+`: {refuse: true}}}
      - {paths: ["/two"]}
      - {paths: ["/three"], plugins: {`+refusePlugin+`: {refuse: true}}}
`)
	want := []string{
		`test.yaml:7: services[0].routes[0]: plugin "` + refusePlugin + `": refused by the test`,
		`test.yaml:9: services[0].routes[2]: plugin "` + refusePlugin + `": refused by the test`,
	}
	err := tg.g.Apply(bad)
	require.Equal(t, want, ErrorLines(err))
	require.Equal(t, strings.Join(want, "\n"), err.Error())

	code, body := control(t, tg.g, "POST", "/v1/reload", func() (string, error) {
		err := tg.g.Apply(bad)
		tg.g.RecordReload(err)
		return "", err
	})
	require.Equal(t, 400, code)
	require.Equal(t, []any{want[0], want[1]}, body["errors"])
	_, cfg := control(t, tg.g, "GET", "/v1/config", nil)
	require.Equal(t, []any{want[0], want[1]}, cfg["last_reload"].(map[string]any)["errors"])
}

// TestAccessLogThatCannotOpenChangesNothing: the access log is the one
// part of a commit that can fail; it goes first, so its failure leaves the
// rest as it was, and its error has a key path too.
func TestAccessLogThatCannotOpenChangesNothing(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(a)+`, routes: [{paths: ["/one"]}]}
`)
	before := longLivedOf(tg.g)
	snap := tg.g.snap.Load()
	path := t.TempDir() + "/missing/access.log"
	err := tg.g.Apply(mustParse(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/one"]}]}
`))
	lines := ErrorLines(err)
	require.Len(t, lines, 1)
	require.True(t, strings.HasPrefix(lines[0], "test.yaml:2: gateway.access_log.path: open "+path+": "), lines[0])
	require.Same(t, snap, tg.g.snap.Load())
	require.Equal(t, before, longLivedOf(tg.g))
}
