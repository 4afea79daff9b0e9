package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

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
// on idle connections and on requests per connection (keepalive_pool), to
// know how far an attempt got before it failed (what may be retried), and
// to refuse to reuse a connection that holds bytes nobody asked for.
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
// per connection rather than per request. Its Read and Write refresh the
// deadline before every call, so that timeout.read and timeout.send bound
// the time between two reads or writes (upstreams.md), and count the bytes
// of the current exchange, which decide what a failure allows.
type poolConn struct {
	net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	uses    int
	lastUse time.Time

	readTimeout  time.Duration
	writeTimeout time.Duration
	nRead        int64 // bytes read in the current exchange
	nWritten     int64 // bytes written in the current exchange

	// raw is the TCP socket under the connection (under TLS too), for the
	// non-blocking check before reuse; nil when there is none.
	raw      syscall.RawConn
	peekFn   func(fd uintptr) // bound once: a closure per check would allocate
	peekBuf  [1]byte
	peekIdle bool
}

const (
	connReadBufferSize  = 16 << 10 // grows up to max_response_header_size for a larger header
	connWriteBufferSize = 16 << 10
)

func (c *poolConn) Read(b []byte) (int, error) {
	if c.readTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.readTimeout))
	}
	n, err := c.Conn.Read(b)
	c.nRead += int64(n)
	return n, err
}

func (c *poolConn) Write(b []byte) (int, error) {
	if c.writeTimeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	n, err := c.Conn.Write(b)
	c.nWritten += int64(n)
	return n, err
}

// reusable reports whether an idle connection may carry a new request: the
// node has not closed it and sent nothing since the last response. Go's
// Transport learns this from a reader parked on every idle connection; one
// non-blocking MSG_PEEK does it without a goroutine per connection.
func (c *poolConn) reusable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	// Control, not Read: it neither waits for readiness nor minds a read
	// deadline left over from the last exchange.
	c.peekIdle = false
	if err := c.raw.Control(c.peekFn); err != nil {
		return false
	}
	return c.peekIdle
}

func (c *poolConn) peek(fd uintptr) {
	// A recv that cannot block, so the raw form (no scheduler hand-off).
	// EAGAIN: nothing to read and not closed. 0 bytes: the node closed it.
	// Any byte: the node sent something nobody asked for.
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	c.peekIdle = errno == syscall.EAGAIN
}

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

// get returns an idle connection that is still good (reused=true) or dials
// a new one. Idle connections the node closed, or wrote to while idle, are
// closed here rather than handed out.
func (p *nodePool) get(connectTimeout time.Duration) (c *poolConn, reused bool, err error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if (p.idleTimeout > 0 && time.Since(c.lastUse) > p.idleTimeout) || !c.reusable() {
			c.Close()
			p.mu.Lock()
			continue
		}
		return c, true, nil
	}
	p.mu.Unlock()
	c, err = p.dial(connectTimeout)
	return c, false, err
}

func (p *nodePool) dial(timeout time.Duration) (*poolConn, error) {
	conn, err := fasthttp.DialTimeout(p.addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &poolConn{}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.peekFn = c.peek
		}
	}
	if p.tls != nil {
		tc := tls.Client(conn, p.tls)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		conn = tc
	}
	c.Conn = conn
	c.br = bufio.NewReaderSize(c, connReadBufferSize)
	c.bw = bufio.NewWriterSize(c, connWriteBufferSize)
	return c, nil
}

// put returns c to the pool after a complete exchange, or closes it when
// the pool is full, closed, c has served its quota of requests, or bytes
// beyond the response are already buffered (a node that sent more than it
// framed would otherwise answer the next client with them).
func (p *nodePool) put(c *poolConn) {
	c.uses++
	if (p.maxRequests > 0 && c.uses >= p.maxRequests) || c.br.Buffered() > 0 {
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

// Where an attempt failed, for the log.
const (
	opConnect = "connect"
	opWrite   = "write"
	opRead    = "read"
)

// attemptError describes why one attempt failed.
type attemptError struct {
	phase   int
	op      string
	timeout bool
	// stale: a reused connection failed before any byte of the request
	// reached it; the node closed it while it sat idle.
	stale bool
	err   error
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// errResponseHeaderTooLarge and errUnsolicitedUpgrade fail an attempt whose
// response cannot be relayed.
var (
	errResponseHeaderTooLarge = errors.New("response header too large")
	errUnsolicitedUpgrade     = errors.New("101 Switching Protocols to a request that did not ask to upgrade")
)

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

// exchangeOpts are the per-request facts an exchange needs.
type exchangeOpts struct {
	to             timeouts
	isHead         bool
	maxRespHeader  int
	body           *clientBody // the client's body when it streams through; nil when buffered
	replayableBody bool        // the request can be written again from the start
}

// roundTrip sends req to the node and reads the response head into resp.
// A response body up to streamThreshold with a known length is read whole;
// a larger or chunked one is left on the connection and exposed through a
// responseStream set as resp's body stream, which returns the connection to
// the pool when the server has copied it to the client.
//
// A reused connection that failed before any byte of the request reached it
// was closed by the node while idle: that is tried once more on a fresh
// connection, for every method, as long as the body can still be sent whole.
// Errors reading the client's body are returned as *clientBodyError.
func (p *nodePool) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, o *exchangeOpts) error {
	for try := 0; ; try++ {
		c, reused, err := p.get(o.to.connect)
		if err != nil {
			return &attemptError{phase: phaseConnect, op: opConnect, timeout: isTimeout(err), err: err}
		}
		err = p.exchange(c, req, resp, o)
		if err == nil {
			return nil
		}
		var ae *attemptError
		if try == 0 && reused && errors.As(err, &ae) && ae.stale && o.replayableBody {
			resp.Reset()
			continue
		}
		return err
	}
}

// exchange runs one request/response on c.
func (p *nodePool) exchange(c *poolConn, req *fasthttp.Request, resp *fasthttp.Response, o *exchangeOpts) error {
	reused := c.uses > 0
	c.nRead, c.nWritten = 0, 0
	if o.to.send <= 0 || o.to.read <= 0 {
		_ = c.Conn.SetDeadline(time.Time{}) // no deadline of an earlier exchange may linger
	}
	c.writeTimeout, c.readTimeout = o.to.send, o.to.read
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		// The connection may hold part of a request: it is never reused,
		// and what is still buffered is dropped, so that a body cut short
		// reaches the node as an incomplete message, not a complete one.
		c.Close()
		if o.body != nil && o.body.err != nil {
			return o.body.err
		}
		return &attemptError{
			phase:   phaseSent,
			op:      opWrite,
			timeout: isTimeout(err),
			stale:   reused && c.nWritten == 0 && !isTimeout(err),
			err:     err,
		}
	}

	for {
		err = p.readHeader(c, resp, o.maxRespHeader)
		if err != nil {
			c.Close()
			return &attemptError{
				phase:   phaseSent,
				op:      opRead,
				timeout: isTimeout(err),
				// Nothing reached the node if it closed before reading a
				// byte; after that only an idempotent request goes again.
				stale: reused && c.nRead == 0 && c.nWritten == 0 && errors.Is(err, io.EOF),
				err:   err,
			}
		}
		code := resp.Header.StatusCode()
		if code == fasthttp.StatusSwitchingProtocols {
			// No request is forwarded as an upgrade, so a 101 is a node
			// speaking a protocol the client never asked for.
			c.Close()
			return &attemptError{phase: phaseSent, op: opRead, err: errUnsolicitedUpgrade}
		}
		// Skip interim responses (100 Continue, 103 Early Hints).
		if code >= 200 {
			break
		}
	}

	// The gateway decides when the client connection closes, not the node:
	// a node's "Connection: close" closes only the upstream connection.
	closeConn := resp.Header.ConnectionClose()
	resp.Header.ResetConnectionClose()

	code := resp.Header.StatusCode()
	if o.isHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		// These responses have no body whatever their headers say; a node
		// that sends one anyway leaves bytes that put and get refuse.
		resp.SkipBody = true
		p.release(c, closeConn)
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= streamThreshold {
		if err := resp.ReadBody(c.br, 0); err != nil {
			c.Close()
			return &attemptError{phase: phaseSent, op: opRead, timeout: isTimeout(err), err: err}
		}
		p.release(c, closeConn)
		return nil
	}
	s := acquireResponseStream()
	// A body framed by the end of the connection leaves nothing to reuse.
	s.pool, s.conn, s.closeConn = p, c, closeConn || cl == -2
	s.scratch.Header.SetContentLength(cl)
	s.scratch.StreamBody = true
	if err := s.scratch.ReadBody(c.br, 0); err != nil {
		s.conn = nil
		releaseResponseStream(s)
		c.Close()
		return &attemptError{phase: phaseSent, op: opRead, timeout: isTimeout(err), err: err}
	}
	s.inner = s.scratch.BodyStream()
	if cl == -2 {
		cl = -1 // "read until close" upstream becomes chunked to the client
	}
	resp.SetBodyStream(s, cl)
	return nil
}

// readHeader reads a response header into resp. The read buffer starts at
// connReadBufferSize and grows, once per connection, up to max for a node
// that sends larger headers.
func (p *nodePool) readHeader(c *poolConn, resp *fasthttp.Response, max int) error {
	err := resp.Header.Read(c.br)
	if err == nil {
		return nil
	}
	return p.readLargeHeader(c, resp, max, err)
}

// readLargeHeader is readHeader's slow path, apart so that the error
// variable it needs does not cost the fast path an allocation.
func (p *nodePool) readLargeHeader(c *poolConn, resp *fasthttp.Response, max int, err error) error {
	var small *fasthttp.ErrSmallBuffer
	if !errors.As(err, &small) {
		return err
	}
	if c.br.Size() >= max {
		return errResponseHeaderTooLarge
	}
	// Reading through the old reader first hands over what it buffered.
	c.br = bufio.NewReaderSize(c.br, max)
	err = resp.Header.Read(c.br)
	if errors.As(err, &small) {
		return errResponseHeaderTooLarge
	}
	return err
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
// scratch); the connection's own deadlines bound the time between reads.
type responseStream struct {
	scratch   fasthttp.Response
	inner     io.Reader
	pool      *nodePool
	conn      *poolConn
	closeConn bool
	eof       bool
	n         int64
	bytesOut  interface{ Add(float64) } // the route's bytes-out counter, added to on Close
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
	s.inner, s.pool, s.conn, s.closeConn, s.eof, s.n, s.bytesOut = nil, nil, nil, false, false, 0, nil
	responseStreamPool.Put(s)
}

func (s *responseStream) Read(b []byte) (int, error) {
	n, err := s.inner.Read(b)
	s.n += int64(n)
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
	if s.bytesOut != nil && s.n > 0 {
		s.bytesOut.Add(float64(s.n))
	}
	_ = s.scratch.CloseBodyStream()
	releaseResponseStream(s)
	return nil
}
