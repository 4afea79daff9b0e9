package proxy

import (
	"fmt"
	"strings"
	"testing"

	"gateway/config"
)

// benchFullConfig is the bench's `full` scenario config (bench/scenarios.go)
// with routes routes in one service; extra adds one more route.
func benchFullConfig(routes int, extra bool) string {
	var b strings.Builder
	b.WriteString("revision: bench\ngateway:\n  access_log: {enabled: false}\n")
	b.WriteString("upstreams:\n  - id: backends\n    type: chash\n    hash_on: header\n    key: X-User-Id\n    nodes:\n      - {host: 127.0.0.1, port: 1}\n      - {host: 127.0.0.1, port: 2}\n")
	b.WriteString("throttle_policies:\n  - {id: bench, api_call_limits: 2000000000, user_call_limits: 2000000000, app_call_limits: 2000000000, ip_call_limits: 2000000000, time_interval: 1, time_unit: SECOND, type: 1}\n")
	b.WriteString("consumers:\n  - username: bench-user\n    credentials:\n      - {name: bench-app, plugins: {key-auth: {key: bench-key}}}\n")
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n    throttle_policy: bench\n    plugins: {key-auth: {}}\n    routes:\n")
	for i := range routes {
		fmt.Fprintf(&b, "      - {id: r%d, paths: [\"/r%d/*\"]}\n", i, i)
	}
	if extra {
		b.WriteString("      - {id: extra, paths: [\"/extra/*\"]}\n")
	}
	return b.String()
}

func BenchmarkReloadFull10k(b *testing.B) {
	docs := [2][]byte{[]byte(benchFullConfig(10000, false)), []byte(benchFullConfig(10000, true))}
	g := New(Options{DryRun: true})
	defer g.Close()
	cfg, err := config.Parse(docs[0], "gw.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		cfg, err := config.Parse(docs[(i+1)%2], "gw.yaml")
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Apply(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// manyServicesConfig is 100 services of 100 routes behind key-auth and a
// throttle policy; service changed gets another path on its first route.
func manyServicesConfig(changed int) string {
	var s strings.Builder
	s.WriteString("gateway: {access_log: {enabled: false}}\nupstreams:\n  - {id: u, nodes: [{host: 127.0.0.1, port: 1}]}\n")
	s.WriteString("throttle_policies:\n  - {id: p, api_call_limits: 1000000, time_interval: 1, time_unit: HOUR}\n")
	s.WriteString("consumers:\n  - {username: alice, plugins: {key-auth: {key: k}}}\nservices:\n")
	for i := range 100 {
		fmt.Fprintf(&s, "  - id: s%d\n    path_prefix: /s%d\n    upstream_id: u\n    throttle_policy: p\n    plugins: {key-auth: {}}\n    routes:\n", i, i)
		for j := range 100 {
			path := fmt.Sprintf("/r%d/*", j)
			if i == changed && j == 0 {
				path = "/changed/*"
			}
			fmt.Fprintf(&s, "      - {id: s%d-r%d, paths: [%q]}\n", i, j, path)
		}
	}
	return s.String()
}

// BenchmarkReloadOneService10k reloads 10,000 routes in 100 services, one
// service changing each time (issue 20's incremental compile).
func BenchmarkReloadOneService10k(b *testing.B) {
	docs := [2][]byte{[]byte(manyServicesConfig(-1)), []byte(manyServicesConfig(42))}
	g := New(Options{DryRun: true})
	defer g.Close()
	cfg, err := config.Parse(docs[0], "gw.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		cfg, err := config.Parse(docs[(i+1)%2], "gw.yaml")
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Apply(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
