package healthcheck

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gateway/config"
)

// Intervals and waits: probes are fast, waits are generous, and no test
// asserts how quickly something happened.
const (
	interval = config.Seconds(0.05)
	waitFor  = 10 * time.Second
	pollTick = 5 * time.Millisecond
)

// activeCheck is an active check with every field at its upstreams.md
// default except the intervals, which are short so that tests are fast.
func activeCheck(typ string) *config.ActiveCheck {
	return &config.ActiveCheck{
		Type:                   config.Scheme(typ),
		Timeout:                1,
		Concurrency:            10,
		Host:                   "",
		Port:                   0,
		HTTPPath:               "/",
		HTTPSVerifyCertificate: true,
		ReqHeaders:             []string{},
		Healthy: config.ActiveHealthy{
			Interval:     interval,
			HTTPStatuses: []int{200, 302},
			Successes:    2,
		},
		Unhealthy: config.ActiveUnhealthy{
			Interval:     interval,
			HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505},
			HTTPFailures: 5,
			TCPFailures:  2,
			Timeouts:     3,
		},
	}
}

// passiveCheck is a passive check with every field at its upstreams.md
// default.
func passiveCheck() *config.PassiveCheck {
	return &config.PassiveCheck{
		Type: "http",
		Healthy: config.PassiveHealthy{
			HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
				300, 301, 302, 303, 304, 305, 306, 307, 308},
			Successes: 5,
		},
		Unhealthy: config.PassiveUnhealthy{
			HTTPStatuses: []int{429, 500, 503},
			HTTPFailures: 5,
			TCPFailures:  2,
			Timeouts:     7,
		},
	}
}

// upstreamCfg is an upstream with every field set (config.md defaults).
func upstreamCfg(id string, checks *config.Checks, nodes ...config.Node) *config.Upstream {
	retries := max(len(nodes)-1, 0)
	return &config.Upstream{
		ID:            id,
		Name:          "default",
		Desc:          "",
		Labels:        map[string]string{},
		Scheme:        "http",
		Type:          "roundrobin",
		HashOn:        "vars",
		Key:           "remote_addr",
		Nodes:         nodes,
		Timeout:       config.Timeout{Connect: 60, Send: 60, Read: 60},
		Retries:       &retries,
		RetryTimeout:  0,
		KeepalivePool: config.KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000},
		PassHost:      "pass",
		UpstreamHost:  "",
		Checks:        checks,
		TLS:           config.UpstreamTLS{Verify: true, ClientCert: "", ClientKey: ""},
		CreatedAt:     config.Ignored{},
		UpdatedAt:     config.Ignored{},
	}
}

// node is a config node with every field set.
func node(t *testing.T, addr string) config.Node {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return config.Node{Host: host, Port: port, Weight: 1, Priority: 0}
}

// hostPort returns the 127.0.0.1:port address of a test server.
func hostPort(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return srv.Listener.Addr().String()
}

// transition is one onChange call.
type transition struct {
	upstream, node string
	healthy        bool
	// at is what the test's hook captured when the call happened (e.g. how
	// many probes the backend had answered).
	at []int64
}

// recorder collects onChange calls. hook, if set, runs inside the call, so
// it sees the world exactly as of the transition.
type recorder struct {
	mu   sync.Mutex
	got  []transition
	hook func() []int64
}

func (r *recorder) onChange(upstream, node string, healthy bool) {
	var at []int64
	if r.hook != nil {
		at = r.hook()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, transition{upstream, node, healthy, at})
}

func (r *recorder) transitions() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transition(nil), r.got...)
}

// waitTransitions waits until at least n transitions were recorded.
func (r *recorder) waitTransitions(t *testing.T, n int) []transition {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.transitions()) >= n }, waitFor, pollTick,
		"waiting for %d transitions", n)
	return r.transitions()
}

// newTestManager returns a manager whose log lines are observable, closed
// at the end of the test.
func newTestManager(t *testing.T, r *recorder) (*Manager, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	m := NewManager(zap.New(core), r.onChange)
	t.Cleanup(m.Close)
	return m, logs
}

// reasons returns the reason field of every transition log line.
func reasons(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterMessage("upstream node health changed").All() {
		out = append(out, e.ContextMap()["reason"].(string))
	}
	return out
}

// goroutines returns a check that the number of goroutines comes back to
// what it is now: call it before starting what must not leak. Both counts
// are taken inside an Eventually condition, because testify runs the
// condition on a goroutine of its own.
func goroutines(t *testing.T) (requireBack func()) {
	t.Helper()
	var base int
	require.Eventually(t, func() bool { base = runtime.NumGoroutine(); return true }, waitFor, pollTick)
	return func() {
		t.Helper()
		if !assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= base }, waitFor, pollTick) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines did not return to %d:\n%s", base, buf[:runtime.Stack(buf, true)])
		}
	}
}

// backend is a test server whose status can be switched; it counts the
// requests it answered per phase.
type backend struct {
	*httptest.Server
	phase  sync.Mutex
	status int
	count  map[int]int64 // status -> requests answered with it
	last   *http.Request
	delay  time.Duration
}

func newBackend(t *testing.T, status int) *backend {
	t.Helper()
	b := &backend{status: status, count: map[int]int64{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	b.phase.Lock()
	status, delay := b.status, b.delay
	b.count[status]++
	b.last = r
	b.phase.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(status)
}

func (b *backend) set(status int) {
	b.phase.Lock()
	defer b.phase.Unlock()
	b.status = status
}

func (b *backend) answered(status int) int64 {
	b.phase.Lock()
	defer b.phase.Unlock()
	return b.count[status]
}

func (b *backend) lastRequest() *http.Request {
	b.phase.Lock()
	defer b.phase.Unlock()
	return b.last
}

func (b *backend) slow(d time.Duration) {
	b.phase.Lock()
	defer b.phase.Unlock()
	b.delay = d
}

// countingHandler answers 200 and counts requests.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) ServeHTTP(http.ResponseWriter, *http.Request) { h.n.Add(1) }
