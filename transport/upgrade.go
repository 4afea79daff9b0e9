package transport

import (
	"net"
	"time"
)

// connFor returns the connection an attempt goes on: an upgrade gets a
// connection of its own, dialled for it, that never comes from nor returns
// to the keep-alive pool.
func (p *Pool) connFor(o *Options) (c *poolConn, reused bool, err error) {
	if o.Upgrade {
		c, err = p.dial(o.To.Connect)
		return c, false, err
	}
	return p.get(o.To.Connect)
}

// Tunnel is an upstream connection a node switched to another protocol
// with 101 Switching Protocols. Its owner copies bytes through it and
// closes it; the send and read timeouts of the attempt no longer apply.
type Tunnel struct {
	c *poolConn
	// Protocol is the node's Upgrade header: what it switched to.
	Protocol []byte
}

func newTunnel(c *poolConn, protocol []byte) *Tunnel {
	c.readTimeout, c.writeTimeout = 0, 0
	_ = c.Conn.SetDeadline(time.Time{})
	return &Tunnel{c: c, Protocol: append([]byte(nil), protocol...)}
}

// Read reads what the node sends, first what was buffered behind the 101.
func (t *Tunnel) Read(b []byte) (int, error) { return t.c.br.Read(b) }

// Write writes to the node.
func (t *Tunnel) Write(b []byte) (int, error) { return t.c.Conn.Write(b) }

// SetReadDeadline bounds the next reads (an idle timeout).
func (t *Tunnel) SetReadDeadline(d time.Time) error { return t.c.Conn.SetReadDeadline(d) }

// CloseWrite half-closes the connection: the node reads EOF and can still
// send. It reports false when the connection cannot be half-closed.
func (t *Tunnel) CloseWrite() bool {
	if cw, ok := t.c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite() == nil
	}
	return false
}

// Close closes the connection; more calls do nothing harmful.
func (t *Tunnel) Close() error { return t.c.Conn.Close() }

// RemoteAddr is the node's address.
func (t *Tunnel) RemoteAddr() net.Addr { return t.c.Conn.RemoteAddr() }
