package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testcert"
	"gateway/internal/testnet"
)

// writeCert replaces dir/site.crt and dir/site.key as a rotation would
// (write, then rename over).
func writeCert(t *testing.T, dir string, p *testcert.Pair) {
	t.Helper()
	for name, data := range map[string][]byte{"site.crt": p.CertPEM, "site.key": p.KeyPEM} {
		tmp := filepath.Join(dir, name+".tmp")
		require.NoError(t, os.WriteFile(tmp, data, 0o600))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
	}
}

// servedCert handshakes with the gateway and returns the leaf it served.
func servedCert(addr string) ([]byte, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw, nil
}

// TestRunTLSRotation: the certificate files are replaced, which reloads,
// and new handshakes use them while an established keep-alive connection
// keeps serving; an expired replacement is refused and the serving one
// stays.
func TestRunTLSRotation(t *testing.T) {
	backend := startBackend(t)
	listen, control, tlsListen := testnet.FreeAddr(t), testnet.FreeAddr(t), testnet.FreeAddr(t)
	dir := t.TempDir()
	first := testcert.Issue(nil, testcert.Options{}, "*.example.com")
	writeCert(t, dir, first)
	cfg := strings.Replace(testConfig(listen, control, backend), "  access_log: {enabled: false}\n",
		"  access_log: {enabled: false}\n  tls_listen: "+tlsListen+"\n", 1) + `
certificates: [{id: site, cert_file: site.crt, key_file: site.key}]
snis: [{domain: "*.example.com", certificates: [site]}]
`
	writeConfig(t, dir, cfg)
	p := startGateway(t, dir)
	p.waitReady(t, control)
	require.Contains(t, p.stderr.String(), `"tls_listen":"`+tlsListen+`"`)

	conn, err := tls.Dial("tcp", tlsListen, &tls.Config{ServerName: "www.example.com", RootCAs: first.Pool()})
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() (int, string) {
		_, err := conn.Write([]byte("GET /a/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n"))
		require.NoError(t, err)
		var resp fasthttp.Response
		require.NoError(t, resp.Read(br))
		return resp.StatusCode(), string(resp.Body())
	}
	status, body := get()
	require.Equal(t, 200, status)
	require.Equal(t, "backend /a/x", body)

	// The certificate files are watched: replacing them reloads.
	second := testcert.Issue(nil, testcert.Options{}, "*.example.com")
	writeCert(t, dir, second)
	require.Eventually(t, func() bool {
		raw, err := servedCert(tlsListen)
		return err == nil && string(raw) == string(second.Cert.Raw)
	}, 5*time.Second, 50*time.Millisecond)
	status, _ = get()
	require.Equal(t, 200, status, "the connection made before the rotation keeps serving")

	if curl, err := exec.LookPath("curl"); err == nil {
		caFile := filepath.Join(dir, "second.pem")
		require.NoError(t, os.WriteFile(caFile, second.CertPEM, 0o600))
		_, port, _ := strings.Cut(tlsListen, ":")
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, "-sS", "--resolve", "www.example.com:"+port+":127.0.0.1",
			"--cacert", caFile, "https://www.example.com:"+port+"/a/curl").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "backend /a/curl", string(out))
	}

	expired := testcert.Issue(nil, testcert.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, "*.example.com")
	writeCert(t, dir, expired)
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool {
		return strings.Contains(p.stderr.String(), "config reload failed")
	}, 5*time.Second, 50*time.Millisecond)
	require.Contains(t, p.stderr.String(), "certificates[0].cert_file: certificate")
	require.Contains(t, p.stderr.String(), `"trigger":"certificate file"`)
	raw, err := servedCert(tlsListen)
	require.NoError(t, err)
	require.Equal(t, second.Cert.Raw, raw, "a refused reload keeps the serving certificate")
	require.NotContains(t, p.stderr.String(), "PRIVATE KEY")

	p.stop(t, syscall.SIGTERM)
}

// TestValidateTLSWarnings: a certificate close to expiry loads, and
// validate says so on stderr without failing.
func TestValidateTLSWarnings(t *testing.T) {
	dir := t.TempDir()
	soon := testcert.Issue(nil, testcert.Options{NotAfter: time.Now().Add(3 * 24 * time.Hour)}, "*.example.com")
	writeCert(t, dir, soon)
	path := writeConfig(t, dir, testConfig(testnet.FreeAddr(t), testnet.FreeAddr(t), 8080)+`
certificates: [{id: site, cert_file: site.crt, key_file: site.key}]
snis: [{domain: "*.example.com", certificates: [site]}]
`)
	code, stdout, stderr := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "ok: ")
	require.Contains(t, stderr, path+": warning: certificates[0].cert_file: certificate \"CN=*.example.com\" expires at")
}
