package testlog

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Run with -race: writers and a reader at once.
func TestBufferConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("line\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	require.NoError(t, b.Sync())
	require.Equal(t, 400, strings.Count(b.String(), "line\n"))
}
