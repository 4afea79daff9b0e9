package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus families (operations.md).
//
// The per-route and per-node families (requests, durations, attempts,
// bytes) are not client_golang children: their state lives in flat slot
// tables (flatmetrics.go) with atomic counters, resolved when a snapshot is
// committed, and /metrics writes their exposition straight from the slots
// (exposition.go). The small families below stay on the registry.
type metrics struct {
	flat         *flatMetrics
	nodeHealthy  *prometheus.GaugeVec
	allUnhealthy *prometheus.CounterVec
	throttled    *prometheus.CounterVec
	connections  prometheus.Gauge
	connsRefused prometheus.Counter
	reloads      *prometheus.CounterVec
	lastReloadOK prometheus.Gauge
	configInfo   *prometheus.GaugeVec
	// scrapeErrors is promhttp's promhttp_metric_handler_errors_total,
	// which /metrics exported while promhttp served it.
	scrapeErrors   *prometheus.CounterVec
	discoveryNodes *prometheus.GaugeVec // gateway_discovery_nodes (discovery.go)
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		flat: newFlatMetrics(),
		nodeHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_upstream_node_healthy", Help: "1 when the node is healthy, 0 when a health check marked it unhealthy.",
		}, []string{"upstream", "node"}),
		allUnhealthy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_upstream_all_unhealthy_total", Help: "Picks made failing open because no node of the upstream was healthy.",
		}, []string{"upstream"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_throttled_total", Help: "Requests rejected by a throttle policy or limit-count.",
		}, []string{"policy", "route", "counter"}),
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
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promhttp_metric_handler_errors_total",
			Help: "Total number of internal errors encountered by the promhttp metric handler.",
		}, []string{"cause"}),
	}
	reg.MustRegister(m.nodeHealthy, m.allUnhealthy, m.throttled, m.connections, m.connsRefused,
		m.reloads, m.lastReloadOK, m.configInfo, m.scrapeErrors)
	m.discoveryNodes = newDiscoveryNodesGauge(reg)
	// Pre-create the labels so that a dashboard sees 0 rather than no series.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.scrapeErrors.WithLabelValues("gathering")
	m.scrapeErrors.WithLabelValues("encoding")
	return m
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
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
