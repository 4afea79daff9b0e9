package healthcheck

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testnet"
)

const (
	S = evSuccess
	H = evHTTPFailure
	T = evTCPFailure
	O = evTimeout
	N = evNone
)

// testPolicy: successes 2, http failures 3, tcp failures 2, timeouts 3.
func testPolicy() *policy {
	return &policy{
		check:        "active",
		healthy:      newStatusSet([]int{200, 302}),
		unhealthy:    newStatusSet([]int{500, 503}),
		successes:    2,
		httpFailures: 3,
		tcpFailures:  2,
		timeouts:     3,
	}
}

func TestStep(t *testing.T) {
	noTCP := testPolicy()
	noTCP.tcpFailures = 0
	noSuccesses := testPolicy()
	noSuccesses.successes = 0

	tests := []struct {
		name        string
		pol         *policy
		start       Counters
		healthy     bool
		events      []event
		want        Counters
		wantHealthy bool
	}{
		{"success resets the failure counters", nil,
			Counters{0, 2, 1, 2}, true, []event{S}, Counters{1, 0, 0, 0}, true},
		{"http failure resets successes only", nil,
			Counters{4, 0, 1, 1}, true, []event{H}, Counters{0, 1, 1, 1}, true},
		{"tcp failure resets successes only", nil,
			Counters{1, 2, 0, 0}, true, []event{T}, Counters{0, 2, 1, 0}, true},
		{"timeout resets successes only", nil,
			Counters{1, 0, 1, 0}, true, []event{O}, Counters{0, 0, 1, 1}, true},
		{"http failures reach their threshold", nil,
			Counters{}, true, []event{H, H, H}, Counters{0, 3, 0, 0}, false},
		{"one short of the threshold stays healthy", nil,
			Counters{}, true, []event{H, H}, Counters{0, 2, 0, 0}, true},
		{"tcp failures reach their threshold", nil,
			Counters{}, true, []event{T, T}, Counters{0, 0, 2, 0}, false},
		{"timeouts reach their threshold", nil,
			Counters{}, true, []event{O, O, O}, Counters{0, 0, 0, 3}, false},
		{"failures of other kinds do not reset each other", nil,
			Counters{}, true, []event{H, H, T, O, H}, Counters{0, 3, 1, 1}, false},
		{"a success in between restarts the count", nil,
			Counters{}, true, []event{H, H, S, H, H}, Counters{0, 2, 0, 0}, true},
		{"healthy node keeps counting successes", nil,
			Counters{}, true, []event{S, S, S}, Counters{3, 0, 0, 0}, true},
		{"unhealthy node needs successes", nil,
			Counters{0, 3, 0, 0}, false, []event{S}, Counters{1, 0, 0, 0}, false},
		{"unhealthy node recovers at the successes threshold", nil,
			Counters{0, 3, 0, 0}, false, []event{S, S}, Counters{2, 0, 0, 0}, true},
		{"a failure between successes restarts recovery", nil,
			Counters{0, 3, 0, 0}, false, []event{S, T, S}, Counters{1, 0, 0, 0}, false},
		{"unhealthy node keeps counting failures", nil,
			Counters{0, 3, 0, 0}, false, []event{H, H}, Counters{0, 5, 0, 0}, false},
		{"status in neither list changes nothing", nil,
			Counters{1, 2, 1, 2}, true, []event{N, N, N}, Counters{1, 2, 1, 2}, true},
		{"status in neither list keeps an unhealthy node down", nil,
			Counters{1, 0, 0, 0}, false, []event{N, N}, Counters{1, 0, 0, 0}, false},
		{"a count already past a lowered threshold trips at once", nil,
			Counters{0, 4, 0, 0}, true, []event{H}, Counters{0, 5, 0, 0}, false},
		{"threshold 0 ignores the event entirely", noTCP,
			Counters{3, 1, 0, 0}, true, []event{T, T, T, T}, Counters{3, 1, 0, 0}, true},
		{"threshold 0 leaves the other counters working", noTCP,
			Counters{}, true, []event{T, H, T, H, H}, Counters{0, 3, 0, 0}, false},
		{"successes threshold 0 never recovers and resets nothing", noSuccesses,
			Counters{0, 3, 0, 0}, false, []event{S, S, S}, Counters{0, 3, 0, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.pol
			if pol == nil {
				pol = testPolicy()
			}
			c, healthy := tt.start, tt.healthy
			for _, ev := range tt.events {
				healthy = step(&c, healthy, pol, ev)
			}
			require.Equal(t, tt.want, c)
			require.Equal(t, tt.wantHealthy, healthy)
		})
	}
}

func TestPolicyClassifies(t *testing.T) {
	httpPol := testPolicy()
	tcpPol := testPolicy()
	tcpPol.tcp = true
	both := testPolicy()
	both.unhealthy = newStatusSet([]int{200, 500})

	tests := []struct {
		name string
		pol  *policy
		o    Outcome
		want event
	}{
		{"healthy status", httpPol, Outcome{Status: 200}, S},
		{"unhealthy status", httpPol, Outcome{Status: 503}, H},
		{"status in neither list", httpPol, Outcome{Status: 418}, N},
		{"no status, no failure", httpPol, Outcome{}, N},
		{"out of range status", httpPol, Outcome{Status: 1000}, N},
		{"tcp failure wins over status", httpPol, Outcome{Status: 200, TCPFailure: true}, T},
		{"timeout wins over tcp failure", httpPol, Outcome{TCPFailure: true, Timeout: true}, O},
		{"healthy list wins over unhealthy list", both, Outcome{Status: 200}, S},
		{"tcp type: any status is a success", tcpPol, Outcome{Status: 503}, S},
		{"tcp type: no status is nothing", tcpPol, Outcome{}, N},
		{"tcp type: tcp failure", tcpPol, Outcome{TCPFailure: true}, T},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.pol.outcome(tt.o))
		})
	}
}

func TestPoliciesFromConfig(t *testing.T) {
	a := activePolicy(activeCheck("tcp"))
	require.Equal(t, "active", a.check)
	require.True(t, a.tcp)
	require.Equal(t, [4]uint32{2, 5, 2, 3}, [4]uint32{a.successes, a.httpFailures, a.tcpFailures, a.timeouts})
	require.True(t, a.healthy.has(302))
	require.True(t, a.unhealthy.has(505))

	p := passivePolicy(passiveCheck())
	require.Equal(t, "passive", p.check)
	require.False(t, p.tcp)
	require.Equal(t, [4]uint32{5, 5, 2, 7}, [4]uint32{p.successes, p.httpFailures, p.tcpFailures, p.timeouts})
	require.True(t, p.healthy.has(226))
	require.False(t, p.healthy.has(209))
	require.True(t, p.unhealthy.has(429))
	require.False(t, p.unhealthy.has(502))
}

func TestErrEvent(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		err  error
		want event
	}{
		{refused, T},
		{reset, T},
		{io.EOF, T},
		{io.ErrUnexpectedEOF, T},
		{fmt.Errorf("handshake: %w", os.ErrDeadlineExceeded), O},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, O},
		{context.DeadlineExceeded, O},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, errEvent(tt.err), "%v", tt.err)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		c      Counters
		ev     event
		status int
		want   string
	}{
		{Counters{HTTPFailures: 3}, H, 503, "3 consecutive http failures (status 503)"},
		{Counters{HTTPFailures: 1}, H, 500, "1 consecutive http failure (status 500)"},
		{Counters{TCPFailures: 2}, T, 0, "2 consecutive tcp failures"},
		{Counters{Timeouts: 3}, O, 0, "3 consecutive timeouts"},
		{Counters{Successes: 2}, S, 200, "2 consecutive successes"},
		{Counters{Successes: 1}, S, 0, "1 consecutive success"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, reason(&tt.c, tt.ev, tt.status))
	}
}

// passiveOnly syncs one upstream whose active check never probes (both
// intervals 0), so that only Observe moves its node.
func passiveOnly(t *testing.T, m *Manager, p *config.PassiveCheck) *Node {
	t.Helper()
	ac := activeCheck("http")
	ac.Healthy.Interval, ac.Unhealthy.Interval = 0, 0
	addr := testnet.DeadAddr(t)
	m.Sync([]Upstream{{ID: "u", Config: upstreamCfg("u", &config.Checks{Active: ac, Passive: p}, node(t, addr))}})
	n := m.Node("u", addr)
	require.NotNil(t, n)
	return n
}

func TestObserveOnChangeOncePerTransition(t *testing.T) {
	r := &recorder{}
	m, logs := newTestManager(t, r)
	pc := passiveCheck()
	pc.Unhealthy.HTTPFailures = 3
	pc.Healthy.Successes = 2
	n := passiveOnly(t, m, pc)

	for range 2 {
		n.Observe(Outcome{Status: 500})
	}
	require.False(t, n.Down().Load(), "2 of 3 failures")
	require.Empty(t, r.transitions())

	n.Observe(Outcome{Status: 500})
	require.True(t, n.Down().Load())
	for range 10 {
		n.Observe(Outcome{Status: 503})
		n.Observe(Outcome{Timeout: true})
	}
	n.Observe(Outcome{Status: 200})
	require.True(t, n.Down().Load(), "1 of 2 successes")
	n.Observe(Outcome{Status: 200})
	require.False(t, n.Down().Load())
	for range 10 {
		n.Observe(Outcome{Status: 204})
	}

	addr := n.addr
	require.Equal(t, []transition{{"u", addr, false, nil}, {"u", addr, true, nil}}, r.transitions())
	require.Equal(t, []string{"3 consecutive http failures (status 500)", "2 consecutive successes"}, reasons(logs))
	entry := logs.All()[0].ContextMap()
	require.Equal(t, map[string]any{
		"upstream": "u", "node": addr, "from": "healthy", "to": "unhealthy",
		"reason": "3 consecutive http failures (status 500)", "check": "passive",
	}, entry)
}

func TestObserveThresholdZeroDisablesCounter(t *testing.T) {
	r := &recorder{}
	m, _ := newTestManager(t, r)
	pc := passiveCheck()
	pc.Unhealthy.TCPFailures = 0
	n := passiveOnly(t, m, pc)

	n.Observe(Outcome{Status: 200})
	for range 50 {
		n.Observe(Outcome{TCPFailure: true})
	}
	require.False(t, n.Down().Load())
	require.Equal(t, Counters{Successes: 1}, n.status().Counters, "a disabled failure does not even reset successes")
	require.Empty(t, r.transitions())
}

func TestObserveWithoutPassiveDoesNothing(t *testing.T) {
	r := &recorder{}
	m, _ := newTestManager(t, r)
	n := passiveOnly(t, m, nil)
	for range 20 {
		n.Observe(Outcome{Status: 500})
		n.Observe(Outcome{TCPFailure: true})
	}
	require.False(t, n.Down().Load())
	require.Equal(t, Counters{}, n.status().Counters)

	var none *Node
	require.Nil(t, none.Down())
	none.Observe(Outcome{Status: 500}) // must not panic
}

func TestObserveDoesNotAllocate(t *testing.T) {
	r := &recorder{}
	m, _ := newTestManager(t, r)
	n := passiveOnly(t, m, passiveCheck())

	require.Zero(t, testing.AllocsPerRun(1000, func() { n.Observe(Outcome{Status: 200}) }), "success on a healthy node")
	require.Zero(t, testing.AllocsPerRun(1000, func() { n.Observe(Outcome{Status: 418}) }), "status in neither list")

	for range 5 {
		n.Observe(Outcome{Status: 500})
	}
	require.True(t, n.Down().Load())
	require.Zero(t, testing.AllocsPerRun(1000, func() { n.Observe(Outcome{Status: 503}) }), "http failure")
	require.Zero(t, testing.AllocsPerRun(1000, func() { n.Observe(Outcome{TCPFailure: true}) }), "tcp failure")
	require.Zero(t, testing.AllocsPerRun(1000, func() { n.Observe(Outcome{Timeout: true}) }), "timeout")

	bare := passiveOnly(t, m, nil)
	require.Zero(t, testing.AllocsPerRun(1000, func() { bare.Observe(Outcome{Status: 500}) }), "no passive check")
}
