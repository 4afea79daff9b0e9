package ratelimit

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// t0 is a minute boundary (and a day boundary: 2024-03-10 00:00:00 UTC), so
// offsets from it are offsets into a window.
var t0 = time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)

// admitN runs n single-counter checks at now and returns how many passed.
func admitN(l *Limiter, now time.Time, key uint64, n int) int {
	admitted := 0
	for range n {
		if ok, _ := l.Admit(now, key); ok {
			admitted++
		}
	}
	return admitted
}

// hammer runs goroutines concurrent calls of f, all released at once, and
// returns how many returned true.
func hammer(goroutines int, f func() bool) int {
	return hammerN(goroutines, func() int {
		if f() {
			return 1
		}
		return 0
	})
}

// hammerN runs goroutines concurrent calls of f, all released at once, and
// returns the sum of their results.
func hammerN(goroutines int, f func() int) int {
	var (
		start    = make(chan struct{})
		wg       sync.WaitGroup
		admitted atomic.Int64
	)
	for range goroutines {
		wg.Go(func() {
			<-start
			admitted.Add(int64(f()))
		})
	}
	close(start)
	wg.Wait()
	return int(admitted.Load())
}

func TestAdmitExactUnderConcurrency(t *testing.T) {
	for _, kind := range []Window{Fixed, Sliding} {
		t.Run(kind.String(), func(t *testing.T) {
			l := NewLimiter(10, time.Minute, kind)
			const key = 42
			// Window 1: every goroutine tries twice, at two instants of it.
			got := hammerN(1000, func() int {
				return admitN(l, t0.Add(10*time.Second), key, 1) +
					admitN(l, t0.Add(50*time.Second), key, 1)
			})
			require.Equal(t, 10, got)

			// Window 3 (window 2 empty, so nothing slides in): exactly 10 again.
			got = hammer(1000, func() bool {
				ok, _ := l.Admit(t0.Add(2*time.Minute+time.Second), key)
				return ok
			})
			require.Equal(t, 10, got)
		})
	}
}

func TestAdmitConcurrentMultiCounter(t *testing.T) {
	a := NewLimiter(10, time.Minute, Fixed)
	b := NewLimiter(5, time.Minute, Fixed)
	now := t0.Add(time.Second)
	got := hammer(1000, func() bool {
		checks := []Check{{L: a, Key: 1}, {L: b, Key: 2}}
		ok, _, _ := Admit(now, checks)
		return ok
	})
	require.Equal(t, 5, got)
	// Every rejection gave a back: it counted exactly the 5 admitted.
	require.Equal(t, 5, admitN(a, now, 1, 100))
}

func TestRejectedConsumesNothing(t *testing.T) {
	api := NewLimiter(5, time.Minute, Fixed)
	user := NewLimiter(2, time.Minute, Fixed)
	ip := NewLimiter(100, time.Minute, Fixed)
	now := t0.Add(time.Second)
	checks := []Check{{L: api, Key: 1}, {L: user, Key: 2}, {L: ip, Key: 3}}

	for range 2 {
		ok, blocking, _ := Admit(now, checks)
		require.True(t, ok)
		require.Equal(t, -1, blocking)
	}
	for range 3 {
		ok, blocking, res := Admit(now, checks)
		require.False(t, ok)
		require.Equal(t, 1, blocking)
		require.Equal(t, Result{Limit: 2, Remaining: 0, Reset: 59 * time.Second}, res)
	}
	// api counted 2 and ip 2, whatever the rejections did.
	require.Equal(t, 3, admitN(api, now, 1, 10))
	require.Equal(t, 98, admitN(ip, now, 3, 1000))
}

func TestResultMostConstrained(t *testing.T) {
	api := NewLimiter(100, time.Minute, Fixed)
	user := NewLimiter(10, time.Hour, Fixed)
	now := t0.Add(20 * time.Second)
	checks := []Check{{L: api, Key: 1}, {L: user, Key: 1}}

	ok, _, res := Admit(now, checks)
	require.True(t, ok)
	require.Equal(t, Result{Limit: 10, Remaining: 9, Reset: time.Hour - 20*time.Second}, res)

	// A per-check limit overrides the default, and becomes the tightest.
	checks[0].Limit = 3
	ok, _, res = Admit(now, checks)
	require.True(t, ok)
	require.Equal(t, Result{Limit: 3, Remaining: 1, Reset: 40 * time.Second}, res)

	ok, _, _ = Admit(now, checks)
	require.True(t, ok)
	ok, blocking, res := Admit(now, checks)
	require.False(t, ok)
	require.Equal(t, 0, blocking)
	require.Equal(t, Result{Limit: 3, Remaining: 0, Reset: 40 * time.Second}, res)

	// A negative limit admits nothing.
	ok, blocking, res = Admit(now, []Check{{L: user, Key: 9, Limit: -1}})
	require.False(t, ok)
	require.Equal(t, 0, blocking)
	require.Equal(t, int64(0), res.Limit)
}

func TestFixedWindowAlignment(t *testing.T) {
	t.Run("minute starts at :00", func(t *testing.T) {
		l := NewLimiter(3, time.Minute, Fixed)
		// 12:00:45 in a zone 5h30 ahead of UTC: alignment is by Unix time.
		zone := time.FixedZone("IST", 5*3600+1800)
		now := time.Date(2024, 3, 10, 12, 0, 45, 0, zone)
		ok, res := l.Admit(now, 1)
		require.True(t, ok)
		require.Equal(t, Result{Limit: 3, Remaining: 2, Reset: 15 * time.Second}, res)
		require.Equal(t, 2, admitN(l, now.Add(14*time.Second+999*time.Millisecond), 1, 10))
		ok, res = l.Admit(now.Add(15*time.Second-time.Nanosecond), 1)
		require.False(t, ok)
		require.Equal(t, time.Nanosecond, res.Reset)

		// 12:01:00 is a new window.
		ok, res = l.Admit(now.Add(15*time.Second), 1)
		require.True(t, ok)
		require.Equal(t, Result{Limit: 3, Remaining: 2, Reset: time.Minute}, res)
	})
	t.Run("day starts at 00:00 UTC", func(t *testing.T) {
		l := NewLimiter(1, 24*time.Hour, Fixed)
		now := time.Date(2024, 3, 10, 18, 0, 0, 0, time.UTC)
		ok, res := l.Admit(now, 1)
		require.True(t, ok)
		require.Equal(t, 6*time.Hour, res.Reset)
		ok, res = l.Admit(now.Add(5*time.Hour+59*time.Minute), 1)
		require.False(t, ok)
		require.Equal(t, time.Minute, res.Reset) // Retry-After: 60
		ok, res = l.Admit(time.Date(2024, 3, 11, 0, 0, 0, 0, time.UTC), 1)
		require.True(t, ok)
		require.Equal(t, 24*time.Hour, res.Reset)
	})
	t.Run("multi-minute windows align to the epoch", func(t *testing.T) {
		l := NewLimiter(1, 7*time.Minute, Fixed)
		now := t0.Add(3 * time.Minute)
		_, res := l.Admit(now, 1)
		epochMinutes := now.Unix() / 60
		require.Equal(t, time.Duration(7-epochMinutes%7)*time.Minute, res.Reset)
	})
}

func TestWindowReset(t *testing.T) {
	l := NewLimiter(5, time.Second, Fixed)
	now := t0.Add(100 * time.Millisecond)
	for i := range 5 {
		ok, res := l.Admit(now, 7)
		require.True(t, ok)
		require.Equal(t, int64(4-i), res.Remaining)
	}
	ok, res := l.Admit(now, 7)
	require.False(t, ok)
	require.Equal(t, 900*time.Millisecond, res.Reset)
	// Other keys are independent.
	require.Equal(t, 5, admitN(l, now, 8, 10))
	// The next window starts afresh, and so does one much later.
	require.Equal(t, 5, admitN(l, now.Add(time.Second), 7, 10))
	require.Equal(t, 5, admitN(l, now.Add(time.Hour), 7, 10))
}

func TestSlidingEdge(t *testing.T) {
	const limit = 10
	endOfFirst := t0.Add(time.Minute - time.Millisecond)
	startOfSecond := t0.Add(time.Minute + time.Millisecond)

	// A fixed window lets through 2x in the 2 ms around its edge.
	fixed := NewLimiter(limit, time.Minute, Fixed)
	require.Equal(t, limit, admitN(fixed, endOfFirst, 1, 100))
	require.Equal(t, limit, admitN(fixed, startOfSecond, 1, 100))

	// The sliding window does not.
	sliding := NewLimiter(limit, time.Minute, Sliding)
	require.Equal(t, limit, admitN(sliding, endOfFirst, 1, 100))
	require.Equal(t, 0, admitN(sliding, startOfSecond, 1, 100))

	// Half-way into the second window half the previous count remains.
	ok, res := sliding.Admit(t0.Add(90*time.Second), 1)
	require.True(t, ok)
	require.Equal(t, Result{Limit: limit, Remaining: 4, Reset: 30 * time.Second}, res)
	require.Equal(t, 4, admitN(sliding, t0.Add(90*time.Second), 1, 100))

	// A quarter into the third window: 10*0.75 = 7.5 of the second window's
	// 5, rounded up, is 4 (ceil(3.75)): 6 left.
	require.Equal(t, 6, admitN(sliding, t0.Add(2*time.Minute+15*time.Second), 1, 100))

	// Two windows later nothing remains.
	require.Equal(t, limit, admitN(sliding, t0.Add(4*time.Minute), 1, 100))
}

func TestSlidingLongWindowNoOverflow(t *testing.T) {
	// prev * remaining nanoseconds overflows 64 bits for day windows.
	l := NewLimiter(1<<31, 30*24*time.Hour, Sliding)
	base := time.Unix(0, 0).Add(100 * 30 * 24 * time.Hour)
	checks := []Check{{L: l, Key: 1}}
	for range 1000 {
		ok, _, _ := Admit(base.Add(29*24*time.Hour), checks)
		require.True(t, ok)
	}
	ok, res := l.Admit(base.Add(45*24*time.Hour), 1) // half of 1000 slides in
	require.True(t, ok)
	require.Equal(t, int64(1<<31-501), res.Remaining)
}

func TestClockBehindShard(t *testing.T) {
	l := NewLimiter(2, time.Minute, Fixed)
	now := t0.Add(time.Minute + time.Second)
	require.Equal(t, 2, admitN(l, now, 1, 5))
	// A caller whose clock is a window behind is counted in the newest one.
	ok, res := l.Admit(now.Add(-time.Minute), 1)
	require.False(t, ok)
	require.Equal(t, time.Minute, res.Reset)
}

func TestLimitClamp(t *testing.T) {
	l := NewLimiter(1<<40, time.Minute, Fixed)
	ok, res := l.Admit(t0, 1)
	require.True(t, ok)
	require.Equal(t, int64(maxCount), res.Limit)
	require.Equal(t, int64(maxCount-1), res.Remaining)
}

// TestTableAgainstModel drives one shard's table through growth, in-place
// sweeps, shrinking and deletion with heavy probe collisions, and compares
// every decision with a map-based model.
func TestTableAgainstModel(t *testing.T) {
	for _, kind := range []Window{Fixed, Sliding} {
		t.Run(kind.String(), func(t *testing.T) {
			const limit, window = 4, time.Second
			l := NewLimiter(limit, window, kind)
			type count struct{ win, cur, prev int64 }
			model := map[uint64]*count{}
			rng := rand.New(rand.NewPCG(1, 2))
			now := t0
			for step := range 200_000 {
				if rng.IntN(2000) == 0 {
					now = now.Add(time.Duration(rng.IntN(3)) * window) // sometimes skip a window
				}
				now = now.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
				// One shard (top bits 0), keys crowded into the first and
				// last 61 slots while the table is under 4096 slots, so
				// that clusters are long and wrap around the end; the key
				// space changes over time so that sweeps find both stale
				// and live entries.
				phase := uint64(step / 20_000)
				n := rng.Uint64N(300) + phase*100 + 1
				home := n * 37 % 61
				if n%2 == 1 {
					home = 4095 - home
				}
				key := n<<12 | home

				ns := now.UnixNano()
				w := ns / int64(window)
				m := model[key]
				if m == nil {
					m = &count{win: w}
					model[key] = m
				}
				switch {
				case m.win == w-1:
					m.prev, m.cur, m.win = m.cur, 0, w
				case m.win < w-1:
					m.prev, m.cur, m.win = 0, 0, w
				}
				used := m.cur
				if kind == Sliding {
					used += weighted(m.prev, int64(window)-(ns-w*int64(window)), int64(window))
				}
				want := used < limit
				if want {
					m.cur++
				}

				// Not require: its reflection dominates 400,000 steps.
				if ok, _ := l.Admit(now, key); ok != want {
					t.Fatalf("step %d key %#x: admitted %v, model says %v", step, key, ok, want)
				}
			}
			s := l.shards[0].Load()
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, e := range s.table {
				if e.key != 0 {
					n++
					require.Same(t, s.lookup(e.key), &s.table[indexOf(s.table, e.key)])
				}
			}
			require.Equal(t, s.n, n)
			require.Less(t, s.n, 2000, "stale entries are swept")
		})
	}
}

func indexOf(table []entry, key uint64) int {
	for i := range table {
		if table[i].key == key {
			return i
		}
	}
	return -1
}

func TestSweepShrinksAndFrees(t *testing.T) {
	l := NewLimiter(10, time.Second, Fixed)
	for i := range uint64(10_000) {
		l.Admit(t0, i<<8|1) // shard 0 only
	}
	s := l.shards[0].Load()
	require.Equal(t, 10_000, s.n)
	require.GreaterOrEqual(t, len(s.table), 16384)

	// Next window: every entry expired (fixed windows), but the window
	// just over filled the table, so it is kept, emptied.
	for i := range uint64(100) {
		l.Admit(t0.Add(time.Second), i<<8|1)
	}
	require.Equal(t, 100, s.n)
	require.Equal(t, 16384, len(s.table))

	// The window after uses it little: it shrinks around what is used.
	for i := range uint64(100) {
		l.Admit(t0.Add(2*time.Second), i<<8|1)
	}
	require.Equal(t, 100, s.n)
	require.LessOrEqual(t, len(s.table), 512)
	for i := range uint64(100) {
		ok, res := l.Admit(t0.Add(2*time.Second), i<<8|1)
		require.True(t, ok)
		require.Equal(t, int64(8), res.Remaining)
	}

	// Two windows later, a key of another shard frees nothing here, one of
	// this shard frees everything but itself.
	l.Admit(t0.Add(4*time.Second), 1<<60)
	require.Equal(t, 100, s.n)
	l.Admit(t0.Add(4*time.Second), 1<<8|7)
	require.Equal(t, 1, s.n)
	require.Equal(t, minTableSize, len(s.table))

	// A burst then a window without a check in this shard: freed.
	for i := range uint64(10_000) {
		l.Admit(t0.Add(5*time.Second), i<<8|1)
	}
	l.Admit(t0.Add(7*time.Second), 1<<8|1)
	require.Equal(t, 1, s.n)
	require.Equal(t, minTableSize, len(s.table))
}

// TestFixedWindowsKeepTheirTable: the same keys, window after window (the
// bench's `full`: one api counter per route, 1 s windows), reuse the
// shard's table instead of growing a new one from 8 slots each window.
func TestFixedWindowsKeepTheirTable(t *testing.T) {
	l := NewLimiter(1e9, time.Second, Fixed)
	win := 0
	round := func() {
		now := t0.Add(time.Duration(win) * time.Second)
		win++
		for i := range uint64(1000) {
			l.Admit(now, i<<8|1)
		}
	}
	round()
	round()
	allocs := testing.AllocsPerRun(10, round)
	require.Zero(t, allocs, "a new window regrew the table")
}

// TestSteadyWindowsDoNotAllocate: the same keys counted window after
// window (a fixed window: every entry expires at each turn) reuse their
// shards' tables; freeing and regrowing them at each turn was most of what
// a loaded gateway allocated.
func TestSteadyWindowsDoNotAllocate(t *testing.T) {
	l := NewLimiter(1e9, time.Second, Fixed)
	const keys = 20_000
	admitAll := func(now time.Time) {
		for i := range uint64(keys) {
			l.Admit(now, Mix(i+1))
		}
	}
	admitAll(t0) // grows the tables
	now := t0
	allocs := testing.AllocsPerRun(5, func() {
		now = now.Add(time.Second)
		admitAll(now)
	})
	require.Zero(t, allocs, "windows with the same keys reuse the tables")
}

func TestAdmitNoAllocs(t *testing.T) {
	api := NewLimiter(1e9, time.Minute, Fixed)
	ip := NewLimiter(1e9, time.Minute, Sliding)
	checks := []Check{{L: api, Key: 1}, {L: ip, Key: 2}}
	Admit(t0, checks)
	allocs := testing.AllocsPerRun(1000, func() {
		Admit(t0, checks)
	})
	require.Zero(t, allocs)
}

func TestKeyZero(t *testing.T) {
	l := NewLimiter(1, time.Minute, Fixed)
	ok, _ := l.Admit(t0, 0)
	require.True(t, ok)
	ok, _ = l.Admit(t0, 0)
	require.False(t, ok)
}

func TestParseWindow(t *testing.T) {
	require.Equal(t, Sliding, ParseWindow("sliding"))
	require.Equal(t, Fixed, ParseWindow("fixed"))
	require.Equal(t, Fixed, ParseWindow(""))
	require.Equal(t, "sliding", Sliding.String())
	require.Panics(t, func() { NewLimiter(1, 0, Fixed) })
}
