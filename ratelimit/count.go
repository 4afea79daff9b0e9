package ratelimit

import (
	"time"

	"gateway/config"
)

// Count is the limit-count plugin's counter: Count requests per TimeWindow
// seconds per key, fixed or sliding (window_type).
type Count struct {
	l *Limiter
}

// NewCount returns the limit-count counter for identity: the plugin's group
// when it has one (routes of a group share counters), otherwise an identity
// the caller makes unique to the route, stable across reloads (e.g. its ID).
// The caller should keep the two apart (e.g. "group:" and "route:"
// prefixes). With a nil store the counter is private.
func NewCount(store *Store, identity string, lc *config.LimitCount) *Count {
	window := saturatingMul(lc.TimeWindow, time.Second)
	return &Count{l: store.limiter("limit-count\x00"+identity, lc.Count, window, ParseWindow(lc.WindowType))}
}

// Admit counts one request for key (the xxhash of the plugin's key) if its
// counter is below the limit. res is the counter's state for the
// X-RateLimit-* headers, or Retry-After when rejected.
func (c *Count) Admit(now time.Time, key uint64) (ok bool, res Result) {
	return c.l.Admit(now, key)
}

// Limiter returns the counter family behind c.
func (c *Count) Limiter() *Limiter { return c.l }

// Admit is the package Admit for a single counter of l with its default
// limit.
func (l *Limiter) Admit(now time.Time, key uint64) (ok bool, res Result) {
	checks := [1]Check{{L: l, Key: key}}
	ok, _, res = Admit(now, checks[:])
	return ok, res
}
