package tlsedge

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Listener wraps inner in TLS with the Store's config. The handshake runs
// on the connection's first read or write (in the connection's own
// goroutine, under the deadlines the server sets), never in Accept.
func (s *Store) Listener(inner net.Listener) net.Listener {
	return &listener{Listener: inner, s: s}
}

type listener struct {
	net.Listener
	s *Store
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: tls.Server(c, l.s.base), s: l.s}, nil
}

// Conn is a client TLS connection. It counts a failed handshake by reason
// and keeps what the request path needs from the handshake, computed once.
type Conn struct {
	*tls.Conn
	s    *Store
	done bool
	err  error
	cn   []byte // the verified client certificate's subject CN (mTLS)
	mtls bool
}

// Read runs the handshake first.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.done {
		c.handshake()
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// Write runs the handshake first.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.done {
		c.handshake()
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Write(b)
}

func (c *Conn) handshake() {
	c.done = true
	if err := c.Conn.Handshake(); err != nil {
		c.err = err
		c.s.failures.WithLabelValues(Reason(err)).Inc()
		return
	}
	c.s.handshakes.Inc()
	st := c.Conn.ConnectionState()
	if len(st.VerifiedChains) > 0 {
		c.mtls = true
		c.cn = []byte(st.PeerCertificates[0].Subject.CommonName)
	}
}

// ClientCN returns the subject CN of the client certificate verified by
// mTLS, and whether one was.
func (c *Conn) ClientCN() ([]byte, bool) { return c.cn, c.mtls }

// Reason names why a handshake failed, for the failures metric: a small
// fixed set, so that the label cannot grow with what clients send.
func Reason(err error) string {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
		return "client_closed"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(msg, "no certificates configured"):
		return "unrecognized_name"
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"):
		return "protocol_version"
	case strings.Contains(msg, "didn't provide a certificate"), strings.Contains(msg, "certificate required"):
		return "no_client_certificate"
	case strings.Contains(msg, "failed to verify certificate"), strings.Contains(msg, "x509:"):
		return "bad_client_certificate"
	case strings.Contains(msg, "no cipher suite"), strings.Contains(msg, "no mutually supported"):
		return "no_shared_cipher"
	case strings.Contains(msg, "does not look like a TLS handshake"):
		return "not_tls"
	}
	return "other"
}
