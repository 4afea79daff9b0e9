package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"gateway/config"
)

// streamThreshold is the body size above which bodies are streamed rather
// than buffered whole, in both directions (upstreams.md).
const streamThreshold = 1 << 20

// nodePool holds the idle keep-alive connections to one node. It lives
// outside snapshots, keyed by poolKey, so a reload that keeps a node keeps
// its connections.
//
// fasthttp's HostClient is not used because the gateway needs what it does
// not offer: per-attempt connect/send/read timeouts (route overrides), a cap
// on idle connections and on requests per connection (keepalive_pool), and
// to know whether a failure happened on a reused connection before the
// request was accepted (retried for every method).
type nodePool struct {
	addr        string
	tls         *tls.Config
	maxIdle     int
	maxRequests int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*poolConn // LIFO: the most recently used connection is reused first
	closed bool
}

// poolConn is one upstream connection with its own buffers, allocated once
// per connection rather than per request.
type poolConn struct {
	net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	uses    int
	lastUse time.Time
}

const (
	connReadBufferSize  = 16 << 10 // must hold a whole upstream response header
	connWriteBufferSize = 16 << 10
)

// poolKey is the identity that decides whether a reload may keep a pool: the
// node address and everything that changes how connections are made or kept.
func poolKey(up *config.Upstream, n *config.Node) string {
	return up.Scheme + "://" + net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) +
		"|verify=" + strconv.FormatBool(up.TLS.Verify) +
		"|cert=" + strconv.FormatUint(xxhash.Sum64String(up.TLS.ClientCert+up.TLS.ClientKey), 16) +
		"|idle=" + strconv.Itoa(up.KeepalivePool.Size) +
		"|idle_timeout=" + strconv.FormatFloat(float64(up.KeepalivePool.IdleTimeout), 'g', -1, 64) +
		"|requests=" + strconv.Itoa(up.KeepalivePool.Requests)
}

func newNodePool(up *config.Upstream, n *config.Node) (*nodePool, error) {
	p := &nodePool{
		addr:        net.JoinHostPort(n.Host, strconv.Itoa(n.Port)),
		maxIdle:     up.KeepalivePool.Size,
		maxRequests: up.KeepalivePool.Requests,
		idleTimeout: up.KeepalivePool.IdleTimeout.Duration(),
	}
	if up.Scheme == "https" {
		tc := &tls.Config{ServerName: n.Host, InsecureSkipVerify: !up.TLS.Verify, MinVersion: tls.VersionTLS12} //nolint:gosec // verify is the operator's choice
		if up.TLS.ClientCert != "" {
			cert, err := tls.X509KeyPair([]byte(up.TLS.ClientCert), []byte(up.TLS.ClientKey))
			if err != nil {
				return nil, err
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		p.tls = tc
	}
	return p, nil
}

// get returns an idle connection (reused=true) or dials a new one.
func (p *nodePool) get(connectTimeout time.Duration) (c *poolConn, reused bool, err error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if p.idleTimeout > 0 && time.Since(c.lastUse) > p.idleTimeout {
			p.mu.Unlock()
			c.Close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		return c, true, nil
	}
	p.mu.Unlock()
	return p.dial(connectTimeout)
}

func (p *nodePool) dial(timeout time.Duration) (*poolConn, bool, error) {
	conn, err := fasthttp.DialTimeout(p.addr, timeout)
	if err != nil {
		return nil, false, err
	}
	if p.tls != nil {
		tc := tls.Client(conn, p.tls)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, false, err
		}
		_ = tc.SetDeadline(time.Time{})
		conn = tc
	}
	return &poolConn{
		Conn: conn,
		br:   bufio.NewReaderSize(conn, connReadBufferSize),
		bw:   bufio.NewWriterSize(conn, connWriteBufferSize),
	}, false, nil
}

// put returns c to the pool after a complete exchange, or closes it when
// the pool is full, closed, or c has served its quota of requests.
func (p *nodePool) put(c *poolConn) {
	c.uses++
	if p.maxRequests > 0 && c.uses >= p.maxRequests {
		c.Close()
		return
	}
	c.lastUse = time.Now()
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// sweep closes connections idle for longer than the pool's idle timeout.
// The oldest connections sit at the bottom of the LIFO stack.
func (p *nodePool) sweep(now time.Time) {
	if p.idleTimeout <= 0 {
		return
	}
	var expired []*poolConn
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].lastUse) > p.idleTimeout {
		i++
	}
	if i > 0 {
		expired = append(expired, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.Close()
	}
}

// close closes the idle connections and makes put close the rest as they
// come back.
func (p *nodePool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// Attempt failure phases: they decide what may be retried (upstreams.md).
const (
	phaseNone    = iota
	phaseConnect // nothing was sent: retried for every method
	phaseSent    // the request (or part of it) was sent: retried only when idempotent
)

// attemptError describes why one attempt failed.
type attemptError struct {
	phase   int
	timeout bool
	err     error
}

func (e *attemptError) Error() string { return e.err.Error() }

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout)
}

// timeouts of one attempt.
type timeouts struct {
	connect, send, read time.Duration
}

// roundTrip sends req to the node and reads the response head into resp.
// A response body up to streamThreshold with a known length is read whole;
// a larger or chunked one is left on the connection and exposed through a
// responseStream set as resp's body stream, which returns the connection to
// the pool when the server has copied it to the client.
//
// A reused connection that fails before any response byte arrives is most
// likely one the node closed while it sat idle; that is retried once on a
// fresh connection, for every method, as long as the request body can be
// sent again.
func (p *nodePool) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, to timeouts, isHead bool, rs *requestStream) (err error) {
	for try := 0; ; try++ {
		c, reused, err := p.get(to.connect)
		if err != nil {
			return &attemptError{phase: phaseConnect, timeout: isTimeout(err), err: err}
		}
		if rs != nil {
			rs.conn = c
		}
		err = p.exchange(c, req, resp, to, isHead)
		if err == nil {
			return nil
		}
		var ae *attemptError
		if errors.As(err, &ae) && ae.phase == phaseConnect && reused && try == 0 && !req.IsBodyStream() {
			resp.Reset()
			continue
		}
		return err
	}
}

// exchange runs one request/response on c. Failures that a stale pooled
// connection produces (write error, EOF before the first response byte) are
// reported as phaseConnect so that roundTrip can retry them.
func (p *nodePool) exchange(c *poolConn, req *fasthttp.Request, resp *fasthttp.Response, to timeouts, isHead bool) error {
	now := time.Now()
	_ = c.SetWriteDeadline(now.Add(to.send))
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.Close()
		if errors.Is(err, errBodyTooLarge) {
			return err
		}
		phase := phaseSent
		if c.uses > 0 && !isTimeout(err) {
			phase = phaseConnect
		}
		return &attemptError{phase: phase, timeout: isTimeout(err), err: err}
	}

	_ = c.SetReadDeadline(time.Now().Add(to.read))
	for {
		err = resp.Header.Read(c.br)
		if err != nil {
			c.Close()
			phase := phaseSent
			if c.uses > 0 && errors.Is(err, io.EOF) {
				phase = phaseConnect
			}
			return &attemptError{phase: phase, timeout: isTimeout(err), err: err}
		}
		// Skip interim responses (100 Continue, 103 Early Hints).
		if code := resp.Header.StatusCode(); code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			break
		}
	}

	// The gateway decides when the client connection closes, not the node:
	// a node's "Connection: close" closes only the upstream connection.
	closeConn := resp.Header.ConnectionClose()
	resp.Header.ResetConnectionClose()

	code := resp.Header.StatusCode()
	if isHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		resp.SkipBody = true
		p.release(c, closeConn)
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= streamThreshold {
		if err := resp.ReadBody(c.br, 0); err != nil {
			c.Close()
			return &attemptError{phase: phaseSent, timeout: isTimeout(err), err: err}
		}
		p.release(c, closeConn)
		return nil
	}
	s := acquireResponseStream()
	s.pool, s.conn, s.closeConn, s.readTimeout = p, c, closeConn, to.read
	s.scratch.Header.SetContentLength(cl)
	s.scratch.StreamBody = true
	if err := s.scratch.ReadBody(c.br, 0); err != nil {
		s.conn = nil
		releaseResponseStream(s)
		c.Close()
		return &attemptError{phase: phaseSent, timeout: isTimeout(err), err: err}
	}
	s.inner = s.scratch.BodyStream()
	if cl == -2 {
		cl = -1 // "read until close" upstream becomes chunked to the client
	}
	resp.SetBodyStream(s, cl)
	return nil
}

func (p *nodePool) release(c *poolConn, closeConn bool) {
	if closeConn {
		c.Close()
		return
	}
	p.put(c)
}

// responseStream copies a large or chunked response body from a node to the
// client without buffering it whole. fasthttp decodes the framing (through
// scratch); the stream refreshes the read deadline before every read so that
// timeout.read bounds the time between bytes, not the whole transfer.
type responseStream struct {
	scratch     fasthttp.Response
	inner       io.Reader
	pool        *nodePool
	conn        *poolConn
	closeConn   bool
	readTimeout time.Duration
	eof         bool
}

var responseStreamPool sync.Pool

func acquireResponseStream() *responseStream {
	if v := responseStreamPool.Get(); v != nil {
		return v.(*responseStream)
	}
	return &responseStream{}
}

func releaseResponseStream(s *responseStream) {
	s.scratch.Reset()
	s.inner, s.pool, s.conn, s.closeConn, s.eof = nil, nil, nil, false, false
	responseStreamPool.Put(s)
}

func (s *responseStream) Read(b []byte) (int, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.readTimeout))
	n, err := s.inner.Read(b)
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

// Close is called by fasthttp once the body was written to the client (or
// the client went away). Only a body read to its end leaves the connection
// reusable.
func (s *responseStream) Close() error {
	if s.conn != nil {
		if s.eof && !s.closeConn {
			s.pool.put(s.conn)
		} else {
			s.conn.Close()
		}
	}
	_ = s.scratch.CloseBodyStream()
	releaseResponseStream(s)
	return nil
}

// errBodyTooLarge is returned by requestStream when a chunked request body
// grows past max_request_body_size while it is being forwarded.
var errBodyTooLarge = errors.New("request body too large")

// requestStream forwards a large or chunked client body to the node. It
// counts bytes against max_request_body_size (a chunked body declares no
// length up front) and refreshes the upstream write deadline as data flows.
// Closing it leaves the client's stream to fasthttp, which owns it.
type requestStream struct {
	inner       io.Reader
	conn        net.Conn
	sendTimeout time.Duration
	limit       int64
	n           int64
}

func (s *requestStream) Read(b []byte) (int, error) {
	n, err := s.inner.Read(b)
	s.n += int64(n)
	if s.limit > 0 && s.n > s.limit {
		return 0, errBodyTooLarge
	}
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.sendTimeout))
	}
	return n, err
}

func (s *requestStream) Close() error { return nil }
