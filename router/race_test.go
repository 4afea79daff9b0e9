//go:build race

package router

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// regexp machines are reallocated and allocation counts are not exact.
const raceEnabled = true
