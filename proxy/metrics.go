package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus families (operations.md). Children
// used per request are resolved when a snapshot is compiled, so the request
// path never looks a child up by its labels.
type metrics struct {
	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	attempts         *prometheus.CounterVec
	nodeHealthy      *prometheus.GaugeVec
	allUnhealthy     *prometheus.CounterVec
	throttled        *prometheus.CounterVec
	bytes            *prometheus.CounterVec
	connections      prometheus.Gauge
	connsRefused     prometheus.Counter
	reloads          *prometheus.CounterVec
	lastReloadOK     prometheus.Gauge
	configInfo       *prometheus.GaugeVec
	discoveryNodes   *prometheus.GaugeVec // gateway_discovery_nodes (discovery.go)
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_requests_total", Help: "HTTP requests served, by service, route and status code.",
		}, []string{"service", "route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_http_request_duration_seconds", Help: "Time from request start to response handed to the client.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "route"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_upstream_request_duration_seconds", Help: "Duration of one attempt against an upstream node.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"upstream", "node"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_attempts_total", Help: "Attempts against upstream nodes, by result.",
		}, []string{"upstream", "node", "result"}),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_upstream_node_healthy", Help: "1 when the node is healthy, 0 when a health check marked it unhealthy.",
		}, []string{"upstream", "node"}),
		allUnhealthy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_all_unhealthy_total", Help: "Picks made failing open because no node of the upstream was healthy.",
		}, []string{"upstream"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_throttled_total", Help: "Requests rejected by a throttle policy or limit-count.",
		}, []string{"policy", "route", "counter"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_http_bytes_total", Help: "Body bytes received from clients (in) and sent to them (out).",
		}, []string{"service", "direction"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_connections_active", Help: "Client connections currently open.",
		}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_connections_refused_total", Help: "Client connections refused with 503 because max_connections were open.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_config_reloads_total", Help: "Config reloads, by result.",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last successful config load.",
		}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_config_info", Help: "The revision of the serving config (value 1).",
		}, []string{"revision"}),
	}
	reg.MustRegister(m.requests, m.requestDuration, m.upstreamDuration, m.attempts, m.nodeHealthy,
		m.allUnhealthy, m.throttled, m.bytes, m.connections, m.connsRefused, m.reloads, m.lastReloadOK, m.configInfo)
	m.discoveryNodes = newDiscoveryNodesGauge(reg)
	// Pre-create both results so that a dashboard sees 0 rather than no series.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// statusCounters resolves the `code` label of gateway_http_requests_total
// for one route. A route sees few distinct codes, so a small lock-free
// array caches their children; the first request with a new code takes the
// slow path once.
type statusCounters struct {
	vec     *prometheus.CounterVec
	service string
	route   string
	slots   [8]statusSlot
	mu      sync.Mutex // serialises filling slots; never taken once a code is cached
}

type statusSlot struct {
	code atomic.Int32
	c    atomic.Pointer[prometheus.Counter]
}

// codeLabels holds the decimal form of every status code so that the slow
// path does not format numbers either.
var codeLabels = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return
}()

func (s *statusCounters) inc(code int) {
	if code < 0 || code >= len(codeLabels) {
		code = 0
	}
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.code.Load() == int32(code) {
			if c := sl.c.Load(); c != nil {
				(*c).Inc()
				return
			}
		}
	}
	s.mu.Lock()
	c := s.vec.WithLabelValues(s.service, s.route, codeLabels[code])
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.c.Load() == nil {
			sl.c.Store(&c)
			sl.code.Store(int32(code))
			break
		}
	}
	s.mu.Unlock()
	c.Inc()
}

// routeMetrics are the children one route (or the no-route bucket) uses.
type routeMetrics struct {
	codes    *statusCounters
	duration prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

func (m *metrics) forRoute(service, route string) routeMetrics {
	return routeMetrics{
		codes:    &statusCounters{vec: m.requests, service: service, route: route},
		duration: m.requestDuration.WithLabelValues(service, route),
		bytesIn:  m.bytes.WithLabelValues(service, "in"),
		bytesOut: m.bytes.WithLabelValues(service, "out"),
	}
}

// Attempt results, the `result` label of gateway_upstream_attempts_total.
const (
	resultOK = iota
	resultConnectError
	resultTimeout
	resultError
	numResults
)

var resultLabels = [numResults]string{"ok", "connect_error", "timeout", "error"}

// nodeMetrics are the children of one (upstream, node).
type nodeMetrics struct {
	attempts [numResults]prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) forNode(upstream, node string) nodeMetrics {
	var nm nodeMetrics
	for i := range nm.attempts {
		nm.attempts[i] = m.attempts.WithLabelValues(upstream, node, resultLabels[i])
	}
	nm.duration = m.upstreamDuration.WithLabelValues(upstream, node)
	return nm
}
