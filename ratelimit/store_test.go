package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// TestStageTouchesNothingUntilCommit: a staged Store hands out the base's
// limiters, keeps the ones it makes to itself, and only Commit makes them
// the base's and marks them used.
func TestStageTouchesNothingUntilCommit(t *testing.T) {
	s := NewStore()
	a := s.Limiter("a", 10, time.Minute, Fixed)
	s.Limiter("gone", 10, time.Minute, Fixed)
	s.Sweep()

	st := s.Stage()
	require.Same(t, a, st.Limiter("a", 10, time.Minute, Fixed), "the base's limiter")
	n := st.Limiter("new", 10, time.Minute, Fixed)
	require.Same(t, n, st.Limiter("new", 10, time.Minute, Fixed))
	require.Equal(t, 2, s.Len(), "nothing added to the base")

	// A stage that is thrown away: the next sweep sees nothing asked for.
	require.Equal(t, 2, s.Sweep())
	require.Zero(t, s.Len())

	a = s.Limiter("a", 10, time.Minute, Fixed)
	s.Sweep()
	st = s.Stage()
	require.Same(t, a, st.Limiter("a", 10, time.Minute, Fixed))
	n = st.Limiter("new", 10, time.Minute, Fixed)
	st.Commit()
	require.Zero(t, s.Sweep(), "Commit marked what the stage handed out")
	require.Same(t, n, s.Limiter("new", 10, time.Minute, Fixed), "and made its own limiters the base's")
	require.Same(t, a, s.Limiter("a", 10, time.Minute, Fixed))
}
