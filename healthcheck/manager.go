// Package healthcheck keeps the health state of upstream nodes with the
// counter semantics of lua-resty-healthcheck (../shared/spec/upstreams.md):
// active probes in background goroutines, passive observations from the
// proxy, and one state per (upstream id, host:port) that survives reloads.
package healthcheck

import (
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gateway/config"
)

// Upstream is one upstream with checks in a config snapshot. ID is the
// top-level upstream's id, or the service's id for an inline upstream.
type Upstream struct {
	ID     string
	Config *config.Upstream
}

// UpstreamStatus is one checked upstream in GET /v1/healthcheck.
type UpstreamStatus struct {
	ID    string       `json:"id"`
	Type  string       `json:"type,omitempty"` // active probe type; empty without active checks
	Nodes []NodeStatus `json:"nodes"`
}

// NodeStatus is one node in GET /v1/healthcheck.
type NodeStatus struct {
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	Status   string   `json:"status"` // "healthy" or "unhealthy"
	Counters Counters `json:"counters"`
	// LastChange is when the node last changed state, or when it was first
	// seen if it never has.
	LastChange time.Time `json:"last_change"`
}

// Manager owns the health state of every checked upstream and their active
// checkers.
type Manager struct {
	log      *zap.Logger
	onChange func(upstream, node string, healthy bool)

	mu     sync.RWMutex // guards ups and closed; never held by checkers or Observe
	ups    map[string]*upstream
	closed bool
}

// upstream is the long-lived state of one upstream id.
type upstream struct {
	m  *Manager
	id string

	// passive is read by Observe on the request path, hence atomic; nil when
	// the upstream has no passive check.
	passive atomic.Pointer[policy]
	// nodes is the current node list in config order; checkers read it at
	// every round so that node changes need no checker restart.
	nodes atomic.Pointer[[]*Node]

	// Guarded by Manager.mu.
	byAddr  map[string]*Node
	active  *config.ActiveCheck // copy of the config the checker runs with
	checker *checker
}

// NewManager returns an empty manager. onChange, if not nil, is called once
// per state transition of a node, after the log line, in transition order
// per node. It runs on the goroutine that observed the transition (a probe's
// or a request's), so it must be quick; it may read the manager (Node,
// Snapshot, Down) but must not call Observe, Sync or Close, which could wait
// for the call itself.
func NewManager(log *zap.Logger, onChange func(upstream, node string, healthy bool)) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	return &Manager{log: log, onChange: onChange, ups: make(map[string]*upstream)}
}

// Sync makes the manager follow a new config snapshot; ups are the upstreams
// that have checks. State of nodes still present is kept, new nodes start
// healthy, nodes and upstreams no longer present are dropped. An upstream's
// checker is restarted only when its active check config changed, so a
// reload keeps the probe rhythm. Sync returns after the checkers it stopped
// have exited.
func (m *Manager) Sync(ups []Upstream) {
	var stopped []*checker
	defer func() {
		for _, c := range stopped {
			c.wait()
		}
	}()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}

	seen := make(map[string]bool, len(ups))
	for _, u := range ups {
		if u.Config == nil || u.Config.Checks == nil || seen[u.ID] {
			continue
		}
		seen[u.ID] = true
		up := m.ups[u.ID]
		if up == nil {
			up = &upstream{m: m, id: u.ID}
			m.ups[u.ID] = up
		}
		up.syncNodes(u.Config.Nodes)

		checks := u.Config.Checks
		if checks.Passive != nil {
			up.passive.Store(passivePolicy(checks.Passive))
		} else {
			up.passive.Store(nil)
		}

		if sameActive(up.active, checks.Active) {
			continue
		}
		if up.checker != nil {
			up.checker.stop()
			stopped = append(stopped, up.checker)
			up.checker = nil
		}
		up.active = cloneActive(checks.Active)
		if up.active != nil {
			up.checker = startChecker(up, up.active)
		}
	}

	for id, up := range m.ups {
		if seen[id] {
			continue
		}
		if up.checker != nil {
			up.checker.stop()
			stopped = append(stopped, up.checker)
		}
		for _, n := range up.byAddr {
			n.removed.Store(true)
		}
		delete(m.ups, id)
	}
}

// syncNodes keeps the state of nodes still present, creates new ones and
// drops the others. The caller holds Manager.mu.
func (up *upstream) syncNodes(nodes []config.Node) {
	byAddr := make(map[string]*Node, len(nodes))
	list := make([]*Node, 0, len(nodes))
	for i := range nodes {
		cn := &nodes[i]
		addr := cn.Addr()
		if byAddr[addr] != nil {
			continue // the same address twice is one node
		}
		n := up.byAddr[addr]
		if n == nil {
			n = newNode(up, cn)
		}
		byAddr[addr] = n
		list = append(list, n)
	}
	for addr, n := range up.byAddr {
		if byAddr[addr] == nil {
			n.removed.Store(true)
		}
	}
	up.byAddr = byAddr
	up.nodes.Store(&list)
}

// SetNodes replaces the nodes of checked upstream upstreamID between two
// Syncs (service discovery re-resolved it), with the rules of Sync: the
// state of nodes still present is kept, new nodes start healthy. It does
// nothing for an upstream the manager does not check.
func (m *Manager) SetNodes(upstreamID string, nodes []config.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if up := m.ups[upstreamID]; up != nil && !m.closed {
		up.syncNodes(nodes)
	}
}

// Node returns the state of node addr ("host:port", see Addr) of upstream
// upstreamID, or nil when the manager does not check it.
func (m *Manager) Node(upstreamID, addr string) *Node {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if up := m.ups[upstreamID]; up != nil {
		return up.byAddr[addr]
	}
	return nil
}

// Snapshot returns every checked upstream, sorted by id, with its nodes in
// config order.
func (m *Manager) Snapshot() []UpstreamStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]UpstreamStatus, 0, len(m.ups))
	for _, up := range m.ups {
		us := UpstreamStatus{ID: up.id}
		if up.active != nil {
			us.Type = string(up.active.Type)
		}
		nodes := *up.nodes.Load()
		us.Nodes = make([]NodeStatus, len(nodes))
		for i, n := range nodes {
			us.Nodes[i] = n.status()
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close stops every checker and waits for them. State stays readable
// through Node and Snapshot; later Syncs do nothing.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	var stopped []*checker
	for _, up := range m.ups {
		if up.checker != nil {
			up.checker.stop()
			stopped = append(stopped, up.checker)
			up.checker = nil
		}
	}
	m.mu.Unlock()
	for _, c := range stopped {
		c.wait()
	}
}

// report logs a transition and tells onChange.
func (m *Manager) report(n *Node, check string, healthy bool, reason string) {
	m.log.Info("upstream node health changed",
		zap.String("upstream", n.up.id),
		zap.String("node", n.addr),
		zap.String("from", stateName(!healthy)),
		zap.String("to", stateName(healthy)),
		zap.String("reason", reason),
		zap.String("check", check),
	)
	if m.onChange != nil {
		m.onChange(n.up.id, n.addr, healthy)
	}
}

// sameActive reports whether two active check configs would probe alike.
// A nil and an empty header list are the same, so that a reload that only
// spells the config differently keeps the checker and its rhythm.
func sameActive(a, b *config.ActiveCheck) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !slices.Equal(a.ReqHeaders, b.ReqHeaders) ||
		!slices.Equal(a.Healthy.HTTPStatuses, b.Healthy.HTTPStatuses) ||
		!slices.Equal(a.Unhealthy.HTTPStatuses, b.Unhealthy.HTTPStatuses) {
		return false
	}
	x, y := *a, *b
	x.ReqHeaders, y.ReqHeaders = nil, nil
	x.Healthy.HTTPStatuses, y.Healthy.HTTPStatuses = nil, nil
	x.Unhealthy.HTTPStatuses, y.Unhealthy.HTTPStatuses = nil, nil
	return reflect.DeepEqual(x, y)
}

// cloneActive copies a so that the manager's view of the running config
// cannot change under it.
func cloneActive(a *config.ActiveCheck) *config.ActiveCheck {
	if a == nil {
		return nil
	}
	c := *a
	c.ReqHeaders = slices.Clone(a.ReqHeaders)
	c.Healthy.HTTPStatuses = slices.Clone(a.Healthy.HTTPStatuses)
	c.Unhealthy.HTTPStatuses = slices.Clone(a.Unhealthy.HTTPStatuses)
	return &c
}
