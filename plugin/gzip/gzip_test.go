package gzip

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                          false,
		"gzip":                      true,
		"GZIP":                      true,
		"deflate, gzip;q=0.5":       true,
		"br, x-gzip":                true,
		"*":                         true,
		"gzip;q=0":                  false,
		"gzip; q=0.000, br":         false,
		"gzip;q=0.001":              true,
		"br":                        false,
		"gzipx, xgzip, identity":    false,
		"deflate;q=0, *;q=0, gzip2": false,
	} {
		require.Equal(t, want, acceptsGzip([]byte(ae)), ae)
	}
}

func TestAcceptsBrotli(t *testing.T) {
	for ae, want := range map[string]bool{
		"":              false,
		"br":            true,
		"gzip, BR;q=1":  true,
		"br;q=0, gzip":  false,
		"*":             false,
		"brotli, x-br":  false,
		"gzip;q=0.5,br": true,
	} {
		require.Equal(t, want, acceptsBrotli([]byte(ae)), ae)
	}
}

// BenchmarkGzip reports the CPU cost of gzipping a JSON body at levels 1,
// 5 and 9, and of brotli at 1, 4 and 6: the body is 1 MiB, so ns/op is the cost per MiB (and MB/s the
// throughput of one core).
func BenchmarkGzip(b *testing.B) {
	// API-like JSON: repeated keys, varying values.
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "beta", "gamma", "delta", "order", "user", "shipped", "pending", "north", "south", "blue", "green"}
	var body bytes.Buffer
	for i := 0; body.Len() < 1<<20; i++ {
		fmt.Fprintf(&body, `{"id":%d,"name":"%s %s","tags":["%s","%s"],"price":%d.%02d,"stock":%d,"ref":"%016x"},`,
			i, words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))],
			rng.IntN(1000), rng.IntN(100), rng.IntN(10000), rng.Uint64())
	}
	src := body.Bytes()[:1<<20]
	type run struct {
		name string
		pool *writerPool
	}
	var runs []run
	for _, level := range []int{1, 5, 9} {
		runs = append(runs, run{fmt.Sprintf("gzip-level%d-1MiB-json", level), &writerPools[level]})
	}
	for _, level := range []int{1, 4, 6} {
		runs = append(runs, run{fmt.Sprintf("brotli-level%d-1MiB-json", level), brotliPool(level, 19)})
	}
	for _, rn := range runs {
		b.Run(rn.name, func(b *testing.B) {
			o := &out{}
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if err := o.compress(src, rn.pool); err != nil {
					b.Fatal(err)
				}
			}
			// Process CPU time, not wall time: other processes on the
			// machine do not inflate it.
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/MiB")
			b.ReportMetric(float64(len(o.b))/float64(len(src)), "ratio")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
