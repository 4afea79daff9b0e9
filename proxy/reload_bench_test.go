package proxy

import (
	"testing"

	"gateway/config"
	"gateway/internal/testconf"
)

func BenchmarkReloadFull10k(b *testing.B) {
	benchReloads(b, testconf.BenchFull(10000, benchNodes, "", false), testconf.BenchFull(10000, benchNodes, "", true))
}

// BenchmarkReloadFull10kParse is BenchmarkReloadFull10k loading with
// config.Parse, not with a config.Loader as cmd/gateway does.
func BenchmarkReloadFull10kParse(b *testing.B) {
	benchReloadsWith(b, config.Parse, testconf.BenchFull(10000, benchNodes, "", false), testconf.BenchFull(10000, benchNodes, "", true))
}

// BenchmarkReloadOneService10k reloads 10,000 routes in 100 services, one
// route of one service changing each time (issue 20's incremental compile).
func BenchmarkReloadOneService10k(b *testing.B) {
	benchReloads(b, testconf.ManyServices("1", 100, 100, -1, -1, "k"), testconf.ManyServices("1", 100, 100, 42, -1, "k"))
}

func BenchmarkReloadOneService10kParse(b *testing.B) {
	benchReloadsWith(b, config.Parse, testconf.ManyServices("1", 100, 100, -1, -1, "k"), testconf.ManyServices("1", 100, 100, 42, -1, "k"))
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
	benchApplies(b, testconf.BenchFull(10000, benchNodes, "", false), testconf.BenchFull(10000, benchNodes, "", true))
}

func BenchmarkApplyOneService10k(b *testing.B) {
	benchApplies(b, testconf.ManyServices("1", 100, 100, -1, -1, "k"), testconf.ManyServices("1", 100, 100, 42, -1, "k"))
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

// benchNodes are two ports nothing listens on: reload benchmarks serve no traffic.
var benchNodes = []string{"127.0.0.1:1", "127.0.0.1:2"}
