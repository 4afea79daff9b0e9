package balancer

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"

	"gateway/config"
)

func randomKeys(n int) []uint64 {
	rng := rand.New(rand.NewPCG(7, 11))
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = rng.Uint64()
	}
	return keys
}

// chashHosts picks every key on b and returns the host of each pick.
func chashHosts(t *testing.T, up *config.Upstream, b Balancer, keys []uint64) []string {
	t.Helper()
	hosts := make([]string, len(keys))
	for i, k := range keys {
		idx, failOpen := b.Pick(nil, k)
		require.False(t, failOpen)
		require.GreaterOrEqual(t, idx, 0)
		hosts[i] = up.Nodes[idx].Host
	}
	return hosts
}

func ringOf(b Balancer) *chGroup { return b.(*prioritized).groups[0].(*chGroup) }

func TestHashKey(t *testing.T) {
	require.Equal(t, xxhash.Sum64String("10.0.0.1"), HashKey([]byte("10.0.0.1")))
}

func TestCHashRing(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 2, 3)...)
	g := ringOf(New(up, refs))
	require.Len(t, g.hashes, 6*pointsPerWeight)
	require.True(t, sort.SliceIsSorted(g.hashes, func(i, j int) bool { return g.hashes[i] < g.hashes[j] }))
	// The points of node 1 are xxhash64("10.0.0.2:8080#0") .. ("10.0.0.2:8080#319").
	var own []uint64
	for p, o := range g.owner {
		if o == 1 {
			own = append(own, g.hashes[p])
		}
	}
	require.Len(t, own, 2*pointsPerWeight)
	require.Contains(t, own, xxhash.Sum64String("10.0.0.2:8080#0"))
	require.Contains(t, own, xxhash.Sum64String("10.0.0.2:8080#319"))
}

// TestCHashSearch holds the table-driven search to a plain binary search,
// on rings built from weights and on rings of every small size.
func TestCHashSearch(t *testing.T) {
	var all []*ring
	for _, ws := range [][]int{{1}, {1, 1}, {1, 2, 3}, {5, 3, 1, 1, 7, 2, 2, 9}} {
		up, refs := testUpstream(config.CHash, weights(ws...)...)
		all = append(all, ringOf(New(up, refs)).ring)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for n := 1; n <= 70; n++ {
		points := make([]ringPoint, n)
		for i := range points {
			points[i].hash = rng.Uint64()
		}
		points[0].hash = 0
		if n > 1 {
			points[1].hash = ^uint64(0)
		}
		all = append(all, newRing(points))
	}
	for _, g := range all {
		keys := append(randomKeys(2000), 0, 1, ^uint64(0), ^uint64(0)-1)
		for _, h := range g.hashes {
			keys = append(keys, h, h-1, h+1)
		}
		for _, k := range keys {
			want := sort.Search(len(g.hashes), func(i int) bool { return g.hashes[i] >= k })
			if want == len(g.hashes) {
				want = 0
			}
			require.Equal(t, want, g.search(k), "ring of %d points, key %#x", len(g.hashes), k)
		}
	}
}

func TestCHashSameKeySameNode(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 1, 1, 1, 1)...)
	keys := randomKeys(10000)
	first := chashHosts(t, up, New(up, refs), keys)
	require.Equal(t, first, chashHosts(t, up, New(up, refs), keys), "a rebuilt ring maps keys alike")
	b := New(up, refs)
	for range 3 {
		require.Equal(t, first, chashHosts(t, up, b, keys))
	}
}

// moved counts keys whose host differs, requiring that every key that moved
// was on from (when from != "") and went to to (when to != "").
func moved(t *testing.T, before, after []string, from, to string) int {
	t.Helper()
	n := 0
	for i := range before {
		if before[i] == after[i] {
			require.NotEqual(t, from, after[i], "key %d stayed on the node that left", i)
			continue
		}
		n++
		if from != "" {
			require.Equal(t, from, before[i], "key %d moved off a node that stayed", i)
		}
		if to != "" {
			require.Equal(t, to, after[i], "key %d moved to a node that was there before", i)
		}
	}
	return n
}

func TestCHashRemoveNode(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 1, 1, 1, 1)...)
	keys := randomKeys(10000)
	before := chashHosts(t, up, New(up, refs), keys)

	smaller := *up
	smaller.Nodes = append(append([]config.Node{}, up.Nodes[:2]...), up.Nodes[3:]...)
	after := chashHosts(t, &smaller, New(&smaller, nil), keys)

	onRemoved := 0
	for _, h := range before {
		if h == hostName(2) {
			onRemoved++
		}
	}
	require.Equal(t, onRemoved, moved(t, before, after, hostName(2), ""), "exactly the keys of n2 move")
}

func TestCHashDownNode(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 1, 1, 1, 1)...)
	keys := randomKeys(10000)
	b := New(up, refs)
	before := chashHosts(t, up, b, keys)

	refs[2].Down.Store(true)
	down := chashHosts(t, up, b, keys)
	n := moved(t, before, down, hostName(2), "")
	require.InDelta(t, 0.2, float64(n)/float64(len(keys)), 0.05)

	// The same as if n2 were not on the ring at all.
	smaller := *up
	smaller.Nodes = append(append([]config.Node{}, up.Nodes[:2]...), up.Nodes[3:]...)
	require.Equal(t, chashHosts(t, &smaller, New(&smaller, nil), keys), down)

	refs[2].Down.Store(false)
	require.Equal(t, before, chashHosts(t, up, b, keys), "keys come back when n2 does")
}

func TestCHashAddNode(t *testing.T) {
	up5, refs5 := testUpstream(config.CHash, weights(1, 1, 1, 1, 1)...)
	up6, refs6 := testUpstream(config.CHash, weights(1, 1, 1, 1, 1, 1)...)
	keys := randomKeys(10000)
	before := chashHosts(t, up5, New(up5, refs5), keys)
	after := chashHosts(t, up6, New(up6, refs6), keys)
	n := moved(t, before, after, "", hostName(5))
	require.InDelta(t, 1.0/6, float64(n)/float64(len(keys)), 0.04)
}

func TestCHashShares(t *testing.T) {
	for _, ws := range [][]int{{1, 2, 3}, {1, 1, 1, 1}, {5, 1}, {300, 200, 100}} {
		up, refs := testUpstream(config.CHash, weights(ws...)...)
		keys := randomKeys(10000)
		counts := map[string]int{}
		for _, h := range chashHosts(t, up, New(up, refs), keys) {
			counts[h]++
		}
		sum := 0
		for _, w := range ws {
			sum += w
		}
		for i, w := range ws {
			share := float64(counts[up.Nodes[i].Host]) / float64(len(keys))
			want := float64(w) / float64(sum)
			// Within 5 percentage points. With 160 points per unit of weight
			// an arc's share itself varies by about 1/sqrt(160) = 8% of
			// the node's share, so a relative bound would test the hosts'
			// luck, not the ring.
			require.InDelta(t, want, share, 0.05, "weights %v node %d: share %.4f want %.4f", ws, i, share, want)
			t.Logf("weights %v node %d: share %.4f want %.4f", ws, i, share, want)
		}
	}
}

func TestCHashTriedWalksClockwise(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 2, 1, 3, 1)...)
	b := New(up, refs)
	g := ringOf(b)
	// nextDistinct walks the ring from point p to the first node not in skip.
	nextDistinct := func(p int, skip map[int]bool) int {
		for {
			if idx := g.nodes[g.owner[p]].idx; !skip[idx] {
				return idx
			}
			p = (p + 1) % len(g.hashes)
		}
	}
	for _, k := range randomKeys(2000) {
		p := g.search(k)
		var tr Tried
		skip := map[int]bool{}
		for range len(up.Nodes) {
			idx, failOpen := b.Pick(&tr, k)
			require.False(t, failOpen)
			require.Equal(t, nextDistinct(p, skip), idx)
			tr.Add(idx)
			skip[idx] = true
		}
		idx, _ := b.Pick(&tr, k)
		require.Equal(t, -1, idx)
	}
}

func TestCHashGCD(t *testing.T) {
	for _, pair := range [][2][]int{
		{{100, 100, 100}, {1, 1, 1}},
		{{2, 4, 6}, {1, 2, 3}},
		{{65535}, {1}},
	} {
		upA, _ := testUpstream(config.CHash, weights(pair[0]...)...)
		upB, _ := testUpstream(config.CHash, weights(pair[1]...)...)
		a, b := ringOf(New(upA, nil)), ringOf(New(upB, nil))
		require.Equal(t, b.hashes, a.hashes)
		require.Equal(t, b.owner, a.owner)
	}
}

func TestCHashPointCap(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(65535, 1, 65534)...)
	g := ringOf(New(up, refs))
	require.LessOrEqual(t, len(g.hashes), maxPoints)
	counts := make([]int, 3)
	for _, o := range g.owner {
		counts[o]++
	}
	require.Equal(t, 1, counts[1], "the lightest node keeps a point")
	require.InEpsilon(t, counts[0], counts[2], 0.001)
}

func TestCHashPriorityRings(t *testing.T) {
	up, refs := testUpstream(config.CHash,
		testNode{weight: 1}, testNode{weight: 1},
		testNode{weight: 1, priority: -1}, testNode{weight: 1, priority: -1})
	b := New(up, refs)
	keys := randomKeys(1000)
	refs[0].Down.Store(true)
	refs[1].Down.Store(true)
	got := chashHosts(t, up, b, keys)

	// The backups' ring is the ring of an upstream of only the backups.
	backups := *up
	backups.Nodes = up.Nodes[2:]
	require.Equal(t, chashHosts(t, &backups, New(&backups, nil), keys), got)
}

func TestCHashSharedRings(t *testing.T) {
	up, refs := testUpstream(config.CHash, weights(1, 2, 3)...)
	a, b := ringOf(New(up, refs)), ringOf(New(up, nil))
	require.Same(t, a.ring, b.ring, "the same nodes share a ring")
	require.NotSame(t, a, b, "but not their health")

	same, _ := testUpstream(config.CHash, weights(10, 20, 30)...)
	require.Same(t, a.ring, ringOf(New(same, nil)).ring, "weights reduced alike give the same points")

	other, _ := testUpstream(config.CHash, weights(1, 2, 4)...)
	require.NotSame(t, a.ring, ringOf(New(other, nil)).ring)

	moved := *up
	moved.Nodes = slices.Clone(up.Nodes)
	moved.Nodes[1].Port = 8081
	require.NotSame(t, a.ring, ringOf(New(&moved, nil)).ring)
}

func TestCHashRingsCollected(t *testing.T) {
	up, _ := testUpstream(config.CHash, weights(1, 1)...)
	up.Nodes[0].Host = "collected.example"
	New(up, nil)
	key := "collected.example:8080*160\n10.0.0.2:8080*160\n"
	rings.Lock()
	_, ok := rings.m[key]
	rings.Unlock()
	require.True(t, ok)
	require.Eventually(t, func() bool {
		runtime.GC()
		rings.Lock()
		defer rings.Unlock()
		_, ok := rings.m[key]
		return !ok
	}, 5*time.Second, 10*time.Millisecond)
}
