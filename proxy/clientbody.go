package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"gateway/plugin"
	"gateway/tlsedge"
	"gateway/transport"
)

// errBodyTooLarge is returned by clientBody when a chunked request body
// grows past max_request_body_size while it is being forwarded.
var errBodyTooLarge = errors.New("request body too large")

// errBodyIncomplete: the client's body ended before its framing said it
// would (fewer bytes than Content-Length, or no last chunk).
var errBodyIncomplete = errors.New("request body ended early")

// clientBodyError is a failure reading the client's request body. It is the
// client's fault, never the node's: not counted against the node, never
// retried, and answered (or not) as the client's error.
type clientBodyError struct {
	kind errType // errBadRequest, errRequestTimeout or errClientClosed; a body check's refusal
	err  error
	msg  []byte // error_msg of the answer, when not the type's own
}

// errBodyRefused: a plugin's body check (hmac-auth's digest) refused the
// body.
var errBodyRefused = errors.New("request body refused by a plugin's check")

func (e *clientBodyError) Error() string { return e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// classifyBodyError tells a malformed body (400) from a client that is too
// slow (408) or went away (no answer: nobody is there to read it).
func classifyBodyError(err error) *clientBodyError {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return &clientBodyError{kind: errEntityTooLarge, err: err}
	case transport.IsTimeout(err):
		return &clientBodyError{kind: errRequestTimeout, err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errBodyIncomplete):
		return &clientBodyError{kind: errClientClosed, err: err}
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return &clientBodyError{kind: errClientClosed, err: err}
	}
	return &clientBodyError{kind: errBadRequest, err: err}
}

// clientBody reads the client's request body for forwarding. fasthttp's
// stream reports a body cut short as a normal end in two cases (a
// Content-Length body when the client half-closes, a chunked body that
// stops at a chunk boundary); clientBody turns both into errors, so that
// the gateway never forwards a truncated body as complete nor writes the
// last chunk on the client's behalf. The first error sticks in err.
type clientBody struct {
	inner io.Reader
	cl    int64 // declared length; -1 chunked
	limit int64 // max_request_body_size; 0 none
	n     int64
	conn  *clientConn // the client connection, to tell a last chunk from a close
	err   *clientBodyError

	check   plugin.BodyCheck // sees the body as it passes; nil: none
	checked bool
}

// verify runs the body check once the whole body has passed; on refusal
// the last bytes are withheld, so a node never sees the body complete.
func (b *clientBody) verify() bool {
	if b.check == nil || b.checked {
		return true
	}
	b.checked = true
	if b.check.Verify() {
		return true
	}
	t, msg := b.check.Refusal()
	b.err = &clientBodyError{kind: t, err: errBodyRefused, msg: msg}
	return false
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.cl >= 0 && b.n == b.cl {
		return 0, io.EOF // all there: no need to ask fasthttp, nor room in p
	}
	if b.inner == nil {
		b.err = classifyBodyError(errBodyIncomplete)
		return 0, b.err
	}
	n, err := b.inner.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		b.err = classifyBodyError(errBodyTooLarge)
		return 0, b.err
	}
	if b.check != nil && n > 0 {
		b.check.Write(p[:n])
	}
	switch {
	case err == nil:
		if b.cl >= 0 && b.n > b.cl {
			b.err = classifyBodyError(errBodyIncomplete)
			return 0, b.err
		}
		if b.cl >= 0 && b.n == b.cl && !b.verify() {
			return 0, b.err
		}
		return n, nil
	case err == io.EOF:
		if (b.cl >= 0 && b.n != b.cl) || (b.cl < 0 && !b.conn.lastChunkSeen()) {
			b.err = classifyBodyError(errBodyIncomplete)
			return n, b.err
		}
		if !b.verify() {
			return 0, b.err
		}
		return n, io.EOF
	default:
		b.err = classifyBodyError(err)
		return n, b.err
	}
}

// ClientErr implements transport.ClientBody.
func (b *clientBody) ClientErr() error {
	if b.err == nil {
		return nil
	}
	return b.err
}

// Close leaves the client's stream to fasthttp, which owns it.
func (b *clientBody) Close() error { return nil }

// readAll reads the whole body into dst, or fails with the client's error.
func (b *clientBody) readAll(dst []byte) ([]byte, error) {
	for {
		if b.cl >= 0 && b.n == b.cl {
			return dst, nil
		}
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := b.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// clientListener hands fasthttp connections that remember how their input
// ended: see clientConn.
type clientListener struct{ net.Listener }

func (l clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &clientConn{Conn: c}
	cc.tls, _ = c.(*tlsedge.Conn)
	return cc, nil
}

// clientConn records whether the client closed its side and the last bytes
// it sent. fasthttp's chunk reader returns io.EOF both after the last chunk
// and when the client closes at a chunk boundary; only the second means the
// body is incomplete, and it can only happen after the connection read EOF.
type clientConn struct {
	net.Conn
	tls  *tlsedge.Conn // nil on the plain-HTTP listener
	eof  bool
	tail [4]byte // the last bytes read, newest last
	// pending is the tunnel of an upgrade answered on this connection,
	// aborted if fasthttp closes the connection instead of hijacking it.
	pending atomic.Pointer[tunnel]
}

func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n >= len(c.tail) {
		copy(c.tail[:], b[n-len(c.tail):n])
	} else if n > 0 {
		copy(c.tail[:], c.tail[n:])
		copy(c.tail[len(c.tail)-n:], b[:n])
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// lastChunkSeen reports whether a chunked body that just ended with io.EOF
// ended with its last chunk. If the client has not closed, fasthttp cannot
// have seen an end of input, so the end was the last chunk; if it has, the
// message must end with the blank line that closes the last chunk's
// trailer section.
func (c *clientConn) lastChunkSeen() bool {
	if c == nil {
		return true // not served by our listener (in-process tests): trust fasthttp
	}
	return !c.eof || string(c.tail[:]) == "\r\n\r\n"
}

// clientConnOf returns ctx's connection as a *clientConn, or nil.
func clientConnOf(ctx *fasthttp.RequestCtx) *clientConn {
	c, _ := ctx.Conn().(*clientConn)
	return c
}
