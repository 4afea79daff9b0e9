package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTrafficSplitWeightsAndVars(t *testing.T) {
	stable := startBackend(t, "stable", nil)
	canary := startBackend(t, "canary", nil)
	tg := startGateway(t, `
upstreams:
  - id: canary
    nodes: [{host: 127.0.0.1, port: `+canary.port()+`}]
services:
  - id: s
    upstream: `+upstreamYAML(stable)+`
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          traffic-split:
            rules:
              - match: [{vars: [["http_x_canary", "==", "1"]]}, {vars: [["arg_canary", "==", "yes"]]}]
                weighted_upstreams: [{upstream_id: canary}]
              - weighted_upstreams: [{upstream_id: canary, weight: 10}, {weight: 90}]
`)
	// 90/10, exact over every 10 requests.
	for round := range 100 {
		before := canary.hits.Load()
		for range 10 {
			require.Equal(t, 200, tg.get(t, "/x").StatusCode())
		}
		require.EqualValues(t, 1, canary.hits.Load()-before, "round %d", round)
	}
	require.EqualValues(t, 900, stable.hits.Load())
	require.EqualValues(t, 100, canary.hits.Load())

	// The vars rule sends every X-Canary: 1 request to the canary.
	for range 20 {
		resp := tg.do(t, "GET", "/x", map[string]string{"X-Canary": "1"}, "")
		require.Contains(t, string(resp.Body()), "canary GET /x")
	}
	for range 5 {
		require.Contains(t, string(tg.get(t, "/y?canary=yes").Body()), "canary GET /y")
	}
	require.EqualValues(t, 125, canary.hits.Load())
	require.EqualValues(t, 900, stable.hits.Load())
}

// TestTrafficSplitUpstreamOwnBalancer: a split upstream keeps its own
// balancer and retries (its two nodes alternate; a dead one is retried).
func TestTrafficSplitUpstreamOwnBalancer(t *testing.T) {
	main := startBackend(t, "main", nil)
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
upstreams:
  - id: pair
    timeout: {read: 5}
    nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}, {host: 127.0.0.1, port: 1}]
services:
  - id: s
    upstream: `+upstreamYAML(main)+`
    routes:
      - paths: ["/*"]
        plugins: {traffic-split: {rules: [{match: [{vars: [["uri", "~~", "^/pair"]]}], weighted_upstreams: [{upstream_id: pair}]}]}}
`)
	for range 9 {
		require.Equal(t, 200, tg.get(t, "/pair").StatusCode())
	}
	require.EqualValues(t, 0, main.hits.Load())
	require.EqualValues(t, 9, a.hits.Load()+b.hits.Load())
	require.InDelta(t, a.hits.Load(), b.hits.Load(), 1)
	require.Equal(t, 200, tg.get(t, "/other").StatusCode())
	require.EqualValues(t, 1, main.hits.Load())
}

// TestTrafficSplitInlineUpstream: an upstream written inline in a rule is
// compiled like a top-level one (its own balancer over its nodes), once
// for every route that carries the same one, and kept across a reload.
func TestTrafficSplitInlineUpstream(t *testing.T) {
	stable := startBackend(t, "stable", nil)
	c1 := startBackend(t, "c1", nil)
	c2 := startBackend(t, "c2", nil)
	yaml := `
services:
  - id: s
    upstream: ` + upstreamYAML(stable) + `
    plugins:
      traffic-split:
        rules:
          - weighted_upstreams: [{upstream: ` + upstreamYAML(c1, c2) + `, weight: 1}, {weight: 1}]
    routes: [{id: a, paths: ["/a"]}, {id: b, paths: ["/b"]}]
`
	tg := startGateway(t, yaml)
	for range 20 {
		require.Equal(t, 200, tg.get(t, "/a").StatusCode())
		require.Equal(t, 200, tg.get(t, "/b").StatusCode())
	}
	// Half the requests went to the inline upstream, whose round robin
	// alternates its two nodes.
	require.EqualValues(t, 20, stable.hits.Load())
	require.EqualValues(t, 10, c1.hits.Load())
	require.EqualValues(t, 10, c2.hits.Load())
	inlineIDs := func() []string {
		var ids []string
		for id := range tg.g.snap.Load().upstreams {
			if strings.HasPrefix(id, "traffic-split/") {
				ids = append(ids, id)
			}
		}
		return ids
	}
	before := inlineIDs()
	require.Len(t, before, 1, "the same inline upstream on two routes is one upstream")

	// A reload that keeps it keeps its identity (pools, health and node
	// state are keyed by it) and its connections.
	conns := c1.conns.Load()
	require.NoError(t, tg.g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+yaml)))
	require.Equal(t, before, inlineIDs())
	for range 4 {
		require.Equal(t, 200, tg.get(t, "/a").StatusCode())
	}
	require.Equal(t, conns, c1.conns.Load())
}

func TestTrafficSplitConfigErrors(t *testing.T) {
	svc := func(plugin string) string {
		return "services: [{id: s, upstream: {nodes: [{host: 127.0.0.1, port: 1}]}, routes: [{paths: [/]}], plugins: {traffic-split: " + plugin + "}}]\n"
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown upstream", svc(`{rules: [{weighted_upstreams: [{upstream_id: nope}]}]}`), `unknown upstream "nope"`},
		{"inline without nodes", svc(`{rules: [{weighted_upstreams: [{upstream: {nodes: []}}]}]}`), "traffic-split.rules[0].weighted_upstreams[0].upstream.nodes"},
		{"inline and id", svc(`{rules: [{weighted_upstreams: [{upstream_id: x, upstream: {nodes: [{host: a, port: 1}]}}]}]}`), "exclusive"},
		{"inline bad port", svc(`{rules: [{weighted_upstreams: [{upstream: {nodes: [{host: a, port: 0}]}}]}]}`), "upstream.nodes[0].port"},
		{"no rules", svc(`{rules: []}`), "rules: must have 1..20 rules"},
		{"zero weights", svc(`{rules: [{weighted_upstreams: [{weight: 0}]}]}`), "at least one weight"},
		{"bad var", svc(`{rules: [{match: [{vars: [["nope_x", "==", "1"]]}], weighted_upstreams: [{}]}]}`), "traffic-split.rules[0].match[0].vars[0]"},
		{"bad operator", svc(`{rules: [{match: [{vars: [["uri", "=~", "1"]]}], weighted_upstreams: [{}]}]}`), "operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := mustParseErr(tc.yaml)
			if err == nil {
				err = New(Options{}).Apply(cfg)
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
