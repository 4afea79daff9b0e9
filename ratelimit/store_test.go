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
