package proxy

import (
	"os"
	"testing"

	"gateway/config"
)

// FuzzParseApply: a config that config.Parse accepts must also compile
// into a snapshot (router, upstreams, every plugin's step), or `gateway
// validate` would say ok to a file that a reload then refuses. The gateway
// is a dry-run one: no probe is sent and no file is opened.
func FuzzParseApply(f *testing.F) {
	for _, s := range []string{
		"services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]",
		`services:
  - id: s
    plugins: {key-auth: {}, limit-count: {count: 1, time_window: 1, key_type: constant, key: x}}
    upstream: {type: least_conn, nodes: [{host: a, port: 1}, {host: b, port: 2, priority: -1}]}
    routes: [{paths: ["/{x}/*"], plugins: {ip-restriction: {blacklist: [1.2.3.4/32]}}}]
consumers: [{username: u, plugins: {key-auth: {key: k}}}]
`,
		// Anchors, aliases and merge keys (yaml/v3 nodes, issue 20).
		`services:
  - id: s
    upstream: &up {nodes: [{host: a, port: 1}]}
    routes: [&r {paths: [/a], methods: [GET]}, {<<: *r, paths: [/b]}]
  - {id: t, upstream: *up, path_prefix: /t, routes: [{<<: [*r], priority: 2}]}
`,
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("../router/testdata/fuzz-seed-full.yaml"); err == nil {
		f.Add(data)
	}
	g := New(Options{DryRun: true})
	f.Cleanup(g.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		if err := g.Apply(cfg); err != nil {
			t.Fatalf("a config that loads does not apply: %v\n%s", err, data)
		}
	})
}
