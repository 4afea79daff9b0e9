// Package stream is the TCP stream proxy (README "TCP stream routes"): it
// owns the stream listeners, matches each accepted connection to a stream
// route by the listener's port, the local address and the client's
// address, connects to a node of the route's upstream (retrying connect
// failures on other nodes) and splices bytes both ways until both sides
// have finished, the connection idles or the gateway shuts down.
//
// The routes and their upstreams come compiled in a Table that the proxy
// builds from its snapshot's upstream state (balancer, health, in-flight
// counts); the Server swaps Tables atomically, keeps listeners across
// reloads by their configured address, and owns every goroutine it starts.
package stream

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/balancer"
	"gateway/config"
	"gateway/healthcheck"
)

// Node is one node of an upstream as a stream route reaches it.
type Node struct {
	Addr string // host:port, the node's identity
	// Dial opens a dedicated connection to the node within timeout.
	Dial func(timeout time.Duration) (net.Conn, error)
	// Health is the node's health state (nil: no checks): connect
	// failures and successes are observed on it.
	Health *healthcheck.Node
	// InFlight counts the node's open connections and requests
	// (least_conn); nil: not counted.
	InFlight *atomic.Int64
	// Attempted records one connect attempt (nil: not recorded): whether
	// it connected, whether a failure was a timeout, and how long it took.
	Attempted func(ok, timeout bool, d time.Duration)
}

// Upstream is an upstream as a stream route uses it.
type Upstream struct {
	ID      string
	Bal     balancer.Balancer
	Nodes   []Node
	Retries int           // other nodes tried after a connect failure
	Connect time.Duration // connect timeout per attempt
	// Hash is the chash key (vars remote_addr and server_port, literals);
	// nil parts and Chash false for the other policies.
	Chash bool
	Hash  []config.KeyPart
	// Picked is told of every pick, failOpen true when no node was
	// healthy and the balancer picked among all (nil: not told).
	Picked func(failOpen bool)
}

// Route is one compiled stream route.
type Route struct {
	ID     string
	Port   int          // 0: any
	Server netip.Addr   // zero: any
	Remote netip.Prefix // zero: any
	// Allow is the route's ip-restriction (nil: every client).
	Allow func(netip.Addr) bool
	Up    *Upstream
	Idle  time.Duration

	m routeMetrics // resolved by Server.Swap
}

func (r *Route) matches(port int, local, remote netip.Addr) bool {
	return (r.Port == 0 || r.Port == port) &&
		(!r.Server.IsValid() || r.Server == local) &&
		(!r.Remote.IsValid() || r.Remote.Contains(remote))
}

// specificity orders routes: a route with server_port before one without,
// then server_addr, then the longer remote_addr prefix. Validation refuses
// two routes that tie and overlap (the same three keys).
func (r *Route) specificity() int {
	s := r.Remote.Bits() + 1 // 0 when any, 1..129 with a prefix
	if r.Server.IsValid() {
		s += 1 << 8
	}
	if r.Port != 0 {
		s += 1 << 9
	}
	return s
}

// Table is everything compiled from one config for the stream proxy.
type Table struct {
	routes   []*Route // most specific first
	maxConns int64    // per listener; 0: unlimited
}

// NewTable makes a table of routes; maxConns caps each listener's open
// connections (0: no cap).
func NewTable(routes []*Route, maxConns int) *Table {
	rs := slices.Clone(routes)
	slices.SortStableFunc(rs, func(a, b *Route) int { return b.specificity() - a.specificity() })
	return &Table{routes: rs, maxConns: int64(maxConns)}
}

// Match returns the most specific route for a connection to local:port
// from remote, nil when none matches.
func (t *Table) Match(port int, local, remote netip.Addr) *Route {
	for _, r := range t.routes {
		if r.matches(port, local, remote) {
			return r
		}
	}
	return nil
}

// appendKey renders a chash key for a connection.
func appendKey(dst []byte, parts []config.KeyPart, remote netip.Addr, port int) []byte {
	for _, p := range parts {
		switch {
		case !p.IsVar:
			dst = append(dst, p.Lit...)
		case p.Var.Kind == config.VarRemoteAddr:
			dst = remote.AppendTo(dst)
		case p.Var.Kind == config.VarServerPort:
			dst = strconv.AppendInt(dst, int64(port), 10)
		}
	}
	return dst
}

// metrics of the stream proxy.
type metrics struct {
	active *prometheus.GaugeVec
	total  *prometheus.CounterVec
	bytes  *prometheus.CounterVec
}

type routeMetrics struct {
	active                      prometheus.Gauge
	ok, denied, failed, timeout prometheus.Counter
	in, out                     prometheus.Counter
}

// Results of gateway_stream_connections_total.
const (
	resultOK        = "ok"         // connected to a node; ended by either side
	resultIdle      = "idle"       // connected; closed by the idle timeout
	resultDenied    = "denied"     // ip-restriction refused the client
	resultFailed    = "failed"     // no node could be connected
	resultNoRoute   = "no_route"   // no stream route matches (route "")
	resultOverLimit = "over_limit" // the listener's max_connections (route "")
	resultShutdown  = "closed"     // connected; closed by shutdown
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_stream_connections_active", Help: "Stream connections currently proxied, by stream route.",
		}, []string{"route"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_stream_connections_total", Help: "Stream connections accepted, by stream route and result (ok, idle, closed, denied, failed, no_route, over_limit).",
		}, []string{"route", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_stream_bytes_total", Help: "Bytes proxied on stream routes, by direction: in (from clients), out (to clients).",
		}, []string{"route", "direction"}),
	}
	reg.MustRegister(m.active, m.total, m.bytes)
	return m
}

func (m *metrics) forRoute(id string) routeMetrics {
	return routeMetrics{
		active:  m.active.WithLabelValues(id),
		ok:      m.total.WithLabelValues(id, resultOK),
		denied:  m.total.WithLabelValues(id, resultDenied),
		failed:  m.total.WithLabelValues(id, resultFailed),
		timeout: m.total.WithLabelValues(id, resultIdle),
		in:      m.bytes.WithLabelValues(id, "in"),
		out:     m.bytes.WithLabelValues(id, "out"),
	}
}
