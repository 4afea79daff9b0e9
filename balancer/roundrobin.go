package balancer

import (
	"sync"
	"sync/atomic"
)

const (
	// maxSchedule bounds a precomputed cycle of a round robin group (2 bytes
	// an entry, so at most 32 KiB per group).
	maxSchedule = 1 << 14
	// maxScheduleWork bounds the steps (entries x nodes) of computing one,
	// which happens at New and again whenever the group's health changes.
	maxScheduleWork = 1 << 20
)

// rrGroup is nginx's smooth weighted round robin over one priority group.
//
// The algorithm (walk) is O(n) per pick and keeps per-node state, so it runs
// under the group's mutex. To keep the common case at a few nanoseconds
// whatever n, the sequence the walk produces from zero state over the
// healthy nodes is precomputed for one full cycle (it repeats exactly after
// sum(weights) picks), and a first attempt is an atomic counter into that
// schedule: lock-free and O(1).
//
// Reading every node's health flag on each pick would itself be O(n), so a
// pick checks only the node it is about to return, plus one of the nodes the
// schedule left out because they were down (a different one each pick).
// When either shows that health changed, the schedule is rebuilt for the
// nodes healthy now, and starts over: so the picks are nginx's smooth
// sequence over the available nodes, restarted at each health change as
// nginx's is at each reload. A node that goes down is never returned; one
// that comes back is seen within as many picks as there are down nodes.
//
// Retries (a non-empty Tried) and failing open take the walk, which keeps
// its own current weights; so does every pick of a group whose cycle is too
// long to precompute.
type rrGroup struct {
	nodes []rrNode
	sched atomic.Pointer[rrSchedule] // nil when cycles are too long to precompute

	mu sync.Mutex // guards rrNode.cw and serialises rebuilding sched
}

type rrNode struct {
	health
	weight int
	cw     int // current weight of the walk
	idx    int
}

// rrSchedule is one cycle over the nodes that were healthy when it was built.
type rrSchedule struct {
	next atomic.Uint64 // position in seq; written by every pick
	_    [56]byte      // keeps the counter's cache line apart from the read-only fields

	seq  []uint16 // indices in rrGroup.nodes
	down []uint16 // the nodes left out as down, in turn rechecked by picks
}

func newRoundRobinGroup(members []member) *rrGroup {
	g := &rrGroup{nodes: make([]rrNode, len(members))}
	total := 0
	for i, m := range members {
		g.nodes[i] = rrNode{health: health{m.down}, weight: m.weight, idx: m.idx}
		total += m.weight
	}
	// The cycle over any subset of the nodes is no longer than the cycle
	// over all of them (a subset's GCD is a multiple of the whole set's), so
	// this one check covers every rebuild.
	if l := total / gcd(members); l <= maxSchedule && l*len(members) <= maxScheduleWork {
		g.sched.Store(g.schedule())
	}
	return g
}

// schedule returns one cycle of smooth weighted round robin from zero state
// over the nodes healthy now. Weights are divided by their GCD first:
// scaling every weight by the same factor scales every current weight alike
// and picks the same sequence, only a shorter cycle of it.
func (g *rrGroup) schedule() *rrSchedule {
	s := &rrSchedule{}
	var up []int
	var ws []member
	for i := range g.nodes {
		if g.nodes[i].healthy() {
			up = append(up, i)
			ws = append(ws, member{weight: g.nodes[i].weight})
		} else {
			s.down = append(s.down, uint16(i))
		}
	}
	d, total := gcd(ws), 0
	for _, w := range ws {
		total += w.weight / d
	}
	cw := make([]int, len(up))
	s.seq = make([]uint16, total)
	for k := range s.seq {
		best := 0
		for j := range up {
			cw[j] += ws[j].weight / d
			if cw[j] > cw[best] {
				best = j
			}
		}
		cw[best] -= total
		s.seq[k] = uint16(up[best])
	}
	return s
}

func (g *rrGroup) pick(t *Tried, _ uint64, ignoreHealth bool) (int, bool) {
	if t.Len() == 0 && !ignoreHealth {
		s := g.sched.Load()
		// Two tries: health that flaps faster than that goes to the walk.
		for range 2 {
			if s == nil {
				break
			}
			c := s.next.Add(1) - 1
			if len(s.down) > 0 && g.nodes[s.down[c%uint64(len(s.down))]].healthy() {
				s = g.rebuild(s) // a node came back
				continue
			}
			if len(s.seq) == 0 {
				break // no node was healthy: the walk sorts out fail-open
			}
			if n := &g.nodes[s.seq[c%uint64(len(s.seq))]]; n.healthy() {
				return n.idx, true
			}
			s = g.rebuild(s) // a node went down
		}
	}
	return g.walk(t, ignoreHealth)
}

// rebuild replaces the stale schedule old with one over the nodes healthy
// now, unless another pick has already done so.
func (g *rrGroup) rebuild(old *rrSchedule) *rrSchedule {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.sched.Load(); s != old {
		return s
	}
	s := g.schedule()
	g.sched.Store(s)
	return s
}

// walk is one step of nginx's algorithm over the nodes that are untried and
// healthy (or all untried ones when ignoreHealth): add each one's weight to
// its current weight, pick the largest (the first on ties), subtract the sum
// of their weights from it.
func (g *rrGroup) walk(t *Tried, ignoreHealth bool) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	total, best, healthy := 0, -1, false
	for i := range g.nodes {
		n := &g.nodes[i]
		if n.healthy() {
			healthy = true
		} else if !ignoreHealth {
			continue
		}
		if t.Has(n.idx) {
			continue
		}
		n.cw += n.weight
		total += n.weight
		if best < 0 || n.cw > g.nodes[best].cw {
			best = i
		}
	}
	if best < 0 {
		return -1, healthy
	}
	g.nodes[best].cw -= total
	return g.nodes[best].idx, healthy
}
