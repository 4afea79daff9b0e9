package balancer

import "sync/atomic"

// lcGroup is weighted least connections over one priority group: the node
// with the lowest (in_flight+1)/weight, compared by cross-multiplication.
//
// The proxy counts in-flight requests in NodeRef.InFlight around each
// attempt; the balancer only reads them, so a pick is one pass over the
// group's nodes without a lock.
//
// Ties (typically an idle upstream, all at 0) go to the tied node picked
// least recently: every pick stamps its node with the next value of a
// counter. Unlike a rotating start index, which hands the node after a busy
// one a double share, this is exact round robin among whichever nodes tie.
// The stamps live apart from the nodes so that their writes do not evict the
// lines every pick reads.
type lcGroup struct {
	seq atomic.Uint64 // last stamp handed out; written by every pick
	_   [56]byte      // keeps the counter's cache line apart from the slices

	nodes  []lcNode
	stamps []atomic.Uint64 // stamps[i]: when nodes[i] was last picked
}

type lcNode struct {
	health
	inFlight *atomic.Int64
	weight   int64
	idx      int
}

func newLeastConnGroup(members []member) *lcGroup {
	g := &lcGroup{nodes: make([]lcNode, len(members)), stamps: make([]atomic.Uint64, len(members))}
	for i, m := range members {
		c := m.inFlight
		if c == nil {
			// Nobody counts for this node: it always looks idle.
			c = new(atomic.Int64)
		}
		g.nodes[i] = lcNode{health: health{m.down}, inFlight: c, weight: int64(m.weight), idx: m.idx}
	}
	return g
}

func (g *lcGroup) pick(t *Tried, _ uint64, ignoreHealth bool) (int, bool) {
	best, healthy := -1, false
	var bestLoad, bestWeight int64
	var bestStamp uint64
	checkTried := t.Len() > 0 // first attempts skip the bitset
	for i := range g.nodes {
		n := &g.nodes[i]
		if n.healthy() {
			healthy = true
		} else if !ignoreHealth {
			continue
		}
		if checkTried && t.Has(n.idx) {
			continue
		}
		// A counter below 0 is a bookkeeping bug elsewhere; it must not make
		// the node look better than idle. Products stay far below 1<<63:
		// weight <= 65535.
		load := max(n.inFlight.Load(), 0) + 1
		if best >= 0 {
			l, r := load*bestWeight, bestLoad*n.weight
			if l > r {
				continue
			}
			if l == r {
				s := g.stamps[i].Load()
				if s >= bestStamp {
					continue
				}
				best, bestLoad, bestWeight, bestStamp = i, load, n.weight, s
				continue
			}
		}
		best, bestLoad, bestWeight, bestStamp = i, load, n.weight, g.stamps[i].Load()
	}
	if best < 0 {
		return -1, healthy
	}
	g.stamps[best].Store(g.seq.Add(1))
	return g.nodes[best].idx, healthy
}
