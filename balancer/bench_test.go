package balancer

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures one first-attempt pick per policy and upstream size,
// nodes of mixed weights, every node with a health flag and an in-flight
// counter as in production.
func BenchmarkPick(b *testing.B) {
	keys := randomKeys(1 << 12)
	for _, typ := range policies {
		for _, n := range []int{2, 16, 256} {
			ws := make([]int, n)
			for i := range ws {
				ws[i] = 1 + i%3
			}
			up, refs := testUpstream(typ, weights(ws...)...)
			bal := New(up, refs)
			b.Run(fmt.Sprintf("%s/%d/serial", typ, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					bal.Pick(nil, keys[i&(len(keys)-1)])
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/%d/parallel", typ, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						bal.Pick(nil, keys[i&(len(keys)-1)])
						i++
					}
				})
			})
		}
	}
}

// BenchmarkRetry measures a first attempt and a second one with the first
// node tried, which takes the locked walk for roundrobin and a walk along the
// ring for chash.
func BenchmarkRetry(b *testing.B) {
	keys := randomKeys(1 << 12)
	for _, typ := range policies {
		for _, n := range []int{2, 16, 256} {
			ws := make([]int, n)
			for i := range ws {
				ws[i] = 1
			}
			up, refs := testUpstream(typ, weights(ws...)...)
			bal := New(up, refs)
			b.Run(fmt.Sprintf("%s/%d", typ, n), func(b *testing.B) {
				b.ReportAllocs()
				var tr Tried
				i := 0
				for b.Loop() {
					k := keys[i&(len(keys)-1)]
					i++
					tr.Reset()
					first, _ := bal.Pick(&tr, k)
					tr.Add(first)
					bal.Pick(&tr, k)
				}
			})
		}
	}
}
