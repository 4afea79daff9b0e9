package config

// GatewayTLS holds the TLS listener's settings (gateway.tls). Defaults
// follow Mozilla's "intermediate" profile.
type GatewayTLS struct {
	MinVersion string `json:"min_version"` // TLSv1.2 or TLSv1.3
	// Ciphers are the TLS 1.2 cipher suites, by IANA or OpenSSL name; TLS
	// 1.3 suites are not configurable (Go's crypto/tls picks them).
	Ciphers        []string `json:"ciphers"`
	SessionTickets bool     `json:"session_tickets"`
	// DefaultCertificate is the id of the certificate served to a client
	// that sends no SNI or one no snis entry matches; "" refuses such
	// handshakes (unrecognized_name).
	DefaultCertificate string `json:"default_certificate"`
}

// Certificate is an API7 certificate: a server certificate (or chain) and
// its private key, inline as PEM or read from files.
type Certificate struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Desc     string            `json:"desc"`
	Labels   map[string]string `json:"labels"`
	Cert     string            `json:"cert"`
	Key      string            `json:"key" secret:"true"`
	CertFile string            `json:"cert_file"`
	KeyFile  string            `json:"key_file"`

	// CertPEM and KeyPEM are the PEM the certificate loaded with, from
	// cert/key or read from cert_file/key_file.
	CertPEM []byte `json:"-"`
	KeyPEM  []byte `json:"-"`

	// Response-only fields of the Admin API.
	CreatedAt       Ignored `json:"created_at"`
	UpdatedAt       Ignored `json:"updated_at"`
	CommonName      Ignored `json:"common_name"`
	SubjectAltNames Ignored `json:"subject_alt_names"`
	AssociatedSNIs  Ignored `json:"associated_snis"`
	Exptime         Ignored `json:"exptime"`
	ValidityStart   Ignored `json:"validity_start"`
	ValidityEnd     Ignored `json:"validity_end"`
}

// CACertificate is an API7 CA certificate: trusted to sign client
// certificates (snis[].mtls) or upstream server certificates
// (upstream tls.ca_certificates).
type CACertificate struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Desc     string            `json:"desc"`
	Labels   map[string]string `json:"labels"`
	Cert     string            `json:"cert"`
	CertFile string            `json:"cert_file"`

	CertPEM []byte `json:"-"`

	CreatedAt      Ignored `json:"created_at"`
	UpdatedAt      Ignored `json:"updated_at"`
	AssociatedSNIs Ignored `json:"associated_snis"`
	Exptime        Ignored `json:"exptime"`
	ValidityStart  Ignored `json:"validity_start"`
	ValidityEnd    Ignored `json:"validity_end"`
}

// SNI is an API7 SNI: a domain (exact, or a leading "*.") and the
// certificates, protocols and client verification used for it.
type SNI struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Desc         string            `json:"desc"`
	Labels       map[string]string `json:"labels"`
	Domain       string            `json:"domain"`
	Certificates []string          `json:"certificates"`
	MTLS         SNIMTLS           `json:"mtls"`
	// SSLProtocols nil: from gateway.tls.min_version up to TLSv1.3.
	SSLProtocols []string `json:"ssl_protocols"`

	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// SNIMTLS asks clients of an SNI for a certificate signed by one of the
// listed CA certificates.
type SNIMTLS struct {
	Enabled        bool     `json:"enabled"`
	CACertificates []string `json:"ca_certificates"`
}

// DefaultCiphers are Mozilla "intermediate"'s TLS 1.2 suites that Go
// implements, in its order.
func DefaultCiphers() []string {
	return []string{
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	}
}

func (t *GatewayTLS) setDefaults() {
	t.MinVersion = "TLSv1.2"
	t.Ciphers = DefaultCiphers()
	t.SessionTickets = true
}
