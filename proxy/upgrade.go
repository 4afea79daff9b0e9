package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"gateway/config"
	"gateway/transport"
)

// WebSocket and any other HTTP/1.1 Upgrade (README "WebSocket"). On a route
// with enable_websocket, a request with "Connection: upgrade" and an
// Upgrade header is forwarded with both, on an upstream connection of its
// own; a 101 from the node is relayed and the client connection hijacked,
// and from then on a tunnel copies bytes both ways until either side
// closes, the idle timeout passes or the gateway shuts down. Any other
// answer is relayed as usual. On other routes the upgrade headers are
// removed as hop-by-hop and the request is plain HTTP.

var (
	hdrUpgrade      = []byte("Upgrade")
	strUpgradeToken = []byte("Upgrade")
)

// wsRoute is what a route with enable_websocket needs at upgrade time.
type wsRoute struct {
	idle     time.Duration
	active   prometheus.Gauge
	upgraded prometheus.Counter
	refused  prometheus.Counter
}

// compileWebsocket returns the route's upgrade settings, nil when it does
// not upgrade.
func (g *Gateway) compileWebsocket(gw *config.Gateway, service string, r *config.Route) *wsRoute {
	if !r.EnableWebsocket {
		return nil
	}
	idle := gw.Websocket.IdleTimeout.Duration()
	if r.Websocket != nil && r.Websocket.IdleTimeout > 0 {
		idle = r.Websocket.IdleTimeout.Duration()
	}
	ts := g.tunnels
	return &wsRoute{
		idle:     idle,
		active:   ts.active.WithLabelValues(service, r.ID),
		upgraded: ts.total.WithLabelValues(service, r.ID, "upgraded"),
		refused:  ts.total.WithLabelValues(service, r.ID, "refused"),
	}
}

// prepareUpgrade puts the upgrade headers back on the upstream request
// (prepareRequest removed them as hop-by-hop) when the route allows
// upgrades and the client asks for one.
func (g *Gateway) prepareUpgrade(st *reqState) {
	if st.route.ws == nil {
		return
	}
	h := &st.ctx.Request.Header
	if !h.IsHTTP11() || !h.ConnectionUpgrade() {
		return
	}
	proto := h.PeekBytes(hdrUpgrade)
	if len(proto) == 0 {
		return
	}
	up := &st.upReq.Header
	up.SetBytesKV(strConnection, strUpgradeToken)
	up.SetBytesKV(hdrUpgrade, proto)
	st.xo.Upgrade = true
}

// upgraded finishes an upgrade request the node answered: a 101 is
// relayed and the client connection handed to a tunnel; anything else is
// relayed as usual.
func (g *Gateway) upgraded(st *reqState) errType {
	ws, up := st.route.ws, st.xo.Tunnel
	if up == nil {
		ws.refused.Inc()
		return errNone
	}
	st.xo.Tunnel = nil
	t := &tunnel{set: g.tunnels, up: up, idle: ws.idle, ws: ws, m: &st.route.m}
	if !g.tunnels.add(t) {
		// Shutting down: no new tunnels.
		_ = up.Close()
		st.ctx.Response.Reset()
		st.ctx.SetConnectionClose()
		return errBackendUnavailable
	}
	ws.upgraded.Inc()
	ctx := st.ctx
	if g.access.enabled() {
		t.access, t.log = g.access, newTunnelLog(st)
		st.tunneled = true
	}
	// The node's Upgrade and Connection were removed as hop-by-hop.
	ctx.Response.Header.SetBytesKV(strConnection, strUpgradeToken)
	ctx.Response.Header.SetBytesKV(hdrUpgrade, up.Protocol)
	if cc := clientConnOf(ctx); cc != nil {
		// fasthttp does not hijack a connection it closes instead (a
		// failed write of the 101, a shutdown under way); the tunnel is
		// then aborted when the connection closes (abortPending, from the
		// server's ConnState hook).
		cc.pending.Store(t)
	}
	ctx.Hijack(t.run)
	return errNone
}

// tunnelSet owns every tunnel: Shutdown waits for them and then closes
// what is left, so that no tunnel goroutine outlives the gateway.
type tunnelSet struct {
	active *prometheus.GaugeVec
	total  *prometheus.CounterVec

	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newTunnelSet(reg *prometheus.Registry) *tunnelSet {
	ts := &tunnelSet{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_websocket_connections_active", Help: "Upgraded (WebSocket) connections currently open.",
		}, []string{"service", "route"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_websocket_connections_total", Help: "Upgrade requests answered by a node, by result: upgraded (101) or refused (any other status).",
		}, []string{"service", "route", "result"}),
		m: map[*tunnel]struct{}{},
	}
	reg.MustRegister(ts.active, ts.total)
	return ts
}

func (ts *tunnelSet) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	ts.m[t] = struct{}{}
	ts.wg.Add(1)
	return true
}

func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	delete(ts.m, t)
	ts.mu.Unlock()
	ts.wg.Done()
}

// shutdown refuses new tunnels, waits for the open ones to end until ctx
// ends, then closes the rest and waits for their goroutines.
func (ts *tunnelSet) shutdown(ctx context.Context) {
	ts.mu.Lock()
	ts.closed = true
	ts.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ts.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	ts.mu.Lock()
	left := make([]*tunnel, 0, len(ts.m))
	for t := range ts.m {
		left = append(left, t)
	}
	ts.mu.Unlock()
	for _, t := range left {
		t.abort()
	}
	<-done
}

// open reports the number of tunnels in the set (tests).
func (ts *tunnelSet) open() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.m)
}

// tunnel copies bytes between a hijacked client connection and an
// upgraded upstream connection.
type tunnel struct {
	set  *tunnelSet
	up   *transport.Tunnel
	idle time.Duration
	ws   *wsRoute
	m    *routeMetrics

	access  *accessLog
	log     *tunnelLog // nil when the access log is off
	in, out atomic.Int64

	mu     sync.Mutex
	client net.Conn // set when run starts
	closed bool
	once   sync.Once // leaves the set once

	last atomic.Int64 // unix nanoseconds of the last bytes read either way
}

// run is the hijack handler: it owns the client connection until it
// returns (fasthttp then closes it).
func (t *tunnel) run(c net.Conn) {
	defer t.leave()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.client = c
	t.mu.Unlock()
	t.ws.active.Inc()
	defer t.ws.active.Dec()
	t.last.Store(time.Now().UnixNano())

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.out.Store(t.pipe(c, t.up, func() bool { return closeWrite(c) }))
	}()
	t.in.Store(t.pipe(t.up, c, t.up.CloseWrite))
	wg.Wait()
	t.close()
	if in := t.in.Load(); in > 0 {
		t.m.bytesIn.Add(float64(in))
	}
	if out := t.out.Load(); out > 0 {
		t.m.bytesOut.Add(float64(out))
	}
}

// pipe copies src to dst until src ends (then dst is half-closed, and the
// other direction goes on) or anything fails or the tunnel idles (then the
// tunnel closes). It returns the bytes copied.
func (t *tunnel) pipe(dst io.Writer, src interface {
	io.Reader
	SetReadDeadline(time.Time) error
}, halfClose func() bool) int64 {
	buf := make([]byte, 32<<10)
	var n int64
	var set time.Time
	slack := min(t.idle/16, time.Second)
	for {
		if t.idle > 0 {
			// The deadline moves at most once per slack: the idle time
			// allowed is idle..idle+slack.
			if now := time.Now(); now.Sub(set) >= slack {
				set = now
				_ = src.SetReadDeadline(now.Add(t.idle + slack))
			}
		}
		k, err := src.Read(buf)
		if k > 0 {
			t.last.Store(time.Now().UnixNano())
			n += int64(k)
			if _, werr := dst.Write(buf[:k]); werr != nil {
				t.close()
				return n
			}
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !t.isClosed() &&
			time.Since(time.Unix(0, t.last.Load())) < t.idle {
			// Quiet this way, not the other: not idle.
			set = time.Time{}
			continue
		}
		if errors.Is(err, io.EOF) && halfClose() {
			return n
		}
		t.close()
		return n
	}
}

func (t *tunnel) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// close closes both connections; it may be called any number of times,
// from any goroutine.
func (t *tunnel) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closeLocked()
}

func (t *tunnel) closeLocked() {
	if t.closed {
		return
	}
	t.closed = true
	_ = t.up.Close()
	if t.client != nil {
		closeConn(t.client)
	}
}

// abort closes a tunnel whether or not it runs, and takes a tunnel that
// will never run (run finds it closed) out of the set.
func (t *tunnel) abort() {
	t.mu.Lock()
	running := t.client != nil
	t.closeLocked()
	t.mu.Unlock()
	if !running {
		t.leave()
	}
}

// leave takes the tunnel out of its set, once, and writes its access log
// line.
func (t *tunnel) leave() {
	t.once.Do(func() {
		if t.log != nil {
			t.access.logTunnel(t.log, t.in.Load(), t.out.Load())
		}
		t.set.remove(t)
	})
}

// tunnelLog is what the access log line of an upgrade needs from its
// request, copied when the 101 is relayed: the request's buffers are
// reused long before the tunnel ends.
type tunnelLog struct {
	start                                                            time.Time
	requestID, clientIP, method, host, uri, service, route, consumer string
	upstreamAddr                                                     string
	bytesIn                                                          int
	upstreamDur                                                      time.Duration
	attempts                                                         int
}

func newTunnelLog(st *reqState) *tunnelLog {
	ctx := st.ctx
	uri := ctx.RequestURI()
	if names := st.snap.maskQuery; len(names) > 0 {
		uri = maskQueryArgs(nil, uri, names)
	}
	return &tunnelLog{
		start:        st.start,
		requestID:    string(st.reqID),
		clientIP:     string(st.clientIPB),
		method:       string(ctx.Method()),
		host:         string(ctx.Host()),
		uri:          string(uri),
		service:      st.route.service,
		route:        st.route.id,
		consumer:     string(st.pr.Consumer),
		upstreamAddr: st.upstreamAddr,
		bytesIn:      max(ctx.Request.Header.ContentLength(), 0),
		upstreamDur:  st.upstreamDur,
		attempts:     st.attempts,
	}
}

// logTunnel writes an upgrade's access log line when its tunnel ends:
// status 101, the bytes copied each way (after the request's own body),
// and the time from the request to the end of the tunnel.
func (a *accessLog) logTunnel(l *tunnelLog, in, out int64) {
	s := a.sink.Load()
	if s == nil {
		return
	}
	s.log.Info("",
		zap.String("request_id", l.requestID),
		zap.String("client_ip", l.clientIP),
		zap.String("method", l.method),
		zap.String("host", l.host),
		zap.String("uri", l.uri),
		zap.Int("status", fasthttp.StatusSwitchingProtocols),
		zap.Int64("bytes_in", int64(l.bytesIn)+in),
		zap.Int64("bytes_out", out),
		zap.Float64("duration_ms", float64(time.Since(l.start).Microseconds())/1000),
		zap.String("service", l.service),
		zap.String("route", l.route),
		zap.String("consumer", l.consumer),
		zap.String("upstream_addr", l.upstreamAddr),
		zap.Int("upstream_status", fasthttp.StatusSwitchingProtocols),
		zap.Float64("upstream_duration_ms", float64(l.upstreamDur.Microseconds())/1000),
		zap.Int("attempts", l.attempts),
		zap.String("error_type", ""),
	)
}

// closeConn closes a hijacked connection: fasthttp's wrapper does not
// close on Close, its connection does.
func closeConn(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	_ = c.Close()
}

// closeWrite half-closes a client connection through the gateway's
// wrappers, reporting false when it cannot be half-closed.
func closeWrite(c net.Conn) bool {
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			return x.CloseWrite() == nil
		case interface{ UnsafeConn() net.Conn }:
			c = x.UnsafeConn()
		case *clientConn:
			c = x.Conn
		case *edgeConn:
			c = x.Conn
		default:
			return false
		}
	}
}

// abortPending aborts the tunnel of an upgrade whose connection fasthttp
// closed rather than hijacked.
func abortPending(c net.Conn) {
	if cc, ok := c.(*clientConn); ok {
		if t := cc.pending.Swap(nil); t != nil {
			t.abort()
		}
	}
}
