package balancer

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestRoundRobinSequence(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 1, 1)...)
	b := New(up, refs)
	require.Equal(t, strings.Repeat("aabacaa", 10), pickSeq(t, b, 70))
}

// TestRoundRobinWalkSequence holds the locked walk (used when the cycle is
// too long to precompute, on retries and failing open) to the same exact
// sequence as the schedule.
func TestRoundRobinWalkSequence(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 1, 1)...)
	g := New(up, refs).(*prioritized).groups[0].(*rrGroup)
	g.sched.Store(nil)
	require.Equal(t, strings.Repeat("aabacaa", 10), pickSeq(t, g.asBalancer(), 70))
}

func (g *rrGroup) asBalancer() Balancer { return &prioritized{groups: []group{g}} }

func TestRoundRobinWindows(t *testing.T) {
	for _, ws := range [][]int{
		{1},
		{1, 1},
		{3, 7, 1, 4, 2},
		{100, 300, 200},      // GCD 100: a cycle of 6
		{9999, 7001, 3},      // too long to precompute: the walk
		{maxSchedule - 1, 1}, // the longest precomputed cycle
	} {
		up, refs := testUpstream(config.RoundRobin, weights(ws...)...)
		b := New(up, refs)
		d := gcdInts(ws)
		precomputed := b.(*prioritized).groups[0].(*rrGroup).sched.Load() != nil
		require.Equal(t, len(ws) != 3 || ws[0] != 9999, precomputed, "weights %v", ws)
		reduced := make([]int, len(ws))
		sum := 0
		for i, w := range ws {
			reduced[i] = w / d
			sum += w / d
		}
		requireWindows(t, pickSeq(t, b, 3*sum), reduced)
	}
}

func TestRoundRobinWeightZero(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(2, 0, 1)...)
	b := New(up, refs)
	require.Equal(t, strings.Repeat("aca", 50), pickSeq(t, b, 150))
}

func TestRoundRobinDownSkipped(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 1, 1)...)
	b := New(up, refs)
	require.Equal(t, "aab", pickSeq(t, b, 3)) // stop mid-cycle

	// The cycle goes on until it reaches c, then starts over as nginx's
	// smooth sequence over a and b.
	refs[2].Down.Store(true)
	seq := pickSeq(t, b, 1+6*20)
	require.Equal(t, "a"+strings.Repeat("aaabaa", 20), seq)
	requireWindows(t, seq[1:], []int{5, 1})

	// The next pick sees c back and starts the full cycle over.
	refs[2].Down.Store(false)
	require.Equal(t, strings.Repeat("aabacaa", 20), pickSeq(t, b, 7*20))
}

func TestRoundRobinDownAtStart(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(3, 2, 4, 1)...)
	refs[1].Down.Store(true)
	b := New(up, refs)
	seq := pickSeq(t, b, 8*20)
	require.NotContains(t, seq, "b")
	requireWindows(t, strings.NewReplacer("c", "b", "d", "c").Replace(seq), []int{3, 4, 1})
}

// TestRoundRobinComingBack checks that a node that comes back is seen within
// as many picks as there are down nodes, and picked from the next cycle on.
func TestRoundRobinComingBack(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(1, 1, 1, 1)...)
	b := New(up, refs)
	for i := 1; i < 4; i++ {
		refs[i].Down.Store(true)
	}
	require.Equal(t, "aaaaaa", pickSeq(t, b, 6))
	refs[2].Down.Store(false)
	seq := pickSeq(t, b, 3+10)
	require.Contains(t, seq[:4], "c")
	requireWindows(t, strings.ReplaceAll(seq[3:], "c", "b"), []int{1, 1})
}

func TestRoundRobinTried(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 1, 1)...)
	b := New(up, refs)
	pick := func(tried ...int) int {
		var tr Tried
		for _, i := range tried {
			tr.Add(i)
		}
		idx, failOpen := b.Pick(&tr, 0)
		require.False(t, failOpen)
		return idx
	}
	var got []int
	for range 6 {
		got = append(got, pick(0))
	}
	require.Equal(t, []int{1, 2, 1, 2, 1, 2}, got)
	require.Equal(t, 2, pick(0, 1))
	require.Equal(t, 0, pick(1, 2))
	require.Equal(t, -1, pick(0, 1, 2))

	// Retries do not disturb the first attempts' cycle.
	require.Equal(t, strings.Repeat("aabacaa", 3), pickSeq(t, b, 21))
}

func TestRoundRobinConcurrent(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 1, 1)...)
	b := New(up, refs)
	const workers, picks = 8, 7 * 1000
	counts := make([][3]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range picks {
				idx, _ := b.Pick(nil, 0)
				counts[w][idx]++
			}
		})
	}
	wg.Wait()
	var total [3]int
	for _, c := range counts {
		for i, n := range c {
			total[i] += n
		}
	}
	// Every pick took one slot of the cycle: shares are exact.
	require.Equal(t, [3]int{5 * workers * 1000, workers * 1000, workers * 1000}, total)
}

// TestRoundRobinConcurrentHealthChanges runs the schedule and the walk at
// once, with health flapping, under -race.
func TestRoundRobinConcurrentHealthChanges(t *testing.T) {
	up, refs := testUpstream(config.RoundRobin, weights(5, 0, 1, 3)...)
	b := New(up, refs)
	stop := make(chan struct{})
	var flapper sync.WaitGroup
	flapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			refs[i%4].Down.Store(i%3 == 0)
		}
	})
	var pickers sync.WaitGroup
	var bad atomic.Int64
	for w := range 4 {
		pickers.Go(func() {
			var tr Tried
			for i := range 20000 {
				tr.Reset()
				if (i+w)%5 == 0 {
					tr.Add(0)
				}
				idx, _ := b.Pick(&tr, 0)
				// -1 is right when node 0 was tried and 2 and 3 are down: a
				// healthy node exists, so the pick does not fail open.
				ok := idx == 0 || idx == 2 || idx == 3 || idx == -1 && tr.Len() > 0
				if !ok || tr.Has(idx) {
					bad.Add(1)
				}
			}
		})
	}
	pickers.Wait()
	close(stop)
	flapper.Wait()
	require.Zero(t, bad.Load())
}
