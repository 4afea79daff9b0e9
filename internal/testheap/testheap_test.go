package testheap

import (
	"testing"

	"github.com/stretchr/testify/require"
)

var sink []byte

func TestCountSeesAllocations(t *testing.T) {
	count := Count()
	for range 100 {
		sink = make([]byte, 1024)
	}
	objects, bytes := count.Since()
	require.GreaterOrEqual(t, objects, uint64(100))
	require.GreaterOrEqual(t, bytes, uint64(100*1024))
}

func TestLiveSeesWhatIsKept(t *testing.T) {
	before := Live().HeapAlloc
	sink = make([]byte, 64<<20)
	kept := Live().HeapAlloc
	require.Greater(t, kept, before+60<<20, "64 MiB kept")
	sink = nil
	require.Less(t, Live().HeapAlloc, kept-60<<20, "and given back")
}
