package healthcheck

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testnet"
)

// idleChecks has an active check that never probes, so that only Observe
// moves nodes, and a passive check with http_failures 3.
func idleChecks() *config.Checks {
	ac := activeCheck("http")
	ac.Healthy.Interval, ac.Unhealthy.Interval = 0, 0
	pc := passiveCheck()
	pc.Unhealthy.HTTPFailures = 3
	return &config.Checks{Active: ac, Passive: pc}
}

func (m *Manager) checkerOf(id string) *checker {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if up := m.ups[id]; up != nil {
		return up.checker
	}
	return nil
}

func TestSyncKeepsState(t *testing.T) {
	r := &recorder{}
	m, _ := newTestManager(t, r)
	a, b, c := testnet.DeadAddr(t), testnet.DeadAddr(t), testnet.DeadAddr(t)
	nodes := []config.Node{node(t, a), node(t, b)}

	m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", idleChecks(), nodes...)}})
	na, nb := m.Node("u", a), m.Node("u", b)
	require.NotNil(t, na)
	require.NotNil(t, nb)
	require.Nil(t, m.Node("u", c))
	require.Nil(t, m.Node("other", a))
	ck := m.checkerOf("u")
	require.NotNil(t, ck)

	na.Observe(Outcome{Status: 500})
	na.Observe(Outcome{Status: 500})

	t.Run("same config, new objects", func(t *testing.T) {
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", idleChecks(), nodes...)}})
		require.Same(t, na, m.Node("u", a))
		require.Same(t, nb, m.Node("u", b))
		require.Equal(t, Counters{HTTPFailures: 2}, na.status().Counters)
		require.Same(t, ck, m.checkerOf("u"), "checker keeps its rhythm")
	})

	t.Run("unrelated fields changed", func(t *testing.T) {
		up := upstreamCfg("u", idleChecks(), node(t, a), node(t, b))
		up.Timeout.Read = 5
		up.Type = "least_conn"
		up.Nodes[0].Weight = 7
		up.Checks.Active.ReqHeaders = nil // same as [] for probing
		m.Sync([]Upstream{{ID: "u", Config: up}})
		require.Same(t, na, m.Node("u", a))
		require.Equal(t, Counters{HTTPFailures: 2}, na.status().Counters)
		require.Same(t, ck, m.checkerOf("u"))

		na.Observe(Outcome{Status: 500})
		require.True(t, na.Down().Load())
		m.Sync([]Upstream{{ID: "u", Config: up}})
		require.True(t, m.Node("u", a).Down().Load(), "a reload does not reset state")
	})

	t.Run("new node starts healthy, removed node is dropped", func(t *testing.T) {
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", idleChecks(), node(t, a), node(t, c))}})
		nc := m.Node("u", c)
		require.NotNil(t, nc)
		require.False(t, nc.Down().Load())
		require.Equal(t, Counters{}, nc.status().Counters)
		require.Nil(t, m.Node("u", b))
		require.True(t, m.Node("u", a).Down().Load())

		// Requests still running on the old snapshot report into the
		// dropped node: nothing happens.
		for range 10 {
			nb.Observe(Outcome{Status: 500})
		}
		require.False(t, nb.Down().Load())
		require.Len(t, r.transitions(), 1) // a's, above

		// A node that comes back is a new node.
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", idleChecks(), node(t, a), node(t, b))}})
		require.NotSame(t, nb, m.Node("u", b))
		require.False(t, m.Node("u", b).Down().Load())
	})

	t.Run("active check changed restarts the checker, keeps state", func(t *testing.T) {
		checks := idleChecks()
		checks.Active.HTTPPath = "/other"
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", checks, node(t, a), node(t, b))}})
		require.NotSame(t, ck, m.checkerOf("u"))
		require.NotNil(t, m.checkerOf("u"))
		requireClosed(t, ck.done)
		require.Same(t, na, m.Node("u", a))
		require.True(t, na.Down().Load())
	})

	t.Run("passive check changed applies at once", func(t *testing.T) {
		checks := idleChecks()
		checks.Active.HTTPPath = "/other"
		checks.Passive.Healthy.Successes = 1
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", checks, node(t, a), node(t, b))}})
		na.Observe(Outcome{Status: 200})
		require.False(t, na.Down().Load())

		checks.Passive = nil
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", checks, node(t, a), node(t, b))}})
		na.Observe(Outcome{Status: 500})
		require.Equal(t, Counters{Successes: 1}, na.status().Counters, "no passive check: Observe does nothing")
	})

	t.Run("upstream without checks is dropped", func(t *testing.T) {
		m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", nil, node(t, a))}})
		require.Nil(t, m.Node("u", a))
		require.Empty(t, m.Snapshot())
	})
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed")
	}
}

func TestSyncStopsRemovedCheckers(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	slow := newBackend(t, http.StatusOK)
	slow.slow(1 << 62) // a probe is in flight when the checker stops
	requireBack := goroutines(t)

	r := &recorder{}
	m, _ := newTestManager(t, r)
	ac := activeCheck("http")
	ac.Timeout = 60
	m.Sync([]Upstream{
		{ID: "fast", Config: upstreamCfg("fast", &config.Checks{Active: activeCheck("http")}, node(t, hostPort(t, b.Server)))},
		{ID: "slow", Config: upstreamCfg("slow", &config.Checks{Active: ac}, node(t, hostPort(t, slow.Server)))},
	})
	require.Eventually(t, func() bool {
		return b.answered(http.StatusOK) >= 2 && slow.answered(http.StatusOK) >= 1
	}, waitFor, pollTick)
	fast, slowCk := m.checkerOf("fast"), m.checkerOf("slow")

	m.Sync([]Upstream{
		{ID: "fast", Config: upstreamCfg("fast", &config.Checks{Active: activeCheck("http")}, node(t, hostPort(t, b.Server)))},
	})
	requireClosed(t, slowCk.done) // Sync waited for it, in-flight probe included
	require.Same(t, fast, m.checkerOf("fast"))
	require.Nil(t, m.Node("slow", hostPort(t, slow.Server)))
	require.Len(t, m.Snapshot(), 1)

	m.Sync(nil)
	requireClosed(t, fast.done)
	require.Empty(t, m.Snapshot())
	requireBack()
	require.Empty(t, r.transitions(), "stopping a checker is not a transition")
}

func TestCloseStopsAll(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	slow := newBackend(t, http.StatusOK)
	slow.slow(1 << 62)
	requireBack := goroutines(t)

	m, _ := newTestManager(t, &recorder{})
	ac := activeCheck("http")
	ac.Timeout = 60
	addr := hostPort(t, b.Server)
	m.Sync([]Upstream{
		{ID: "a", Config: upstreamCfg("a", &config.Checks{Active: activeCheck("tcp")}, node(t, addr))},
		{ID: "b", Config: upstreamCfg("b", &config.Checks{Active: activeCheck("http")}, node(t, addr))},
		{ID: "c", Config: upstreamCfg("c", &config.Checks{Active: ac}, node(t, hostPort(t, slow.Server)))},
	})
	require.Eventually(t, func() bool {
		return b.answered(http.StatusOK) >= 2 && slow.answered(http.StatusOK) >= 1
	}, waitFor, pollTick)

	m.Close()
	requireBack()
	m.Close() // idempotent

	// State stays readable; a Sync after Close starts nothing.
	require.NotNil(t, m.Node("a", addr))
	require.Len(t, m.Snapshot(), 3)
	m.Sync([]Upstream{{ID: "d", Config: upstreamCfg("d", &config.Checks{Active: activeCheck("tcp")}, node(t, addr))}})
	require.Nil(t, m.Node("d", addr))
	requireBack()
}

func TestSnapshot(t *testing.T) {
	m, _ := newTestManager(t, &recorder{})
	a, b := testnet.DeadAddr(t), testnet.DeadAddr(t)
	passiveOnlyChecks := idleChecks()
	passiveOnlyChecks.Active = nil // a load error, but the manager copes
	m.Sync([]Upstream{
		{ID: "zeta", Config: upstreamCfg("zeta", idleChecks(), node(t, b), node(t, a), node(t, b))},
		{ID: "alpha", Config: upstreamCfg("alpha", passiveOnlyChecks, node(t, a))},
	})
	before := m.Node("zeta", a).status().LastChange
	for range 3 {
		m.Node("zeta", a).Observe(Outcome{Status: 503})
	}
	m.Node("zeta", b).Observe(Outcome{Timeout: true})

	st := m.Snapshot()
	require.Len(t, st, 2)
	require.Equal(t, "alpha", st[0].ID)
	require.Empty(t, st[0].Type)
	require.Equal(t, "zeta", st[1].ID)
	require.Equal(t, "http", st[1].Type)
	require.Len(t, st[1].Nodes, 2, "a node listed twice is one node")

	nb, na := st[1].Nodes[0], st[1].Nodes[1] // config order
	require.Equal(t, node(t, b).Port, nb.Port)
	require.Equal(t, "127.0.0.1", nb.Host)
	require.Equal(t, "healthy", nb.Status)
	require.Equal(t, Counters{Timeouts: 1}, nb.Counters)
	require.Equal(t, "unhealthy", na.Status)
	require.Equal(t, Counters{HTTPFailures: 3}, na.Counters)
	require.False(t, na.LastChange.Before(before))

	raw, err := json.Marshal(st[1])
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	require.Equal(t, "zeta", doc["id"])
	n0 := doc["nodes"].([]any)[1].(map[string]any)
	require.ElementsMatch(t, []string{"host", "port", "status", "counters", "last_change"}, keys(n0))
	require.ElementsMatch(t, []string{"successes", "http_failures", "tcp_failures", "timeouts"},
		keys(n0["counters"].(map[string]any)))
	require.Equal(t, float64(3), n0["counters"].(map[string]any)["http_failures"])
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConcurrentUse runs Observe, probes, Sync, Snapshot and Node together
// for the race detector, with an onChange that reads the manager, and checks
// that reports arrive in transition order.
func TestConcurrentUse(t *testing.T) {
	b := newBackend(t, http.StatusOK)
	requireBack := goroutines(t)
	r := &recorder{}
	m, _ := newTestManager(t, r)
	r.hook = func() []int64 { return []int64{int64(len(m.Snapshot()))} }
	addr := hostPort(t, b.Server)
	checks := func() *config.Checks {
		pc := passiveCheck()
		pc.Healthy.Successes = 1
		pc.Unhealthy.HTTPFailures = 1
		return &config.Checks{Active: activeCheck("http"), Passive: pc}
	}
	ups := func(headers ...string) []Upstream {
		c := checks()
		c.Active.ReqHeaders = headers
		return []Upstream{{ID: "u", Config: upstreamCfg("u", c, node(t, addr))}}
	}
	m.Sync(ups())

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 2000 {
				if n := m.Node("u", addr); n != nil {
					n.Observe(Outcome{Status: []int{200, 500}[(i+j)%2]})
					_ = n.Down().Load()
				}
			}
		})
	}
	wg.Go(func() {
		for j := range 50 {
			if j%2 == 0 {
				m.Sync(ups("X-Round: even"))
			} else {
				m.Sync(ups())
			}
			_ = m.Snapshot()
		}
	})
	wg.Wait()
	m.Close()
	requireBack()

	got := r.transitions()
	require.NotEmpty(t, got)
	require.Equal(t, !m.Node("u", addr).Down().Load(), got[len(got)-1].healthy, "the last report is the final state")
	for i := 1; i < len(got); i++ {
		require.NotEqual(t, got[i-1].healthy, got[i].healthy, "transitions alternate")
	}
}
