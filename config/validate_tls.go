package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TLS objects: gateway.tls_listen and gateway.tls, certificates,
// ca_certificates, snis, and the references to CA certificates from
// upstream tls. Validation also reads cert_file/key_file into CertPEM and
// KeyPEM, so that what was checked is what is served.

// ExpiryWarning is how close to its expiry a certificate loads with a
// warning.
const ExpiryWarning = 14 * 24 * time.Hour

// maxPEMFile bounds a certificate or key file.
const maxPEMFile = 1 << 20

// TLSProtocols are the values of snis[].ssl_protocols, oldest first.
var TLSProtocols = []string{"TLSv1.1", "TLSv1.2", "TLSv1.3"}

// TLSVersion maps a protocol name to crypto/tls's constant.
func TLSVersion(name string) (uint16, bool) {
	switch name {
	case "TLSv1.1":
		return tls.VersionTLS11, true
	case "TLSv1.2":
		return tls.VersionTLS12, true
	case "TLSv1.3":
		return tls.VersionTLS13, true
	}
	return 0, false
}

// openSSLCiphers maps the OpenSSL names operators copy from nginx configs
// to the suites Go implements.
var openSSLCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// CipherSuite maps a cipher name (OpenSSL's, or the IANA name Go uses) to
// its id. Suites Go counts as insecure are not known.
func CipherSuite(name string) (uint16, bool) {
	if id, ok := openSSLCiphers[name]; ok {
		return id, true
	}
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name && !slices.Contains(cs.SupportedVersions, tls.VersionTLS13) {
			return cs.ID, true
		}
	}
	return 0, false
}

func (v *validator) tlsObjects() {
	now := time.Now()
	certs := map[string][]*x509.Certificate{} // id -> leaf certificates usable for coverage
	ids := newIDSet(v, "certificates")
	for i := range v.cfg.Certificates {
		c := &v.cfg.Certificates[i]
		path := indexPath("certificates", i)
		ok := ids.check(field(path, "id"), c.ID, maxID)
		leaf := v.certificate(path, c, now)
		if ok && leaf != nil {
			certs[c.ID] = append(certs[c.ID], leaf)
		}
	}
	cas := map[string][]byte{}
	caIDs := newIDSet(v, "ca_certificates")
	for i := range v.cfg.CACertificates {
		c := &v.cfg.CACertificates[i]
		path := indexPath("ca_certificates", i)
		ok := caIDs.check(field(path, "id"), c.ID, maxID)
		if v.caCertificate(path, c, now) && ok {
			cas[c.ID] = c.CertPEM
		}
	}
	v.gatewayTLS()
	v.httpsRedirects()
	v.snis(certs)
	v.upstreamCAs(cas)
	v.redisCAs(cas) // validate_redis.go
}

// certificate loads and checks one server certificate; it returns its leaf
// when it is usable.
func (v *validator) certificate(path string, c *Certificate, now time.Time) *x509.Certificate {
	certPEM, cpath, okc := v.pemSource(path, "cert", c.Cert, "cert_file", c.CertFile)
	keyPEM, kpath, okk := v.pemSource(path, "key", c.Key, "key_file", c.KeyFile)
	if !okc || !okk {
		return nil
	}
	chain, ok := v.parseCerts(cpath, certPEM)
	if !ok {
		return nil
	}
	if blk, _ := pem.Decode(keyPEM); blk == nil || !strings.Contains(blk.Type, "PRIVATE KEY") {
		// The key is a secret: what is wrong is said, not what it holds.
		v.add(kpath, "no PEM private key found")
		return nil
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		msg := "the key cannot be used"
		if strings.Contains(err.Error(), "does not match") {
			msg = "the private key does not match the certificate"
		} else if strings.Contains(err.Error(), "failed to parse private key") {
			msg = "cannot parse the private key"
		}
		v.add(kpath, "%s", msg)
		return nil
	}
	if !v.validity(cpath, chain[0], now) {
		return nil
	}
	c.CertPEM, c.KeyPEM = certPEM, keyPEM
	return chain[0]
}

func (v *validator) caCertificate(path string, c *CACertificate, now time.Time) bool {
	certPEM, cpath, ok := v.pemSource(path, "cert", c.Cert, "cert_file", c.CertFile)
	if !ok {
		return false
	}
	chain, ok := v.parseCerts(cpath, certPEM)
	if !ok {
		return false
	}
	for _, ca := range chain {
		if !ca.IsCA {
			v.add(cpath, "%q is not a CA certificate (basicConstraints CA:FALSE)", ca.Subject.String())
			return false
		}
		if !v.validity(cpath, ca, now) {
			return false
		}
	}
	c.CertPEM = certPEM
	return true
}

// validity refuses an expired or not yet valid certificate and warns about
// one that expires within ExpiryWarning.
func (v *validator) validity(path string, c *x509.Certificate, now time.Time) bool {
	switch {
	case now.After(c.NotAfter):
		v.add(path, "certificate %q expired at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
		return false
	case now.Before(c.NotBefore):
		v.add(path, "certificate %q is not valid before %s", c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339))
		return false
	case c.NotAfter.Sub(now) < ExpiryWarning:
		v.warn(path, "certificate %q expires at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return true
}

func (v *validator) warn(path, format string, args ...any) {
	v.cfg.Warnings = append(v.cfg.Warnings, FieldError{Path: path, Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

// pemSource takes exactly one of an inline PEM and a file, and returns the
// PEM with the path errors about it belong to.
func (v *validator) pemSource(path, inlineKey, inline, fileKey, file string) ([]byte, string, bool) {
	switch {
	case inline != "" && file != "":
		v.add(field(path, fileKey), "exactly one of %s and %s, got both", inlineKey, fileKey)
		return nil, "", false
	case inline != "":
		return []byte(inline), field(path, inlineKey), true
	case file != "":
		fp := field(path, fileKey)
		data, err := readPEMFile(v.cfg.Source, file)
		if err != nil {
			v.add(fp, "%v", err)
			return nil, "", false
		}
		return data, fp, true
	}
	v.add(field(path, inlineKey), "required (or %s)", fileKey)
	return nil, "", false
}

// TLSFiles returns the certificate, key and CA files the config reads, as
// the paths loading opened (relative ones joined to the config file's
// directory), without duplicates, in file order.
func (c *Config) TLSFiles() []string {
	var files []string
	add := func(name string) {
		if name == "" {
			return
		}
		name = resolvePEMPath(c.Source, name)
		if !slices.Contains(files, name) {
			files = append(files, name)
		}
	}
	for i := range c.Certificates {
		add(c.Certificates[i].CertFile)
		add(c.Certificates[i].KeyFile)
	}
	for i := range c.CACertificates {
		add(c.CACertificates[i].CertFile)
	}
	return files
}

func resolvePEMPath(source, name string) string {
	if !filepath.IsAbs(name) && source != "" {
		return filepath.Join(filepath.Dir(source), name)
	}
	return name
}

// readPEMFile reads a certificate or key file. A relative path is relative
// to the directory of the config file.
func readPEMFile(source, name string) ([]byte, error) {
	name = resolvePEMPath(source, name)
	f, err := os.Open(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot read %s: %v", quote(name), pe.Err)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", quote(name), err)
	}
	if len(data) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", quote(name), maxPEMFile)
	}
	return data, nil
}

// parseCerts parses every CERTIFICATE block of a PEM (a chain: the leaf
// first).
func (v *validator) parseCerts(path string, data []byte) ([]*x509.Certificate, bool) {
	var chain []*x509.Certificate
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			v.add(path, "unexpected PEM block %q (only CERTIFICATE blocks belong here)", blk.Type)
			return nil, false
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			v.add(path, "cannot parse certificate %d of the PEM: %v", len(chain)+1, err)
			return nil, false
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		v.add(path, "no PEM certificate found")
		return nil, false
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		v.add(path, "data after the last PEM block")
		return nil, false
	}
	return chain, true
}

func (v *validator) gatewayTLS() {
	g := &v.cfg.Gateway
	path := field("gateway", "tls")
	if g.TLSListen != "" {
		v.listenAddr(field("gateway", "tls_listen"), g.TLSListen)
		if g.TLSListen == g.Listen {
			v.add(field("gateway", "tls_listen"), "must differ from gateway.listen, got %q for both", g.TLSListen)
		}
		if g.TLS.DefaultCertificate == "" && len(v.cfg.SNIs) == 0 {
			v.add(field("gateway", "tls_listen"), "needs a certificate to serve: set gateway.tls.default_certificate or add snis")
		}
	}
	v.oneOf(field(path, "min_version"), g.TLS.MinVersion, "TLSv1.2", "TLSv1.3")
	cp := field(path, "ciphers")
	if len(g.TLS.Ciphers) == 0 {
		v.add(cp, "must name at least one cipher suite")
	}
	for i, c := range g.TLS.Ciphers {
		if _, ok := CipherSuite(c); !ok {
			v.add(indexPath(cp, i), "unknown or insecure TLS 1.2 cipher suite %q", c)
		}
	}
	if id := g.TLS.DefaultCertificate; id != "" && !v.certKnown(id) {
		v.add(field(path, "default_certificate"), "unknown certificate %q", id)
	}
}

func (v *validator) httpsRedirects() {
	if v.cfg.Gateway.TLSListen != "" {
		return
	}
	for i := range v.cfg.Services {
		if v.cfg.Services[i].HTTPSRedirect {
			v.add(field(indexPath("services", i), "https_redirect"), "requires gateway.tls_listen: there is no https listener to redirect to")
		}
	}
}

func (v *validator) certKnown(id string) bool {
	return slices.ContainsFunc(v.cfg.Certificates, func(c Certificate) bool { return c.ID == id })
}

func (v *validator) caKnown(id string) bool {
	return slices.ContainsFunc(v.cfg.CACertificates, func(c CACertificate) bool { return c.ID == id })
}

func (v *validator) snis(certs map[string][]*x509.Certificate) {
	domains := map[string]string{}
	for i := range v.cfg.SNIs {
		s := &v.cfg.SNIs[i]
		path := indexPath("snis", i)
		if s.ID != "" && !validID(s.ID, maxID) {
			v.add(field(path, "id"), "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxID, s.ID)
		}
		s.Domain = strings.ToLower(s.Domain)
		dp := field(path, "domain")
		host, wildcard := strings.CutPrefix(s.Domain, "*.")
		switch {
		case s.Domain == "":
			v.add(dp, "required")
			continue
		case !validHostname(host) || strings.Contains(host, "*"):
			v.add(dp, `must be a host name, optionally with a leading "*.", got %q`, s.Domain)
			continue
		}
		if first, dup := domains[s.Domain]; dup {
			v.add(dp, "duplicate domain %q (also %s)", s.Domain, first)
		} else {
			domains[s.Domain] = dp
		}
		cp := field(path, "certificates")
		if len(s.Certificates) == 0 {
			v.add(cp, "at least one certificate is required")
		}
		for j, id := range s.Certificates {
			ip := indexPath(cp, j)
			if !v.certKnown(id) {
				v.add(ip, "unknown certificate %q", id)
				continue
			}
			for _, leaf := range certs[id] {
				if !covers(leaf, s.Domain, wildcard) {
					v.add(ip, "certificate %q does not cover %q (its names: %s)", id, s.Domain, clip(strings.Join(leaf.DNSNames, ", ")))
				}
			}
		}
		v.sslProtocols(field(path, "ssl_protocols"), s.SSLProtocols)
		mp := field(path, "mtls")
		if s.MTLS.Enabled && len(s.MTLS.CACertificates) == 0 {
			v.add(field(mp, "ca_certificates"), "at least one CA certificate is required when mtls is enabled")
		}
		for j, id := range s.MTLS.CACertificates {
			if !v.caKnown(id) {
				v.add(indexPath(field(mp, "ca_certificates"), j), "unknown CA certificate %q", id)
			}
		}
	}
}

// covers reports whether a certificate's SANs cover an SNI domain: an
// exact domain as a client would verify it, a wildcard domain only by the
// same wildcard SAN.
func covers(leaf *x509.Certificate, domain string, wildcard bool) bool {
	if !wildcard {
		return leaf.VerifyHostname(domain) == nil
	}
	for _, n := range leaf.DNSNames {
		if strings.EqualFold(n, domain) {
			return true
		}
	}
	return false
}

func (v *validator) sslProtocols(path string, protos []string) {
	if protos == nil {
		return
	}
	if len(protos) == 0 {
		v.add(path, "must not be empty (leave it out for the default)")
		return
	}
	idx := make([]int, 0, len(protos))
	for i, p := range protos {
		n := slices.Index(TLSProtocols, p)
		if n < 0 {
			v.add(indexPath(path, i), "must be one of %s, got %q", strings.Join(TLSProtocols, ", "), p)
			return
		}
		if p == "TLSv1.1" {
			v.warn(indexPath(path, i), "TLSv1.1 is deprecated (RFC 8996)")
		}
		idx = append(idx, n)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if idx[len(idx)-1]-idx[0] != len(idx)-1 {
		v.add(path, "must be a contiguous range of versions (a TLS server negotiates between a minimum and a maximum)")
	}
}

// upstreamCAs checks upstream tls.ca_certificates and fills CAPEM.
func (v *validator) upstreamCAs(cas map[string][]byte) {
	check := func(path string, u *Upstream) {
		t := &u.TLS
		var pemAll []byte
		for j, id := range t.CACertificates {
			p := indexPath(field(field(path, "tls"), "ca_certificates"), j)
			if !v.caKnown(id) {
				v.add(p, "unknown CA certificate %q", id)
				continue
			}
			pemAll = append(append(pemAll, cas[id]...), '\n')
		}
		t.CAPEM = pemAll
		if t.ServerName != "" && !validHostname(t.ServerName) {
			v.add(field(field(path, "tls"), "server_name"), "must be a host name, got %q", t.ServerName)
		}
	}
	v.eachUpstream(check)
}

// eachUpstream calls fn for every upstream, top-level and inline, with its
// path.
func (v *validator) eachUpstream(fn func(path string, u *Upstream)) {
	for i := range v.cfg.Upstreams {
		fn(indexPath("upstreams", i), &v.cfg.Upstreams[i])
	}
	for i := range v.cfg.Services {
		if u := v.cfg.Services[i].Upstream; u != nil {
			fn(field(indexPath("services", i), "upstream"), u)
		}
	}
	for i := range v.cfg.StreamRoutes {
		if u := v.cfg.StreamRoutes[i].Upstream; u != nil {
			fn(field(indexPath("stream_routes", i), "upstream"), u)
		}
	}
}
