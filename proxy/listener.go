package proxy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// edgeListener counts client connections, refuses those over
// max_connections with a 503, and gives each accepted connection the
// client_write_timeout (README "Limits and timeouts").
type edgeListener struct {
	net.Listener
	max          int64 // 0: unlimited
	writeTimeout time.Duration
	open         atomic.Int64
	onRefused    func()
	silent       bool // close refused connections without a plaintext 503 (TLS)
}

// connRefusedResponse is written to a connection over the cap before it is
// closed, without reading anything from it.
var connRefusedResponse = func() []byte {
	const body = `{"error_code":"APIG.0202","error_msg":"Too many connections"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
}()

func (l *edgeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			if l.onRefused != nil {
				l.onRefused()
			}
			// A fresh socket's send buffer takes this at once; the
			// deadline only guards against a peer that has vanished.
			if !l.silent {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write(connRefusedResponse)
			}
			_ = c.Close()
			continue
		}
		return &edgeConn{Conn: c, l: l, timeout: l.writeTimeout}, nil
	}
}

// edgeConn is one counted client connection. Its writes time out when the
// client takes more than timeout to accept the next chunk: the deadline
// is moved before every write of at most writeChunk bytes, as nginx's
// send_timeout runs between two successive writes rather than over the
// whole response.
type edgeConn struct {
	net.Conn
	l       *edgeListener
	timeout time.Duration
	last    time.Time // when the write deadline was last moved
	closed  sync.Once
}

// writeChunk bounds how much one deadline covers: a large body is written
// in pieces, so the timeout measures progress, not total size.
const writeChunk = 64 << 10

func (c *edgeConn) Write(b []byte) (int, error) {
	if c.timeout <= 0 {
		return c.Conn.Write(b)
	}
	written := 0
	for len(b) > 0 {
		p := b
		if len(p) > writeChunk {
			p = p[:writeChunk]
		}
		// Moving a deadline costs a timer update; within the same
		// second the previous one is kept (at most 1 s less patience).
		if now := time.Now(); now.Sub(c.last) >= time.Second {
			if err := c.Conn.SetWriteDeadline(now.Add(c.timeout)); err != nil {
				return written, err
			}
			c.last = now
		}
		n, err := c.Conn.Write(p)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

func (c *edgeConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.l.open.Add(-1) })
	return err
}

// serverLogger takes fasthttp's own messages (a connection whose request
// could not be parsed, a client that vanished) into the gateway's log at
// debug level: clients choose how many of them there are, so at a level
// that is on by default they would be a way to flood the log (nginx logs
// them at info, below its default error level).
//
// Each line has "component":"fasthttp", and its detail is cut at
// maxServerLogDetail bytes: fasthttp quotes what the client sent (for a TLS
// ClientHello, the whole read buffer, twice).
type serverLogger struct{ log *zap.Logger }

const maxServerLogDetail = 1024

func (l serverLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "client connection"); ce != nil {
		detail := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
		if len(detail) > maxServerLogDetail {
			detail = detail[:maxServerLogDetail] + "...(truncated)"
		}
		ce.Write(zap.String("component", "fasthttp"), zap.String("detail", detail))
	}
}

// NewServerLogger returns the fasthttp.Logger the gateway's own server
// uses, for other fasthttp servers of the process (demo mode's backends).
func NewServerLogger(log *zap.Logger) fasthttp.Logger { return serverLogger{log} }
