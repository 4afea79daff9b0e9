package healthcheck

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gateway/config"
)

// Outcome is what the proxy learned from one attempt against a node.
// Timeout wins over TCPFailure, and either wins over Status, because a
// failed attempt has no trustworthy status.
type Outcome struct {
	Status     int  // HTTP status received; 0 when none was
	TCPFailure bool // connect refused, reset, broken response
	Timeout    bool // connect, send or read timeout
}

// Counters are a node's four consecutive counters (upstreams.md).
type Counters struct {
	Successes    uint32 `json:"successes"`
	HTTPFailures uint32 `json:"http_failures"`
	TCPFailures  uint32 `json:"tcp_failures"`
	Timeouts     uint32 `json:"timeouts"`
}

// event is one classified observation, active or passive.
type event uint8

const (
	evNone event = iota // a status in neither list: changes nothing
	evSuccess
	evHTTPFailure
	evTCPFailure
	evTimeout
)

// statusSet is a bitset of HTTP status codes: membership is tested on every
// passive observation, so it must be O(1) and allocation-free.
type statusSet [10]uint64 // codes 0..639

func newStatusSet(codes []int) statusSet {
	var s statusSet
	for _, c := range codes {
		if c >= 0 && c < len(s)*64 {
			s[c>>6] |= 1 << (c & 63)
		}
	}
	return s
}

func (s *statusSet) has(code int) bool {
	return code >= 0 && code < len(s)*64 && s[code>>6]&(1<<(code&63)) != 0
}

// policy is one check's (active or passive) view of the shared counters:
// which statuses count how, and the thresholds. It is immutable once built,
// so it can be swapped atomically on reload and read without a lock.
type policy struct {
	check     string // "active" or "passive", for the log line
	tcp       bool   // type tcp: a completed attempt is a success whatever its status
	healthy   statusSet
	unhealthy statusSet

	// Thresholds; 0 disables the counter.
	successes, httpFailures, tcpFailures, timeouts uint32
}

func activePolicy(a *config.ActiveCheck) *policy {
	return &policy{
		check:        "active",
		tcp:          a.Type == "tcp",
		healthy:      newStatusSet(a.Healthy.HTTPStatuses),
		unhealthy:    newStatusSet(a.Unhealthy.HTTPStatuses),
		successes:    threshold(a.Healthy.Successes),
		httpFailures: threshold(a.Unhealthy.HTTPFailures),
		tcpFailures:  threshold(a.Unhealthy.TCPFailures),
		timeouts:     threshold(a.Unhealthy.Timeouts),
	}
}

func passivePolicy(p *config.PassiveCheck) *policy {
	return &policy{
		check:        "passive",
		tcp:          p.Type == "tcp",
		healthy:      newStatusSet(p.Healthy.HTTPStatuses),
		unhealthy:    newStatusSet(p.Unhealthy.HTTPStatuses),
		successes:    threshold(p.Healthy.Successes),
		httpFailures: threshold(p.Unhealthy.HTTPFailures),
		tcpFailures:  threshold(p.Unhealthy.TCPFailures),
		timeouts:     threshold(p.Unhealthy.Timeouts),
	}
}

func threshold(n int) uint32 {
	if n <= 0 {
		return 0
	}
	return uint32(min(n, math.MaxUint32))
}

// status classifies an HTTP status. The healthy list is consulted first,
// as lua-resty-healthcheck does, so a code in both lists is a success.
func (p *policy) status(code int) event {
	switch {
	case p.tcp:
		// A tcp check only asks whether the node answered at all.
		if code > 0 {
			return evSuccess
		}
		return evNone
	case p.healthy.has(code):
		return evSuccess
	case p.unhealthy.has(code):
		return evHTTPFailure
	}
	return evNone
}

// outcome classifies a passive observation.
func (p *policy) outcome(o Outcome) event {
	switch {
	case o.Timeout:
		return evTimeout
	case o.TCPFailure:
		return evTCPFailure
	}
	return p.status(o.Status)
}

// step applies ev to the counters c of a node whose state is healthy, under
// policy p, and returns the new state. It is the whole state machine:
//
//   - an event whose threshold is 0 is ignored entirely: it neither counts
//     nor resets anything (lua-resty-healthcheck's "disabled counter");
//   - a success increments successes and resets the three failure counters;
//   - a failure increments its own counter and resets successes only;
//   - a healthy node turns unhealthy when the failure counter just
//     incremented reaches its threshold, an unhealthy one turns healthy when
//     successes reach theirs.
func step(c *Counters, healthy bool, p *policy, ev event) bool {
	var ctr *uint32
	var limit uint32
	switch ev {
	case evSuccess:
		ctr, limit = &c.Successes, p.successes
	case evHTTPFailure:
		ctr, limit = &c.HTTPFailures, p.httpFailures
	case evTCPFailure:
		ctr, limit = &c.TCPFailures, p.tcpFailures
	case evTimeout:
		ctr, limit = &c.Timeouts, p.timeouts
	default:
		return healthy
	}
	if limit == 0 {
		return healthy
	}
	if ev == evSuccess {
		c.HTTPFailures, c.TCPFailures, c.Timeouts = 0, 0, 0
	} else {
		c.Successes = 0
	}
	if *ctr < math.MaxUint32 {
		*ctr++
	}
	// >= rather than ==: a reload may lower a threshold below a running count,
	// and active and passive thresholds differ over the same counters.
	if *ctr >= limit {
		return ev == evSuccess
	}
	return healthy
}

// reason words a transition caused by ev for the log line, e.g.
// "3 consecutive http failures (status 503)".
func reason(c *Counters, ev event, status int) string {
	var n uint32
	var one, many string
	switch ev {
	case evSuccess:
		n, one, many = c.Successes, "success", "successes"
	case evHTTPFailure:
		n, one, many = c.HTTPFailures, "http failure", "http failures"
	case evTCPFailure:
		n, one, many = c.TCPFailures, "tcp failure", "tcp failures"
	case evTimeout:
		n, one, many = c.Timeouts, "timeout", "timeouts"
	}
	what := many
	if n == 1 {
		what = one
	}
	s := strconv.FormatUint(uint64(n), 10) + " consecutive " + what
	if ev == evHTTPFailure {
		s += " (status " + strconv.Itoa(status) + ")"
	}
	return s
}

// Node is the health state of one (upstream id, host:port). It outlives
// config snapshots: the proxy and balancer of every snapshot that contains
// the node share it.
type Node struct {
	up   *upstream
	host string
	port int
	addr string // host:port as Addr formats it

	// down is the only field the request path reads; it is written under mu
	// so that it always agrees with the counters.
	down atomic.Bool
	// probing keeps one probe per node in flight, even across a checker
	// restart or overlapping healthy/unhealthy rounds.
	probing atomic.Bool
	// removed is set when the node leaves the config: late observations from
	// requests still running on an old snapshot must not revive or report it.
	removed atomic.Bool

	mu         sync.Mutex // guards c, lastChange and tickets
	c          Counters
	lastChange time.Time

	// Reports of one node's transitions run in transition order but outside
	// mu, so that onChange may read the manager: each transition takes a
	// ticket under mu and reports when turn reaches it.
	tickets    uint64
	reportMu   sync.Mutex // guards turn
	reportCond sync.Cond  // L is &reportMu
	turn       uint64
}

func newNode(up *upstream, cn *config.Node) *Node {
	n := &Node{up: up, host: cn.Host, port: cn.Port, addr: cn.Addr(), lastChange: time.Now()}
	n.reportCond.L = &n.reportMu
	return n
}

// Down returns the flag the balancer reads: true while the node is
// unhealthy. A nil node (no checks) returns nil, which balancer.NodeRef
// reads as always healthy.
func (n *Node) Down() *atomic.Bool {
	if n == nil {
		return nil
	}
	return &n.down
}

// Observe records the outcome of one real request attempt (passive check).
// It is called on the request path: it does not allocate, takes only the
// node's own mutex, and returns at once when the upstream has no passive
// check. A nil node is ignored.
func (n *Node) Observe(o Outcome) {
	if n == nil {
		return
	}
	p := n.up.passive.Load()
	if p == nil {
		return
	}
	n.record(p, p.outcome(o), o.Status)
}

// record applies ev under policy p and reports a transition if there is one.
func (n *Node) record(p *policy, ev event, status int) {
	if ev == evNone || n.removed.Load() {
		return
	}
	n.mu.Lock()
	was := !n.down.Load()
	now := step(&n.c, was, p, ev)
	if now == was {
		n.mu.Unlock()
		return
	}
	n.down.Store(!now)
	n.lastChange = time.Now()
	why := reason(&n.c, ev, status)
	ticket := n.tickets
	n.tickets++
	n.mu.Unlock()

	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	for n.turn != ticket {
		n.reportCond.Wait()
	}
	defer func() {
		// Deferred so that a panicking onChange does not block the node's
		// later reports forever.
		n.turn++
		n.reportCond.Broadcast()
	}()
	n.up.m.report(n, p.check, now, why)
}

// status returns the node's state for Snapshot.
func (n *Node) status() NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return NodeStatus{
		Host:       n.host,
		Port:       n.port,
		Status:     stateName(!n.down.Load()),
		Counters:   n.c,
		LastChange: n.lastChange,
	}
}

func stateName(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}
