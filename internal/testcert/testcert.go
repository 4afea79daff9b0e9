// Package testcert makes certificates at test time: a CA and leaves it
// signs, as PEM, so that no test depends on committed files that expire.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

var serial atomic.Int64

// Pair is a certificate and its key as PEM, with the parsed certificate.
type Pair struct {
	CertPEM []byte
	KeyPEM  []byte
	Cert    *x509.Certificate
	key     crypto.Signer
}

// Options change a certificate from the defaults (ECDSA P-256, valid from
// an hour ago for a year, a server certificate).
type Options struct {
	RSA       bool
	NotBefore time.Time
	NotAfter  time.Time
	Client    bool // for client authentication
	CN        string
}

// NewCA makes a self-signed CA.
func NewCA(name string) *Pair {
	return issue(nil, Options{CN: name}, nil, true)
}

// Issue makes a leaf for names (DNS names or IP addresses) signed by ca;
// ca nil makes it self-signed.
func Issue(ca *Pair, o Options, names ...string) *Pair {
	return issue(ca, o, names, false)
}

func issue(ca *Pair, o Options, names []string, isCA bool) *Pair {
	var key crypto.Signer
	var err error
	if o.RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		panic(err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	if o.CN == "" && len(names) > 0 {
		o.CN = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1) + time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: o.CN},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if o.RSA {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if o.Client {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.Cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return &Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		Cert:    cert,
		key:     key,
	}
}

// TLS returns the pair as a tls.Certificate (a client certificate, or a
// test backend's).
func (p *Pair) TLS() tls.Certificate {
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		panic(err)
	}
	return c
}

// Pool returns a pool holding p's certificate.
func (p *Pair) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Cert)
	return pool
}
