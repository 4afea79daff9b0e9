package throttle

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/ratelimit"
)

// t0 is a minute boundary (and a day boundary: 2024-03-10 00:00:00 UTC), so
// windows of whole minutes start at it.
var t0 = time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)

func basePolicy() *config.ThrottlePolicy {
	return &config.ThrottlePolicy{
		ID:            "standard",
		APICallLimits: 1000,
		TimeInterval:  1,
		TimeUnit:      "MINUTE",
		Type:          1,
		Window:        "fixed",
	}
}

// admitPolicy runs n requests and returns how many passed and the counter
// that blocked the last rejected one.
func admitPolicy(p *Policy, now time.Time, scope uint64, user, app, ip string, n int) (admitted int, blocked Counter) {
	buf := make([]ratelimit.Check, 0, PolicyChecks)
	for range n {
		ok, c, _ := p.Admit(now, scope, []byte(user), []byte(app), []byte(ip), buf)
		if ok {
			admitted++
		} else {
			blocked = c
		}
	}
	return admitted, blocked
}

func TestPolicyAPICounterPerRoute(t *testing.T) {
	cp := basePolicy()
	cp.APICallLimits = 3
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	n, blocked := admitPolicy(p, now, 1, "", "", "10.0.0.1", 10)
	require.Equal(t, 3, n)
	require.Equal(t, CounterAPI, blocked)
	// Type 1: another route has its own API counter.
	n, _ = admitPolicy(p, now, 2, "", "", "10.0.0.1", 10)
	require.Equal(t, 3, n)

	ok, c, res := p.Admit(now, 1, nil, nil, nil, nil)
	require.False(t, ok)
	require.Equal(t, "api", c.String())
	require.Equal(t, ratelimit.Result{Limit: 3, Remaining: 0, Reset: 59 * time.Second}, res)
}

func TestPolicyTypeTwoSharesScope(t *testing.T) {
	cp := basePolicy()
	cp.APICallLimits = 4
	cp.IPCallLimits = 2
	cp.Type = 2
	p := NewPolicy(nil, cp)
	require.True(t, p.Shared())
	now := t0.Add(time.Second)

	// The routes share the API counter, and the IP counter too.
	n, blocked := admitPolicy(p, now, 1, "", "", "10.0.0.1", 1)
	require.Equal(t, 1, n)
	n, blocked = admitPolicy(p, now, 2, "", "", "10.0.0.1", 10)
	require.Equal(t, 1, n)
	require.Equal(t, CounterIP, blocked)
	n, blocked = admitPolicy(p, now, 3, "", "", "10.0.0.2", 10)
	require.Equal(t, 2, n)
	require.Equal(t, CounterAPI, blocked)
}

func TestPolicyUserCounter(t *testing.T) {
	cp := basePolicy()
	cp.UserCallLimits = 2
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	n, blocked := admitPolicy(p, now, 1, "alice", "", "", 5)
	require.Equal(t, 2, n)
	require.Equal(t, CounterUser, blocked)
	require.Equal(t, "user", blocked.String())
	// Per user, per scope.
	n, _ = admitPolicy(p, now, 1, "bob", "", "", 5)
	require.Equal(t, 2, n)
	n, _ = admitPolicy(p, now, 2, "alice", "", "", 5)
	require.Equal(t, 2, n)
	// Without a consumer there is no user counter.
	n, _ = admitPolicy(p, now, 1, "", "", "", 5)
	require.Equal(t, 5, n)
}

func TestPolicyAppCounterAndSpecials(t *testing.T) {
	cp := basePolicy()
	cp.UserCallLimits = 100
	cp.AppCallLimits = 2
	cp.Specials = []config.Special{
		{ObjectType: "APP", ObjectID: "mobile-app", CallLimits: 5},
		{ObjectType: "APP", ObjectID: "carol/mobile-app", CallLimits: 7},
		{ObjectType: "USER", ObjectID: "bob", CallLimits: 3},
	}
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	n, blocked := admitPolicy(p, now, 1, "alice", "web-app", "", 10)
	require.Equal(t, 2, n)
	require.Equal(t, CounterApp, blocked)
	require.Equal(t, "app", blocked.String())
	// The bare APP special replaces app_call_limits.
	n, _ = admitPolicy(p, now, 1, "alice", "mobile-app", "", 10)
	require.Equal(t, 5, n)
	// The qualified one wins for its user, whose credential of the same
	// name is another app with its own counter.
	n, _ = admitPolicy(p, now, 1, "carol", "mobile-app", "", 10)
	require.Equal(t, 7, n)
	// The USER special replaces user_call_limits, below the app limit here.
	n, blocked = admitPolicy(p, now, 1, "bob", "mobile-app", "", 10)
	require.Equal(t, 3, n)
	require.Equal(t, CounterUser, blocked)
}

func TestPolicySpecialsWithoutBaseLimits(t *testing.T) {
	cp := basePolicy()
	cp.Specials = []config.Special{
		{ObjectType: "APP", ObjectID: "alice/alice", CallLimits: 2}, // APISIX-shape credential
		{ObjectType: "USER", ObjectID: "bob", CallLimits: 3},
		{ObjectType: "USER", ObjectID: "mallory", CallLimits: 0},
	}
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	// Only the objects with specials are counted.
	n, blocked := admitPolicy(p, now, 1, "alice", "alice", "", 10)
	require.Equal(t, 2, n)
	require.Equal(t, CounterApp, blocked)
	n, blocked = admitPolicy(p, now, 1, "bob", "bob", "", 10)
	require.Equal(t, 3, n)
	require.Equal(t, CounterUser, blocked)
	n, _ = admitPolicy(p, now, 1, "dave", "dave", "", 10)
	require.Equal(t, 10, n)
	// A special of 0 calls admits nothing.
	n, _ = admitPolicy(p, now, 1, "mallory", "", "", 10)
	require.Equal(t, 0, n)
}

func TestPolicyIPCounter(t *testing.T) {
	cp := basePolicy()
	cp.IPCallLimits = 2
	cp.Window = "sliding"
	cp.TimeUnit = "SECOND"
	cp.TimeInterval = 10
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	n, blocked := admitPolicy(p, now, 1, "", "", "10.0.0.1", 5)
	require.Equal(t, 2, n)
	require.Equal(t, CounterIP, blocked)
	require.Equal(t, "ip", blocked.String())
	n, _ = admitPolicy(p, now, 1, "", "", "10.0.0.2", 5)
	require.Equal(t, 2, n)

	// ratelimit.Sliding: right after the window ends both requests still weigh in.
	n, _ = admitPolicy(p, t0.Add(10*time.Second), 1, "", "", "10.0.0.1", 5)
	require.Equal(t, 0, n)
	n, _ = admitPolicy(p, t0.Add(15*time.Second), 1, "", "", "10.0.0.1", 5)
	require.Equal(t, 1, n)
}

func TestPolicyRejectedConsumesNothing(t *testing.T) {
	cp := basePolicy()
	cp.APICallLimits = 20
	cp.UserCallLimits = 10
	cp.AppCallLimits = 2
	cp.IPCallLimits = 10
	p := NewPolicy(nil, cp)
	now := t0.Add(time.Second)

	n, blocked := admitPolicy(p, now, 1, "alice", "app", "10.0.0.1", 5)
	require.Equal(t, 2, n)
	require.Equal(t, CounterApp, blocked)
	// The API, user and IP counters counted only the 2 admitted requests.
	n, blocked = admitPolicy(p, now, 1, "", "", "10.0.0.1", 20)
	require.Equal(t, 8, n)
	require.Equal(t, CounterIP, blocked)
	n, blocked = admitPolicy(p, now, 1, "alice", "", "10.0.0.2", 20)
	require.Equal(t, 8, n)
	require.Equal(t, CounterUser, blocked)
	n, blocked = admitPolicy(p, now, 1, "", "", "10.0.0.3", 20)
	require.Equal(t, 2, n)
	require.Equal(t, CounterAPI, blocked)
}

func TestPolicyAdmitResult(t *testing.T) {
	cp := basePolicy()
	cp.APICallLimits = 100
	cp.UserCallLimits = 10
	cp.TimeUnit = "HOUR"
	p := NewPolicy(nil, cp)

	ok, _, res := p.Admit(t0.Add(15*time.Minute), 1, []byte("alice"), nil, nil, nil)
	require.True(t, ok)
	require.Equal(t, ratelimit.Result{Limit: 10, Remaining: 9, Reset: 45 * time.Minute}, res)
}

func TestPolicyWindow(t *testing.T) {
	cases := []struct {
		interval int64
		unit     string
		want     time.Duration
	}{
		{1, "SECOND", time.Second},
		{5, "MINUTE", 5 * time.Minute},
		{2, "HOUR", 2 * time.Hour},
		{1, "DAY", 24 * time.Hour},
		{math.MaxInt32, "DAY", math.MaxInt64},
	}
	for _, c := range cases {
		cp := basePolicy()
		cp.TimeInterval, cp.TimeUnit = c.interval, c.unit
		require.Equal(t, c.want, PolicyWindow(cp), "%d %s", c.interval, c.unit)
	}

	// A window that never ends still works.
	cp := basePolicy()
	cp.TimeInterval, cp.TimeUnit, cp.APICallLimits = math.MaxInt32, "DAY", 1
	p := NewPolicy(nil, cp)
	ok, _, res := p.Admit(t0, 1, nil, nil, nil, nil)
	require.True(t, ok)
	require.Positive(t, res.Reset)
	ok, _, _ = p.Admit(t0.Add(100*365*24*time.Hour), 1, nil, nil, nil, nil)
	require.False(t, ok)
}

func TestPolicyAdmitNoAllocs(t *testing.T) {
	cp := basePolicy()
	cp.APICallLimits = 1e9
	cp.UserCallLimits = 1e9
	cp.AppCallLimits = 1e9
	cp.IPCallLimits = 1e9
	cp.Specials = []config.Special{{ObjectType: "APP", ObjectID: "alice/mobile", CallLimits: 1e9}}
	p := NewPolicy(nil, cp)
	user, app, ip := []byte("alice"), []byte("mobile"), []byte("192.0.2.1")
	buf := make([]ratelimit.Check, 0, PolicyChecks)
	p.Admit(t0, 1, user, app, ip, buf)
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		p.Admit(t0, 1, user, app, ip, buf)
	}))
	require.Zero(t, testing.AllocsPerRun(1000, func() {
		p.Admit(t0, 1, user, app, ip, nil)
	}))
}

func TestCounterString(t *testing.T) {
	require.Equal(t, "api", CounterAPI.String())
	require.Equal(t, "Counter(9)", Counter(9).String())
}
