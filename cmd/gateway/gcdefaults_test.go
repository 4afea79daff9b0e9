package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRuntimeDefaults(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	noLimit := write("v2-max", "max\n")
	v1Huge := write("v1-huge", "9223372036854771712\n")
	limited := write("v2-limited", "1073741824\n")
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	t.Run("defaults without a cgroup limit", func(t *testing.T) {
		s := applyRuntimeDefaults(env(nil), []string{filepath.Join(dir, "absent"), noLimit, v1Huge})
		require.Equal(t, runtimeSettings{GCPercent: defaultGCPercent, GCSource: "default", MemoryLimit: math.MaxInt64, LimitSource: "none"}, s)
		require.Equal(t, defaultGCPercent, debug.SetGCPercent(100), "the runtime runs with the default")
		require.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))
	})
	t.Run("the container's limit becomes a soft limit", func(t *testing.T) {
		s := applyRuntimeDefaults(env(nil), []string{noLimit, limited})
		require.Equal(t, "cgroup "+limited, s.LimitSource)
		gib := float64(1 << 30)
		require.Equal(t, int64(gib*memoryLimitShare), s.MemoryLimit)
		require.Equal(t, s.MemoryLimit, debug.SetMemoryLimit(math.MaxInt64))
	})
	t.Run("the environment wins", func(t *testing.T) {
		debug.SetGCPercent(50) // what the runtime parsed from GOGC=50
		debug.SetMemoryLimit(123 << 20)
		s := applyRuntimeDefaults(env(map[string]string{"GOGC": "50", "GOMEMLIMIT": "123MiB"}), []string{limited})
		require.Equal(t, runtimeSettings{GCPercent: 50, GCSource: "GOGC", MemoryLimit: 123 << 20, LimitSource: "GOMEMLIMIT"}, s)
		require.Equal(t, 50, debug.SetGCPercent(100))
		require.Equal(t, int64(123<<20), debug.SetMemoryLimit(math.MaxInt64))
	})
}

func TestGCPercentForLiveHeap(t *testing.T) {
	require.Equal(t, maxGCPercent, gcPercentFor(0))
	require.Equal(t, maxGCPercent, gcPercentFor(3<<20), "a small config: 400% of 3 MiB is under the 16 MiB headroom")
	require.Equal(t, 200, gcPercentFor(8<<20))
	require.Equal(t, minGCPercent, gcPercentFor(40<<20), "a large config keeps Go's default")

	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	s := runtimeSettings{GCSource: "default", GCPercent: defaultGCPercent}
	tuneGC(&s, true)
	require.NotZero(t, s.LiveHeap)
	require.Equal(t, gcPercentFor(s.LiveHeap), s.GCPercent)
	require.Equal(t, s.GCPercent, debug.SetGCPercent(100), "the runtime runs with it")

	fromEnv := runtimeSettings{GCSource: "GOGC", GCPercent: 50}
	tuneGC(&fromEnv, true)
	require.Equal(t, 50, fromEnv.GCPercent, "GOGC from the environment is left alone")
	require.Zero(t, fromEnv.LiveHeap)
}
