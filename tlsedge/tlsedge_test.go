package tlsedge

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testcert"
)

// loadConfig loads a config (JSON) with the given TLS objects and a minimal
// service.
func loadConfig(t *testing.T, extra map[string]any) *config.Config {
	t.Helper()
	cfg, err := config.Parse(testcert.ConfigJSON(extra), "t.json")
	require.NoError(t, err)
	return cfg
}

func certObj(id string, p *testcert.Pair) map[string]any { return p.Object(id) }

// serve runs an echo server on a Store's listener: each connection gets
// "cn=<client CN>\n" after its first byte.
func serve(t *testing.T, s *Store) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tl := s.Listener(ln)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					cn, _ := c.(*Conn).ClientCN()
					if _, err := c.Write([]byte("cn=" + string(cn) + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes and exchanges one line; it returns the server's leaf and
// the line, or the error.
func dial(addr string, tc *tls.Config) (*x509.Certificate, string, error) {
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		return nil, "", err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil && err != io.EOF {
		return nil, "", err
	}
	return c.ConnectionState().PeerCertificates[0], string(buf[:n]), nil
}

func newStore(t *testing.T, cfg *config.Config) (*Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := NewStore(reg)
	set, err := Compile(cfg)
	require.NoError(t, err)
	s.Swap(set)
	return s, reg
}

func TestSNISelection(t *testing.T) {
	exact := testcert.Issue(nil, testcert.Options{}, "api.example.com")
	wild := testcert.Issue(nil, testcert.Options{}, "*.example.com")
	deep := testcert.Issue(nil, testcert.Options{}, "*.eu.example.com")
	def := testcert.Issue(nil, testcert.Options{}, "default.test")
	cfg := loadConfig(t, map[string]any{
		"gateway":      map[string]any{"tls": map[string]any{"default_certificate": "def"}},
		"certificates": []any{certObj("exact", exact), certObj("wild", wild), certObj("deep", deep), certObj("def", def)},
		"snis": []any{
			map[string]any{"domain": "*.example.com", "certificates": []any{"wild"}},
			map[string]any{"domain": "api.example.com", "certificates": []any{"exact"}},
			map[string]any{"domain": "*.eu.example.com", "certificates": []any{"deep"}},
		},
	})
	s, reg := newStore(t, cfg)
	addr := serve(t, s)
	for name, want := range map[string]*testcert.Pair{
		"api.example.com":      exact,
		"API.Example.com":      exact,
		"www.example.com":      wild,
		"a.eu.example.com":     deep, // the longest wildcard
		"a.b.us.example.com":   wild,
		"other.test":           def,
		"":                     def, // no SNI
		"example.com":          def, // "*.example.com" needs a label before it
		"api.example.com.evil": def,
	} {
		leaf, _, err := dial(addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		require.NoError(t, err, name)
		require.Equal(t, want.Cert.Raw, leaf.Raw, "server name %q", name)
	}
	require.Equal(t, float64(exact.Cert.NotAfter.Unix()),
		value(s.expiry.WithLabelValues("exact")))
	_ = reg
}

func TestUnknownSNIRefusedWithoutDefault(t *testing.T) {
	exact := testcert.Issue(nil, testcert.Options{}, "api.example.com")
	cfg := loadConfig(t, map[string]any{
		"certificates": []any{certObj("exact", exact)},
		"snis":         []any{map[string]any{"domain": "api.example.com", "certificates": []any{"exact"}}},
	})
	s, _ := newStore(t, cfg)
	addr := serve(t, s)
	_, _, err := dial(addr, &tls.Config{ServerName: "www.example.com", InsecureSkipVerify: true})
	require.ErrorContains(t, err, "unrecognized name")
	_, _, err = dial(addr, &tls.Config{ServerName: "api.example.com", RootCAs: exact.Pool()})
	require.NoError(t, err, "the configured name still works, verified")
	require.Eventually(t, func() bool { return value(s.failures.WithLabelValues("unrecognized_name")) == 1 },
		5e9, 1e7)
}

func TestProtocolVersions(t *testing.T) {
	c := testcert.Issue(nil, testcert.Options{}, "a.example.com", "b.example.com")
	cfg := loadConfig(t, map[string]any{
		"certificates": []any{certObj("c", c)},
		"snis": []any{
			map[string]any{"domain": "a.example.com", "certificates": []any{"c"}},
			map[string]any{"domain": "b.example.com", "certificates": []any{"c"}, "ssl_protocols": []any{"TLSv1.3"}},
		},
	})
	s, _ := newStore(t, cfg)
	addr := serve(t, s)
	ver := func(name string, lo, hi uint16) error {
		_, _, err := dial(addr, &tls.Config{ServerName: name, RootCAs: c.Pool(), MinVersion: lo, MaxVersion: hi})
		return err
	}
	require.Error(t, ver("a.example.com", tls.VersionTLS10, tls.VersionTLS11), "TLSv1.1 is refused by default")
	require.NoError(t, ver("a.example.com", tls.VersionTLS12, tls.VersionTLS12))
	require.NoError(t, ver("a.example.com", tls.VersionTLS13, tls.VersionTLS13))
	require.Error(t, ver("b.example.com", tls.VersionTLS12, tls.VersionTLS12), "ssl_protocols [TLSv1.3]")
	require.NoError(t, ver("b.example.com", tls.VersionTLS13, tls.VersionTLS13))
	require.Eventually(t, func() bool { return value(s.failures.WithLabelValues("protocol_version")) == 2 },
		5e9, 1e7)
}

func TestRSAAndECDSAForOneDomain(t *testing.T) {
	ec := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	rsa := testcert.Issue(nil, testcert.Options{RSA: true}, "a.example.com")
	cfg := loadConfig(t, map[string]any{
		"certificates": []any{certObj("ec", ec), certObj("rsa", rsa)},
		"snis":         []any{map[string]any{"domain": "a.example.com", "certificates": []any{"ec", "rsa"}}},
	})
	s, _ := newStore(t, cfg)
	addr := serve(t, s)
	leaf, _, err := dial(addr, &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	require.NoError(t, err)
	require.Equal(t, rsa.Cert.Raw, leaf.Raw, "an RSA-only client gets the RSA certificate")
	leaf, _, err = dial(addr, &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	require.NoError(t, err)
	require.Equal(t, ec.Cert.Raw, leaf.Raw, "an ECDSA-only client gets the ECDSA certificate")
}

func TestMTLS(t *testing.T) {
	srv := testcert.Issue(nil, testcert.Options{}, "m.example.com", "open.example.com")
	clientsCA := testcert.NewCA("clients")
	otherCA := testcert.NewCA("other")
	good := testcert.Issue(clientsCA, testcert.Options{Client: true, CN: "alice"})
	wrong := testcert.Issue(otherCA, testcert.Options{Client: true, CN: "mallory"})
	cfg := loadConfig(t, map[string]any{
		"certificates":    []any{certObj("srv", srv)},
		"ca_certificates": []any{map[string]any{"id": "clients", "cert": string(clientsCA.CertPEM)}},
		"snis": []any{
			map[string]any{"domain": "m.example.com", "certificates": []any{"srv"}, "mtls": map[string]any{"enabled": true, "ca_certificates": []any{"clients"}}},
			map[string]any{"domain": "open.example.com", "certificates": []any{"srv"}},
		},
	})
	s, _ := newStore(t, cfg)
	addr := serve(t, s)
	tc := func(name string, cert *testcert.Pair) *tls.Config {
		c := &tls.Config{ServerName: name, RootCAs: srv.Pool()}
		if cert != nil {
			// Always sent, even when the server's list of acceptable CAs
			// does not name its issuer.
			tc := cert.TLS()
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
		}
		return c
	}
	_, line, err := dial(addr, tc("m.example.com", good))
	require.NoError(t, err)
	require.Equal(t, "cn=alice\n", line)
	_, _, err = dial(addr, tc("m.example.com", nil))
	require.Error(t, err, "no client certificate")
	_, _, err = dial(addr, tc("m.example.com", wrong))
	require.Error(t, err, "a certificate from another CA")
	_, line, err = dial(addr, tc("open.example.com", good))
	require.NoError(t, err)
	require.Equal(t, "cn=\n", line, "no mTLS on this SNI: the certificate is not asked for")
	require.Eventually(t, func() bool {
		return value(s.failures.WithLabelValues("no_client_certificate")) == 1 &&
			value(s.failures.WithLabelValues("bad_client_certificate")) == 1
	}, 5e9, 1e7)
}

func TestSwapServesNewCertificates(t *testing.T) {
	old := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	next := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	mk := func(p *testcert.Pair) *Set {
		set, err := Compile(loadConfig(t, map[string]any{
			"certificates": []any{certObj("c", p)},
			"snis":         []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}}},
		}))
		require.NoError(t, err)
		return set
	}
	s := NewStore(prometheus.NewRegistry())
	s.Swap(mk(old))
	addr := serve(t, s)
	// An established connection made before the swap.
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example.com", RootCAs: old.Pool()})
	require.NoError(t, err)
	defer c.Close()
	s.Swap(mk(next))
	leaf, _, err := dial(addr, &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true})
	require.NoError(t, err)
	require.Equal(t, next.Cert.Raw, leaf.Raw)
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	line, err := readLine(c)
	require.NoError(t, err)
	require.Equal(t, "cn=", line, "the old connection keeps working")
}

func readLine(c net.Conn) (string, error) {
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	return strings.TrimSuffix(string(buf[:n]), "\n"), err
}

func TestReason(t *testing.T) {
	require.Equal(t, "client_closed", Reason(io.EOF))
	require.Equal(t, "other", Reason(io.ErrShortWrite))
}

// value reads a counter's or gauge's value.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestGatewayTLSSettings(t *testing.T) {
	c := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	for _, tc := range []struct {
		name  string
		tls   map[string]any
		check func(t *testing.T, addr string)
	}{
		{"min_version TLSv1.3", map[string]any{"min_version": "TLSv1.3"}, func(t *testing.T, addr string) {
			_, _, err := dial(addr, &tls.Config{ServerName: "a.example.com", RootCAs: c.Pool(), MaxVersion: tls.VersionTLS12})
			require.Error(t, err)
			_, _, err = dial(addr, &tls.Config{ServerName: "a.example.com", RootCAs: c.Pool()})
			require.NoError(t, err)
		}},
		{"ciphers", map[string]any{"ciphers": []any{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}}, func(t *testing.T, addr string) {
			_, _, err := dial(addr, &tls.Config{ServerName: "a.example.com", RootCAs: c.Pool(), MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
			require.Error(t, err, "a suite that is not listed")
			_, _, err = dial(addr, &tls.Config{ServerName: "a.example.com", RootCAs: c.Pool(), MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}})
			require.NoError(t, err)
		}},
		{"session tickets on", map[string]any{}, func(t *testing.T, addr string) {
			require.True(t, resumes(t, addr, c), "the second connection resumes")
		}},
		{"session tickets off", map[string]any{"session_tickets": false}, func(t *testing.T, addr string) {
			require.False(t, resumes(t, addr, c))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t, loadConfig(t, map[string]any{
				"gateway":      map[string]any{"tls": tc.tls},
				"certificates": []any{certObj("c", c)},
				"snis":         []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}}},
			}))
			tc.check(t, serve(t, s))
		})
	}
}

// resumes connects twice with one session cache (TLS 1.2, where the
// ticket comes with the handshake) and reports whether the second
// connection resumed the first one's session.
func resumes(t *testing.T, addr string, c *testcert.Pair) bool {
	cfg := &tls.Config{ServerName: "a.example.com", RootCAs: c.Pool(), MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	var resumed bool
	for range 2 {
		conn, err := tls.Dial("tcp", addr, cfg)
		require.NoError(t, err)
		_, err = conn.Write([]byte("x"))
		require.NoError(t, err)
		_, err = readLine(conn)
		require.NoError(t, err)
		resumed = conn.ConnectionState().DidResume
		conn.Close()
	}
	return resumed
}

// oneSession is a client session cache with one slot for every server
// name: it offers a session from one SNI to another, as an attacker can.
type oneSession struct{ s *tls.ClientSessionState }

func (o *oneSession) Get(string) (*tls.ClientSessionState, bool) { return o.s, o.s != nil }
func (o *oneSession) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		o.s = s
	}
}

// TestSessionDoesNotCrossSNIs: a session made under one SNI resumes under
// that SNI only, not under another one (whose protocols, certificates or
// client CAs may differ), even when the client offers it there.
func TestSessionDoesNotCrossSNIs(t *testing.T) {
	srv := testcert.Issue(nil, testcert.Options{}, "x.example.com", "y.example.com")
	s, _ := newStore(t, loadConfig(t, map[string]any{
		"certificates": []any{certObj("srv", srv)},
		"snis": []any{
			map[string]any{"domain": "x.example.com", "certificates": []any{"srv"}},
			map[string]any{"domain": "y.example.com", "certificates": []any{"srv"}},
		},
	}))
	addr := serve(t, s)
	cache := &oneSession{}
	resumed := func(name string) bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: srv.Pool(), MaxVersion: tls.VersionTLS12, ClientSessionCache: cache})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = readLine(c)
		require.NoError(t, err)
		return c.ConnectionState().DidResume
	}
	require.False(t, resumed("x.example.com"))
	require.True(t, resumed("x.example.com"), "the same SNI resumes")
	require.False(t, resumed("y.example.com"), "x's session is not resumed under y")
}

// TestCompileErrorHasPath: what only crypto/tls refuses is a config error
// at the certificate's path, without the key.
func TestCompileErrorHasPath(t *testing.T) {
	c := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	cfg := loadConfig(t, map[string]any{"certificates": []any{certObj("c", c)}})
	cfg.Certificates[0].KeyPEM = []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
	_, err := Compile(cfg)
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	require.Equal(t, "certificates[0]", errs[0].Path)
	require.NotContains(t, err.Error(), "c2VjcmV0")
}
