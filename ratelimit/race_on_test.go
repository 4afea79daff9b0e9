//go:build race

package ratelimit

// raceEnabled scales the memory test down: the race detector makes the
// table work ~10x slower.
const raceEnabled = true
