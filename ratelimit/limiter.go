// Package ratelimit is the counter engine behind throttle policies and the
// limit-count plugin (../shared/spec/throttling.md), plus the two front ends
// that turn their config into counter checks.
//
// A Limiter is one family of counters: one limit, one window length, fixed
// or sliding, keyed by a uint64 (an xxhash of whatever is counted). Counters
// live in shards selected by the key's top bits, each a small mutex over an
// open-addressing table, so checks on different keys rarely meet on a lock
// and no lock is shared by all requests. Entries of keys that stopped being
// used are swept lazily by the shard that holds them when it first sees a new
// window; there is no background goroutine.
//
// A Store hands out Limiters by identity and limits, so that a config reload
// keeps the counters of policies whose limits did not change.
package ratelimit

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Window is how a Limiter counts over time.
type Window uint8

const (
	// Fixed windows are aligned to multiples of their length since the Unix
	// epoch: a minute window starts at :00, a day window at 00:00 UTC.
	Fixed Window = iota
	// Sliding estimates the count over the last window length as
	// count(previous window) * overlap + count(current window), where overlap
	// is the fraction of the previous fixed window still inside the sliding
	// one. It removes the up-to-2x burst a fixed window allows at its edge.
	Sliding
)

// ParseWindow maps the config spelling ("fixed", "sliding") to a Window.
// Anything but "sliding" is Fixed, the config's default; config validates the
// spelling before this is called.
func ParseWindow(s string) Window {
	if s == "sliding" {
		return Sliding
	}
	return Fixed
}

// String returns the config spelling of w.
func (w Window) String() string {
	if w == Sliding {
		return "sliding"
	}
	return "fixed"
}

// maxCount is the largest limit a counter enforces: counts are 32-bit to keep
// an entry at 24 bytes (a million keys in ~48 MiB). Larger limits are clamped
// to it, which can only reject earlier, never admit more than configured.
const maxCount = math.MaxUint32

// Limiter is one family of counters sharing a default limit, a window length
// and a window kind. It is safe for concurrent use; the zero value is not
// usable, build one with NewLimiter or Store.Limiter.
type Limiter struct {
	limit  int64
	window int64 // nanoseconds, > 0
	kind   Window
	// keep is how many windows before the current one an entry still
	// matters: a sliding counter reads the previous window, a fixed one
	// does not.
	keep int64
	// last caches the newest window index computed, so that most checks
	// verify it with a multiplication instead of paying a 64-bit division.
	last   atomic.Int64
	shards [numShards]shardPtr
}

// NewLimiter returns a Limiter whose counters admit limit requests per window.
// A limit <= 0 admits nothing unless a Check overrides it. It panics when
// window is not positive: config validation rules that out.
func NewLimiter(limit int64, window time.Duration, kind Window) *Limiter {
	if window <= 0 {
		panic("ratelimit: window must be positive")
	}
	l := &Limiter{limit: limit, window: int64(window), kind: kind}
	if kind == Sliding {
		l.keep = 1
	}
	return l
}

// Limit returns the default limit of l's counters.
func (l *Limiter) Limit() int64 { return l.limit }

// WindowLength returns l's window length.
func (l *Limiter) WindowLength() time.Duration { return time.Duration(l.window) }

// Kind returns whether l's windows are fixed or sliding.
func (l *Limiter) Kind() Window { return l.kind }

// Check names one counter for Admit: the counter of Key in L, with limit
// Limit for this check (0: L's default limit; negative: admit nothing, which
// lets a caller express a limit of zero).
type Check struct {
	L     *Limiter
	Key   uint64
	Limit int64
}

// Result is the state of one counter after a check, for the X-RateLimit-*
// headers and Retry-After.
type Result struct {
	Limit     int64 // the limit applied to the counter
	Remaining int64 // requests the counter still admits in its window; 0 when rejected
	// Reset is the time until the counter's current window ends. For a
	// sliding counter it is when the current fixed window (the one new
	// requests are counted in) ends. A sliding estimate has no single reset
	// point, it decays as the window slides: a request at Reset may still
	// be refused while the ending window's share decays.
	Reset time.Duration
}

// maxInline is how many checks Admit rolls back without allocating; the
// throttle policy uses at most four.
const maxInline = 8

// Admit checks every counter at time now. If all are below their limits it
// counts the request in all of them and returns ok, with res describing the
// most constrained counter (lowest Remaining; the first of equals) and
// blocking = -1. Otherwise it counts nothing and returns the index of the
// blocking counter in checks and its Result (Remaining 0, Reset for
// Retry-After).
//
// Each counter is checked and incremented atomically under its shard's lock,
// so no counter ever admits more than its limit in a window, whatever the
// concurrency. Counters are taken one at a time, though: when a later one
// refuses, the earlier ones are given back. Between the take and the give
// back a concurrent request can see those counters one higher than they end
// up, so it may be rejected where a serial order would have admitted it; it
// can never be admitted beyond a limit.
//
// A check whose now falls in a window older than the newest one its shard
// has seen is counted in that newest window: concurrent callers read their
// clocks at slightly different moments, and this keeps the counts exact
// (and errs towards rejecting) without keeping older windows.
//
// Admit does not allocate for up to 8 checks, apart from growing a shard's
// table for a key it has not seen.
func Admit(now time.Time, checks []Check) (ok bool, blocking int, res Result) {
	ns := now.UnixNano()
	var inline [maxInline]int64
	wins := inline[:]
	if len(checks) > maxInline {
		wins = make([]int64, len(checks))
	}
	best := -1
	for i := range checks {
		c := &checks[i]
		lim := c.Limit
		if lim == 0 {
			lim = c.L.limit
		}
		lim = min(lim, maxCount)
		took, w, used, reset := c.L.take(ns, c.Key, lim)
		r := Result{Limit: max(lim, 0), Remaining: max(lim-used, 0), Reset: time.Duration(reset)}
		if !took {
			for j := range i {
				checks[j].L.giveBack(checks[j].Key, wins[j])
			}
			r.Remaining = 0
			return false, i, r
		}
		wins[i] = w
		if best < 0 || r.Remaining < res.Remaining {
			best, res = i, r
		}
	}
	return true, -1, res
}

// take counts one request in key's counter when the counter is below lim. It
// returns whether it did, the window index it counted in (for giveBack), the
// counter's use after the call, and the nanoseconds until that window ends.
func (l *Limiter) take(ns int64, key uint64, lim int64) (ok bool, w, used, reset int64) {
	key = nonZero(key)
	s := l.shard(key)
	w = l.windowOf(ns)

	s.mu.Lock()
	switch {
	case w > s.win:
		s.advance(w, w-l.keep)
	case w < s.win:
		// This caller's clock is behind one that already moved the shard
		// on; count in the newest window, from its start.
		w = s.win
		ns = w * l.window
	}
	e := s.lookup(key)
	if e != nil {
		e.roll(w)
		used = int64(e.cur)
		if l.kind == Sliding && e.prev > 0 {
			elapsed := ns - w*l.window
			used += weighted(int64(e.prev), l.window-elapsed, l.window)
		}
	}
	if used < lim {
		if e == nil {
			e = s.insert(key, w)
		}
		e.cur++
		used++
		ok = true
	}
	s.mu.Unlock()

	return ok, w, used, (w+1)*l.window - ns
}

// windowOf returns the index of the window holding ns.
func (l *Limiter) windowOf(ns int64) int64 {
	w := l.last.Load()
	if start := w * l.window; ns >= start && ns-start < l.window {
		return w
	}
	w = floorDiv(ns, l.window)
	l.last.Store(w)
	return w
}

// giveBack undoes a take that counted key in window w.
func (l *Limiter) giveBack(key uint64, w int64) {
	key = nonZero(key)
	s := l.shard(key)
	s.mu.Lock()
	if e := s.lookup(key); e != nil {
		// The entry may have rolled on since the take; the request then
		// sits in the previous window's count. Further on, it no longer
		// matters.
		switch {
		case e.win == w && e.cur > 0:
			e.cur--
		case e.win == w+1 && e.prev > 0:
			e.prev--
		}
	}
	s.mu.Unlock()
}

// weighted returns ceil(prev * rem / window): the share of the previous
// window's count still inside the sliding window, rounded up so the estimate
// errs on the side of rejecting. 128-bit intermediate: prev*rem overflows 64
// bits for day-long windows.
func weighted(prev, rem, window int64) int64 {
	hi, lo := bits.Mul64(uint64(prev), uint64(rem))
	q, r := bits.Div64(hi, lo, uint64(window)) // q <= prev since rem <= window
	if r != 0 {
		q++
	}
	return int64(q)
}

// floorDiv is a / b rounded towards minus infinity (b > 0), so that windows
// stay aligned for times before the epoch too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// zeroKey stands in for key 0, which marks an empty table slot. It aliases
// one key in 2^64, which only makes those two share a counter.
const zeroKey = 0x9e3779b97f4a7c15

func nonZero(key uint64) uint64 {
	if key == 0 {
		return zeroKey
	}
	return key
}
