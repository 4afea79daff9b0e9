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
	benchReloads(b, benchFullConfig(10000, false), benchFullConfig(10000, true))
}

// BenchmarkReloadFull10kParse is BenchmarkReloadFull10k loading with
// config.Parse, not with a config.Loader as cmd/gateway does.
func BenchmarkReloadFull10kParse(b *testing.B) {
	benchReloadsWith(b, config.Parse, benchFullConfig(10000, false), benchFullConfig(10000, true))
}

// BenchmarkReloadOneService10k reloads 10,000 routes in 100 services, one
// route of one service changing each time (issue 20's incremental compile).
func BenchmarkReloadOneService10k(b *testing.B) {
	benchReloads(b, manyServices("1", 100, 100, -1, -1, "k"), manyServices("1", 100, 100, 42, -1, "k"))
}

func BenchmarkReloadOneService10kParse(b *testing.B) {
	benchReloadsWith(b, config.Parse, manyServices("1", 100, 100, -1, -1, "k"), manyServices("1", 100, 100, 42, -1, "k"))
}

// benchReloads loads (with a config.Loader, as cmd/gateway reloads) and
// applies the two docs in turn, in a dry-run gateway.
func benchReloads(b *testing.B, doc0, doc1 string) {
	benchReloadsWith(b, config.NewLoader().Parse, doc0, doc1)
}

func benchReloadsWith(b *testing.B, parse func([]byte, string) (*config.Config, error), doc0, doc1 string) {
	docs := [2][]byte{[]byte(doc0), []byte(doc1)}
	g := New(Options{DryRun: true})
	defer g.Close()
	apply := func(doc []byte) {
		cfg, err := parse(doc, "gw.yaml")
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Apply(cfg); err != nil {
			b.Fatal(err)
		}
	}
	apply(docs[1]) // the first compile builds everything
	b.ReportAllocs()
	start := processCPU()
	for i := 0; b.Loop(); i++ {
		apply(docs[i%2])
	}
	reportCPU(b, start)
}

// reportCPU reports the process's CPU time per op since start (a
// processCPU reading), the garbage collector's included: on the shared
// machine it moves less than the wall time of an op.
func reportCPU(b *testing.B, start int64) {
	b.ReportMetric(float64(processCPU()-start)/1e6/float64(b.N), "cpu-ms/op")
}

// BenchmarkApplyFull10k and BenchmarkApplyOneService10k are the reloads
// above without config.Parse: the two configs are parsed once and applied
// in turn, so what is measured is compile and commit (the router, the
// plugin chains, the route states and metric slots) and their garbage.
func BenchmarkApplyFull10k(b *testing.B) {
	benchApplies(b, benchFullConfig(10000, false), benchFullConfig(10000, true))
}

func BenchmarkApplyOneService10k(b *testing.B) {
	benchApplies(b, manyServices("1", 100, 100, -1, -1, "k"), manyServices("1", 100, 100, 42, -1, "k"))
}

func benchApplies(b *testing.B, doc0, doc1 string) {
	var cfgs [2]*config.Config
	for i, doc := range []string{doc0, doc1} {
		cfg, err := config.Parse([]byte(doc), "gw.yaml")
		if err != nil {
			b.Fatal(err)
		}
		cfgs[i] = cfg
	}
	g := New(Options{DryRun: true})
	defer g.Close()
	if err := g.Apply(cfgs[1]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := processCPU()
	for i := 0; b.Loop(); i++ {
		if err := g.Apply(cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}
