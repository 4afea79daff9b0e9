package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"

	"gateway/config"
)

// Edge checks: what fasthttp's parser accepts but a proxy must not pass on
// (README "Security"). They run on the raw request head, once per request,
// without allocating.

// maxConnectionTokens bounds the tokens of the Connection header(s): each
// one costs a scan of the header table when hop-by-hop headers are removed.
const maxConnectionTokens = 32

var (
	strHTTP10      = []byte("HTTP/1.0")
	strHTTP11      = []byte("HTTP/1.1")
	strTE          = []byte("transfer-encoding")
	strConnLower   = []byte("connection")
	strHTTPScheme  = []byte("http://")
	strHTTPSScheme = []byte("https://")
)

// edgeRules is the compiled edge part of gateway settings.
type edgeRules struct {
	maxHeaderCount int
	underscores    bool // underscores_in_headers
	// guarded are the (lower-case) header names the gateway sets or
	// trusts. A request header whose name, with '_' read as '-', is one
	// of them is dropped: CGI, WSGI and Rack servers fold `X_Real_IP`
	// and `X-Real-IP` into the same variable.
	guarded [][]byte
}

func compileEdge(gw *config.Gateway) edgeRules {
	e := edgeRules{maxHeaderCount: gw.MaxHeaderCount, underscores: gw.UnderscoresInHeaders}
	for _, h := range [][]byte{hdrXFF, hdrXFProto, hdrXFHost, hdrXFPort, hdrXRealIP, hdrRequestID, hdrConsumer, hdrCredential, hdrCustomID} {
		e.guarded = append(e.guarded, bytes.ToLower(h))
	}
	if gw.RealIP.Header != "" {
		e.guarded = append(e.guarded, bytes.ToLower([]byte(gw.RealIP.Header)))
	}
	return e
}

// nextHeaderLine splits the first line off raw request headers (as
// fasthttp keeps them: lines ending in CRLF or LF, then an empty line).
func nextHeaderLine(raw []byte) (line, rest []byte) {
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		line, rest = raw, nil
	} else {
		line, rest = raw[:i], raw[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isTokenByte reports whether c may appear in a header name (RFC 9110 token).
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// checkHead refuses request heads that fasthttp accepted but that are
// ambiguous or abusive once forwarded: versions other than HTTP/1.0 and
// 1.1, raw non-ASCII bytes in the target, header names that are not
// tokens, obs-folded lines, a Transfer-Encoding other than chunked, more
// header lines than max_header_count and more than 32 Connection tokens.
// It also notes whether a header name holds '_' (st.underscore).
func (e *edgeRules) checkHead(st *reqState) errType {
	h := &st.ctx.Request.Header
	if p := h.Protocol(); !bytes.Equal(p, strHTTP11) && !bytes.Equal(p, strHTTP10) {
		return errBadRequest
	}
	for _, c := range h.RequestURI() {
		if c >= 0x80 {
			return errBadRequest
		}
	}
	raw := h.RawHeaders()
	count, tokens, te := 0, 0, false
	st.underscore, st.connLines, st.owned = false, 0, 0
	for len(raw) > 0 {
		var line []byte
		line, raw = nextHeaderLine(raw)
		if len(line) == 0 {
			continue // the empty line that ends the head
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errBadRequest // obs-fold (RFC 9112 5.2): refused, never unfolded
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadRequest
		}
		name := line[:colon]
		for _, c := range name {
			if !isTokenByte(c) {
				return errBadRequest
			}
			if c == '_' {
				st.underscore = true
			}
		}
		if count++; count > e.maxHeaderCount {
			return errHeaderTooLarge
		}
		st.owned |= ownedBit(name)
		switch {
		case equalFold(name, b2s(strTE)):
			te = true
		case equalFold(name, b2s(strConnLower)):
			st.connLines++
			v := line[colon+1:]
			for len(v) > 0 {
				i := bytes.IndexByte(v, ',')
				tok := v
				if i >= 0 {
					tok, v = v[:i], v[i+1:]
				} else {
					v = nil
				}
				if len(bytes.TrimSpace(tok)) > 0 {
					if tokens++; tokens > maxConnectionTokens {
						return errBadRequest
					}
				}
			}
		}
	}
	// fasthttp accepts "identity" and then reads no body: the body bytes
	// would become the next request. Only chunked is a framing we forward.
	if te && h.ContentLength() != -1 {
		return errBadRequest
	}
	return errNone
}

// applyTarget makes the Host header agree with an absolute-form target
// (RFC 9112 3.2.2: its authority replaces Host) and checks that the host
// is a valid host[:port]. It reports false for a 400.
func applyTarget(h *fasthttp.RequestHeader) bool {
	uri := h.RequestURI()
	if len(uri) > 0 && uri[0] != '/' {
		var rest []byte
		switch {
		case hasPrefixFold(uri, strHTTPScheme):
			rest = uri[len(strHTTPScheme):]
		case hasPrefixFold(uri, strHTTPSScheme):
			rest = uri[len(strHTTPSScheme):]
		default:
			return false // "*", authority-form, other schemes
		}
		end := len(rest)
		for i, c := range rest {
			if c == '/' || c == '?' || c == '#' {
				end = i
				break
			}
		}
		authority := rest[:end]
		if len(authority) == 0 || !validHost(authority) {
			return false // includes userinfo: '@' is not a host byte
		}
		h.SetHostBytes(authority)
		return true
	}
	return validHost(h.Host())
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && equalFold(b[:len(prefix)], b2s(prefix))
}

// validHost accepts host[:port] where host is a reg-name of letters,
// digits, '-', '.', '_' and '~' (which covers IPv4 addresses) or an IPv6
// address in brackets, and port is at most five digits. Percent-escapes
// and the sub-delims RFC 3986 also allows in a reg-name are refused: no
// DNS name needs them, and backends disagree on what they mean. An empty
// Host (HTTP/1.0 without one) is accepted; fasthttp requires it for 1.1.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	var port []byte
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return false
		}
		addr := b[1:end]
		if bytes.IndexByte(addr, '%') >= 0 || len(addr) > 64 {
			return false
		}
		ip, err := netip.ParseAddr(b2s(addr))
		if err != nil || !ip.Is6() {
			return false
		}
		switch rest := b[end+1:]; {
		case len(rest) == 0:
		case rest[0] == ':':
			port = rest[1:]
		default:
			return false
		}
	} else {
		host := b
		if i := bytes.IndexByte(b, ':'); i >= 0 {
			host, port = b[:i], b[i+1:]
		}
		if len(host) == 0 {
			return false
		}
		for _, c := range host {
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
				c == '-', c == '.', c == '_', c == '~':
			default:
				return false
			}
		}
	}
	if len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// dropUnderscoreHeaders removes from the upstream request the headers
// whose name holds '_': all of them unless underscores_in_headers is on,
// and otherwise those that read as a header the gateway sets or trusts.
func (e *edgeRules) dropUnderscoreHeaders(raw []byte, up *fasthttp.RequestHeader) {
	for len(raw) > 0 {
		var line []byte
		line, raw = nextHeaderLine(raw)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := line[:colon]
		if bytes.IndexByte(name, '_') < 0 {
			continue
		}
		if !e.underscores || e.isGuarded(name) {
			up.DelBytes(name)
		}
	}
}

// isGuarded compares name with the guarded names, '_' read as '-' and
// case ignored.
func (e *edgeRules) isGuarded(name []byte) bool {
	for _, g := range e.guarded {
		if len(g) != len(name) {
			continue
		}
		same := true
		for i, c := range name {
			if c == '_' {
				c = '-'
			} else if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != g[i] {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// removeConnectionLines removes what every Connection line names; fasthttp
// gives only the first line to PeekBytes. Used when there are several.
func removeConnectionLines(raw []byte, up *fasthttp.RequestHeader) {
	for len(raw) > 0 {
		var line []byte
		line, raw = nextHeaderLine(raw)
		colon := bytes.IndexByte(line, ':')
		if colon > 0 && equalFold(line[:colon], b2s(strConnLower)) {
			removeHopHeaders(up, line[colon+1:])
		}
	}
}
