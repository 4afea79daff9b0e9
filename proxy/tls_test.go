package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/race"
	"gateway/internal/testcert"
	"gateway/internal/testheap"
)

// tlsGateway serves a config on a plain and a TLS listener.
type tlsGateway struct {
	*testGateway
	tlsAddr string
}

// startTLSGateway serves yaml (which sets gateway.tls_listen to anything:
// the test binds its own) on both listeners.
func startTLSGateway(t *testing.T, yaml string) *tlsGateway {
	t.Helper()
	tg := startGateway(t, yaml)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { _ = tg.g.ServeTLS(tln); close(done) }()
	t.Cleanup(func() {
		_ = tg.g.Shutdown(t.Context())
		<-done
	})
	return &tlsGateway{testGateway: tg, tlsAddr: tln.Addr().String()}
}

// writePEM writes a pair under dir and returns "cert_file: ..., key_file: ...".
func writePEM(t *testing.T, dir, name string, p *testcert.Pair) string {
	t.Helper()
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(c, p.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(k, p.KeyPEM, 0o600))
	return "cert_file: " + c + ", key_file: " + k
}

// httpsClient makes requests to addr with SNI sni, trusting the pools'
// certificates and presenting client when it is not nil.
func httpsClient(t *testing.T, addr, sni string, trust *testcert.Pair, client *testcert.Pair) *http.Client {
	tc := &tls.Config{ServerName: sni, RootCAs: trust.Pool()}
	if client != nil {
		c := client.TLS()
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func httpsGet(t *testing.T, c *http.Client, host, uri string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "https://"+host+uri, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

type tlsFixture struct {
	dir                 string
	srv, clientsCA, bob *testcert.Pair
}

func newTLSFixture(t *testing.T) *tlsFixture {
	f := &tlsFixture{dir: t.TempDir()}
	f.srv = testcert.Issue(nil, testcert.Options{}, "*.example.com")
	f.clientsCA = testcert.NewCA("clients")
	f.bob = testcert.Issue(f.clientsCA, testcert.Options{Client: true, CN: "bob"})
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "clients.crt"), f.clientsCA.CertPEM, 0o600))
	return f
}

// yaml is a config with a wildcard SNI and an mTLS SNI (m.example.com,
// clients CA) in front of b.
func (f *tlsFixture) yaml(t *testing.T, b *backend, services string) string {
	srvCert := writePEM(t, f.dir, "srv", f.srv)
	return `
gateway: {access_log: {enabled: false}, tls_listen: "127.0.0.1:0"}
certificates:
  - {id: srv, ` + srvCert + `}
ca_certificates:
  - {id: clients, cert_file: ` + filepath.Join(f.dir, "clients.crt") + `}
snis:
  - {domain: "*.example.com", certificates: [srv]}
  - {domain: m.example.com, certificates: [srv], mtls: {enabled: true, ca_certificates: [clients]}}
services:
` + services + `
upstreams:
  - {id: u, nodes: [{host: 127.0.0.1, port: ` + b.port() + `}]}
`
}

func TestTLSListenerForwardsAsHTTPS(t *testing.T) {
	f := newTLSFixture(t)
	b := startBackend(t, "b", nil)
	tg := startTLSGateway(t, f.yaml(t, b, `
  - id: web
    upstream_id: u
    routes:
      - {id: secure, paths: [/only-https], vars: [[scheme, "==", https]]}
      - {id: all, paths: [/x]}`))
	_, tlsPort, _ := net.SplitHostPort(tg.tlsAddr)
	c := httpsClient(t, tg.tlsAddr, "www.example.com", f.srv, nil)

	resp, body := httpsGet(t, c, "www.example.com", "/x", "X-Client-Cert-CN", "forged", "X-Forwarded-Proto", "http")
	require.Equal(t, 200, resp.StatusCode, body)
	req := b.lastRequest()
	require.Equal(t, "https", string(req.Header.Peek("X-Forwarded-Proto")))
	require.Equal(t, tlsPort, string(req.Header.Peek("X-Forwarded-Port")))
	require.Empty(t, req.Header.Peek("X-Client-Cert-CN"), "only mTLS sets it; a client's copy is dropped")

	resp, _ = httpsGet(t, c, "www.example.com", "/only-https")
	require.Equal(t, 200, resp.StatusCode, "the scheme var is https on the TLS listener")
	require.Equal(t, 404, tg.get(t, "/only-https").StatusCode(), "and http on the plain one")
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	require.Equal(t, "http", string(b.lastRequest().Header.Peek("X-Forwarded-Proto")))
}

func TestTLSClientCertificateCN(t *testing.T) {
	f := newTLSFixture(t)
	b := startBackend(t, "b", nil)
	tg := startTLSGateway(t, f.yaml(t, b, `  - id: web
    upstream_id: u
    routes:
      - {paths: [/bob], vars: [[ssl_client_verify, "==", SUCCESS], [ssl_client_s_dn_cn, "==", bob]]}
      - {paths: [/none], vars: [[ssl_client_verify, "==", NONE]]}
      - {paths: [/]}`))

	c := httpsClient(t, tg.tlsAddr, "m.example.com", f.srv, f.bob)
	resp, _ := httpsGet(t, c, "m.example.com", "/", "X-Client-Cert-CN", "forged")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "bob", string(b.lastRequest().Header.Peek("X-Client-Cert-CN")))
	resp, _ = httpsGet(t, c, "m.example.com", "/bob")
	require.Equal(t, 200, resp.StatusCode, "the route vars see the verified client")
	resp, _ = httpsGet(t, c, "m.example.com", "/none")
	require.Equal(t, 404, resp.StatusCode)
	open := httpsClient(t, tg.tlsAddr, "www.example.com", f.srv, nil)
	resp, _ = httpsGet(t, open, "www.example.com", "/bob")
	require.Equal(t, 404, resp.StatusCode, "no mTLS on this SNI")
	resp, _ = httpsGet(t, open, "www.example.com", "/none")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, 404, tg.get(t, "/bob").StatusCode(), "nor on plain HTTP")

	// No client certificate: the handshake fails and is counted.
	_, err := httpsClient(t, tg.tlsAddr, "m.example.com", f.srv, nil).Get("https://m.example.com/")
	require.Error(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, tg.g), `gateway_tls_handshake_failures_total{reason="no_client_certificate"} 1`)
	}, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, scrape(t, tg.g), `gateway_tls_certificate_expiry_timestamp_seconds{certificate="srv"}`)
}

func TestHTTPSRedirect(t *testing.T) {
	f := newTLSFixture(t)
	b := startBackend(t, "b", nil)
	tg := startTLSGateway(t, f.yaml(t, b, `
  - {id: web, hosts: [www.example.com], https_redirect: true, upstream_id: u, routes: [{paths: ["/*"]}]}
  - {id: api, hosts: [api.example.com], upstream_id: u, routes: [{paths: ["/*"]}]}`))
	_, tlsPort, _ := net.SplitHostPort(tg.tlsAddr)

	for _, method := range []string{"GET", "POST"} {
		resp := tg.do(t, method, "/a/b?x=1&y=%20", map[string]string{"Host": "www.example.com:8080"}, "")
		require.Equal(t, fasthttp.StatusPermanentRedirect, resp.StatusCode(), method)
		require.Equal(t, "https://www.example.com:"+tlsPort+"/a/b?x=1&y=%20", string(resp.Header.Peek("Location")))
	}
	require.Zero(t, b.hits.Load(), "a redirect is not forwarded")
	require.Equal(t, 200, tg.do(t, "GET", "/", map[string]string{"Host": "api.example.com"}, "").StatusCode(),
		"services without https_redirect serve plain HTTP")

	resp, _ := httpsGet(t, httpsClient(t, tg.tlsAddr, "www.example.com", f.srv, nil), "www.example.com", "/a")
	require.Equal(t, 200, resp.StatusCode, "over TLS the service is served")
}

func TestTLSReloadSwapsCertificates(t *testing.T) {
	f := newTLSFixture(t)
	b := startBackend(t, "b", nil)
	services := `  - {id: web, upstream_id: u, routes: [{paths: ["/*"]}]}`
	tg := startTLSGateway(t, f.yaml(t, b, services))

	// A keep-alive TLS connection made before the reload.
	conn, err := tls.Dial("tcp", tg.tlsAddr, &tls.Config{ServerName: "www.example.com", RootCAs: f.srv.Pool()})
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() int {
		_, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"))
		require.NoError(t, err)
		var resp fasthttp.Response
		require.NoError(t, resp.Read(br))
		return resp.StatusCode()
	}
	require.Equal(t, 200, get())

	old := f.srv
	f.srv = testcert.Issue(nil, testcert.Options{}, "*.example.com")
	require.NoError(t, tg.g.Apply(mustParse(t, f.yaml(t, b, services))))

	c, err := tls.Dial("tcp", tg.tlsAddr, &tls.Config{ServerName: "www.example.com", RootCAs: f.srv.Pool()})
	require.NoError(t, err, "a new handshake gets the new certificate")
	c.Close()
	_, err = tls.Dial("tcp", tg.tlsAddr, &tls.Config{ServerName: "www.example.com", RootCAs: old.Pool()})
	require.Error(t, err, "and not the old one")
	require.Equal(t, 200, get(), "the established connection keeps serving")
}

func TestTLSOpenSSLClient(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	f := newTLSFixture(t)
	b := startBackend(t, "b", nil)
	tg := startTLSGateway(t, f.yaml(t, b, `  - {id: web, upstream_id: u, routes: [{paths: ["/*"]}]}`))
	ca := filepath.Join(f.dir, "srv.crt")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, append([]string{"s_client", "-connect", tg.tlsAddr, "-CAfile", ca, "-verify_return_error"}, args...)...)
		cmd.Stdin = strings.NewReader("GET /hello HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	out := run("-servername", "www.example.com", "-ign_eof")
	require.Contains(t, out, "Verify return code: 0 (ok)")
	require.Contains(t, out, "HTTP/1.1 200 OK")
	require.Contains(t, out, "b GET /hello")
	out = run("-servername", "www.example.com", "-tls1_1")
	require.NotContains(t, out, "HTTP/1.1 200", "TLSv1.1 is refused")
}

// TestUpstreamTLSPrivateCA: a backend whose certificate a private CA signed
// for backend.internal is reached with tls.ca_certificates and server_name;
// without the CA the attempt fails with a 502 and the x509 reason is logged.
func TestUpstreamTLSPrivateCA(t *testing.T) {
	ca := testcert.NewCA("private")
	leaf := testcert.Issue(ca, testcert.Options{}, "backend.internal")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	require.NoError(t, err)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("private " + string(ctx.Host())) }}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	caFile := filepath.Join(t.TempDir(), "private.crt")
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o600))
	yaml := func(tlsConf string) string {
		return `
gateway: {access_log: {enabled: false}}
ca_certificates: [{id: private, cert_file: ` + caFile + `}]
services:
  - {id: s, upstream: {scheme: https, tls: ` + tlsConf + `, retries: 0, nodes: [{host: 127.0.0.1, port: ` + port + `}]}, routes: [{paths: ["/*"]}]}`
	}
	tg, _ := observedGateway(t, yaml(`{ca_certificates: [private], server_name: backend.internal}`))
	resp := tg.get(t, "/x")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Contains(t, string(resp.Body()), "private ")

	tg, logs := observedGateway(t, yaml(`{server_name: backend.internal}`))
	require.Equal(t, 502, tg.get(t, "/x").StatusCode())
	lines := attemptLogs(logs)
	require.NotEmpty(t, lines)
	require.Contains(t, lines[0]["error"], "x509: certificate signed by unknown authority")

	tg, logs = observedGateway(t, yaml(`{ca_certificates: [private]}`))
	require.Equal(t, 502, tg.get(t, "/x").StatusCode(), "the node host 127.0.0.1 is not in the certificate")
	require.Contains(t, attemptLogs(logs)[0]["error"], "x509")
}

// TestZeroAllocationsOverTLS: keep-alive requests over mTLS, matched on the
// scheme and ssl_client_verify vars and forwarded with X-Client-Cert-CN,
// allocate nothing of the gateway's per request in steady state (client,
// gateway and backend share the process, as in the plain-socket test).
// crypto/tls itself allocates one small object per record it reads
// (Conn.readFromUntil's atLeastReader escapes): one for the gateway reading
// the request, one for the test's client reading the response; anything
// the gateway added would take the count past the bound.
func TestZeroAllocationsOverTLS(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates on its own")
	}
	f := newTLSFixture(t)
	b := leanBackend(t)
	tg := startTLSGateway(t, f.yaml(t, b, `  - id: web
    upstream_id: u
    routes: [{paths: ["/*"], vars: [[scheme, "==", https], [ssl_client_verify, "==", SUCCESS]]}]`))
	cert := f.bob.TLS()
	conn, err := tls.Dial("tcp", tg.tlsAddr, &tls.Config{ServerName: "m.example.com", RootCAs: f.srv.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := []byte("GET /orders HTTP/1.1\r\nHost: m.example.com\r\n\r\n")
	var resp fasthttp.Response
	run := func() {
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		resp.Reset()
		if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode(), err)
		}
	}
	for range 2000 {
		run()
	}
	const n = 10000
	count := testheap.Count()
	for range n {
		run()
	}
	mallocs, _ := count.Since()
	perReq := float64(mallocs) / n
	t.Logf("mallocs per request over mTLS (client, gateway and backend in one process): %.3f", perReq)
	require.Less(t, perReq, 2.5, "2 are crypto/tls's own (one record read on each side)")
}
