package gzip

import (
	"io"
	"sync"

	"github.com/valyala/fasthttp"

	"gateway/transport"
)

// holder is a body stream that can outlive the response it was set on
// (transport.ResponseStream): Hold makes its next Close a no-op, so that
// fasthttp replacing the body with the compressing stream does not close
// the node's connection under it.
type holder interface {
	io.ReadCloser
	Hold()
}

// streamBufSize is how much of the node's body is read at once.
const streamBufSize = 32 << 10

// compressStream replaces resp's body stream with one that compresses it
// as it is read; false when the stream cannot be taken over.
func (s *step) compressStream(resp *fasthttp.Response) bool {
	src, ok := resp.BodyStream().(holder)
	if !ok {
		return false
	}
	cs := streamPool.Get().(*compressStream)
	cs.src, cs.pool = src, s.writers
	cs.w = s.writers.get()
	cs.w.Reset(&cs.out)
	src.Hold()
	resp.SetBodyStream(cs, -1) // chunked: the compressed length is not known
	return true
}

// compressStream is a streamed body compressed on the fly: each Read
// reads the node's body and returns what the compressor made of it. The
// compressor is flushed whenever the node had no more bytes ready (a
// short read), so a slow stream (server-sent events, progress output)
// reaches the client as it comes, and a fast one compresses in large
// blocks.
type compressStream struct {
	src     holder
	pool    *writerPool
	w       compressor
	out     out
	off     int
	buf     []byte
	done    bool
	n       int64 // compressed bytes returned
	counter transport.Adder
}

var streamPool = sync.Pool{New: func() any { return &compressStream{buf: make([]byte, streamBufSize)} }}

func (c *compressStream) Read(p []byte) (int, error) {
	for c.off == len(c.out.b) {
		if c.done {
			return 0, io.EOF
		}
		c.out.b, c.off = c.out.b[:0], 0
		n, err := c.src.Read(c.buf)
		if n > 0 {
			if _, werr := c.w.Write(c.buf[:n]); werr != nil {
				return 0, werr
			}
		}
		switch {
		case err == io.EOF:
			if cerr := c.w.Close(); cerr != nil {
				return 0, cerr
			}
			c.done = true
		case err != nil:
			return 0, err
		case n < len(c.buf):
			if ferr := c.w.Flush(); ferr != nil {
				return 0, ferr
			}
		}
	}
	n := copy(p, c.out.b[c.off:])
	c.off += n
	c.n += int64(n)
	return n, nil
}

// CountInto makes the stream add the bytes it sent to a when it closes
// (the proxy's bytes-out counter, as for a node's stream).
func (c *compressStream) CountInto(a transport.Adder) { c.counter = a }

// Close is called by fasthttp once the body was written (or the client
// went away): the node's stream closes (its connection is reused only if
// it was read to its end) and the compressor goes back to its pool.
func (c *compressStream) Close() error {
	err := c.src.Close()
	if c.counter != nil && c.n > 0 {
		c.counter.Add(float64(c.n))
	}
	c.pool.put(c.w)
	if cap(c.out.b) > maxPooledOut {
		c.out.b = nil
	}
	c.src, c.pool, c.w, c.off, c.done, c.n, c.counter = nil, nil, nil, 0, false, 0, nil
	c.out.b = c.out.b[:0]
	streamPool.Put(c)
	return err
}
