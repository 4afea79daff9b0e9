package ratelimit

import (
	"runtime"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"

	"gateway/internal/race"
	"gateway/internal/testheap"
)

func heapAlloc() uint64 { return testheap.Live().HeapAlloc }

// TestMemoryMillionKeys checks the spec's memory bound: a million distinct
// client IPs well under 200 MiB, and the memory given back once they are
// two windows old and their shards are touched again.
func TestMemoryMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts a million keys")
	}
	// The race detector makes this ~10x slower (20 s); under it a tenth of
	// the keys still drives growth, sweep and shrink, against a tenth of
	// the bound.
	keys, bound := 1_000_000, int64(200<<20)
	if race.Enabled {
		keys, bound = 100_000, 20<<20
	}
	before := heapAlloc()

	for _, kind := range []Window{Fixed, Sliding} {
		l := NewLimiter(100, time.Minute, kind)
		now := t0.Add(time.Second)
		ip := []byte("198.51.100.0")
		for i := range keys {
			// Distinct address-like texts, hashed as the policy hashes
			// client IPs.
			ip = ip[:0]
			ip = append(ip, byte('0'+i>>18), '.', byte('0'+i>>12&63), '.', byte('0'+i>>6&63), '.', byte('0'+i&63))
			ok, _ := l.Admit(now, Mix(xxhash.Sum64(ip)+0x9e3779b97f4a7c15))
			require.True(t, ok)
		}
		full := heapAlloc()
		grown := int64(full) - int64(before)
		t.Logf("%s: %d keys: heap +%.1f MiB (%.0f B/key)", kind, keys, float64(grown)/(1<<20), float64(grown)/float64(keys))
		require.Less(t, grown, bound)

		// Two windows on, one check per shard sweeps it.
		later := now.Add(2 * time.Minute)
		for s := range uint64(numShards) {
			l.Admit(later, s<<(64-shardBits)|1)
		}
		after := heapAlloc()
		left := int64(after) - int64(before)
		t.Logf("%s: after sweep: heap +%.1f KiB", kind, float64(left)/(1<<10))
		require.Less(t, left, int64(1<<20))
		runtime.KeepAlive(l)
	}
}
