//go:build !race

// Package race tells tests whether the race detector is on.
package race

// Enabled reports whether the race detector is on: it allocates on its own
// and makes sync.Pool drop items at random, so allocation tests skip and
// memory tests scale down under it.
const Enabled = false
