// Package wsframe is the little of RFC 6455 (WebSocket) that the demo's
// echo backends and the gateway's tests need: the opening handshake's
// accept key and single, final frames, masked or not. The gateway itself
// never parses WebSocket: it copies bytes.
package wsframe

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 6455 names SHA-1 for the accept key
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
)

// Opcodes.
const (
	OpText   = 1
	OpBinary = 2
	OpClose  = 8
)

// Accept is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func Accept(key []byte) string {
	h := sha1.New() //nolint:gosec // RFC 6455
	h.Write(key)
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// ErrTooLarge: a frame longer than Read's max.
var ErrTooLarge = errors.New("websocket frame too large")

// Read reads one frame of at most max payload bytes (0: no limit),
// unmasking it if it is masked.
func Read(r *bufio.Reader, max uint64) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if max > 0 && n > max {
		return 0, nil, ErrTooLarge
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err = io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, payload, nil
}

// Write writes one final frame, masked with a random key when mask (a
// client's frames are masked, a server's are not).
func Write(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op}
	mbit := byte(0)
	if mask {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n <= 0xffff:
		hdr = binary.BigEndian.AppendUint16(append(hdr, mbit|126), uint16(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, mbit|127), uint64(n))
	}
	p := payload
	if mask {
		var key [4]byte
		_, _ = rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		p = make([]byte, len(payload))
		for i := range payload {
			p[i] = payload[i] ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, p...))
	return err
}
