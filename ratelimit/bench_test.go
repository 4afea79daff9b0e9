package ratelimit

import (
	"sync/atomic"
	"testing"
	"time"
)

// Limits high enough that benchmarks measure admission, not rejection.
const benchLimit = 1 << 31

// benchNow is half-way through an hour window, so sliding counters weigh
// half of the previous window's count (see warm).
var benchNow = t0.Add(30 * time.Minute)

func benchLimiters(kind Window) []*Limiter {
	ls := make([]*Limiter, 4)
	for i := range ls {
		ls[i] = NewLimiter(benchLimit, time.Hour, kind)
	}
	return ls
}

// benchChecks returns a check per limiter with keys derived from seed,
// counted once in the previous window so that a sliding counter computes
// its weighted estimate on every check.
func benchChecks(ls []*Limiter, seed uint64) []Check {
	checks := make([]Check, len(ls))
	for i, l := range ls {
		checks[i] = Check{L: l, Key: Mix(seed<<8 | uint64(i))}
	}
	Admit(benchNow.Add(-time.Hour), checks)
	return checks
}

func BenchmarkAdmit(b *testing.B) {
	now := benchNow
	for _, bc := range []struct {
		name     string
		counters int
		kind     Window
	}{
		{"1counter", 1, Fixed},
		{"1counter-sliding", 1, Sliding},
		{"4counters", 4, Fixed},
		{"4counters-sliding", 4, Sliding},
	} {
		ls := benchLimiters(bc.kind)[:bc.counters]
		b.Run(bc.name+"/serial", func(b *testing.B) {
			checks := benchChecks(ls, 0)
			b.ReportAllocs()
			for b.Loop() {
				Admit(now, checks)
			}
		})
		// Each goroutine on its own keys: the uncontended parallel case.
		var seq atomic.Uint64
		b.Run(bc.name+"/parallel-keys", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				checks := benchChecks(ls, seq.Add(1))
				for pb.Next() {
					Admit(now, checks)
				}
			})
		})
		// Everybody on the same keys: one shard lock per counter, contended.
		b.Run(bc.name+"/parallel-samekey", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				checks := benchChecks(ls, 0)
				for pb.Next() {
					Admit(now, checks)
				}
			})
		})
	}
}

// BenchmarkAdmitManyKeys spreads checks over 100,000 keys (client IPs), so
// table lookups miss the CPU caches as they would in production.
func BenchmarkAdmitManyKeys(b *testing.B) {
	l := NewLimiter(benchLimit, time.Hour, Fixed)
	keys := make([]uint64, 100_000)
	for i := range keys {
		keys[i] = Mix(uint64(i))
	}
	now := benchNow
	checks := []Check{{L: l}}
	for _, k := range keys { // insert them all before timing: steady state
		checks[0].Key = k
		Admit(now, checks)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		checks[0].Key = keys[i]
		Admit(now, checks)
		i++
		if i == len(keys) {
			i = 0
		}
	}
}

// BenchmarkLimiterAdmit is one counter's check (limit-count's).
func BenchmarkLimiterAdmit(b *testing.B) {
	l := NewLimiter(benchLimit, time.Hour, Fixed)
	now := benchNow
	b.ReportAllocs()
	for b.Loop() {
		l.Admit(now, 12345)
	}
}
