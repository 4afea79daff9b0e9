package healthcheck

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gateway/config"
)

// checker probes the nodes of one upstream. It runs until stopped; a config
// change replaces it, a node change does not (it reads the node list at
// every round).
type checker struct {
	up  *upstream
	pol *policy

	typ            config.Scheme // http, https or tcp
	timeout        time.Duration
	concurrency    int
	host           string // Host header and TLS server name; "" = the node's host
	port           int    // 0 = the node's port
	uri            *url.URL
	header         http.Header // read-only once built: shared by concurrent probes
	verify         bool
	healthyEvery   time.Duration // 0 = healthy nodes are not probed
	unhealthyEvery time.Duration // 0 = unhealthy nodes are not probed

	cancel context.CancelFunc
	done   chan struct{}
}

func startChecker(up *upstream, a *config.ActiveCheck) *checker {
	c := &checker{
		up:             up,
		pol:            activePolicy(a),
		typ:            a.Type,
		timeout:        a.Timeout.Duration(),
		concurrency:    a.Concurrency,
		host:           a.Host,
		port:           a.Port,
		uri:            &url.URL{Path: "/"},
		header:         http.Header{},
		verify:         a.HTTPSVerifyCertificate,
		healthyEvery:   a.Healthy.Interval.Duration(),
		unhealthyEvery: a.Unhealthy.Interval.Duration(),
		done:           make(chan struct{}),
	}
	// The loader validates these; the fallbacks only keep a bad value from
	// turning into a checker that fails every probe or never probes.
	if c.typ == "" {
		c.typ = config.SchemeHTTP
	}
	if c.timeout <= 0 {
		c.timeout = time.Second
	}
	if c.concurrency < 1 {
		c.concurrency = 1
	}
	if a.HTTPPath != "" {
		if u, err := url.ParseRequestURI(a.HTTPPath); err == nil {
			c.uri = u
		}
	}
	for _, h := range a.ReqHeaders {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			continue
		}
		if strings.EqualFold(name, "Host") {
			// net/http writes Host from Request.Host, never from Header.
			c.host = value
			continue
		}
		c.header.Add(name, value)
	}
	if c.header.Get("User-Agent") == "" {
		// Lets backends tell probes from traffic in their logs.
		c.header.Set("User-Agent", "gateway-healthcheck")
	}

	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c
}

// stop asks the checker to exit; in-flight probes are aborted and their
// results dropped.
func (c *checker) stop() { c.cancel() }

// wait blocks until the checker and all its probes have exited.
func (c *checker) wait() { <-c.done }

// run is the checker's loop. Like lua-resty-healthcheck it has two rhythms:
// every healthyEvery it probes the nodes that are healthy at that moment,
// every unhealthyEvery those that are not.
func (c *checker) run(ctx context.Context) {
	defer close(c.done)
	var probes sync.WaitGroup
	defer probes.Wait()
	sem := make(chan struct{}, c.concurrency)

	healthyTick, stopH := tick(c.healthyEvery)
	defer stopH()
	unhealthyTick, stopU := tick(c.unhealthyEvery)
	defer stopU()

	for {
		select {
		case <-ctx.Done():
			return
		case <-healthyTick:
			c.round(ctx, &probes, sem, false)
		case <-unhealthyTick:
			c.round(ctx, &probes, sem, true)
		}
	}
}

// tick returns a ticker channel, or nil (never ready) for a 0 interval.
func tick(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// round starts a probe for every node whose state is down, at most
// c.concurrency in flight. It blocks while the limit is reached, which
// delays the next round rather than piling up probes.
func (c *checker) round(ctx context.Context, probes *sync.WaitGroup, sem chan struct{}, down bool) {
	for _, n := range *c.up.nodes.Load() {
		if n.down.Load() != down || !n.probing.CompareAndSwap(false, true) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			n.probing.Store(false)
			return
		}
		probes.Go(func() {
			defer func() {
				n.probing.Store(false)
				<-sem
			}()
			ev, status := c.probe(ctx, n)
			if ctx.Err() != nil {
				return // stopped: the result may be an artefact of the abort
			}
			n.record(c.pol, ev, status)
		})
	}
}

// probe checks one node once. It dials, for https does the TLS handshake,
// sends one GET with Connection: close and reads the status line and
// headers; the body is never read. A fresh connection per probe, as
// lua-resty-healthcheck does, tests what a new proxy connection would meet
// and leaves no pooled connection or goroutine behind.
func (c *checker) probe(ctx context.Context, n *Node) (event, int) {
	port := n.port
	if c.port != 0 {
		port = c.port
	}
	deadline := time.Now().Add(c.timeout)
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(n.host, strconv.Itoa(port)))
	if err != nil {
		return errEvent(err), 0
	}
	defer conn.Close()
	if c.typ == config.SchemeTCP {
		return evSuccess, 0
	}
	// One deadline for the whole exchange makes "probe timeout" mean what
	// the spec says; closing the connection on stop aborts a slow probe.
	if err := conn.SetDeadline(deadline); err != nil {
		return errEvent(err), 0
	}
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	host := c.host
	if host == "" {
		host = n.host
	}
	if c.typ == config.SchemeHTTPS {
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: !c.verify})
		if err := tc.Handshake(); err != nil {
			return errEvent(err), 0
		}
		conn = tc
	}

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        c.uri,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     c.header,
		Host:       host,
		Close:      true,
	}
	if err := req.Write(conn); err != nil {
		return errEvent(err), 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		// Refused, reset, closed early or not HTTP at all: the node did not
		// answer the protocol, which lua-resty-healthcheck counts as tcp.
		return errEvent(err), 0
	}
	// resp.Body is left unread on purpose: closing the connection discards
	// it, where Body.Close would drain it.
	return c.pol.status(resp.StatusCode), resp.StatusCode
}

// errEvent classifies a probe error: deadline exceeded is a timeout,
// anything else (refused, reset, TLS, EOF, garbage) a tcp failure.
func errEvent(err error) event {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return evTimeout
	}
	return evTCPFailure
}
