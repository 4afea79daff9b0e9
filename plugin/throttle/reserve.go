package throttle

import (
	"strings"
	"sync"
	"time"

	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
)

// reservations are the permits a cluster_batch policy took from Redis and
// has not used yet, by the request's counter keys, for one local window:
// the table is replaced when the local clock enters a new window, so
// entries of keys that stopped coming go with it.
type reservations struct {
	win int64 // local window index
	mu  sync.Mutex
	m   map[string]*reservation
}

type reservation struct {
	end       int64 // unix ns: the Redis window the permits were counted in ends
	left      int64 // permits not used yet
	limit     int64 // of the most constrained counter, for the headers
	remaining int64 // what Redis had left after the take
}

func (c *clusterPolicy) table(now time.Time) *reservations {
	win := now.UnixNano() / int64(c.window)
	t := c.resv.Load()
	if t == nil || t.win != win {
		nt := &reservations{win: win, m: map[string]*reservation{}}
		if c.resv.CompareAndSwap(t, nt) {
			return nt
		}
		return c.resv.Load()
	}
	return t
}

// fromReserve admits the request on a permit reserved earlier, if one is
// left in its window.
func (c *clusterPolicy) fromReserve(now time.Time, keys []string) (bool, ratelimit.Result) {
	t := c.table(now)
	ns := now.UnixNano()
	k := strings.Join(keys, "\x00")
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.m[k]
	if r == nil || r.left <= 0 || ns >= r.end {
		return false, ratelimit.Result{}
	}
	r.left--
	return true, ratelimit.Result{Limit: r.limit, Remaining: r.remaining + r.left, Reset: time.Duration(r.end - ns)}
}

// reserve keeps the permits of res beyond the request's own one for later
// requests with the same keys, and returns how many are now reserved.
func (c *clusterPolicy) reserve(now time.Time, keys []string, res redisstore.Result) int64 {
	t := c.table(now)
	ns := now.UnixNano()
	end := ns + int64(res.Reset)
	k := strings.Join(keys, "\x00")
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.m[k]
	if r == nil || ns >= r.end || end-r.end > int64(c.window)/2 {
		// None, or ones of an earlier Redis window (its end differs by
		// about a window; within one window ends differ by the clocks'
		// jitter): those are forfeited.
		r = &reservation{end: end}
		t.m[k] = r
	}
	r.left += res.Taken - 1
	r.limit, r.remaining = res.Limit, res.Remaining
	return r.left
}
