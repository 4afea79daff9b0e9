package balancer

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestLeastConnFewestInFlight(t *testing.T) {
	up, refs := testUpstream(config.LeastConn, weights(1, 1, 1)...)
	b := New(up, refs)
	refs[0].InFlight.Store(5)
	refs[1].InFlight.Store(2)
	refs[2].InFlight.Store(7)
	for range 10 {
		idx, failOpen := b.Pick(nil, 0)
		require.False(t, failOpen)
		require.Equal(t, 1, idx)
	}
}

func TestLeastConnWeighted(t *testing.T) {
	up, refs := testUpstream(config.LeastConn, weights(1, 3)...)
	b := New(up, refs)

	refs[0].InFlight.Store(2) // (2+1)/1 = 3
	refs[1].InFlight.Store(5) // (5+1)/3 = 2
	require.Equal(t, "bbbb", pickSeq(t, b, 4))

	refs[1].InFlight.Store(9) // (9+1)/3 = 3.33
	require.Equal(t, "aaaa", pickSeq(t, b, 4))

	refs[0].InFlight.Store(1) // (1+1)/1 = 2
	refs[1].InFlight.Store(5) // (5+1)/3 = 2: a tie
	require.ElementsMatch(t, []byte("aabb"), []byte(pickSeq(t, b, 4)))

	// Idle, the heavier node takes three times the requests before the
	// lighter one is as loaded.
	refs[0].InFlight.Store(0)
	refs[1].InFlight.Store(0)
	counts := map[int]int{}
	for range 40 {
		idx, _ := b.Pick(nil, 0)
		refs[idx].InFlight.Add(1) // requests that never finish
		counts[idx]++
	}
	require.Equal(t, map[int]int{0: 10, 1: 30}, counts)
}

func TestLeastConnTiesRoundRobin(t *testing.T) {
	up, refs := testUpstream(config.LeastConn, weights(1, 1, 1, 1)...)
	b := New(up, refs)
	require.Equal(t, "abcdabcdabcd", pickSeq(t, b, 12))

	refs[3].InFlight.Store(1)
	seq := pickSeq(t, b, 9)
	require.NotContains(t, seq, "d")
	for _, c := range "abc" {
		require.Equal(t, 3, countByte(seq, byte(c)), seq)
	}
}

func countByte(s string, c byte) int {
	n := 0
	for i := range len(s) {
		if s[i] == c {
			n++
		}
	}
	return n
}

func TestLeastConnDownAndTried(t *testing.T) {
	up, refs := testUpstream(config.LeastConn, weights(1, 1, 1)...)
	b := New(up, refs)
	refs[0].InFlight.Store(0)
	refs[1].InFlight.Store(3)
	refs[2].InFlight.Store(4)
	refs[0].Down.Store(true)
	require.Equal(t, "bbb", pickSeq(t, b, 3))

	var tr Tried
	tr.Add(1)
	idx, _ := b.Pick(&tr, 0)
	require.Equal(t, 2, idx)
	tr.Add(2)
	idx, _ = b.Pick(&tr, 0)
	require.Equal(t, -1, idx)

	refs[0].InFlight.Store(-3) // a bookkeeping bug does not make a node look idler than idle
	refs[0].Down.Store(false)
	refs[1].InFlight.Store(0)
	seq := pickSeq(t, b, 4)
	require.Equal(t, 2, countByte(seq, 'a'), seq)
	require.Equal(t, 2, countByte(seq, 'b'), seq)
}

// TestLeastConnConcurrent uses the balancer as the proxy does: count the
// attempt in flight, then release it.
func TestLeastConnConcurrent(t *testing.T) {
	up, refs := testUpstream(config.LeastConn, weights(1, 2, 3)...)
	b := New(up, refs)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5000 {
				idx, _ := b.Pick(nil, 0)
				refs[idx].InFlight.Add(1)
				refs[idx].InFlight.Add(-1)
			}
		})
	}
	wg.Wait()
	for _, r := range refs {
		require.Zero(t, r.InFlight.Load())
	}
}
