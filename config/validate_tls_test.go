package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testcert"
)

// writePair writes a pair's PEM files under dir and returns their names.
func writePair(t *testing.T, dir, name string, p *testcert.Pair) (string, string) {
	t.Helper()
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(c, p.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(k, p.KeyPEM, 0o600))
	return c, k
}

func TestTLSConfigLoads(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA("clients")
	wild := testcert.Issue(nil, testcert.Options{}, "*.example.com", "example.com")
	rsa := testcert.Issue(nil, testcert.Options{RSA: true}, "*.example.com")
	wc, wk := writePair(t, dir, "wild", wild)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o600))
	// Relative file names are relative to the config file.
	doc := `
gateway:
  tls_listen: 127.0.0.1:9443
  tls: {default_certificate: wild}
certificates:
  - {id: wild, cert_file: ` + wc + `, key_file: ` + wk + `}
  - id: rsa
    cert: |
` + indentN(string(rsa.CertPEM), 6) + `    key: |
` + indentN(string(rsa.KeyPEM), 6) + `
ca_certificates:
  - {id: clients, cert_file: ca.crt}
snis:
  - {domain: "*.Example.com", certificates: [wild, rsa], mtls: {enabled: true, ca_certificates: [clients]}}
  - {domain: example.com, certificates: [wild], ssl_protocols: [TLSv1.3]}
` + minimal
	cfg, err := Parse([]byte(doc), filepath.Join(dir, "gw.yaml"))
	require.NoError(t, err)
	require.Equal(t, wild.CertPEM, cfg.Certificates[0].CertPEM)
	require.Equal(t, rsa.KeyPEM, cfg.Certificates[1].KeyPEM)
	require.Equal(t, ca.CertPEM, cfg.CACertificates[0].CertPEM)
	require.Equal(t, "*.example.com", cfg.SNIs[0].Domain, "domains are lower-cased")
	require.Empty(t, cfg.Warnings)
	require.Equal(t, "TLSv1.2", cfg.Gateway.TLS.MinVersion)
	require.Equal(t, []string{wc, wk, filepath.Join(dir, "ca.crt")}, cfg.TLSFiles())
}

func indentN(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "")
}

func tlsErrs(t *testing.T, doc []byte) Errors {
	t.Helper()
	cfg, err := Parse(doc, "t.json")
	require.Error(t, err)
	require.Nil(t, cfg)
	return err.(Errors)
}

func TestTLSConfigErrors(t *testing.T) {
	good := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	other := testcert.Issue(nil, testcert.Options{}, "a.example.com")
	expired := testcert.Issue(nil, testcert.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, "a.example.com")
	future := testcert.Issue(nil, testcert.Options{NotBefore: time.Now().Add(time.Hour)}, "a.example.com")
	cert := func(id string, p *testcert.Pair) map[string]any {
		return map[string]any{"id": id, "cert": string(p.CertPEM), "key": string(p.KeyPEM)}
	}
	cases := []struct {
		name  string
		extra map[string]any
		path  string
		parts []string
	}{
		{"unparsable cert", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "key": string(good.KeyPEM)}}},
			"certificates[0].cert", []string{"cannot parse certificate 1"}},
		{"no PEM", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": "hello", "key": string(good.KeyPEM)}}},
			"certificates[0].cert", []string{"no PEM certificate found"}},
		{"key mismatch", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": string(good.CertPEM), "key": string(other.KeyPEM)}}},
			"certificates[0].key", []string{"does not match the certificate"}},
		{"key not PEM", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": string(good.CertPEM), "key": "s3cr3t-value"}}},
			"certificates[0].key", []string{"no PEM private key found"}},
		{"expired", map[string]any{"certificates": []any{cert("c", expired)}},
			"certificates[0].cert", []string{"expired at"}},
		{"not yet valid", map[string]any{"certificates": []any{cert("c", future)}},
			"certificates[0].cert", []string{"not valid before"}},
		{"both cert and cert_file", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": string(good.CertPEM), "cert_file": "x.crt", "key": string(good.KeyPEM)}}},
			"certificates[0].cert_file", []string{"exactly one of cert and cert_file"}},
		{"missing file", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert_file": "/nonexistent/x.crt", "key": string(good.KeyPEM)}}},
			"certificates[0].cert_file", []string{"cannot read", "no such file"}},
		{"key required", map[string]any{"certificates": []any{map[string]any{"id": "c", "cert": string(good.CertPEM)}}},
			"certificates[0].key", []string{"required (or key_file)"}},
		{"uncovered SNI", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "b.example.com", "certificates": []any{"c"}}}},
			"snis[0].certificates[0]", []string{`certificate "c" does not cover "b.example.com"`, "a.example.com"}},
		{"wildcard SNI needs the wildcard SAN", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "*.example.com", "certificates": []any{"c"}}}},
			"snis[0].certificates[0]", []string{"does not cover"}},
		{"dangling certificate", map[string]any{"snis": []any{map[string]any{"domain": "a.example.com", "certificates": []any{"nope"}}}},
			"snis[0].certificates[0]", []string{`unknown certificate "nope"`}},
		{"dangling CA", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}, "mtls": map[string]any{"enabled": true, "ca_certificates": []any{"nope"}}}}},
			"snis[0].mtls.ca_certificates[0]", []string{`unknown CA certificate "nope"`}},
		{"mtls without CAs", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}, "mtls": map[string]any{"enabled": true}}}},
			"snis[0].mtls.ca_certificates", []string{"at least one CA certificate"}},
		{"unknown protocol", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}, "ssl_protocols": []any{"TLSv1.2", "SSLv3"}}}},
			"snis[0].ssl_protocols[1]", []string{`got "SSLv3"`, "TLSv1.1, TLSv1.2, TLSv1.3"}},
		{"protocol gap", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}, "ssl_protocols": []any{"TLSv1.1", "TLSv1.3"}}}},
			"snis[0].ssl_protocols", []string{"contiguous"}},
		{"bad domain", map[string]any{"certificates": []any{cert("c", good)}, "snis": []any{map[string]any{"domain": "a.*.com", "certificates": []any{"c"}}}},
			"snis[0].domain", []string{`got "a.*.com"`}},
		{"default certificate unknown", map[string]any{"gateway": map[string]any{"tls": map[string]any{"default_certificate": "x"}}},
			"gateway.tls.default_certificate", []string{`unknown certificate "x"`}},
		{"tls_listen without certificates", map[string]any{"gateway": map[string]any{"tls_listen": "127.0.0.1:0"}},
			"gateway.tls_listen", []string{"needs a certificate"}},
		{"min_version", map[string]any{"gateway": map[string]any{"tls": map[string]any{"min_version": "TLSv1.1"}}},
			"gateway.tls.min_version", []string{`got "TLSv1.1"`}},
		{"cipher", map[string]any{"gateway": map[string]any{"tls": map[string]any{"ciphers": []any{"RC4-SHA"}}}},
			"gateway.tls.ciphers[0]", []string{`"RC4-SHA"`}},
		{"CA not a CA", map[string]any{"ca_certificates": []any{map[string]any{"id": "x", "cert": string(good.CertPEM)}}},
			"ca_certificates[0].cert", []string{"not a CA certificate"}},
		{"upstream CA dangling", map[string]any{"upstreams": []any{map[string]any{"id": "u", "scheme": "https", "nodes": []any{map[string]any{"host": "h", "port": 443}}, "tls": map[string]any{"ca_certificates": []any{"nope"}}}}},
			"upstreams[0].tls.ca_certificates[0]", []string{`unknown CA certificate "nope"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := tlsErrs(t, testcert.ConfigJSON(tc.extra))
			requireFieldError(t, errs, tc.path, tc.parts...)
			require.NotContains(t, errs.Error(), "PRIVATE KEY", "a key is never printed")
			require.NotContains(t, errs.Error(), "s3cr3t")
		})
	}
}

func TestHTTPSRedirectNeedsTLSListener(t *testing.T) {
	errs := parseErrs(t, strings.Replace(minimal, "    routes:", "    https_redirect: true\n    routes:", 1), "t.yaml")
	requireFieldError(t, errs, "services[0].https_redirect", "requires gateway.tls_listen")
}

func TestTLSWarnings(t *testing.T) {
	soon := testcert.Issue(nil, testcert.Options{NotAfter: time.Now().Add(3 * 24 * time.Hour)}, "a.example.com")
	cfg, err := Parse(testcert.ConfigJSON(map[string]any{
		"certificates": []any{map[string]any{"id": "c", "cert": string(soon.CertPEM), "key": string(soon.KeyPEM)}},
		"snis":         []any{map[string]any{"domain": "a.example.com", "certificates": []any{"c"}, "ssl_protocols": []any{"TLSv1.1", "TLSv1.2"}}},
	}), "t.json")
	require.NoError(t, err)
	require.Len(t, cfg.Warnings, 2)
	require.Equal(t, "certificates[0].cert", cfg.Warnings[0].Path)
	require.Contains(t, cfg.Warnings[0].Msg, "expires at")
	require.Equal(t, "snis[0].ssl_protocols[0]", cfg.Warnings[1].Path)
}
