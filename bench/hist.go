package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram over nanoseconds, in the manner
// of HdrHistogram: values below 2^subBits are exact, larger ones fall in
// one of 2^(subBits-1) linear buckets within their power of two (under
// 1% error with subBits 7). It is a fixed array: recording never
// allocates, and histograms of several connections merge by addition.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64
}

const (
	subBits     = 7
	subCount    = 1 << subBits // exact values below this
	subHalf     = subCount / 2 // linear buckets per power of two above it
	histBuckets = subCount + 57*subHalf
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits // >= 1: v >> e is in [subHalf, subCount)
	return subCount + (e-1)*subHalf + int(v>>uint(e)) - subHalf
}

// bucketMid is the middle of bucket i, the value a percentile reports.
func bucketMid(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	i -= subCount
	e := i/subHalf + 1
	low := uint64(i%subHalf+subHalf) << uint(e)
	return low + (uint64(1)<<uint(e))/2
}

func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile returns the value at quantile q (0..1): the smallest recorded
// value that q of all values do not exceed.
func (h *hist) percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketMid(i), h.max))
		}
	}
	return time.Duration(h.max)
}
