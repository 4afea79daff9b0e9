package config

// Metrics tunes the Prometheus metrics (issue 20).
type Metrics struct {
	// RouteHistograms: gateway_http_request_duration_seconds per route
	// (true, the default) or per service only, with route "" (false), for
	// route tables so large that a histogram per route weighs on every
	// scrape.
	RouteHistograms bool `json:"route_histograms"`
}

func (m *Metrics) setDefaults() { m.RouteHistograms = true }
