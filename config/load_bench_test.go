package config

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// benchConfig is bench's `full` scenario config (bench/scenarios.go):
// routes routes in one service behind key-auth and a throttle policy.
func benchConfig(routes int) string {
	var b strings.Builder
	b.WriteString("revision: bench\ngateway:\n  access_log: {enabled: false}\n")
	b.WriteString("upstreams:\n  - id: backends\n    type: chash\n    hash_on: header\n    key: X-User-Id\n    nodes:\n      - {host: 127.0.0.1, port: 1}\n      - {host: 127.0.0.1, port: 2}\n")
	b.WriteString("throttle_policies:\n  - {id: bench, api_call_limits: 2000000000, user_call_limits: 2000000000, app_call_limits: 2000000000, ip_call_limits: 2000000000, time_interval: 1, time_unit: SECOND, type: 1}\n")
	b.WriteString("consumers:\n  - username: bench-user\n    credentials:\n      - {name: bench-app, plugins: {key-auth: {key: bench-key}}}\n")
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n    throttle_policy: bench\n    plugins: {key-auth: {}}\n    routes:\n")
	for i := range routes {
		fmt.Fprintf(&b, "      - {id: r%d, paths: [\"/r%d/*\"]}\n", i, i)
	}
	return b.String()
}

// BenchmarkLoad10kRoutes is config.Parse of a 10,000-route file, the
// config half of a reload (issue 20).
func BenchmarkLoad10kRoutes(b *testing.B) {
	doc := []byte(benchConfig(10000))
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc, "gw.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate10kRoutes is the validation part of that Parse alone.
func BenchmarkValidate10kRoutes(b *testing.B) {
	cfg, err := Parse([]byte(benchConfig(10000)), "gw.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := processCPU()
	for b.Loop() {
		if errs := validate(cfg); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(processCPU()-start)/1e6/float64(b.N), "cpu-ms/op")
}

// processCPU is the process's CPU time in nanoseconds, the garbage
// collector's included.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkLoaderReload10k is a reload of the bench's `reload` scenario
// through a Loader: the 10,000-route file and the same with one route
// more, in turn (issue 20). BenchmarkParseReload10k is the same with Parse.
func BenchmarkLoaderReload10k(b *testing.B) {
	l := NewLoader()
	benchReloadDocs(b, l.Parse, benchConfig(10000), benchConfig(10000)+"      - {id: extra, paths: [\"/extra/*\"]}\n")
}

func BenchmarkParseReload10k(b *testing.B) {
	benchReloadDocs(b, Parse, benchConfig(10000), benchConfig(10000)+"      - {id: extra, paths: [\"/extra/*\"]}\n")
}

// BenchmarkLoaderOneService10k: 100 services of 100 routes, one route of
// one service changing at each reload.
func BenchmarkLoaderOneService10k(b *testing.B) {
	l := NewLoader()
	benchReloadDocs(b, l.Parse, manyServices(100, 100, -1, -1), manyServices(100, 100, 42, -1))
}

func benchReloadDocs(b *testing.B, parse func([]byte, string) (*Config, error), doc0, doc1 string) {
	docs := [2][]byte{[]byte(doc0), []byte(doc1)}
	if _, err := parse(docs[1], "gw.yaml"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := processCPU()
	for i := 0; b.Loop(); i++ {
		if _, err := parse(docs[i%2], "gw.yaml"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU()-start)/1e6/float64(b.N), "cpu-ms/op")
}
