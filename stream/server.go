package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"gateway/balancer"
	"gateway/healthcheck"
)

// Server owns the stream listeners and connections. Listeners are kept by
// their address across reloads (listenKey: ":3306" and "0.0.0.0:3306"
// are one listener); every accept loop and connection goroutine is joined
// by Shutdown.
type Server struct {
	log *zap.Logger
	// accessLog returns the access log (nil: off), read when a
	// connection ends.
	accessLog func() *zap.Logger
	m         *metrics
	noRoute   prometheus.Counter
	overLimit prometheus.Counter

	table atomic.Pointer[Table]

	mu      sync.Mutex
	lns     map[string]*listener // by listenKey
	conns   map[*conn]struct{}
	closing bool
	forced  bool           // Shutdown's grace ended: connections are closed
	wg      sync.WaitGroup // accept loops and connections
}

type listener struct {
	addr   string // as first configured (logs)
	conf   string // as configured now (Addrs), under Server.mu
	ln     *net.TCPListener
	active atomic.Int64
}

// NewServer makes a Server with no listeners; accessLog may be nil.
func NewServer(log *zap.Logger, reg prometheus.Registerer, accessLog func() *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	if accessLog == nil {
		accessLog = func() *zap.Logger { return nil }
	}
	m := newMetrics(reg)
	s := &Server{log: log, accessLog: accessLog, m: m, lns: map[string]*listener{}, conns: map[*conn]struct{}{}}
	s.noRoute = m.total.WithLabelValues("", resultNoRoute)
	s.overLimit = m.total.WithLabelValues("", resultOverLimit)
	return s
}

// ListenError is a listener Prepare could not open: Index is its place in
// gateway.stream_listen.
type ListenError struct {
	Index int
	Err   error
}

func (e *ListenError) Error() string { return e.Err.Error() }

// Pending is a reload's listeners, opened but not yet serving.
type Pending struct {
	s     *Server
	addrs []string
	fresh map[string]*listener
}

// Prepare opens the listeners of addrs that are not open yet. On error it
// closes what it opened and the Server is as it was. One Prepare at a
// time (the proxy's Apply is serialized).
func (s *Server) Prepare(addrs []string) (*Pending, error) {
	p := &Pending{s: s, addrs: addrs, fresh: map[string]*listener{}}
	s.mu.Lock()
	closing := s.closing
	have := make(map[string]bool, len(s.lns))
	for a := range s.lns {
		have[a] = true
	}
	s.mu.Unlock()
	if closing {
		return p, nil
	}
	for i, a := range addrs {
		k := listenKey(a)
		if have[k] || p.fresh[k] != nil {
			continue
		}
		ln, err := listenConfig.Listen(context.Background(), "tcp", a)
		if err != nil {
			p.Abort()
			return nil, &ListenError{Index: i, Err: err}
		}
		p.fresh[k] = &listener{addr: a, conf: a, ln: ln.(*net.TCPListener)}
	}
	return p, nil
}

// listenKey is what identifies a listen address across reloads: an IP
// literal in its canonical form, every unspecified host ("", 0.0.0.0,
// [::]) as "" (Go listens on all addresses of both families for each of
// them: the same socket) and the port as a number. Anything else (a host
// name, an unparsable address) is itself.
func listenKey(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip = ip.Unmap(); ip.IsUnspecified() {
			host = ""
		} else {
			host = ip.String()
		}
	}
	return net.JoinHostPort(host, port)
}

// listenConfig turns TCP keepalive off on accepted connections (Go's
// default sets four socket options per connection for it): the idle
// timeout ends dead connections, and nginx's stream proxy does not set
// keepalive either unless asked.
var listenConfig = net.ListenConfig{KeepAlive: -1}

// Abort closes the listeners p opened.
func (p *Pending) Abort() {
	for _, l := range p.fresh {
		_ = l.ln.Close()
	}
	p.fresh = nil
}

// Commit makes t the table new connections use, starts accepting on the
// listeners p opened and closes those no longer configured. Connections
// already established finish on the table they started with.
func (p *Pending) Commit(t *Table) {
	s := p.s
	for _, r := range t.routes {
		r.m = s.m.forRoute(r.ID)
	}
	s.table.Store(t)
	want := make(map[string]string, len(p.addrs))
	for _, a := range p.addrs {
		want[listenKey(a)] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		p.Abort()
		return
	}
	for a, l := range p.fresh {
		s.lns[a] = l
		s.wg.Add(1)
		go s.accept(l)
	}
	for k, l := range s.lns {
		if a, ok := want[k]; ok {
			l.conf = a
		} else {
			delete(s.lns, k)
			_ = l.ln.Close()
		}
	}
}

// Addrs returns the bound address of each open listener, by configured
// address (tests, the demo).
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.lns))
	for _, l := range s.lns {
		out[l.conf] = l.ln.Addr().String()
	}
	return out
}

// Open reports the connections being proxied (tests).
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown closes the listeners, waits for connections to end until ctx
// ends, then closes those left and waits for every goroutine.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	for a, l := range s.lns {
		_ = l.ln.Close()
		delete(s.lns, a)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.forced = true
	left := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		left = append(left, c)
	}
	s.mu.Unlock()
	for _, c := range left {
		c.shut()
	}
	<-done
}

func (s *Server) accept(l *listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("stream accept", zap.String("listen", l.addr), zap.Error(err))
			time.Sleep(delay)
			continue
		}
		delay = 0
		t := s.table.Load()
		if t.maxConns > 0 && l.active.Load() >= t.maxConns {
			s.overLimit.Inc()
			s.logOverLimit(c)
			_ = c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		l.active.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(l, t, c)
	}
}

// serve proxies one accepted connection on table t.
func (s *Server) serve(l *listener, t *Table, client *net.TCPConn) {
	defer s.wg.Done()
	defer l.active.Add(-1)
	start := time.Now()
	la, _ := client.LocalAddr().(*net.TCPAddr)
	ra, _ := client.RemoteAddr().(*net.TCPAddr)
	var local, remote netip.Addr
	port := 0
	if la != nil {
		local, port = la.AddrPort().Addr().Unmap(), la.Port
	}
	if ra != nil {
		remote = ra.AddrPort().Addr().Unmap()
	}
	r := t.Match(port, local, remote)
	e := &logEntry{start: start, client: ra, port: port}
	switch {
	case r == nil:
		s.noRoute.Inc()
		e.result = resultNoRoute
	case r.Allow != nil && !r.Allow(remote):
		r.m.denied.Inc()
		e.route, e.result = r.ID, resultDenied
	}
	if e.result != "" {
		_ = client.Close()
		s.logEnd(e)
		return
	}
	e.route = r.ID
	up, node, attempts := s.connect(r.Up, remote, port)
	e.attempts = attempts
	if up == nil {
		r.m.failed.Inc()
		e.result = resultFailed
		_ = client.Close()
		s.logEnd(e)
		return
	}
	defer func() {
		if node.InFlight != nil {
			node.InFlight.Add(-1)
		}
	}()
	e.upstream = node.Addr
	c := &conn{idle: r.Idle, m: &r.m}
	c.d[0] = dir{src: client, dst: up, count: r.m.in}
	c.d[1] = dir{src: up, dst: client, count: r.m.out}
	s.mu.Lock()
	if s.forced {
		// Shutdown's grace ended while this one connected.
		s.mu.Unlock()
		_ = client.Close()
		_ = up.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	r.m.active.Inc()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.pipe(1)
	}()
	c.pipe(0)
	wg.Wait()
	c.close()
	r.m.active.Dec()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	e.in, e.out = c.d[0].n, c.d[1].n
	switch {
	case c.shutdown:
		e.result = resultShutdown
		s.m.total.WithLabelValues(r.ID, resultShutdown).Inc()
	case c.idled:
		e.result = resultIdle
		r.m.timeout.Inc()
	default:
		e.result = resultOK
		r.m.ok.Inc()
	}
	s.logEnd(e)
}

// connect dials a node of up, trying another node after a connect failure
// as long as retries allow. The node's in-flight count is held for the
// connection's life (the caller releases it).
func (s *Server) connect(up *Upstream, remote netip.Addr, port int) (*net.TCPConn, *Node, int) {
	var tried balancer.Tried
	var hash uint64
	if up.Chash {
		var buf [64]byte
		hash = balancer.HashKey(appendKey(buf[:0], up.Hash, remote, port))
	}
	attempts := 0
	for attempts <= up.Retries {
		i, failOpen := up.Bal.Pick(&tried, hash)
		if i < 0 {
			break
		}
		if up.Picked != nil {
			up.Picked(failOpen)
		}
		tried.Add(i)
		attempts++
		n := &up.Nodes[i]
		if n.InFlight != nil {
			n.InFlight.Add(1)
		}
		t0 := time.Now()
		c, err := n.Dial(up.Connect)
		d := time.Since(t0)
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				// A connection counts as a success (status 200 for an http
				// passive policy, any answer for a tcp one).
				n.Health.Observe(healthcheck.Outcome{Status: 200})
				if n.Attempted != nil {
					n.Attempted(true, false, d)
				}
				return tc, n, attempts
			}
			_ = c.Close()
			err = fmt.Errorf("not a TCP connection: %T", c)
		}
		if n.InFlight != nil {
			n.InFlight.Add(-1)
		}
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout()
		n.Health.Observe(healthcheck.Outcome{TCPFailure: !timeout, Timeout: timeout})
		if n.Attempted != nil {
			n.Attempted(false, timeout, d)
		}
		s.log.Warn("stream connect failed", zap.String("upstream", up.ID), zap.String("node", n.Addr), zap.Error(err))
	}
	return nil, nil, attempts
}

// logEntry is one connection's access log line.
type logEntry struct {
	start           time.Time
	client          *net.TCPAddr
	port            int
	route, upstream string
	result          string
	attempts        int
	in, out         int64
}

// logOverLimit writes the line of a connection refused for
// gateway.stream.max_connections (no route was matched: route "").
func (s *Server) logOverLimit(c *net.TCPConn) {
	if s.accessLog() == nil {
		return
	}
	e := &logEntry{start: time.Now(), result: resultOverLimit}
	e.client, _ = c.RemoteAddr().(*net.TCPAddr)
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		e.port = la.Port
	}
	s.logEnd(e)
}

func (s *Server) logEnd(e *logEntry) {
	al := s.accessLog()
	if al == nil {
		return
	}
	client := ""
	if e.client != nil {
		client = e.client.IP.String()
	}
	al.Info("",
		zap.String("protocol", "tcp"),
		zap.String("client_ip", client),
		zap.Int("server_port", e.port),
		zap.String("route", e.route),
		zap.String("upstream_addr", e.upstream),
		zap.String("result", e.result),
		zap.Int64("bytes_in", e.in),
		zap.Int64("bytes_out", e.out),
		zap.Float64("duration_ms", float64(time.Since(e.start).Microseconds())/1000),
		zap.Int("attempts", e.attempts),
	)
}

// conn is one proxied connection: d[0] copies client to node, d[1] node
// to client.
type conn struct {
	idle time.Duration
	m    *routeMetrics

	mu       sync.Mutex
	d        [2]dir
	closed   bool
	idled    bool        // closed by the idle timeout
	shutdown bool        // closed by Shutdown
	watch    *time.Timer // after a half-close: the direction left (watchLocked)
}

type dir struct {
	src, dst *net.TCPConn
	count    prometheus.Counter
	n        int64 // bytes copied; read after both directions ended

	// Idle detection, under conn.mu (see pipe).
	idleSince time.Time // no byte since (a lower bound: bytes are seen when a copy returns)
	confirmed bool      // idle for at least the idle timeout, as of its last return
	poked     bool      // the other direction asked for a fresh look
	pokedAt   time.Time
	done      bool // src ended (EOF) and dst was half-closed

	lr io.LimitedReader // the chunk pipe copies (its goroutine's own)
}

// spliceChunk bounds one copy: a copy returns only once its splice pipe
// has drained into dst, so an unbounded one to a slow reader could move
// bytes for longer than the idle timeout without being seen to (see pipe).
// io.Copy into a *net.TCPConn still splices from an *io.LimitedReader.
// A reader slower than a chunk per idle timeout is still cut. Measured
// (bench tcp, one run each): unbounded 2003 MiB per CPU-second, 256 KiB
// 1773, 64 KiB 1190 (each return re-arms a deadline and restarts a splice).
const spliceChunk = 256 << 10

// aLongTimeAgo is a deadline in the past: it wakes a blocked copy.
var aLongTimeAgo = time.Unix(1, 0)

// pipe copies d[i].src to d[i].dst with io.Copy between *net.TCPConn, which
// is splice(2) on Linux: the bytes never enter user space, and the copy
// returns only at EOF, an error, or a deadline. So idleness is found from
// the deadlines: each direction reads with a deadline idle ahead; a copy
// that returns at its deadline having moved bytes is active; one that moved
// none has been quiet since idleSince. The connection is idle when both
// directions are: a direction that finds itself quiet for the idle timeout
// wakes the other (a deadline in the past) so that it looks at its own
// bytes, and the woken one closes the connection if it is quiet too. A
// woken side that does not answer for another idle is blocked writing to a
// peer that does not read (no write deadline is ever set: a splice that
// times out writing drops what its pipe holds), which is no progress
// either. The timeout thus closes after idle..2×idle without a byte moved.
func (c *conn) pipe(i int) {
	d, o := &c.d[i], &c.d[1-i]
	c.mu.Lock()
	d.idleSince = time.Now()
	c.armLocked(d, d.idleSince)
	c.mu.Unlock()
	for {
		d.lr = io.LimitedReader{R: d.src, N: spliceChunk}
		n, err := io.Copy(d.dst, &d.lr)
		chunk := err == nil && d.lr.N == 0 // a whole chunk: src has not ended
		now := time.Now()
		if n > 0 {
			d.count.Add(float64(n))
		}
		c.mu.Lock()
		d.n += n
		poked := d.poked
		d.poked = false
		switch {
		case c.closed:
		case err == nil && !chunk: // EOF from src: half-close dst, the other way goes on
			d.done = true
			if !o.done && d.dst.CloseWrite() == nil {
				c.watchLocked(o)
				c.mu.Unlock()
				return
			}
		case err != nil && !isTimeout(err):
		case n > 0:
			d.idleSince, d.confirmed = now, false
			c.armLocked(d, now)
			c.mu.Unlock()
			continue
		case c.idle <= 0:
			// No idle timeout: a deadline can only be a poke.
			c.armLocked(d, now)
			c.mu.Unlock()
			continue
		case now.Sub(d.idleSince) < c.idle:
			// Woken early: not quiet long enough to say.
			c.armLocked(d, d.idleSince)
			c.mu.Unlock()
			continue
		default:
			d.confirmed = true
			// The other side is quiet too, or finished, or was woken an
			// idle timeout ago and has not answered: it is stuck writing
			// to a peer that does not read, which is no progress either.
			if o.done || poked && o.confirmed || o.poked && now.Sub(o.pokedAt) >= c.idle {
				c.idled = true
				break
			}
			if !o.poked {
				o.poked, o.pokedAt = true, now
				_ = o.src.SetReadDeadline(aLongTimeAgo)
			}
			c.armLocked(d, now)
			c.mu.Unlock()
			continue
		}
		c.closeLocked()
		c.mu.Unlock()
		return
	}
}

// armLocked sets d's read deadline to idle after from (none without an
// idle timeout). Never a write deadline: a splice that times out writing
// loses the bytes it holds in its pipe.
func (c *conn) armLocked(d *dir, from time.Time) {
	var at time.Time
	if c.idle > 0 {
		at = from.Add(c.idle)
	}
	_ = d.src.SetReadDeadline(at)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) close() {
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
}

// watchLocked keeps the idle timeout for the direction o left running
// after the other ended: o's own deadlines find it quiet when it reads,
// but a copy blocked writing to a peer that does not read never returns,
// and nothing else would look. It is closed when it has completed no chunk
// for twice the idle timeout.
func (c *conn) watchLocked(o *dir) {
	if c.idle <= 0 {
		return
	}
	var check func()
	check = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case c.closed || o.done:
		case time.Since(o.idleSince) >= 2*c.idle:
			c.idled = true
			c.closeLocked()
		default:
			c.watch = time.AfterFunc(c.idle, check)
		}
	}
	c.watch = time.AfterFunc(c.idle, check)
}

func (c *conn) closeLocked() {
	if c.watch != nil {
		c.watch.Stop()
	}
	if c.closed {
		return
	}
	c.closed = true
	_ = c.d[0].src.Close()
	_ = c.d[1].src.Close()
}

// shut closes the connection for Shutdown.
func (c *conn) shut() {
	c.mu.Lock()
	if !c.closed {
		c.shutdown = true
	}
	c.closeLocked()
	c.mu.Unlock()
}
