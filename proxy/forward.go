package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/valyala/fasthttp"

	"gateway/config"
)

// b2s views b as a string without copying. Only for calls that do not keep
// the string (map index expressions, parsers that copy what they keep).
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// realIPRule is the compiled gateway.real_ip.
type realIPRule struct {
	header    []byte
	trusted   []netip.Prefix
	recursive bool
	list      bool // the header is a comma list (X-Forwarded-For style)
}

func compileRealIP(c config.RealIP) realIPRule {
	r := realIPRule{header: []byte(c.Header), recursive: c.Recursive}
	r.list = strings.EqualFold(c.Header, "X-Forwarded-For") || strings.EqualFold(c.Header, "Forwarded-For")
	r.trusted = parsePrefixes(c.TrustedAddresses)
	return r
}

// parsePrefixes parses a list of IPs and CIDRs (validated by config) into
// prefixes; a single address becomes a full-length prefix.
func parsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range list {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			ip = ip.Unmap()
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return out
}

// unmapBits is what Unmap removes from a prefix length: an IPv4-mapped
// IPv6 prefix (::ffff:10.0.0.0/104) describes the IPv4 prefix 10.0.0.0/8,
// and client addresses are compared unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func (r *realIPRule) isTrusted(ip netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// parseIP parses b as an IP address without allocating: the string view is
// not retained by netip for addresses without a zone, and zones are refused.
func parseIP(b []byte) (netip.Addr, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	if bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(b2s(b))
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// clientIP applies the real_ip rules: the header is believed only when the
// peer is trusted. A list header (X-Forwarded-For) may come on several
// lines; all of them form one list, in order, as nginx's realip module and
// Go's ReverseProxy read it (a proxy such as HAProxy with `option
// forwardfor` adds its own line after the client's). With recursive on, the
// client is the right-most address of that list that is not itself
// trusted; with it off, the right-most address.
func (r *realIPRule) clientIP(ctx *fasthttp.RequestCtx, peer netip.Addr) netip.Addr {
	if len(r.header) == 0 || !r.isTrusted(peer) {
		return peer
	}
	if !r.list {
		// A single-address header (X-Real-IP): believed only when it
		// comes once; two copies mean someone added one.
		lines := ctx.Request.Header.PeekAll(b2s(r.header))
		if len(lines) != 1 {
			return peer
		}
		if ip, ok := parseIP(lines[0]); ok {
			return ip
		}
		return peer
	}
	lines := ctx.Request.Header.PeekAll(b2s(r.header))
	client := peer
	for l := len(lines) - 1; l >= 0; l-- {
		v := lines[l]
		for len(v) > 0 {
			i := bytes.LastIndexByte(v, ',')
			part := v[i+1:]
			if i < 0 {
				part, v = v, nil
			} else {
				v = v[:i]
			}
			ip, ok := parseIP(part)
			if !ok {
				return client
			}
			client = ip
			if !r.recursive || !r.isTrusted(ip) {
				return client
			}
		}
	}
	return client
}

// Hop-by-hop headers (RFC 9110 7.6.1 and the ones proxies have always
// treated so). Transfer-Encoding is not listed: fasthttp keeps it out of
// the header table and frames bodies itself.
var hopHeaders = [...][]byte{
	[]byte("Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Connection"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("Te"),
	[]byte("Trailer"),
	[]byte("Upgrade"),
}

var strConnection = []byte("Connection")

// headerDeleter is the part of fasthttp's request and response headers that
// hop-by-hop removal needs.
type headerDeleter interface {
	PeekBytes(key []byte) []byte
	DelBytes(key []byte)
}

// removeHopHeaders deletes hop-by-hop headers and every header that the
// Connection header names. connection is the Connection value as received
// (read before anything was deleted).
func removeHopHeaders(h headerDeleter, connection []byte) {
	for len(connection) > 0 {
		i := bytes.IndexByte(connection, ',')
		tok := connection
		if i >= 0 {
			tok, connection = connection[:i], connection[i+1:]
		} else {
			connection = nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
			h.DelBytes(tok)
		}
	}
	for _, k := range hopHeaders {
		h.DelBytes(k)
	}
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Request ids: a random per-process prefix and a counter, so that ids are
// unique without a syscall or an allocation per request.
var (
	requestIDPrefix  [16]byte
	requestIDCounter atomic.Uint64
)

func init() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	hex.Encode(requestIDPrefix[:], b[:])
}

func appendRequestID(dst []byte) []byte {
	const digits = "0123456789abcdef"
	n := requestIDCounter.Add(1)
	dst = append(dst, requestIDPrefix[:]...)
	dst = append(dst, '-')
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(n>>uint(shift))&0xf])
	}
	return dst
}

// maxClientRequestID bounds a client-supplied X-Request-Id; a longer one is
// replaced rather than echoed into logs and responses.
const maxClientRequestID = 200
