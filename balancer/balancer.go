// Package balancer picks the node of an upstream for each attempt of a
// request (../shared/spec/upstreams.md, "Picking a node").
//
// A Balancer is built once per upstream per config snapshot by New and is
// then shared by every request: Pick is safe for concurrent use, allocates
// nothing (but for a round robin group's new schedule, once per change of
// its health) and takes no lock shared by all upstreams.
//
// What every policy has in common lives here: weight 0 nodes are left out,
// the other nodes are grouped by priority (highest first), a pick uses the
// highest group that still has an available node not yet tried by the
// request, and when no node at all is healthy the pick fails open (health is
// ignored). Each policy (roundrobin.go, chash.go, leastconn.go) only picks
// within one group.
package balancer

import (
	"cmp"
	"slices"
	"sync/atomic"

	"gateway/config"
)

// MaxNodes is the number of node indices a Tried can hold, the most nodes an
// upstream may have (config.md: nodes 1..1024).
const MaxNodes = 1024

// NodeRef is the long-lived state of one node, owned outside the config
// snapshot so that it survives reloads.
type NodeRef struct {
	Down     *atomic.Bool  // true = unhealthy (set by healthcheck); nil = always healthy
	InFlight *atomic.Int64 // requests in flight to the node (least_conn); owned outside snapshots
}

// Balancer picks a node for one attempt of a request.
type Balancer interface {
	// Pick returns the index in up.Nodes of the node for this attempt, or -1 when every
	// available node has been tried. hash is the chash key's xxhash64 (ignored by the other
	// policies). failOpen reports that no node was healthy and the pick ignored health.
	Pick(tried *Tried, hash uint64) (idx int, failOpen bool)
}

// Tried is the set of nodes (indices in up.Nodes) a request has already
// attempted. It is a plain value so that the proxy can keep one per request
// context and Reset it instead of allocating. A nil *Tried is an empty set.
type Tried struct {
	bits [MaxNodes / 64]uint64
	n    int // number of bits set: lets policies take their fast path in O(1)
}

// Add marks node i as tried. Indices outside 0..MaxNodes-1 are ignored.
func (t *Tried) Add(i int) {
	if uint(i) >= MaxNodes {
		return
	}
	w, m := i>>6, uint64(1)<<(uint(i)&63)
	if t.bits[w]&m == 0 {
		t.bits[w] |= m
		t.n++
	}
}

// Has reports whether node i was tried.
func (t *Tried) Has(i int) bool {
	if t == nil || uint(i) >= MaxNodes {
		return false
	}
	return t.bits[i>>6]&(uint64(1)<<(uint(i)&63)) != 0
}

// Len returns the number of tried nodes.
func (t *Tried) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// Reset empties the set for the next request.
func (t *Tried) Reset() { *t = Tried{} }

// New builds the balancer of up for the policy up.Type (roundrobin when empty
// or unknown; config has validated it). refs[i] belongs to up.Nodes[i]; refs
// may be shorter than the node list (or nil), a missing ref meaning a node
// that is always healthy. Nodes past MaxNodes are ignored.
func New(up *config.Upstream, refs []NodeRef) Balancer {
	groups := groupNodes(up.Nodes, refs)
	b := &prioritized{groups: make([]group, len(groups))}
	for i, members := range groups {
		switch up.Type {
		case config.CHash:
			b.groups[i] = newCHashGroup(members)
		case config.LeastConn:
			b.groups[i] = newLeastConnGroup(members)
		default:
			b.groups[i] = newRoundRobinGroup(members)
		}
	}
	return b
}

// member is one node of a priority group as the policies see it.
type member struct {
	idx      int // index in up.Nodes: what Pick returns and Tried holds
	weight   int // > 0
	host     string
	port     int
	down     *atomic.Bool
	inFlight *atomic.Int64
}

// health is a node's health flag as the policies read it.
type health struct{ down *atomic.Bool }

// healthy reports the node's health; nil means no health check.
func (h health) healthy() bool { return h.down == nil || !h.down.Load() }

// groupNodes returns the nodes with weight > 0 grouped by priority, highest
// first, each group in file order (which breaks round robin ties, as nginx's
// peer list order does).
func groupNodes(nodes []config.Node, refs []NodeRef) [][]member {
	var all []member
	for i, n := range nodes {
		if i >= MaxNodes {
			break
		}
		if n.Weight <= 0 {
			continue // drained: never picked, not even failing open
		}
		m := member{idx: i, weight: n.Weight, host: n.Host, port: n.Port}
		if i < len(refs) {
			m.down, m.inFlight = refs[i].Down, refs[i].InFlight
		}
		all = append(all, m)
	}
	prio := func(m member) int { return nodes[m.idx].Priority }
	slices.SortStableFunc(all, func(a, b member) int { return cmp.Compare(prio(b), prio(a)) })

	var groups [][]member
	for start := 0; start < len(all); {
		end := start + 1
		for end < len(all) && prio(all[end]) == prio(all[start]) {
			end++
		}
		groups = append(groups, all[start:end:end])
		start = end
	}
	return groups
}

// group is one priority level under a policy.
type group interface {
	// pick returns the index in up.Nodes of a node of the group that is not
	// tried and, unless ignoreHealth, healthy; or -1 when there is none.
	// healthy reports whether the group has a healthy node at all (tried or
	// not), which Pick needs to tell "all tried" from "fail open". It is only
	// meaningful when idx is -1.
	pick(t *Tried, hash uint64, ignoreHealth bool) (idx int, healthy bool)
}

// prioritized applies the priority and fail-open rules over the groups of one
// policy.
type prioritized struct {
	groups []group // highest priority first
}

// Pick implements Balancer. failOpen is only true with a node index: when
// every node was tried the result is (-1, false) whatever the health.
func (b *prioritized) Pick(t *Tried, hash uint64) (int, bool) {
	anyHealthy := false
	for _, g := range b.groups {
		idx, healthy := g.pick(t, hash, false)
		if idx >= 0 {
			return idx, false
		}
		anyHealthy = anyHealthy || healthy
	}
	if anyHealthy {
		return -1, false // healthy nodes exist and all were tried: no fail-open
	}
	// No node is healthy: balance as if all were (Envoy's panic mode).
	for _, g := range b.groups {
		if idx, _ := g.pick(t, hash, true); idx >= 0 {
			return idx, true
		}
	}
	return -1, false
}

// gcd returns the greatest common divisor of the members' weights.
func gcd(members []member) int {
	g := 0
	for _, m := range members {
		a, b := m.weight, g
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	return max(g, 1)
}
