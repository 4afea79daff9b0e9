package balancer

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

var policies = []config.BalancerType{config.RoundRobin, config.CHash, config.LeastConn}

func TestTried(t *testing.T) {
	var tr Tried
	require.Equal(t, 0, tr.Len())
	for _, i := range []int{0, 63, 64, 500, MaxNodes - 1} {
		require.False(t, tr.Has(i))
		tr.Add(i)
		tr.Add(i)
		require.True(t, tr.Has(i))
	}
	require.Equal(t, 5, tr.Len())
	require.False(t, tr.Has(1))
	require.False(t, tr.Has(65))

	tr.Add(-1)
	tr.Add(MaxNodes)
	require.False(t, tr.Has(-1))
	require.False(t, tr.Has(MaxNodes))
	require.Equal(t, 5, tr.Len())

	tr.Reset()
	require.Equal(t, 0, tr.Len())
	require.False(t, tr.Has(500))

	var nilTried *Tried
	require.False(t, nilTried.Has(0))
	require.Equal(t, 0, nilTried.Len())
}

// countPicks picks n times with random hashes and a fresh Tried holding
// tried, and counts the picks per node. It requires failOpen to be want.
func countPicks(t *testing.T, b Balancer, n int, wantFailOpen bool, tried ...int) map[int]int {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[int]int{}
	for range n {
		var tr Tried
		for _, i := range tried {
			tr.Add(i)
		}
		idx, failOpen := b.Pick(&tr, rng.Uint64())
		require.Equal(t, wantFailOpen, failOpen)
		counts[idx]++
	}
	return counts
}

func TestPriorityGroups(t *testing.T) {
	for _, typ := range policies {
		t.Run(string(typ), func(t *testing.T) {
			// 0, 1 primaries; 2, 3 backups; 4 a drained node of the highest
			// priority, which must not count as that group having a node.
			up, refs := testUpstream(typ,
				testNode{weight: 1}, testNode{weight: 1},
				testNode{weight: 1, priority: -1}, testNode{weight: 1, priority: -1},
				testNode{weight: 0, priority: 5})
			b := New(up, refs)

			c := countPicks(t, b, 1000, false)
			require.Len(t, c, 2, "backups get nothing while a primary is available")
			require.Positive(t, c[0])
			require.Positive(t, c[1])

			refs[0].Down.Store(true)
			require.Equal(t, map[int]int{1: 1000}, countPicks(t, b, 1000, false))

			refs[1].Down.Store(true)
			c = countPicks(t, b, 1000, false)
			require.Len(t, c, 2, "all primaries down: backups get everything")
			require.Positive(t, c[2])
			require.Positive(t, c[3])

			refs[0].Down.Store(false)
			refs[1].Down.Store(false)
			c = countPicks(t, b, 1000, false, 0, 1)
			require.Len(t, c, 2, "a retry moves to the backups once the primaries were tried")
			require.Positive(t, c[2])
			require.Positive(t, c[3])

			c = countPicks(t, b, 100, false, 0, 1, 2)
			require.Equal(t, map[int]int{3: 100}, c)

			require.Equal(t, map[int]int{-1: 10}, countPicks(t, b, 10, false, 0, 1, 2, 3),
				"every available node tried")

			// A healthy backup that was tried and down primaries: all
			// candidates tried, but a healthy node exists, so no fail-open.
			refs[0].Down.Store(true)
			refs[1].Down.Store(true)
			refs[3].Down.Store(true)
			require.Equal(t, map[int]int{-1: 10}, countPicks(t, b, 10, false, 2))
		})
	}
}

func TestFailOpen(t *testing.T) {
	for _, typ := range policies {
		t.Run(string(typ), func(t *testing.T) {
			up, refs := testUpstream(typ, weights(1, 1, 0, 1)...)
			b := New(up, refs)
			for _, r := range refs {
				r.Down.Store(true)
			}
			c := countPicks(t, b, 3000, true)
			require.Len(t, c, 3, "every node with weight > 0 is used, weight 0 never: %v", c)
			require.Zero(t, c[2])

			c = countPicks(t, b, 100, true, 0, 1)
			require.Equal(t, map[int]int{3: 100}, c)
			require.Equal(t, map[int]int{-1: 10}, countPicks(t, b, 10, false, 0, 1, 3))

			// One node healthy again: no more fail-open.
			refs[1].Down.Store(false)
			require.Equal(t, map[int]int{1: 100}, countPicks(t, b, 100, false))
		})
	}
}

func TestFailOpenKeepsPriority(t *testing.T) {
	for _, typ := range policies {
		t.Run(string(typ), func(t *testing.T) {
			up, refs := testUpstream(typ,
				testNode{weight: 1}, testNode{weight: 1},
				testNode{weight: 1, priority: -1})
			b := New(up, refs)
			for _, r := range refs {
				r.Down.Store(true)
			}
			// As if all were healthy: primaries first, the backup on retry.
			c := countPicks(t, b, 1000, true)
			require.Len(t, c, 2)
			require.Zero(t, c[2])
			require.Equal(t, map[int]int{2: 10}, countPicks(t, b, 10, true, 0, 1))
		})
	}
}

func TestOnlyDrainedNodes(t *testing.T) {
	for _, typ := range policies {
		up, refs := testUpstream(typ, weights(0, 0)...)
		idx, failOpen := New(up, refs).Pick(nil, 1)
		require.Equal(t, -1, idx, typ)
		require.False(t, failOpen, typ)
	}
}

func TestNilRefs(t *testing.T) {
	for _, typ := range policies {
		up, _ := testUpstream(typ, weights(1, 1, 1)...)
		b := New(up, nil)
		seen := map[int]bool{}
		for i := range 300 {
			idx, failOpen := b.Pick(nil, uint64(i)*0x9e3779b97f4a7c15)
			require.False(t, failOpen)
			seen[idx] = true
		}
		require.Len(t, seen, 3, typ)
	}
}

func TestPickAllocs(t *testing.T) {
	for _, typ := range policies {
		up, refs := testUpstream(typ, weights(1, 2, 3, 4)...)
		b := New(up, refs)
		refs[1].Down.Store(true) // exercise the slow paths too
		var tr Tried
		tr.Add(2)
		allocs := testing.AllocsPerRun(100, func() {
			b.Pick(nil, 12345)
			b.Pick(&tr, 12345)
		})
		require.Zero(t, allocs, typ)
	}
}
