// Package transport carries requests to upstream nodes: a keep-alive pool
// per node, one attempt (write the request, read the response head, keep or
// close the connection), per-read and per-write Timeouts, and streaming of
// large bodies. It knows nothing of routes or plugins; proxy decides which
// node to try and whether to try again, from what an attempt reports.
package transport

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
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

// StreamThreshold is the body size above which bodies are streamed rather
// than buffered whole, in both directions (upstreams.md).
const StreamThreshold = 1 << 20

// Pool holds the idle keep-alive connections to one node. It lives
// outside snapshots, keyed by PoolKey, so a reload that keeps a node keeps
// its connections.
//
// fasthttp's HostClient is not used because the gateway needs what it does
// not offer: per-attempt connect/send/read Timeouts (route overrides), a cap
// on idle connections and on requests per connection (keepalive_pool), to
// know how far an attempt got before it failed (what may be retried), and
// to refuse to reuse a connection that holds bytes nobody asked for.
type Pool struct {
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

	readTimeout   time.Duration
	writeTimeout  time.Duration
	nRead         int64 // bytes read in the current exchange
	nWritten      int64 // bytes written in the current exchange
	readDeadline  movingDeadline
	writeDeadline movingDeadline

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
	if d, ok := c.readDeadline.move(c.readTimeout); ok {
		_ = c.Conn.SetReadDeadline(d)
	}
	n, err := c.Conn.Read(b)
	c.nRead += int64(n)
	return n, err
}

// deadlineSlack is how far past a timeout a deadline may lie: 1/16 of it,
// at most 250 ms.
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(timeout/16, 250*time.Millisecond)
}

func (c *poolConn) Write(b []byte) (int, error) {
	if d, ok := c.writeDeadline.move(c.writeTimeout); ok {
		_ = c.Conn.SetWriteDeadline(d)
	}
	n, err := c.Conn.Write(b)
	c.nWritten += int64(n)
	return n, err
}

// movingDeadline is a read or write deadline that follows the calls: the
// deadline is set a slack beyond the timeout and moved only once the slack
// has passed, so the time allowed between two calls is timeout..timeout+
// slack without a timer update on every call.
type movingDeadline struct{ set time.Time }

// move returns the new deadline when it is due to move (timeout > 0).
func (m *movingDeadline) move(timeout time.Duration) (time.Time, bool) {
	if timeout <= 0 {
		return time.Time{}, false
	}
	now := time.Now()
	slack := deadlineSlack(timeout)
	if now.Sub(m.set) < slack {
		return time.Time{}, false
	}
	m.set = now
	return now.Add(timeout + slack), true
}

// peekAfterIdle is how long a connection must have been idle before its
// reuse costs a MSG_PEEK. A connection handed back moments ago is reused at
// once under load; the peek (a syscall per request) buys nothing there: a
// node's idle timeout closes connections after seconds, not microseconds,
// and bytes a node sends just after its response race the next request
// with or without a peek.
const peekAfterIdle = 2 * time.Millisecond

// reusable reports whether an idle connection may carry a new request: the
// node has not closed it and sent nothing since the last response. Go's
// Transport learns this from a reader parked on every idle connection; one
// non-blocking MSG_PEEK does it without a goroutine per connection, for
// connections idle for peekAfterIdle or longer.
func (c *poolConn) reusable(idle time.Duration) bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil || idle < peekAfterIdle {
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

// PoolKey is the identity that decides whether a reload may keep a pool: the
// node address and everything that changes how connections are made or kept.
func PoolKey(up *config.Upstream, n *config.Node) string {
	return string(up.Scheme) + "://" + n.Addr() +
		"|verify=" + strconv.FormatBool(up.TLS.Verify) +
		"|cert=" + strconv.FormatUint(xxhash.Sum64String(up.TLS.ClientCert+up.TLS.ClientKey), 16) +
		"|ca=" + strconv.FormatUint(xxhash.Sum64(up.TLS.CAPEM), 16) +
		"|sni=" + tlsServerName(up, n) +
		"|idle=" + strconv.Itoa(up.KeepalivePool.Size) +
		"|idle_timeout=" + strconv.FormatFloat(float64(up.KeepalivePool.IdleTimeout), 'g', -1, 64) +
		"|requests=" + strconv.Itoa(up.KeepalivePool.Requests)
}

// tlsServerName is the name sent as SNI and verified: tls.server_name, or
// upstream_host when pass_host rewrites the Host header to it, or the node
// host.
func tlsServerName(up *config.Upstream, n *config.Node) string {
	switch {
	case up.TLS.ServerName != "":
		return up.TLS.ServerName
	case up.PassHost == config.PassHostRewrite && up.UpstreamHost != "":
		return up.UpstreamHost
	}
	return n.Host
}

func NewPool(up *config.Upstream, n *config.Node) (*Pool, error) {
	p := &Pool{
		addr:        n.Addr(),
		maxIdle:     up.KeepalivePool.Size,
		maxRequests: up.KeepalivePool.Requests,
		idleTimeout: up.KeepalivePool.IdleTimeout.Duration(),
	}
	if up.Scheme == config.SchemeHTTPS {
		tc := &tls.Config{ServerName: tlsServerName(up, n), InsecureSkipVerify: !up.TLS.Verify, MinVersion: tls.VersionTLS12} //nolint:gosec // verify is the operator's choice
		if len(up.TLS.CAPEM) > 0 {
			// The system roots and the upstream's own CAs.
			roots, err := x509.SystemCertPool()
			if err != nil {
				roots = x509.NewCertPool()
			}
			if !roots.AppendCertsFromPEM(up.TLS.CAPEM) {
				return nil, errors.New("tls.ca_certificates: no usable certificate")
			}
			tc.RootCAs = roots
		}
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
func (p *Pool) get(connectTimeout time.Duration) (c *poolConn, reused bool, err error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		idle := time.Since(c.lastUse)
		if (p.idleTimeout > 0 && idle > p.idleTimeout) || !c.reusable(idle) {
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

func (p *Pool) dial(timeout time.Duration) (*poolConn, error) {
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
func (p *Pool) put(c *poolConn) {
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
func (p *Pool) Sweep(now time.Time) {
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
func (p *Pool) Close() {
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
	PhaseConnect = iota + 1 // nothing was sent: retried for every method
	PhaseSent               // the request (or part of it) was sent: retried only when idempotent
)

// Where an attempt failed, for the log.
const (
	OpConnect = "connect"
	OpWrite   = "write"
	OpRead    = "read"
)

// AttemptError describes why one attempt failed.
type AttemptError struct {
	Phase   int    // PhaseConnect or PhaseSent: what may be retried
	Op      string // OpConnect, OpWrite or OpRead: where it failed, for the log
	Timeout bool
	// Stale: a reused connection failed before any byte of the request
	// reached it; the node closed it while it sat idle.
	Stale bool
	Err   error
}

func (e *AttemptError) Error() string { return e.Err.Error() }
func (e *AttemptError) Unwrap() error { return e.Err }

// ErrResponseHeaderTooLarge and ErrUnsolicitedUpgrade fail an attempt whose
// response cannot be relayed.
var (
	ErrResponseHeaderTooLarge = errors.New("response header too large")
	ErrUnsolicitedUpgrade     = errors.New("101 Switching Protocols to a request that did not ask to upgrade")
)

func IsTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout)
}

// Timeouts of one attempt.
type Timeouts struct {
	Connect, Send, Read time.Duration
}

// Options are what one request's attempts need to know.
type Options struct {
	To                Timeouts
	IsHead            bool
	MaxResponseHeader int
	// Body is the client's body when it streams through (nil when it is
	// buffered in the request); its read errors are the client's.
	Body ClientBody
	// ReplayableBody: the request can be written again from the start.
	ReplayableBody bool
	// Upgrade: the request asks to upgrade (upgrade.go). It goes on a
	// fresh connection, which a 101 turns into Tunnel; any other answer
	// closes the connection after its response.
	Upgrade bool
	Tunnel  *Tunnel
}

// ClientBody is a streamed request body that tells its own failures (the
// client's) from the connection's.
type ClientBody interface {
	io.Reader
	// ClientErr is the error that stopped reading the client's body, or nil.
	ClientErr() error
}

// RoundTrip sends req to the node and reads the response head into resp.
// A response body up to StreamThreshold with a known length is read whole;
// a larger or chunked one is left on the connection and exposed through a
// ResponseStream set as resp's body stream, which returns the connection to
// the pool when the server has copied it to the client.
//
// A reused connection that failed before any byte of the request reached it
// was closed by the node while idle: that is tried once more on a fresh
// connection, for every method, as long as the body can still be sent whole.
// An error reading the client's body is returned as Body.ClientErr gave it;
// every other failure is an *AttemptError.
func (p *Pool) RoundTrip(req *fasthttp.Request, resp *fasthttp.Response, o *Options) error {
	for try := 0; ; try++ {
		c, reused, err := p.connFor(o)
		if err != nil {
			return &AttemptError{Phase: PhaseConnect, Op: OpConnect, Timeout: IsTimeout(err), Err: err}
		}
		err = p.exchange(c, req, resp, o)
		if err == nil {
			return nil
		}
		var ae *AttemptError
		if try == 0 && reused && errors.As(err, &ae) && ae.Stale && o.ReplayableBody {
			resp.Reset()
			continue
		}
		return err
	}
}

// exchange runs one request/response on c.
func (p *Pool) exchange(c *poolConn, req *fasthttp.Request, resp *fasthttp.Response, o *Options) error {
	reused := c.uses > 0
	c.nRead, c.nWritten = 0, 0
	if o.To.Send <= 0 || o.To.Read <= 0 {
		_ = c.Conn.SetDeadline(time.Time{}) // no deadline of an earlier exchange may linger
	}
	if c.writeTimeout != o.To.Send || c.readTimeout != o.To.Read {
		// Another route's timeouts: move both deadlines at the first
		// write and read, whatever the slack.
		c.writeDeadline, c.readDeadline = movingDeadline{}, movingDeadline{}
		c.writeTimeout, c.readTimeout = o.To.Send, o.To.Read
	}
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		// The connection may hold part of a request: it is never reused,
		// and what is still buffered is dropped, so that a body cut short
		// reaches the node as an incomplete message, not a complete one.
		c.Close()
		if o.Body != nil {
			if cerr := o.Body.ClientErr(); cerr != nil {
				return cerr
			}
		}
		return &AttemptError{
			Phase:   PhaseSent,
			Op:      OpWrite,
			Timeout: IsTimeout(err),
			Stale:   reused && c.nWritten == 0 && !IsTimeout(err),
			Err:     err,
		}
	}

	for {
		err = p.readHeader(c, resp, o.MaxResponseHeader)
		if err != nil {
			c.Close()
			return &AttemptError{
				Phase:   PhaseSent,
				Op:      OpRead,
				Timeout: IsTimeout(err),
				// Nothing reached the node if it closed before reading a
				// byte; after that only an idempotent request goes again.
				Stale: reused && c.nRead == 0 && c.nWritten == 0 && errors.Is(err, io.EOF),
				Err:   err,
			}
		}
		code := resp.Header.StatusCode()
		if code == fasthttp.StatusSwitchingProtocols {
			if o.Upgrade {
				o.Tunnel = newTunnel(c, resp.Header.Peek("Upgrade"))
				return nil
			}
			// A 101 to a request not forwarded as an upgrade is a node
			// speaking a protocol the client never asked for.
			c.Close()
			return &AttemptError{Phase: PhaseSent, Op: OpRead, Err: ErrUnsolicitedUpgrade}
		}
		// Skip interim responses (100 Continue, 103 Early Hints).
		if code >= 200 {
			break
		}
	}

	// The gateway decides when the client connection closes, not the node:
	// a node's "Connection: close" closes only the upstream connection.
	closeConn := resp.Header.ConnectionClose() || o.Upgrade
	resp.Header.ResetConnectionClose()

	code := resp.Header.StatusCode()
	if o.IsHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		// These responses have no body whatever their headers say; a node
		// that sends one anyway leaves bytes that put and get refuse.
		resp.SkipBody = true
		p.release(c, closeConn)
		return nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= StreamThreshold {
		if err := resp.ReadBody(c.br, 0); err != nil {
			c.Close()
			return &AttemptError{Phase: PhaseSent, Op: OpRead, Timeout: IsTimeout(err), Err: err}
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
		return &AttemptError{Phase: PhaseSent, Op: OpRead, Timeout: IsTimeout(err), Err: err}
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
func (p *Pool) readHeader(c *poolConn, resp *fasthttp.Response, max int) error {
	err := resp.Header.Read(c.br)
	if err == nil {
		return nil
	}
	return p.readLargeHeader(c, resp, max, err)
}

// readLargeHeader is readHeader's slow path, apart so that the error
// variable it needs does not cost the fast path an allocation.
func (p *Pool) readLargeHeader(c *poolConn, resp *fasthttp.Response, max int, err error) error {
	var small *fasthttp.ErrSmallBuffer
	if !errors.As(err, &small) {
		return err
	}
	if c.br.Size() >= max {
		return ErrResponseHeaderTooLarge
	}
	// Reading through the old reader first hands over what it buffered.
	c.br = bufio.NewReaderSize(c.br, max)
	err = resp.Header.Read(c.br)
	if errors.As(err, &small) {
		return ErrResponseHeaderTooLarge
	}
	return err
}

func (p *Pool) release(c *poolConn, closeConn bool) {
	if closeConn {
		c.Close()
		return
	}
	p.put(c)
}

// ResponseStream copies a large or chunked response body from a node to the
// client without buffering it whole. fasthttp decodes the framing (through
// scratch); the connection's own deadlines bound the time between reads.
type ResponseStream struct {
	scratch   fasthttp.Response
	inner     io.Reader
	pool      *Pool
	conn      *poolConn
	closeConn bool
	eof       bool
	n         int64
	counter   Adder // bytes copied are added to it on Close
	held      bool  // the next Close does nothing (Hold)
}

var responseStreamPool sync.Pool

func acquireResponseStream() *ResponseStream {
	if v := responseStreamPool.Get(); v != nil {
		return v.(*ResponseStream)
	}
	return &ResponseStream{}
}

func releaseResponseStream(s *ResponseStream) {
	s.scratch.Reset()
	s.inner, s.pool, s.conn, s.closeConn, s.eof, s.n, s.counter, s.held = nil, nil, nil, false, false, 0, nil, false
	responseStreamPool.Put(s)
}

// Adder is a counter (a prometheus.Counter, for one).
type Adder interface{ Add(float64) }

// Hold makes the next Close do nothing: a response step that wraps the
// stream in another (gzip compressing it) takes it out of the response,
// whose body replacement closes the old stream, and closes it itself.
func (s *ResponseStream) Hold() { s.held = true }

// CountInto makes the stream add the bytes it copies to c when it closes:
// a streamed body's size is known only once the client has it.
func (s *ResponseStream) CountInto(c Adder) { s.counter = c }

func (s *ResponseStream) Read(b []byte) (int, error) {
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
func (s *ResponseStream) Close() error {
	if s.held {
		s.held = false
		return nil
	}
	if s.conn != nil {
		if s.eof && !s.closeConn {
			s.pool.put(s.conn)
		} else {
			s.conn.Close()
		}
	}
	if s.counter != nil && s.n > 0 {
		s.counter.Add(float64(s.n))
	}
	_ = s.scratch.CloseBodyStream()
	releaseResponseStream(s)
	return nil
}
