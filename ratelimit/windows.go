package ratelimit

import (
	"math"
	"time"
)

// Windows returns n windows of unit (n < 1 counts as 1), saturated at the
// largest time.Duration (~292 years: a window that never ends), for front
// ends whose config allows windows of up to 2147483647 units.
func Windows(n int64, unit time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64
	}
	return time.Duration(n) * unit
}

// Admit is the package Admit for a single counter of l with its default
// limit.
func (l *Limiter) Admit(now time.Time, key uint64) (ok bool, res Result) {
	checks := [1]Check{{L: l, Key: key}}
	ok, _, res = Admit(now, checks[:])
	return ok, res
}

// Mix is the splitmix64 finalizer: a bijection that spreads every input bit
// over the whole word, so that small scopes (route numbers) reach every
// shard.
func Mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
