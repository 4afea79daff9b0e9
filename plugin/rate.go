package plugin

import (
	"time"

	"gateway/ratelimit"
)

// RateState is what the X-RateLimit-* headers report for a request: the
// most constrained counter any throttling step saw.
type RateState struct {
	Set        bool
	Limit      int64
	Remaining  int64
	Reset      time.Duration
	RetryAfter bool // a rejection: Retry-After carries Reset too
}

// Merge keeps the counter with the least remaining.
func (r *RateState) Merge(res ratelimit.Result) {
	if !r.Set || res.Remaining < r.Remaining {
		r.Set, r.Limit, r.Remaining, r.Reset = true, res.Limit, res.Remaining, res.Reset
	}
}
