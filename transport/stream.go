package transport

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// DialStream opens a connection to the pool's node for a TCP stream route:
// plain TCP (validation refuses https upstreams on stream routes), dialled
// as the pool dials (fasthttp's dialer and its DNS cache), never pooled.
// The connection is the *net.TCPConn itself, so that copies between it and
// a client connection splice.
func (p *Pool) DialStream(timeout time.Duration) (net.Conn, error) {
	return fasthttp.DialTimeout(p.addr, timeout)
}
