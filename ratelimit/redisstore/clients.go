// Package redisstore keeps counters of throttle policies in Redis, so that
// every gateway instance that shares a Redis server shares the counts: a
// client (connection pool) per top-level redis entry, kept across reloads,
// and the admit script that checks and counts all of a request's counters
// in one round trip.
package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"gateway/config"
)

// Clients hands out one Client per redis entry, the same one across
// reloads as long as the entry's settings do not change; like
// ratelimit.Store, a snapshot is built against a Stage, Commit makes what
// it asked for the Clients', and Sweep (after the swap) retires the clients
// the new config no longer uses, closing them once requests still running
// on the old snapshot are done with them.
type Clients struct {
	mu   sync.Mutex
	gen  uint64
	m    map[string]*entry // by settings key
	base *Clients
	met  *Metrics
	log  *zap.Logger
	// degr is each cluster policy's Redis state (root Clients only).
	degr map[string]*Degradation
}

type entry struct {
	c   *Client
	gen uint64
}

// Metrics are the Redis families: gateway_redis_requests_total{redis,result},
// gateway_redis_request_duration_seconds{redis} and
// gateway_throttle_degraded{policy}.
type Metrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
	Degraded *prometheus.GaugeVec
}

// NewMetrics makes the families and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_redis_requests_total", Help: "Counter round trips to Redis, by redis entry and result (ok, error, timeout).",
		}, []string{"redis", "result"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_redis_request_duration_seconds", Help: "Duration of one counter round trip to Redis.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"redis"}),
		Degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_throttle_degraded", Help: "1 while a cluster throttle policy counts locally (or refuses) because its Redis is unavailable.",
		}, []string{"policy"}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Duration, m.Degraded)
	}
	return m
}

// NewClients returns an empty Clients whose clients report to met and log
// to log.
func NewClients(met *Metrics, log *zap.Logger) *Clients {
	if log == nil {
		log = zap.NewNop()
	}
	return &Clients{m: map[string]*entry{}, met: met, log: log}
}

// settingsKey identifies an entry's settings; any change makes a new client.
func settingsKey(r *config.Redis) string {
	k := fmt.Sprintf("%q|%q|%q|%q|%d|%t|%d|%d", r.ID, r.Addrs, r.Username, r.Password, r.DB, r.Cluster, r.TimeoutMS, r.PoolSize)
	if t := r.TLS; t != nil {
		k += fmt.Sprintf("|tls|%t|%q|%q|%q|%q", t.Verify, t.ServerName, t.CAPEM, t.ClientCert, t.ClientKey)
	}
	return k
}

// tlsConfig is the client TLS config of entry r, nil without tls. The
// trusted roots are the system's plus the entry's ca_certificates.
func tlsConfig(r *config.Redis) (*tls.Config, error) {
	t := r.TLS
	if t == nil {
		return nil, nil
	}
	name := t.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(r.Addrs[0])
	}
	c := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12, InsecureSkipVerify: !t.Verify} //nolint:gosec // verify: false is the operator's choice
	if len(t.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(t.CAPEM) {
			return nil, errors.New("redis " + r.ID + ": tls.ca_certificates: no certificate could be parsed")
		}
		c.RootCAs = pool
	}
	if t.ClientCert != "" {
		pair, err := tls.X509KeyPair([]byte(t.ClientCert), []byte(t.ClientKey))
		if err != nil {
			return nil, errors.New("redis " + r.ID + ": tls.client_cert: invalid certificate and key")
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// Get returns the Client of entry r.
func (cs *Clients) Get(r *config.Redis) *Client {
	k := settingsKey(r)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	e := cs.m[k]
	if e == nil {
		var c *Client
		if cs.base != nil {
			cs.base.mu.Lock()
			if be := cs.base.m[k]; be != nil {
				c = be.c
			}
			cs.base.mu.Unlock()
		}
		if c == nil {
			c = newClient(r, cs.met, cs.log)
		}
		e = &entry{c: c}
		cs.m[k] = e
	}
	e.gen = cs.gen
	return e.c
}

// Stage returns a Clients for building a snapshot without touching cs.
// A client it makes for a snapshot that is thrown away is never dialled
// (go-redis connects on first use) and is left to the garbage collector.
func (cs *Clients) Stage() *Clients {
	return &Clients{m: map[string]*entry{}, base: cs, met: cs.met, log: cs.log}
}

// Commit makes what a staged Clients handed out its base's, marked as used
// in the base's current generation.
func (cs *Clients) Commit() {
	if cs.base == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	b := cs.base
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range cs.m {
		be := b.m[k]
		if be == nil || be.c != e.c {
			be = &entry{c: e.c}
			b.m[k] = be
		}
		be.gen = b.gen
	}
}

// Sweep retires the clients not asked for since the previous Sweep and
// starts a new generation. A retired client is closed after a grace period
// (its timeout twice over, plus a second) so that requests still running
// on the previous snapshot finish their round trip.
func (cs *Clients) Sweep() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for k, e := range cs.m {
		if e.gen != cs.gen {
			delete(cs.m, k)
			c := e.c
			time.AfterFunc(2*c.timeout+time.Second, func() { _ = c.close() })
		}
	}
	cs.gen++
}

// Close closes every client at once (gateway shutdown).
func (cs *Clients) Close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for k, e := range cs.m {
		_ = e.c.close()
		delete(cs.m, k)
	}
}

// Client is one redis entry's connection pool.
type Client struct {
	name    string
	rdb     redis.UniversalClient // *redis.Client or, with cluster, *redis.ClusterClient
	timeout time.Duration
	log     *zap.Logger
	met     *Metrics

	ok, failed, timedOut prometheus.Counter
	duration             prometheus.Observer

	// down is the time (unix ns) until which the client is not tried:
	// after a failure, one request probes the server again a second later
	// (probeInterval) while the others count locally without waiting.
	downUntil atomic.Int64
}

// probeInterval is how long after a failed round trip Redis is tried again.
const probeInterval = time.Second

func newClient(r *config.Redis, met *Metrics, log *zap.Logger) *Client {
	timeout := time.Duration(r.TimeoutMS) * time.Millisecond
	tc, err := tlsConfig(r)
	if err != nil {
		// Config parsed the CA certificates when loading, so this does
		// not happen; if it did, trust nothing rather than connect in the
		// clear.
		log.Error("redis tls", zap.Error(err))
		tc = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
	}
	var rdb redis.UniversalClient
	if r.Cluster {
		// The seeds; the client learns the slots and follows MOVED/ASK.
		rdb = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:           r.Addrs,
			Username:        r.Username,
			Password:        r.Password,
			DialTimeout:     timeout,
			ReadTimeout:     timeout,
			WriteTimeout:    timeout,
			PoolTimeout:     timeout,
			PoolSize:        r.PoolSize,
			MaxRetries:      -1,
			DisableIdentity: true,
			TLSConfig:       tc,
		})
	} else {
		rdb = redis.NewClient(&redis.Options{
			Addr:         r.Addrs[0],
			Username:     r.Username,
			Password:     r.Password,
			DB:           r.DB,
			DialTimeout:  timeout,
			ReadTimeout:  timeout,
			WriteTimeout: timeout,
			PoolTimeout:  timeout,
			PoolSize:     r.PoolSize,
			// A retried script could count a request twice (the first try
			// may have run before its answer was lost).
			MaxRetries:      -1,
			DisableIdentity: true, // no CLIENT SETINFO round trips on each new connection
			TLSConfig:       tc,
		})
	}
	c := &Client{name: r.ID, rdb: rdb, timeout: timeout, log: log, met: met}
	if met != nil {
		c.ok = met.Requests.WithLabelValues(r.ID, "ok")
		c.failed = met.Requests.WithLabelValues(r.ID, "error")
		c.timedOut = met.Requests.WithLabelValues(r.ID, "timeout")
		c.duration = met.Duration.WithLabelValues(r.ID)
	}
	return c
}

// Name returns the redis entry's id.
func (c *Client) Name() string { return c.name }

func (c *Client) close() error { return c.rdb.Close() }

// ErrDown is returned without a round trip while a failed server waits for
// its next probe.
var ErrDown = errors.New("redis unavailable (waiting to probe again)")

// Result is what one admit round trip decided.
type Result struct {
	OK        bool
	Index     int   // the blocking counter when refused, else the most constrained
	Limit     int64 // of counter Index
	Remaining int64
	Reset     time.Duration // until the current window ends
	Taken     int64         // permits taken (AdmitN); 0 when refused
}

// Admit runs the admit script over keys, with limits[i] the limit of
// keys[i], in windows of length window (fixed or sliding): one round trip.
// An error means nothing is known (the server was down, slow or refused);
// the request may or may not have been counted when the error is a timeout.
func (c *Client) Admit(now time.Time, keys []string, limits []int64, window time.Duration, sliding bool) (Result, error) {
	return c.AdmitN(now, keys, limits, window, sliding, 1)
}

// AdmitN is Admit taking up to take permits at once (cluster_batch): as
// many as every counter still has, at most take; Result.Taken says how
// many (0 when refused).
func (c *Client) AdmitN(now time.Time, keys []string, limits []int64, window time.Duration, sliding bool, take int64) (Result, error) {
	ns := now.UnixNano()
	if d := c.downUntil.Load(); d != 0 {
		// Down: the one request that moves the probe time on probes, the
		// others skip the round trip.
		if ns < d || !c.downUntil.CompareAndSwap(d, ns+int64(probeInterval)) {
			return Result{}, ErrDown
		}
	}
	ms := window.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	args := make([]any, 3, 3+len(limits))
	args[0] = ms
	args[1] = "0"
	if sliding {
		args[1] = "1"
	}
	args[2] = max(take, 1)
	for _, l := range limits {
		args = append(args, l)
	}
	start := time.Now()
	v, err := admitScript.Run(context.Background(), c.rdb, keys, args...).Int64Slice()
	if c.met != nil {
		c.duration.Observe(time.Since(start).Seconds())
	}
	if err == nil && len(v) != 6 {
		err = errors.New("redis admit script: unexpected reply of " + strconv.Itoa(len(v)) + " values")
	}
	if err != nil {
		if c.met != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				c.timedOut.Inc()
			} else {
				c.failed.Inc()
			}
		}
		c.downUntil.Store(time.Now().UnixNano() + int64(probeInterval))
		return Result{}, err
	}
	if c.met != nil {
		c.ok.Inc()
	}
	if c.downUntil.Load() != 0 {
		c.downUntil.Store(0)
	}
	return Result{OK: v[0] == 1, Index: int(v[1]), Limit: v[2], Remaining: v[3], Reset: time.Duration(v[4]) * time.Millisecond, Taken: v[5]}, nil
}

// quiet drops go-redis's own log lines (a failed dial per request while a
// server is down); the gateway logs Redis state changes itself, once each.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quiet{}) }

// Len returns how many clients cs holds.
func (cs *Clients) Len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}
