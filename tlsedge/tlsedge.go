// Package tlsedge terminates client TLS for the gateway: it compiles the
// config's certificates, CA certificates and SNIs into an immutable Set,
// which a Store swaps atomically on reload, and picks each handshake's
// certificate, protocol versions and client verification by SNI. New
// handshakes use the newest Set at once; established connections keep the
// keys they negotiated.
package tlsedge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/config"
)

// Set is everything one config says about client TLS. It is immutable.
type Set struct {
	exact map[string]*tls.Config // by domain
	wild  map[string]*tls.Config // by the suffix after "*."
	def   *tls.Config            // no SNI or no match; refuse when none
	// expiry is each certificate's leaf NotAfter, by certificate id.
	expiry map[string]time.Time
}

// refuse has no certificate: crypto/tls answers a handshake that gets it
// with the unrecognized_name alert.
var refuse = &tls.Config{MinVersion: tls.VersionTLS12}

// ticketSecret keys the session tickets of this process. Each SNI's key is
// derived from it and what the SNI serves, so that a ticket issued under
// one SNI never resumes a session under another (whose protocols,
// certificates or client CAs may differ: resumption skips the checks of a
// full handshake), while a reload that changes nothing keeps resumption
// working.
var ticketSecret = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}()

// Compile builds the Set of cfg. Loading has checked every certificate
// already; an error here (config.Errors, with its key path) is one of the
// few things only crypto/tls sees. The key itself is never in the error.
func Compile(cfg *config.Config) (*Set, error) {
	gt := &cfg.Gateway.TLS
	certs := make(map[string]tls.Certificate, len(cfg.Certificates))
	s := &Set{exact: map[string]*tls.Config{}, wild: map[string]*tls.Config{}, expiry: map[string]time.Time{}}
	for i := range cfg.Certificates {
		c := &cfg.Certificates[i]
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, config.Errors{{Path: fmt.Sprintf("certificates[%d]", i), Msg: "cannot use the certificate and key"}}
		}
		certs[c.ID] = pair
		s.expiry[c.ID] = pair.Leaf.NotAfter
	}
	cas := make(map[string][]byte, len(cfg.CACertificates))
	for i := range cfg.CACertificates {
		cas[cfg.CACertificates[i].ID] = cfg.CACertificates[i].CertPEM
	}
	var ciphers []uint16
	for _, name := range gt.Ciphers {
		if id, ok := config.CipherSuite(name); ok {
			ciphers = append(ciphers, id)
		}
	}
	minVersion, _ := config.TLSVersion(gt.MinVersion)
	base := func(ids []string) *tls.Config {
		tc := &tls.Config{
			MinVersion:             minVersion,
			MaxVersion:             tls.VersionTLS13,
			CipherSuites:           ciphers,
			SessionTicketsDisabled: !gt.SessionTickets,
			NextProtos:             []string{"http/1.1"},
		}
		for _, id := range ids {
			tc.Certificates = append(tc.Certificates, certs[id])
		}
		return tc
	}
	if gt.DefaultCertificate != "" {
		s.def = base([]string{gt.DefaultCertificate})
		setTicketKey(s.def, "", nil)
	}
	for i := range cfg.SNIs {
		sni := &cfg.SNIs[i]
		tc := base(sni.Certificates)
		if sni.SSLProtocols != nil {
			tc.MinVersion, tc.MaxVersion = versionRange(sni.SSLProtocols)
			if tc.MinVersion < tls.VersionTLS12 {
				// TLS 1.1 has no AEAD suites: it needs the CBC ones.
				tc.CipherSuites = append(tc.CipherSuites[:len(tc.CipherSuites):len(tc.CipherSuites)],
					tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
					tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA)
			}
		}
		var caPEM []byte
		if sni.MTLS.Enabled {
			pool := x509.NewCertPool()
			for _, id := range sni.MTLS.CACertificates {
				caPEM = append(caPEM, cas[id]...)
				if !pool.AppendCertsFromPEM(cas[id]) {
					return nil, config.Errors{{Path: fmt.Sprintf("snis[%d].mtls.ca_certificates", i), Msg: fmt.Sprintf("CA certificate %q has no usable certificate", id)}}
				}
			}
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		setTicketKey(tc, sni.Domain, caPEM)
		if suffix, ok := strings.CutPrefix(sni.Domain, "*."); ok {
			s.wild[suffix] = tc
		} else {
			s.exact[sni.Domain] = tc
		}
	}
	return s, nil
}

// setTicketKey gives tc a session ticket key of its own (see ticketSecret).
func setTicketKey(tc *tls.Config, domain string, caPEM []byte) {
	m := hmac.New(sha256.New, ticketSecret)
	fmt.Fprintf(m, "%s\x00%d\x00%d\x00%d\x00%v\x00", domain, tc.MinVersion, tc.MaxVersion, tc.ClientAuth, tc.CipherSuites)
	for _, c := range tc.Certificates {
		for _, der := range c.Certificate {
			m.Write(der)
		}
	}
	m.Write(caPEM)
	var key [32]byte
	copy(key[:], m.Sum(nil))
	tc.SetSessionTicketKeys([][32]byte{key})
}

func versionRange(protos []string) (lo, hi uint16) {
	lo, hi = tls.VersionTLS13, tls.VersionTLS10
	for _, p := range protos {
		v, _ := config.TLSVersion(p)
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// configFor picks the config of a server name: the exact domain, else the
// longest wildcard suffix, else the default (or refuse).
func (s *Set) configFor(name string) *tls.Config {
	if name != "" {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if tc := s.exact[name]; tc != nil {
			return tc
		}
		for i := strings.IndexByte(name, '.'); i >= 0; {
			if tc := s.wild[name[i+1:]]; tc != nil {
				return tc
			}
			j := strings.IndexByte(name[i+1:], '.')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	if s.def != nil {
		return s.def
	}
	return refuse
}

// Store holds the serving Set and the TLS metrics.
type Store struct {
	set        atomic.Pointer[Set]
	base       *tls.Config
	failures   *prometheus.CounterVec
	expiry     *prometheus.GaugeVec
	handshakes prometheus.Counter
}

// NewStore makes a Store with no Set (every handshake is refused until
// Swap) and registers its metrics on reg.
func NewStore(reg prometheus.Registerer) *Store {
	s := &Store{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_tls_handshake_failures_total",
			Help: "Client TLS handshakes that failed, by reason.",
		}, []string{"reason"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_tls_certificate_expiry_timestamp_seconds",
			Help: "When each configured certificate (its leaf) expires, as a Unix time.",
		}, []string{"certificate"}),
		handshakes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_tls_handshakes_total",
			Help: "Client TLS handshakes that completed.",
		}),
	}
	reg.MustRegister(s.failures, s.expiry, s.handshakes)
	s.base = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: s.getConfigForClient,
	}
	return s
}

// Swap makes set the one new handshakes use.
func (s *Store) Swap(set *Set) {
	s.set.Store(set)
	s.expiry.Reset()
	for id, t := range set.expiry {
		s.expiry.WithLabelValues(id).Set(float64(t.Unix()))
	}
}

// TLSConfig is the listener's config: every handshake asks the serving Set.
func (s *Store) TLSConfig() *tls.Config { return s.base }

func (s *Store) getConfigForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	set := s.set.Load()
	if set == nil {
		return refuse, nil
	}
	return set.configFor(hello.ServerName), nil
}
