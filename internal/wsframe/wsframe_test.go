package wsframe

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAcceptRFCExample(t *testing.T) {
	// RFC 6455 section 1.3.
	require.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", Accept([]byte("dGhlIHNhbXBsZSBub25jZQ==")))
}

func TestFramesRoundTrip(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 0xffff, 0x10000} {
		for _, mask := range []bool{false, true} {
			p := bytes.Repeat([]byte{'x'}, n)
			var buf bytes.Buffer
			require.NoError(t, Write(&buf, OpBinary, p, mask))
			require.Equal(t, mask, buf.Bytes()[1]&0x80 != 0)
			op, got, err := Read(bufio.NewReader(&buf), 0)
			require.NoError(t, err)
			require.Equal(t, byte(OpBinary), op)
			require.Equal(t, p, got, "n=%d mask=%v", n, mask)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, OpText, make([]byte, 200), false))
	_, _, err := Read(bufio.NewReader(&buf), 100)
	require.ErrorIs(t, err, ErrTooLarge)
}
