package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"gateway/config"
	"gateway/proxy"
)

// Demo mode: with no config file at all, `gateway` (or `go run ./cmd/gateway`)
// serves a built-in config in front of two echo backends of its own, so that
// routing, balancing, health checks, key-auth and throttling can be tried
// with curl at once. Everything listens on loopback only.

// demoConfig is the built-in config; %[1]d and %[2]d are the echo backends'
// ports, %[3]s and %[4]s the self-signed certificate and key made at start
// (quoted), %[5]d the TCP echo backend's port. It goes through config.Parse like any file, so it is validated and
// defaulted the same way.
const demoConfig = `# The built-in demo config of gateway (demo mode).
gateway:
  listen: 127.0.0.1:9080
  control_listen: 127.0.0.1:9091
  tls_listen: 127.0.0.1:9443
  tls: {default_certificate: demo}
  shutdown_timeout: 5
  stream_listen: [127.0.0.1:9070]
stream_routes:
  - {id: tcp-echo, desc: "TCP echo on 9070", server_port: 9070, upstream: {nodes: [{host: 127.0.0.1, port: %[5]d}]}}
certificates:
  - {id: demo, desc: "self-signed for localhost and 127.0.0.1, made at start", cert: %[3]s, key: %[4]s}
services:
  - id: demo
    desc: two echo backends behind /demo
    path_prefix: /demo
    upstream:
      type: roundrobin
      nodes:
        - {host: 127.0.0.1, port: %[1]d, weight: 2}
        - {host: 127.0.0.1, port: %[2]d, weight: 1}
      checks:
        active:
          type: http
          http_path: /
          healthy: {interval: 2, successes: 2}
          unhealthy: {interval: 2, http_failures: 2, tcp_failures: 2}
    routes:
      - {id: echo, paths: ["/echo/*"]}
      - {id: user, paths: ["/users/{id}"], methods: [GET]}
      - {id: limited, paths: ["/limited"], throttle_policy: five-per-second}
      - {id: private, paths: ["/private/*"], plugins: {key-auth: {}}}
      - {id: ws, paths: ["/ws"], enable_websocket: true, websocket: {idle_timeout: 60}}
throttle_policies:
  - {id: five-per-second, api_call_limits: 5, time_interval: 1, time_unit: SECOND, window: sliding}
consumers:
  - username: demo
    plugins: {key-auth: {key: demo-key}}
`

// demoBackends are the two echo servers of demo mode. Close stops them and
// waits for their goroutines.
type demoBackends struct {
	// certPEM and keyPEM are the demo's self-signed certificate for
	// localhost; certFile holds certPEM for curl --cacert.
	certPEM, keyPEM []byte
	certFile        string

	names   []string
	addrs   []string // host:port, in the order of names
	ports   []int
	servers []*fasthttp.Server
	wg      sync.WaitGroup

	// tcpEcho is the TCP echo backend of the stream route; tcpConns its
	// open connections, closed by Close.
	tcpEcho  net.Listener
	tcpMu    sync.Mutex
	tcpConns map[net.Conn]struct{}
}

func startDemoBackends(log *zap.Logger) (*demoBackends, error) {
	d := &demoBackends{}
	if err := d.makeCertificate(); err != nil {
		return nil, fmt.Errorf("demo certificate: %w", err)
	}
	for _, name := range []string{"echo-1", "echo-2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo backend %s: %w", name, err)
		}
		srv := &fasthttp.Server{
			Handler:      echoHandler(name),
			Name:         name,
			ReadTimeout:  30 * time.Second,
			IdleTimeout:  60 * time.Second,
			WriteTimeout: 30 * time.Second,
			Logger:       proxy.NewServerLogger(log.With(zap.String("backend", name))),
		}
		d.names = append(d.names, name)
		d.addrs = append(d.addrs, ln.Addr().String())
		d.ports = append(d.ports, ln.Addr().(*net.TCPAddr).Port)
		d.servers = append(d.servers, srv)
		d.wg.Go(func() { _ = srv.Serve(ln) })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("demo tcp echo backend: %w", err)
	}
	d.tcpEcho, d.tcpConns = ln, map[net.Conn]struct{}{}
	d.wg.Go(d.serveTCPEcho)
	return d, nil
}

// serveTCPEcho echoes every connection to the TCP echo backend.
func (d *demoBackends) serveTCPEcho() {
	for {
		c, err := d.tcpEcho.Accept()
		if err != nil {
			return
		}
		d.tcpMu.Lock()
		d.tcpConns[c] = struct{}{}
		d.tcpMu.Unlock()
		d.wg.Go(func() {
			_, _ = io.Copy(c, c)
			_ = c.Close()
			d.tcpMu.Lock()
			delete(d.tcpConns, c)
			d.tcpMu.Unlock()
		})
	}
}

// config builds the demo config for the backends' ports. It is called again
// by a reload (SIGHUP, POST /v1/reload) and yields the same config.
func (d *demoBackends) config() (*config.Config, error) {
	cfg, err := config.Parse(fmt.Appendf(nil, demoConfig, d.ports[0], d.ports[1],
		strconv.Quote(string(d.certPEM)), strconv.Quote(string(d.keyPEM)), d.tcpEcho.Addr().(*net.TCPAddr).Port), "demo.yaml")
	if err != nil {
		// A bug in demoConfig, not an operator's mistake.
		return nil, fmt.Errorf("built-in demo config: %w", err)
	}
	cfg.Source = "" // built in, not from a file
	return cfg, nil
}

// Close stops the echo servers, giving open connections a moment to finish.
func (d *demoBackends) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range d.servers {
		_ = srv.ShutdownWithContext(ctx)
	}
	if d.tcpEcho != nil {
		_ = d.tcpEcho.Close()
		d.tcpMu.Lock()
		for c := range d.tcpConns {
			_ = c.Close()
		}
		d.tcpMu.Unlock()
	}
	d.wg.Wait()
	if d.certFile != "" {
		_ = os.Remove(d.certFile)
	}
}

// makeCertificate makes the demo's self-signed certificate (ECDSA P-256,
// localhost and 127.0.0.1, valid for 90 days) and writes it to a temporary
// file for curl --cacert.
func (d *demoBackends) makeCertificate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gateway demo"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	d.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	d.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	f, err := os.CreateTemp("", "gateway-demo-*.crt")
	if err != nil {
		return err
	}
	d.certFile = f.Name()
	_, err = f.Write(d.certPEM)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// printTry prints ready-to-run curl lines for the addresses actually bound.
func (d *demoBackends) printTry(w io.Writer, listen, tlsListen, control string) {
	gw := curlAddr(listen)
	var b strings.Builder
	fmt.Fprintf(&b, "\nDemo mode: the gateway on http://%s proxies /demo to two echo backends:\n", gw)
	fmt.Fprintf(&b, "  %s on %s (weight 2) and %s on %s (weight 1), health-checked every 2 s.\n\n",
		d.names[0], d.addrs[0], d.names[1], d.addrs[1])
	fmt.Fprintf(&b, "Try:\n")
	try := func(what, cmd string) { fmt.Fprintf(&b, "  # %s\n  %s\n", what, cmd) }
	try("routing and 2:1 round robin: repeat it, echo-1 answers twice as often as echo-2",
		"curl -s "+gw+"/demo/echo/hello")
	try("a path parameter on a GET-only route; POST gets 405",
		"curl -s "+gw+"/demo/users/42")
	try("throttling: 5 requests per second, then 429",
		`for i in $(seq 7); do curl -s -o /dev/null -w '%{http_code}\n' `+gw+"/demo/limited; done")
	try("key-auth: 401 without a key, the consumer demo with one",
		"curl -s "+gw+"/demo/private/x; curl -s -H 'apikey: demo-key' "+gw+"/demo/private/x")
	try("WebSocket: the 101 from an echo backend, then messages are echoed (websocat ws://"+gw+"/demo/ws, if installed)",
		"curl -s --include --no-buffer -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' "+
			"-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "+gw+"/demo/ws")
	try("a TCP stream route: 127.0.0.1:9070 is spliced to a TCP echo backend (type a line, it comes back)",
		"nc localhost 9070")
	if tlsListen != "" {
		try("TLS with the self-signed certificate made at start (X-Forwarded-Proto: https upstream)",
			"curl -s --cacert "+d.certFile+" https://"+curlAddr(tlsListen)+"/demo/echo/hello")
	}
	if control != "" {
		ctl := curlAddr(control)
		try("the control API: active health checks, compiled routes, metrics",
			"curl -s "+ctl+"/v1/healthcheck; curl -s "+ctl+"/v1/routes")
		b.WriteString("  curl -s " + ctl + "/metrics | grep gateway_\n")
	}
	b.WriteString("\nWrite a gateway.yaml (or pass -c FILE) to leave demo mode.\n\n")
	_, _ = io.WriteString(w, b.String())
}

// curlAddr turns a listen address into one curl can use: localhost for a
// loopback or unspecified host.
func curlAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "localhost:" + port
	}
	return addr
}

// echoReply is what an echo backend answers: what it received, and who it is,
// so that balancing shows in the output.
type echoReply struct {
	Backend string            `json:"backend"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Headers map[string]string `json:"headers"`
}

func echoHandler(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if demoWSUpgrade(ctx) {
			return
		}
		reply := echoReply{
			Backend: name,
			Method:  string(ctx.Method()),
			Path:    string(ctx.URI().PathOriginal()),
			Query:   string(ctx.URI().QueryString()),
			Headers: make(map[string]string),
		}
		for k, v := range ctx.Request.Header.All() {
			key := string(k)
			if prev, ok := reply.Headers[key]; ok {
				reply.Headers[key] = prev + ", " + string(v)
			} else {
				reply.Headers[key] = string(v)
			}
		}
		body, err := json.MarshalIndent(reply, "", "  ")
		if err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("X-Echo-Backend", name)
		ctx.SetBody(append(body, '\n'))
	}
}
