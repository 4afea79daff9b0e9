package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestStoreKeepsLimiters(t *testing.T) {
	s := NewStore()
	a := s.Limiter("p", 10, time.Minute, Fixed)
	require.Same(t, a, s.Limiter("p", 10, time.Minute, Fixed))
	require.NotSame(t, a, s.Limiter("p", 11, time.Minute, Fixed))
	require.NotSame(t, a, s.Limiter("p", 10, time.Hour, Fixed))
	require.NotSame(t, a, s.Limiter("p", 10, time.Minute, Sliding))
	require.NotSame(t, a, s.Limiter("q", 10, time.Minute, Fixed))
	require.Equal(t, 5, s.Len())

	// Generation 1 asks for a only: the rest goes.
	require.Zero(t, s.Sweep())
	require.Same(t, a, s.Limiter("p", 10, time.Minute, Fixed))
	require.Equal(t, 4, s.Sweep())
	require.Equal(t, 1, s.Len())
	require.Same(t, a, s.Limiter("p", 10, time.Minute, Fixed))

	// Nobody asks for it any more.
	s.Sweep()
	require.Equal(t, 1, s.Sweep())
	require.Zero(t, s.Len())
	require.NotSame(t, a, s.Limiter("p", 10, time.Minute, Fixed))
}

func TestStorePolicyReloadKeepsCounters(t *testing.T) {
	s := NewStore()
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

func TestStoreDistinguishesFrontEnds(t *testing.T) {
	s := NewStore()
	cp := basePolicy()
	cp.ID = "x"
	p := NewPolicy(s, cp)
	c := NewCount(s, "x", &config.LimitCount{Count: cp.APICallLimits, TimeWindow: 60})
	require.NotSame(t, p.api, c.Limiter())
}
