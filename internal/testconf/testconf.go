// Package testconf generates large gateway configs for tests and
// benchmarks of reloads (config and proxy use the same shape).
package testconf

import (
	"fmt"
	"strings"
)

// ManyServices is a config of services x routes routes: every service with
// key-auth and a throttle policy, on one upstream at 127.0.0.1:port, the
// consumer's key being key. Service changed (if >= 0) has another path for
// its first route, and service described (if >= 0) has a desc.
func ManyServices(port string, services, routes, changed, described int, key string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "gateway: {access_log: {enabled: false}}\nupstreams:\n  - {id: u, nodes: [{host: 127.0.0.1, port: %s}]}\n", port)
	s.WriteString("throttle_policies:\n  - {id: p, api_call_limits: 1000000, time_interval: 1, time_unit: HOUR}\n")
	fmt.Fprintf(&s, "consumers:\n  - {username: alice, plugins: {key-auth: {key: %s}}}\n", key)
	s.WriteString("services:\n")
	for i := range services {
		fmt.Fprintf(&s, "  - id: s%d\n    path_prefix: /s%d\n    upstream_id: u\n    throttle_policy: p\n    plugins: {key-auth: {}}\n", i, i)
		if i == described {
			s.WriteString("    desc: changed\n")
		}
		s.WriteString("    routes:\n")
		for j := range routes {
			path := fmt.Sprintf("/r%d/*", j)
			if i == changed && j == 0 {
				path = "/changed/*"
			}
			fmt.Fprintf(&s, "      - {id: s%d-r%d, paths: [%q]}\n", i, j, path)
		}
	}
	return s.String()
}

// BenchFull is the bench's `full` scenario config (bench/scenarios.go):
// routes routes /r{i}/* in one service behind key-auth and a throttle policy
// with its four counters (limits never reached), chash on X-User-Id over
// nodes (host:port each). accessLog "" leaves the access log off; extra adds
// a route /extra/* (the reload scenario's second variant).
func BenchFull(routes int, nodes []string, accessLog string, extra bool) string {
	var b strings.Builder
	b.WriteString("revision: bench\ngateway:\n  log_level: warn\n")
	if accessLog != "" {
		fmt.Fprintf(&b, "  access_log: {enabled: true, path: %q}\n", accessLog)
	} else {
		b.WriteString("  access_log: {enabled: false}\n")
	}
	b.WriteString("upstreams:\n  - id: backends\n    type: chash\n    hash_on: header\n    key: X-User-Id\n    nodes:\n")
	for _, n := range nodes {
		host, port, _ := strings.Cut(n, ":")
		fmt.Fprintf(&b, "      - {host: %s, port: %s}\n", host, port)
	}
	b.WriteString("throttle_policies:\n  - {id: bench, api_call_limits: 2000000000, user_call_limits: 2000000000, " +
		"app_call_limits: 2000000000, ip_call_limits: 2000000000, time_interval: 1, time_unit: SECOND, type: 1}\n")
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
