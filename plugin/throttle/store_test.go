package throttle

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/ratelimit"
)

const benchLimit = 1 << 40

var benchNow = time.Unix(1_700_000_000, 0)

func TestStorePolicyReloadKeepsCounters(t *testing.T) {
	s := ratelimit.NewStore()
	cp := basePolicy()
	cp.APICallLimits = 5
	cp.IPCallLimits = 3
	now := t0.Add(time.Second)

	p1 := NewPolicy(s, cp)
	s.Sweep()
	n, _ := admitPolicy(p1, now, 1, "", "", "10.0.0.1", 2)
	require.Equal(t, 2, n)

	// Reload with the same policy: the counters carry over.
	reloaded := *cp
	p2 := NewPolicy(s, &reloaded)
	s.Sweep()
	n, blocked := admitPolicy(p2, now, 1, "", "", "10.0.0.1", 10)
	require.Equal(t, 1, n)
	require.Equal(t, CounterIP, blocked)

	// Changing the IP limit starts that counter afresh; the API counter
	// (unchanged) keeps its 3.
	changed := *cp
	changed.IPCallLimits = 4
	p3 := NewPolicy(s, &changed)
	require.Equal(t, 1, s.Sweep(), "the old IP limiter and nothing else")
	require.Same(t, p2.api, p3.api)
	n, blocked = admitPolicy(p3, now, 1, "", "", "10.0.0.1", 10)
	require.Equal(t, 2, n)
	require.Equal(t, CounterAPI, blocked)

	// Another type changes the keys' meaning: fresh counters.
	shared := changed
	shared.Type = 2
	p4 := NewPolicy(s, &shared)
	require.NotSame(t, p3.api, p4.api)

	// A removed policy's limiters are dropped by the next sweep.
	s.Sweep()
	require.Equal(t, 2, s.Sweep())
	require.Zero(t, s.Len())
}

// BenchmarkPolicyAdmit is a full throttle-policy check with all four
// counters and an APP special, hashing included.
func BenchmarkPolicyAdmit(b *testing.B) {
	p := NewPolicy(nil, &config.ThrottlePolicy{
		ID: "bench", APICallLimits: benchLimit, UserCallLimits: benchLimit,
		AppCallLimits: benchLimit, IPCallLimits: benchLimit,
		TimeInterval: 1, TimeUnit: "HOUR", Type: 1, Window: "sliding",
		Specials: []config.Special{{ObjectType: "APP", ObjectID: "alice/mobile", CallLimits: benchLimit}},
	})
	user, app, ip := []byte("alice"), []byte("mobile"), []byte("192.0.2.1")
	now := benchNow
	b.Run("serial", func(b *testing.B) {
		buf := make([]ratelimit.Check, 0, PolicyChecks)
		b.ReportAllocs()
		for b.Loop() {
			p.Admit(now, 1, user, app, ip, buf)
		}
	})
	var seq atomic.Uint64
	b.Run("parallel-routes", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			scope := seq.Add(1)
			buf := make([]ratelimit.Check, 0, PolicyChecks)
			for pb.Next() {
				p.Admit(now, scope, user, app, ip, buf)
			}
		})
	})
}
