package config

import (
	"syscall"
	"testing"

	"gateway/internal/testconf"
)

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
	benchReloadDocs(b, l.Parse, benchConfig(10000), testconf.BenchFull(10000, benchNodes, "", true))
}

func BenchmarkParseReload10k(b *testing.B) {
	benchReloadDocs(b, Parse, benchConfig(10000), testconf.BenchFull(10000, benchNodes, "", true))
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

var benchNodes = []string{"127.0.0.1:1", "127.0.0.1:2"}

// benchConfig is testconf.BenchFull on two unused ports.
func benchConfig(routes int) string { return testconf.BenchFull(routes, benchNodes, "", false) }
