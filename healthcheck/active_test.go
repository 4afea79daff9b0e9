package healthcheck

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testnet"
)

func syncOne(m *Manager, id string, checks *config.Checks, nodes ...config.Node) {
	m.Sync([]Upstream{{ID: id, Config: upstreamCfg(id, checks, nodes...)}})
}

func TestActiveHTTPFailuresThenRecovery(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	// The hook runs inside onChange: it sees how many probes the backend had
	// answered with each status at the moment of the transition.
	r := &recorder{hook: func() []int64 {
		return []int64{b.answered(http.StatusServiceUnavailable), b.answered(http.StatusOK)}
	}}
	m, logs := newTestManager(t, r)

	ac := activeCheck("http")
	ac.HTTPPath = "/healthz?probe=1"
	ac.Host = "probe.example"
	ac.ReqHeaders = []string{"X-Probe: yes", "X-Multi: a", "X-Multi: b"}
	ac.Unhealthy.HTTPFailures = 3
	addr := hostPort(t, b.Server)
	syncOne(m, "u", &config.Checks{Active: ac}, node(t, addr))
	n := m.Node("u", addr)
	require.NotNil(t, n)

	require.Eventually(t, func() bool { return b.answered(http.StatusOK) >= 2 }, waitFor, pollTick)
	require.False(t, n.Down().Load())
	req := b.lastRequest()
	require.Equal(t, http.MethodGet, req.Method)
	require.Equal(t, "/healthz", req.URL.Path)
	require.Equal(t, "probe=1", req.URL.RawQuery)
	require.Equal(t, "probe.example", req.Host)
	require.Equal(t, "yes", req.Header.Get("X-Probe"))
	require.Equal(t, []string{"a", "b"}, req.Header.Values("X-Multi"))
	require.Equal(t, "gateway-healthcheck", req.UserAgent())

	b.set(http.StatusServiceUnavailable)
	got := r.waitTransitions(t, 1)
	require.False(t, got[0].healthy)
	require.Equal(t, int64(3), got[0].at[0], "unhealthy after exactly http_failures probes")
	require.True(t, n.Down().Load())

	okBefore := b.answered(http.StatusOK) // frozen while the backend answers 503
	b.set(http.StatusOK)
	got = r.waitTransitions(t, 2)
	require.True(t, got[1].healthy)
	require.Equal(t, int64(2), got[1].at[1]-okBefore, "healthy after exactly successes probes")
	require.False(t, n.Down().Load())

	// More good probes change nothing.
	seen := b.answered(http.StatusOK)
	require.Eventually(t, func() bool { return b.answered(http.StatusOK) >= seen+3 }, waitFor, pollTick)
	require.Len(t, r.transitions(), 2)
	require.Equal(t, []string{"3 consecutive http failures (status 503)", "2 consecutive successes"}, reasons(logs))
	require.Equal(t, "active", logs.All()[0].ContextMap()["check"])
}

func TestActiveConnectFailures(t *testing.T) {
	for _, typ := range []string{"tcp", "http"} {
		t.Run(typ, func(t *testing.T) {
			r := &recorder{}
			m, logs := newTestManager(t, r)
			addr := testnet.DeadAddr(t)
			syncOne(m, "u", &config.Checks{Active: activeCheck(typ)}, node(t, addr))

			got := r.waitTransitions(t, 1)
			require.Equal(t, transition{"u", addr, false, nil}, got[0])
			require.Equal(t, []string{"2 consecutive tcp failures"}, reasons(logs))
			st := m.Snapshot()
			require.Len(t, st, 1)
			require.Equal(t, "unhealthy", st[0].Nodes[0].Status)
			require.GreaterOrEqual(t, st[0].Nodes[0].Counters.TCPFailures, uint32(2))
		})
	}
}

func TestActiveTCPSuccess(t *testing.T) {
	l := testnet.Listen(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	r := &recorder{}
	m, _ := newTestManager(t, r)
	addr := l.Addr().String()
	syncOne(m, "u", &config.Checks{Active: activeCheck("tcp")}, node(t, addr))
	require.Eventually(t, func() bool { return m.Node("u", addr).status().Counters.Successes >= 3 }, waitFor, pollTick)
	require.False(t, m.Node("u", addr).Down().Load())
	require.Empty(t, r.transitions())
}

func TestActiveProbeTimeout(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	b.slow(time.Minute) // returns early when the probe hangs up
	r := &recorder{hook: func() []int64 { return []int64{b.answered(http.StatusOK)} }}
	m, logs := newTestManager(t, r)

	ac := activeCheck("http")
	ac.Timeout = 0.1
	ac.Unhealthy.Timeouts = 2
	addr := hostPort(t, b.Server)
	syncOne(m, "u", &config.Checks{Active: ac}, node(t, addr))

	got := r.waitTransitions(t, 1)
	require.False(t, got[0].healthy)
	require.Equal(t, int64(2), got[0].at[0], "unhealthy after exactly timeouts probes")
	require.Equal(t, []string{"2 consecutive timeouts"}, reasons(logs))
	c := m.Node("u", addr).status().Counters
	require.GreaterOrEqual(t, c.Timeouts, uint32(2))
	require.Zero(t, c.HTTPFailures)
	require.Zero(t, c.TCPFailures)
}

func TestActiveStatusInNeitherList(t *testing.T) {
	b := newBackend(t, http.StatusTeapot)
	r := &recorder{}
	m, _ := newTestManager(t, r)
	ac := activeCheck("http")
	ac.Unhealthy.HTTPFailures = 2
	addr := hostPort(t, b.Server)
	syncOne(m, "u", &config.Checks{Active: ac}, node(t, addr))
	n := m.Node("u", addr)

	// A healthy node stays healthy with untouched counters.
	require.Eventually(t, func() bool { return b.answered(http.StatusTeapot) >= 5 }, waitFor, pollTick)
	require.False(t, n.Down().Load())
	require.Equal(t, Counters{}, n.status().Counters)

	// An unhealthy node stays unhealthy and its counters freeze.
	b.set(http.StatusBadGateway)
	r.waitTransitions(t, 1)
	b.set(http.StatusTeapot)
	seen := b.answered(http.StatusTeapot)
	require.Eventually(t, func() bool { return b.answered(http.StatusTeapot) >= seen+3 }, waitFor, pollTick)
	frozen := n.status().Counters
	require.Eventually(t, func() bool { return b.answered(http.StatusTeapot) >= seen+6 }, waitFor, pollTick)
	require.Equal(t, frozen, n.status().Counters)
	require.True(t, n.Down().Load())
	require.Len(t, r.transitions(), 1)
}

func TestActiveHTTPS(t *testing.T) {
	var probes countingHandler
	srv := httptest.NewUnstartedServer(&probes)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := hostPort(t, srv)

	t.Run("no verification", func(t *testing.T) {
		r := &recorder{}
		m, _ := newTestManager(t, r)
		ac := activeCheck("https")
		ac.HTTPSVerifyCertificate = false
		syncOne(m, "u", &config.Checks{Active: ac}, node(t, addr))
		require.Eventually(t, func() bool { return m.Node("u", addr).status().Counters.Successes >= 3 }, waitFor, pollTick)
		require.Empty(t, r.transitions())
		require.Positive(t, probes.n.Load())
	})
	t.Run("verification fails on an unknown certificate", func(t *testing.T) {
		r := &recorder{}
		m, logs := newTestManager(t, r)
		syncOne(m, "u", &config.Checks{Active: activeCheck("https")}, node(t, addr))
		r.waitTransitions(t, 1)
		require.Equal(t, []string{"2 consecutive tcp failures"}, reasons(logs))
	})
}

func TestActivePortOverride(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	r := &recorder{}
	m, _ := newTestManager(t, r)
	ac := activeCheck("http")
	ac.Port = node(t, hostPort(t, b.Server)).Port
	addr := testnet.DeadAddr(t) // traffic port: nothing listens, but probes go to ac.Port
	syncOne(m, "u", &config.Checks{Active: ac}, node(t, addr))

	require.Eventually(t, func() bool { return b.answered(http.StatusOK) >= 3 }, waitFor, pollTick)
	require.False(t, m.Node("u", addr).Down().Load())
	require.Empty(t, r.transitions())
	require.Equal(t, "127.0.0.1", b.lastRequest().Host, "Host defaults to the node host")
}

func TestPassiveDownActiveUp(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	r := &recorder{hook: func() []int64 { return []int64{b.answered(http.StatusOK)} }}
	m, logs := newTestManager(t, r)

	ac := activeCheck("http")
	ac.Healthy.Interval = 0 // healthy nodes are not probed: only Observe moves it down
	pc := passiveCheck()
	pc.Unhealthy.HTTPStatuses = []int{500}
	pc.Unhealthy.HTTPFailures = 3
	addr := hostPort(t, b.Server)
	syncOne(m, "u", &config.Checks{Active: ac, Passive: pc}, node(t, addr))
	n := m.Node("u", addr)

	n.Observe(Outcome{Status: 500})
	n.Observe(Outcome{Status: 500})
	require.False(t, n.Down().Load())
	n.Observe(Outcome{Status: 500})
	require.True(t, n.Down().Load(), "unhealthy after http_failures passive failures")

	got := r.waitTransitions(t, 2)
	require.Equal(t, []bool{false, true}, []bool{got[0].healthy, got[1].healthy})
	require.Equal(t, int64(2), got[1].at[0], "no probe while healthy, then successes probes")
	require.False(t, n.Down().Load())
	require.Equal(t, []string{"3 consecutive http failures (status 500)", "2 consecutive successes"}, reasons(logs))
	checks := []any{logs.All()[0].ContextMap()["check"], logs.All()[1].ContextMap()["check"]}
	require.Equal(t, []any{"passive", "active"}, checks)
}
