package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
)

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
	r.trusted = config.ParsePrefixes(c.TrustedAddresses)
	return r
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
