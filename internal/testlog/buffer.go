// Package testlog holds what tests of several packages share to read
// output that the code under test writes from goroutines of its own.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it, for a test to read while other
// goroutines write: a subprocess's stdout or stderr, a zap logger's sink
// (it has the Sync method zap wants). The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Sync does nothing: what was written is already there.
func (b *Buffer) Sync() error { return nil }

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
