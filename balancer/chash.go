package balancer

import (
	"cmp"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/cespare/xxhash/v2"
)

const (
	// pointsPerWeight is the number of ring points per unit of weight, after
	// the weights are divided by their GCD (nginx and APISIX use 160).
	pointsPerWeight = 160
	// maxPoints caps a ring at what 1024 nodes of equal weight need. With
	// uneven weights the sum of the reduced weights can be huge (1 and 65535
	// are coprime): then every node gets points in proportion to its reduced
	// weight out of maxPoints (at least one), which keeps the shares and
	// bounds a ring at ~2 MiB, but means that adding or removing a node of
	// such a ring may also move some keys between the other nodes.
	maxPoints = pointsPerWeight * MaxNodes
	// pointsPerBucket is the mean number of points per lookup table bucket:
	// a bucket's points share a cache line or two, and the table costs a
	// byte per point.
	pointsPerBucket = 4
)

// HashKey is the hash of a chash key that Pick expects.
func HashKey(b []byte) uint64 { return xxhash.Sum64(b) }

// chGroup is a consistent hash ring over one priority group: the group's
// nodes (health, index in up.Nodes) and the ring, which is immutable and
// shared with every group of the same nodes and weights (see sharedRing).
type chGroup struct {
	*ring
	nodes []chNode
}

type chNode struct {
	health
	idx int
}

// ring is a sorted slice of point hashes with the node of each point in a
// parallel slice. To find the first point at or after a key without a binary
// search over up to 160k points (a cache miss per step), lut maps the top
// bits of a hash to the first point with those top bits; with a few points
// per bucket the search is a table load and a short scan.
type ring struct {
	hashes []uint64 // sorted ascending
	owner  []uint16 // owner[p] is the index in chGroup.nodes of point p
	lut    []uint32 // lut[k]: first p with hashes[p]>>shift >= k; len 1<<(64-shift) + 1
	shift  uint
}

type ringPoint struct {
	hash  uint64
	owner uint16
}

func newCHashGroup(members []member) *chGroup {
	g := &chGroup{nodes: make([]chNode, len(members))}
	for i, m := range members {
		g.nodes[i] = chNode{health: health{m.down}, idx: m.idx}
	}
	g.ring = sharedRing(members)
	return g
}

// ringPoints returns how many points each member gets.
func ringPoints(members []member) []int {
	d, units := gcd(members), 0
	for _, m := range members {
		units += m.weight / d
	}
	points := make([]int, len(members))
	for i, m := range members {
		if units*pointsPerWeight <= maxPoints {
			points[i] = m.weight / d * pointsPerWeight
		} else {
			points[i] = max(1, m.weight/d*maxPoints/units)
		}
	}
	return points
}

// rings holds every ring that is alive, by its nodes and their points, so
// that upstreams with the same nodes (many services in front of the same
// backends, and every upstream again at each reload) share one ring instead
// of each hashing and keeping its own. Entries go when their ring is
// collected. The lock is only taken by New.
var rings = struct {
	sync.Mutex
	m map[string]weak.Pointer[ring]
}{m: map[string]weak.Pointer[ring]{}}

// sharedRing returns the ring of members, from rings when it is alive.
func sharedRing(members []member) *ring {
	points := ringPoints(members)
	var key strings.Builder
	for i, m := range members {
		key.WriteString(m.host)
		key.WriteByte(':')
		key.WriteString(strconv.Itoa(m.port))
		key.WriteByte('*')
		key.WriteString(strconv.Itoa(points[i]))
		key.WriteByte('\n') // a host cannot hold a newline
	}
	k := key.String()

	rings.Lock()
	r := rings.m[k].Value()
	rings.Unlock()
	if r != nil {
		return r
	}
	r = buildRing(members, points)

	rings.Lock()
	defer rings.Unlock()
	if old := rings.m[k].Value(); old != nil {
		return old // built meanwhile by another New
	}
	rings.m[k] = weak.Make(r)
	runtime.AddCleanup(r, func(k string) {
		rings.Lock()
		defer rings.Unlock()
		if rings.m[k].Value() == nil { // not replaced by a newer ring
			delete(rings.m, k)
		}
	}, k)
	return r
}

func buildRing(members []member, counts []int) *ring {
	total := 0
	for _, n := range counts {
		total += n
	}
	points := make([]ringPoint, 0, total)
	buf := make([]byte, 0, 64)
	for o, m := range members {
		// Points are named host:port#i so that a node keeps its points
		// whatever the other nodes are or where it sits in the list.
		buf = strconv.AppendInt(append(append(buf[:0], m.host...), ':'), int64(m.port), 10)
		buf = append(buf, '#')
		base := len(buf)
		for i := range counts[o] {
			buf = strconv.AppendInt(buf[:base], int64(i), 10)
			points = append(points, ringPoint{hash: xxhash.Sum64(buf), owner: uint16(o)})
		}
	}
	return newRing(points)
}

// newRing sorts the points into a ring and builds its lookup table.
func newRing(points []ringPoint) *ring {
	// Equal hashes of different nodes are ordered by node so that the ring
	// does not depend on the sort's whims.
	slices.SortFunc(points, func(a, b ringPoint) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.owner, b.owner))
	})
	r := &ring{hashes: make([]uint64, len(points)), owner: make([]uint16, len(points))}
	for p, pt := range points {
		r.hashes[p], r.owner[p] = pt.hash, pt.owner
	}

	b := bits.Len(uint(len(points)-1) / pointsPerBucket) // at most pointsPerBucket points a bucket on average
	r.shift = uint(64 - b)                               // b == 0: h>>64 is 0 in Go, one bucket
	r.lut = make([]uint32, 1<<b+1)
	p := 0
	for k := range r.lut {
		for p < len(r.hashes) && r.hashes[p]>>r.shift < uint64(k) {
			p++
		}
		r.lut[k] = uint32(p)
	}
	return r
}

// search returns the first point whose hash is >= h, wrapping around to the
// first point of the ring.
func (r *ring) search(h uint64) int {
	k := h >> r.shift // points before lut[k] are < h, points from lut[k+1] on are > h
	lo, hi := int(r.lut[k]), int(r.lut[k+1])
	for p := lo; p < hi; p++ {
		if r.hashes[p] >= h {
			return p
		}
	}
	if hi == len(r.hashes) {
		return 0
	}
	return hi
}

// walkFirst is how many points a pick walks clockwise before it checks that
// the group has a node that can take the key at all: the next usable node is
// nearly always a few points on, and the check is O(n).
const walkFirst = 64

func (g *chGroup) pick(t *Tried, hash uint64, ignoreHealth bool) (int, bool) {
	p := g.search(hash)
	n := &g.nodes[g.owner[p]]
	if (ignoreHealth || n.healthy()) && !t.Has(n.idx) {
		return n.idx, true
	}
	// The key's node is down or tried: on clockwise to the next point of a
	// node that can take the key, the node the key would reach if the
	// unusable nodes were not on the ring at all.
	for steps := 1; ; steps++ {
		if steps == walkFirst {
			// Far enough to make sure the walk will end: the group may
			// have no usable node.
			healthy, found := false, false
			for i := range g.nodes {
				h := g.nodes[i].healthy()
				healthy = healthy || h
				found = found || ((ignoreHealth || h) && !t.Has(g.nodes[i].idx))
			}
			if !found {
				return -1, healthy
			}
		}
		if p++; p == len(g.hashes) {
			p = 0
		}
		n = &g.nodes[g.owner[p]]
		if (ignoreHealth || n.healthy()) && !t.Has(n.idx) {
			return n.idx, true
		}
	}
}
