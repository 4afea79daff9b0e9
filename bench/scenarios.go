package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// scenario is one job that every target is measured on (performance.md).
type scenario struct {
	Name   string
	Routes int // 1: a single catch-all route; else /r{i}/* for i < Routes
	// Auth turns on key-auth (every request carries a known key and a
	// user id header); Throttle binds a throttle policy whose limits are
	// never reached; CHash balances by consistent hash on the user id.
	Auth, Throttle, CHash bool
	AccessLog             bool // the gateway's access log to a file
	Scrape                bool // /metrics is scraped during the load
	Reload                bool // the config is rewritten and reloaded during the load
	Peers                 bool // nginx, haproxy and caddy run this scenario too
	// TLS: the load speaks TLS to the proxies (direct stays plain HTTP, the
	// ceiling without TLS). NewConn: every request on a new connection,
	// so a turn measures full handshakes (no session resumption).
	TLS, NewConn bool
	// Redis: the throttle policy counts in a redis-server the bench runs
	// beside the backends (throttle_strategy: cluster; bench/redis.go).
	Redis     bool
	redisAddr string
	// TCP: the tcp scenario (stream routes; tcp.go), measured apart.
	TCP bool
}

// tlsFiles is the bench's self-signed certificate for the TLS scenarios.
type tlsFiles struct {
	listen    string // the proxy's TLS address
	cert, key string // PEM files
}

var scenarioNames = []string{"basic", "routes-10k", "full", "reload", "tls", "tls-handshake", "throttle-cluster", "tcp"}

// scenarios returns the scenarios that name selects ("all" for every one);
// routes is the size of the route table of the large scenarios.
func scenarios(name string, routes int) ([]*scenario, error) {
	all := []*scenario{
		{Name: "basic", Routes: 1, Peers: true},
		{Name: "routes-10k", Routes: routes, Peers: true},
		{Name: "full", Routes: routes, Auth: true, Throttle: true, CHash: true, AccessLog: true, Scrape: true},
		{Name: "reload", Routes: routes, Auth: true, Throttle: true, CHash: true, AccessLog: true, Scrape: true, Reload: true},
		{Name: "tls", Routes: 1, Peers: true, TLS: true},
		{Name: "tls-handshake", Routes: 1, Peers: true, TLS: true, NewConn: true},
		{Name: "throttle-cluster", Routes: routes, Auth: true, Throttle: true, CHash: true, AccessLog: true, Scrape: true, Redis: true},
		{Name: "tcp", Peers: true, TCP: true},
	}
	if name == "all" {
		return all, nil
	}
	var out []*scenario
	for n := range strings.SplitSeq(name, ",") {
		i := slices.Index(scenarioNames, strings.TrimSpace(n))
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q (want %s or all)", n, strings.Join(scenarioNames, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// The credentials of the scenarios with key-auth.
const (
	benchKey    = "bench-key"
	userHeader  = "X-User-Id"
	benchUsers  = 1000 // distinct user ids: chash keys and throttle counters
	metricsPath = "/metrics"
)

// reqTemplate is one request of a scenario: the load generators send them
// in random order (one per route), all GET without a body.
type reqTemplate struct {
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers,omitempty"`
}

func (sc *scenario) routePrefix(i int) string {
	if sc.Routes == 1 {
		return "/"
	}
	return fmt.Sprintf("/r%d/", i)
}

// templates lists the scenario's requests, one per route.
func (sc *scenario) templates() []reqTemplate {
	ts := make([]reqTemplate, sc.Routes)
	for i := range ts {
		ts[i].Path = sc.routePrefix(i) + "hello"
		if sc.Auth {
			ts[i].Headers = [][2]string{{"apikey", benchKey}, {userHeader, fmt.Sprintf("u%d", i%benchUsers)}}
		}
		if sc.NewConn {
			ts[i].Headers = append(ts[i].Headers, [2]string{"Connection", "close"})
		}
	}
	return ts
}

// gatewayConfig is the gateway's YAML for sc. variant (0 or 1) makes the
// two configs that the reload scenario alternates between: both valid, the
// second with one more route, so that every reload compiles a new table.
func (sc *scenario) gatewayConfig(listen, control string, backends []string, accessLog string, variant int, tf *tlsFiles) string {
	var b strings.Builder
	fmt.Fprintf(&b, "revision: bench-%s-%d\n", sc.Name, variant)
	if tf != nil {
		fmt.Fprintf(&b, "certificates: [{id: bench, cert_file: %q, key_file: %q}]\n", tf.cert, tf.key)
	}
	b.WriteString("gateway:\n")
	fmt.Fprintf(&b, "  listen: %s\n  control_listen: %s\n  log_level: warn\n", listen, control)
	if tf != nil {
		fmt.Fprintf(&b, "  tls_listen: %s\n  tls: {default_certificate: bench}\n", tf.listen)
	}
	if sc.AccessLog {
		fmt.Fprintf(&b, "  access_log: {enabled: true, path: %q}\n", accessLog)
	} else {
		b.WriteString("  access_log: {enabled: false}\n")
	}
	if sc.Reload {
		// Reloads are driven by POST /v1/reload; the file watcher would
		// only add reloads of its own after the load ends.
		b.WriteString("  reload_debounce: 3600\n")
	}
	b.WriteString("upstreams:\n  - id: backends\n")
	if sc.CHash {
		fmt.Fprintf(&b, "    type: chash\n    hash_on: header\n    key: %s\n", userHeader)
	}
	b.WriteString("    nodes:\n")
	for _, a := range backends {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&b, "      - {host: %s, port: %s}\n", host, port)
	}
	if sc.Throttle {
		// Limits no load on one machine reaches, so nothing is rejected:
		// the scenario measures the cost of checking, not of refusing.
		const limit = 2000000000
		fmt.Fprintf(&b, "throttle_policies:\n  - {id: bench, api_call_limits: %d, user_call_limits: %d, "+
			"app_call_limits: %d, ip_call_limits: %d, time_interval: 1, time_unit: SECOND, type: 1%s}\n",
			limit, limit, limit, limit, sc.redisPolicy())
	}
	if sc.Redis {
		// 1 s rather than the default 100 ms: on a loaded bench machine a
		// slow round trip would switch the policy to local counting and
		// the figures would no longer be Redis's.
		fmt.Fprintf(&b, "redis:\n  - {id: bench, addrs: [%q], timeout_ms: 1000}\n", sc.redisAddr)
	}
	if sc.Auth {
		fmt.Fprintf(&b, "consumers:\n  - username: bench-user\n    credentials:\n"+
			"      - {name: bench-app, plugins: {key-auth: {key: %s}}}\n", benchKey)
	}
	b.WriteString("services:\n  - id: bench\n    upstream_id: backends\n")
	if sc.Throttle {
		b.WriteString("    throttle_policy: bench\n")
	}
	if sc.Auth {
		b.WriteString("    plugins: {key-auth: {}}\n")
	}
	b.WriteString("    routes:\n")
	for i := range sc.Routes {
		fmt.Fprintf(&b, "      - {id: r%d, paths: [\"%s*\"]}\n", i, sc.routePrefix(i))
	}
	if variant == 1 {
		b.WriteString("      - {id: extra, paths: [\"/extra/*\"]}\n")
	}
	return b.String()
}

// sideStats is what the jobs running beside the load did.
type sideStats struct {
	Reloads        int     `json:"reloads,omitempty"`
	ReloadFailures int     `json:"reload_failures,omitempty"`
	ReloadP50Ms    float64 `json:"reload_p50_ms,omitempty"`
	ReloadMaxMs    float64 `json:"reload_max_ms,omitempty"`
	Scrapes        int     `json:"scrapes,omitempty"`
	ScrapeBytes    int64   `json:"scrape_bytes,omitempty"`
	AccessLogBytes int64   `json:"access_log_bytes,omitempty"`
}

// sideJobs runs, during a gateway turn, what the scenario adds beside the
// load: /metrics scrapes and config reloads.
type sideJobs struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	stats  sideStats
	reload []time.Duration
}

// startSide starts the side jobs of sc against the gateway g.
func (b *bench) startSide(ctx context.Context, sc *scenario, g *gatewayTarget) *sideJobs {
	ctx, cancel := context.WithCancel(ctx)
	s := &sideJobs{cancel: cancel}
	client := &http.Client{Timeout: 30 * time.Second}
	if sc.Scrape && b.opts.ScrapeEvery > 0 {
		s.wg.Go(func() {
			every(ctx, b.opts.ScrapeEvery, func() {
				n, err := scrape(ctx, client, "http://"+g.control+metricsPath)
				s.mu.Lock()
				if err == nil {
					s.stats.Scrapes++
					s.stats.ScrapeBytes += n
				}
				s.mu.Unlock()
			})
		})
	}
	if sc.Reload && g.cfgPath != "" {
		s.wg.Go(func() {
			variant := 0
			every(ctx, b.opts.ReloadEvery, func() {
				variant ^= 1
				d, err := g.reload(ctx, client, sc, variant)
				if ctx.Err() != nil {
					return // cut short by the end of the turn, not a failure
				}
				s.mu.Lock()
				s.stats.Reloads++
				if err != nil {
					s.stats.ReloadFailures++
					fmt.Fprintf(b.log, "  reload failed: %v\n", err)
				} else {
					s.reload = append(s.reload, d)
				}
				s.mu.Unlock()
			})
		})
	}
	return s
}

// stop ends the side jobs and returns what they did.
func (s *sideJobs) stop() sideStats {
	s.cancel()
	s.wg.Wait()
	st := s.stats
	if len(s.reload) > 0 {
		slices.Sort(s.reload)
		st.ReloadP50Ms = ms(s.reload[len(s.reload)/2])
		st.ReloadMaxMs = ms(s.reload[len(s.reload)-1])
	}
	return st
}

// every calls f every d until ctx ends; a call that overruns delays the
// next rather than piling up.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func scrape(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

// writeFileAtomic replaces path with data in one rename, so that the
// gateway never reads a half-written config.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
