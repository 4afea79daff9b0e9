package transport

import (
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"
)

// DialStream opens a connection to the pool's node for a TCP stream route:
// plain TCP (validation refuses https upstreams on stream routes), never
// pooled. The connection is the *net.TCPConn itself, so that copies
// between it and a client connection splice. A node given by IP is dialled
// with TCP keepalive off (Go's default costs four socket options per
// connection; the stream idle timeout ends dead connections, and nginx's
// stream proxy sets none either); a node given by name goes through
// fasthttp's dialer, as the pool's connections do, for its DNS cache.
func (p *Pool) DialStream(timeout time.Duration) (net.Conn, error) {
	if host, _, err := net.SplitHostPort(p.addr); err == nil {
		if _, err := netip.ParseAddr(host); err == nil {
			d := net.Dialer{Timeout: timeout, KeepAlive: -1}
			return d.Dial("tcp", p.addr)
		}
	}
	return fasthttp.DialTimeout(p.addr, timeout)
}
