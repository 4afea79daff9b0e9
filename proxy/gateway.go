// Package proxy is the gateway's data plane: a fasthttp handler that
// matches routes, runs plugins (ip-restriction, key-auth, throttling,
// limit-count), forwards to upstream nodes with retries, and records
// metrics and the access log. It also serves the control API.
package proxy

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"gateway/config"
	"gateway/discovery"
	"gateway/healthcheck"
	"gateway/plugin"
	_ "gateway/plugin/builtin" // every shipped plugin, known to the config loader
	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
	"gateway/stream"
	"gateway/tlsedge"
	"gateway/transport"
)

// Options configure a Gateway.
type Options struct {
	// Logger is the gateway's own log; nil logs nothing.
	Logger *zap.Logger
	// Registry receives the gateway's metrics; nil makes a new registry
	// with the Go and process collectors.
	Registry *prometheus.Registry
	// DryRun compiles configs without side effects outside the process:
	// no access log file is opened and no health probe is sent. For
	// `gateway validate`.
	DryRun bool
}

// Gateway serves traffic from the snapshot compiled from the newest good
// config. Snapshots are swapped with one atomic store; state that must
// survive reloads lives here, keyed by identity.
type Gateway struct {
	log     *zap.Logger
	dryRun  bool
	reg     *prometheus.Registry
	metrics *metrics
	health  *healthcheck.Manager
	limits  *ratelimit.Store
	redis   *redisstore.Clients // cluster throttle counters' connections, across reloads
	long    *plugin.Long        // plugin state kept across reloads (circuit breakers)
	access  *accessLog
	tls     *tlsedge.Store // client TLS: the certificates of the serving config
	// tlsPort is ":port" of the TLS listener for https redirects, "" for
	// 443 (nil: no TLS listener).
	tlsPort atomic.Pointer[[]byte]

	snap atomic.Pointer[snapshot]

	applyMu sync.Mutex // one compile at a time

	// Long-lived state, keyed by identity; only commit adds and retires.
	stateMu       sync.Mutex
	pools         map[string]*transport.Pool // by transport.PoolKey
	nodes         map[string]*nodeLong       // by upstream id + "|" + host:port
	upstreamsLong map[string]*upstreamLong   // by upstream id
	discUps       map[string]*discUpstream   // discovered upstreams by id (discovery.go)

	// DNS service discovery: the watchers, and the resolver config they
	// use (changed by commit only).
	disc         *discovery.Manager
	resolverConf config.Resolver

	server   *fasthttp.Server
	serverMu sync.Mutex
	ready    atomic.Bool
	closing  atomic.Bool

	reloadMu   sync.Mutex
	lastReload reloadStatus

	tunnels *tunnelSet     // upgraded connections (upgrade.go)
	streams *stream.Server // TCP stream routes' listeners and connections (stream.go)

	stop     chan struct{}
	janitorW sync.WaitGroup
	closed   sync.Once
}

type reloadStatus struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Errors []string  `json:"errors"`
}

// New makes a Gateway with no config; Apply gives it one.
func New(opts Options) *Gateway {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	reg := opts.Registry
	if reg == nil {
		reg = newRegistry()
	}
	g := &Gateway{
		log:           log,
		dryRun:        opts.DryRun,
		reg:           reg,
		metrics:       newMetrics(reg),
		limits:        ratelimit.NewStore(),
		redis:         redisstore.NewClients(redisstore.NewMetrics(reg), log),
		long:          plugin.NewLong(reg, log),
		pools:         map[string]*transport.Pool{},
		nodes:         map[string]*nodeLong{},
		upstreamsLong: map[string]*upstreamLong{},
		discUps:       map[string]*discUpstream{},
		access:        &accessLog{},
		tls:           tlsedge.NewStore(reg),
		stop:          make(chan struct{}),
		tunnels:       newTunnelSet(reg),
	}
	g.streams = stream.NewServer(log, reg, g.access.logger)
	g.health = healthcheck.NewManager(log, func(upstream, node string, healthy bool) {
		v := 0.0
		if healthy {
			v = 1
		}
		g.metrics.nodeHealthy.WithLabelValues(upstream, node).Set(v)
	})
	g.disc = discovery.NewManager(log, nil, g.onDiscovered)
	g.resolverConf.Timeout = -1 // no config yet: the first commit sets the resolver
	g.janitorW.Add(1)
	go g.janitor()
	return g
}

// Apply compiles cfg off the request path and, if it compiles, commits it
// as the serving snapshot. Requests in flight finish on the snapshot they
// started with. On error nothing changed: the serving snapshot, health
// checkers, pools and node state are as they were. The error is
// config.Errors (see ErrorLines).
func (g *Gateway) Apply(cfg *config.Config) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	err := g.apply(cfg)
	var errs config.Errors
	if errors.As(err, &errs) {
		cfg.Locate(errs) // file:line, as load errors have
	}
	return err
}

func (g *Gateway) apply(cfg *config.Config) error {
	// Certificates compile first: like compile, this has no side effects.
	certs, err := tlsedge.Compile(cfg)
	if err != nil {
		return err // config.Errors
	}
	s, p, err := g.compile(cfg)
	if err != nil {
		return err
	}
	var streams *stream.Pending
	if !g.dryRun {
		// The steps of a commit that can fail change nothing when they
		// do; so they come first: the stream listeners a reload adds are
		// opened (not yet served), then the access log.
		if streams, err = g.streams.Prepare(cfg.Gateway.StreamListen); err != nil {
			return streamListenError(err)
		}
		if err := g.access.configure(cfg.Gateway.AccessLog, g); err != nil {
			streams.Abort()
			return config.Errors{{Path: "gateway.access_log.path", Msg: err.Error()}}
		}
	}
	old := g.commit(s, p)
	if streams != nil {
		streams.Commit(s.stream)
	}
	g.tls.Swap(certs) // new handshakes use the new certificates from here on
	g.metrics.configInfo.Reset()
	g.metrics.configInfo.WithLabelValues(cfg.Revision).Set(1)
	g.metrics.lastReloadOK.Set(float64(time.Now().UnixNano()) / 1e9)
	g.limits.Sweep() // drops counters of policies and limits the new config no longer uses
	g.redis.Sweep()  // retires the redis clients it no longer uses
	if old == nil {
		g.ready.Store(true)
	}
	return nil
}

// ErrorLines is how a config error is shown everywhere (gateway validate,
// the reload log, POST /v1/reload, GET /v1/config's last_reload): one line
// per config.FieldError, "path: message" (the message alone for a problem
// of the whole file); any other error as its own lines.
func ErrorLines(err error) []string {
	var errs config.Errors
	if errors.As(err, &errs) {
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = e.Error()
		}
		return lines
	}
	return strings.Split(strings.TrimRight(err.Error(), "\n"), "\n")
}

func checkedUpstreams(cfg *config.Config) []healthcheck.Upstream {
	var checked []healthcheck.Upstream
	for i := range cfg.Upstreams {
		if u := &cfg.Upstreams[i]; u.Checks != nil && u.Checks.Active != nil {
			checked = append(checked, healthcheck.Upstream{ID: u.ID, Config: u})
		}
	}
	for i := range cfg.Services {
		if svc := &cfg.Services[i]; svc.Upstream != nil && svc.Upstream.Checks != nil && svc.Upstream.Checks.Active != nil {
			checked = append(checked, healthcheck.Upstream{ID: svc.ID, Config: svc.Upstream})
		}
	}
	for i := range cfg.StreamRoutes {
		if r := &cfg.StreamRoutes[i]; r.Upstream != nil && r.Upstream.Checks != nil && r.Upstream.Checks.Active != nil {
			checked = append(checked, healthcheck.Upstream{ID: r.ID, Config: r.Upstream})
		}
	}
	return checked
}

// RecordReload counts a reload attempt (after Apply or a failed load) for
// the metrics and the control API's last_reload.
func (g *Gateway) RecordReload(err error) {
	st := reloadStatus{At: time.Now().UTC(), OK: err == nil}
	if err != nil {
		st.Errors = ErrorLines(err)
		g.metrics.reloads.WithLabelValues("failure").Inc()
	} else {
		g.metrics.reloads.WithLabelValues("success").Inc()
	}
	g.reloadMu.Lock()
	g.lastReload = st
	g.reloadMu.Unlock()
}

// Config returns the serving config, nil before the first Apply.
func (g *Gateway) Config() *config.Config {
	if s := g.snap.Load(); s != nil {
		return s.cfg
	}
	return nil
}

// Registry returns the registry the gateway's metrics are on.
func (g *Gateway) Registry() *prometheus.Registry { return g.reg }

// Serve serves the data plane on ln until Shutdown. Server settings come
// from the config applied first; changing them needs a restart.
func (g *Gateway) Serve(ln net.Listener) error { return g.serveOn(ln, false) }

// ServeTLS serves the data plane over TLS on ln (gateway.tls_listen) with
// the certificates of the serving config, which Apply swaps on reload.
func (g *Gateway) ServeTLS(ln net.Listener) error {
	port := []byte(nil)
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.Port != 443 {
		port = strconv.AppendInt([]byte{':'}, int64(a.Port), 10)
	}
	g.tlsPort.Store(&port)
	return g.serveOn(ln, true)
}

func (g *Gateway) serveOn(ln net.Listener, isTLS bool) error {
	s := g.snap.Load()
	if s == nil {
		return errors.New("proxy: Serve before Apply")
	}
	g.serverMu.Lock()
	if g.closing.Load() {
		// Shutdown came first: there is nothing to drain.
		g.serverMu.Unlock()
		return ln.Close()
	}
	if g.server == nil {
		g.server = g.newServer(&s.cfg.Gateway)
	}
	srv := g.server
	g.serverMu.Unlock()
	gw := &s.cfg.Gateway
	// clientListener is outermost: the handler finds its clientConn on
	// the request context; edgeListener counts and times the writes.
	var inner net.Listener = &edgeListener{
		Listener:     ln,
		max:          int64(gw.MaxConnections),
		writeTimeout: gw.ClientWriteTimeout.Duration(),
		onRefused:    g.metrics.connsRefused.Inc,
		silent:       isTLS,
	}
	if isTLS {
		// TLS sits on the counted connection, under clientConn.
		inner = g.tls.Listener(inner)
	}
	return srv.Serve(clientListener{inner})
}

// newServer makes the data-plane server. Limits and timeouts are described
// in README "Security"; max_connections and client_write_timeout are
// applied by the listener Serve wraps (listener.go).
func (g *Gateway) newServer(gw *config.Gateway) *fasthttp.Server {
	bodyTimeout := gw.ClientReadTimeout.Duration()
	srv := &fasthttp.Server{
		Handler:       g.Handler,
		ExpectHandler: g.ExpectHandler,
		ErrorHandler:  g.errorHandler,
		Logger:        serverLogger{g.log},
		Name:          "",
		// fasthttp's read buffer is also the limit on the request head:
		// a head must fit it, a larger one is a 431. It cannot grow, so it
		// is max_header_size; it is held while a connection idles (see
		// ReduceMemoryUsage below).
		ReadBufferSize:  gw.MaxHeaderSize,
		WriteBufferSize: 16 << 10,
		// ReadTimeout runs from the first byte of a request until its
		// head is in (client_header_timeout; on a new connection from the
		// accept); HeaderReceived then gives the body client_read_timeout.
		ReadTimeout: gw.ClientHeaderTimeout.Duration(),
		IdleTimeout: gw.ClientIdleTimeout.Duration(),
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
		},
		// Bodies are streamed: fasthttp reads up to 8 KiB ahead and the
		// handler pulls the rest, buffering bodies up to transport.StreamThreshold
		// and forwarding larger ones as they arrive. The configured limit
		// is enforced by the handler, since streaming bypasses fasthttp's.
		StreamRequestBody:             true,
		MaxRequestBodySize:            transport.StreamThreshold,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		// An idle keep-alive connection gives its write buffer and body
		// buffers back to the pools (with streamed bodies fasthttp keeps
		// the read buffer).
		ReduceMemoryUsage: true,
		CloseOnShutdown:   true,
		// fasthttp's parse errors otherwise quote the bytes they failed
		// on: a client's request head, or (our upstream responses are
		// read into the same ctx.Response) a node's response head with
		// its Set-Cookie. Those errors reach the log.
		SecureErrorLogMessage: true,
		ConnState: func(c net.Conn, st fasthttp.ConnState) {
			switch st {
			case fasthttp.StateNew:
				g.metrics.connections.Inc()
			case fasthttp.StateClosed:
				g.metrics.connections.Dec()
				abortPending(c)
			case fasthttp.StateHijacked:
				g.metrics.connections.Dec()
			}
		},
	}
	// The listener refuses connections over max_connections; fasthttp's
	// own cap (256 Ki by default) is kept well above it.
	srv.Concurrency = max(fasthttp.DefaultConcurrency, 2*gw.MaxConnections)
	return srv
}

// Shutdown stops accepting, lets in-flight requests finish (closing
// keep-alive connections after their current request) and returns when all
// are done or ctx ends. Upgraded (WebSocket) connections get until ctx ends
// to finish; those left are then closed.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closing.Store(true)
	g.ready.Store(false)
	g.serverMu.Lock()
	srv := g.server
	g.serverMu.Unlock()
	var err error
	if srv != nil {
		// The stream listeners close at once; their connections drain
		// while the HTTP server does.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.streams.Shutdown(ctx)
		}()
		err = srv.ShutdownWithContext(ctx)
		g.tunnels.shutdown(ctx)
		wg.Wait()
	} else {
		g.streams.Shutdown(ctx)
	}
	return err
}

// Ready reports whether a config is serving and the gateway is not shutting
// down (GET /readyz).
func (g *Gateway) Ready() bool { return g.ready.Load() && !g.closing.Load() }

// Close stops health checkers and the janitor, closes pooled connections
// and flushes the access log. Call it after Shutdown.
func (g *Gateway) Close() {
	g.closed.Do(func() {
		// Tunnels are closed by Shutdown; any left (Close without
		// Shutdown) are closed now.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		g.tunnels.shutdown(done)
		g.streams.Shutdown(done)
		close(g.stop)
		g.janitorW.Wait()
		g.disc.Close()
		g.health.Close()
		g.stateMu.Lock()
		pools := g.pools
		g.pools = map[string]*transport.Pool{}
		discovered := g.discoveredPools()
		g.discUps = map[string]*discUpstream{}
		g.stateMu.Unlock()
		for _, p := range pools {
			p.Close()
		}
		for _, p := range discovered {
			p.Close()
		}
		g.access.close()
		g.redis.Close()
	})
}

// janitor closes upstream connections that idled past their pool's
// idle_timeout, so that an idle gateway does not hold them forever.
func (g *Gateway) janitor() {
	defer g.janitorW.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.stateMu.Lock()
			pools := make([]*transport.Pool, 0, len(g.pools))
			for _, p := range g.pools {
				pools = append(pools, p)
			}
			pools = append(pools, g.discoveredPools()...)
			g.stateMu.Unlock()
			for _, p := range pools {
				p.Sweep(now)
			}
		}
	}
}
