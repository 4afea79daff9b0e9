package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"unsafe"
)

// b2s views b as a string without copying. Only for calls that do not keep
// the string (map index expressions, parsers that copy what they keep).
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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

// Headers a request may carry that prepareRequest deletes (hop-by-hop) or
// replaces (the gateway's own): checkHead notes which are present while it
// scans the head anyway, so that a request without them pays for no
// header-table scan per name.
const (
	ownConnection uint32 = 1 << iota
	ownKeepAlive
	ownProxyConnection
	ownProxyAuthenticate
	ownProxyAuthorization
	ownTe
	ownTrailer
	ownUpgrade
	ownXFF
	ownXFProto
	ownXFHost
	ownXFPort
	ownXRealIP
	ownRequestID
	ownConsumer
	ownCredential
	ownCustomID
	ownClientCN
	ownExpect
)

// ownedHeaders are the names behind those bits; hopHeaders' bits are its
// index.
var ownedHeaders = [...]struct {
	name string
	bit  uint32
}{
	{"Connection", ownConnection}, {"Keep-Alive", ownKeepAlive}, {"Proxy-Connection", ownProxyConnection},
	{"Proxy-Authenticate", ownProxyAuthenticate}, {"Proxy-Authorization", ownProxyAuthorization},
	{"Te", ownTe}, {"Trailer", ownTrailer}, {"Upgrade", ownUpgrade},
	{"X-Forwarded-For", ownXFF}, {"X-Forwarded-Proto", ownXFProto}, {"X-Forwarded-Host", ownXFHost},
	{"X-Forwarded-Port", ownXFPort}, {"X-Real-IP", ownXRealIP}, {"X-Request-Id", ownRequestID},
	{"X-Consumer-Username", ownConsumer}, {"X-Credential-Identifier", ownCredential},
	{"X-Consumer-Custom-Id", ownCustomID}, {"X-Client-Cert-CN", ownClientCN}, {"Expect", ownExpect},
}

// ownedBit is the bit of header name (as received, any case), or 0.
func ownedBit(name []byte) uint32 {
	for i := range ownedHeaders {
		if e := &ownedHeaders[i]; len(name) == len(e.name) && equalFold(name, e.name) {
			return e.bit
		}
	}
	return 0
}

// removeRequestHopHeaders is removeHopHeaders for the upstream request,
// deleting only the hop-by-hop headers the client sent (owned, from
// checkHead).
func removeRequestHopHeaders(h headerDeleter, connection []byte, owned uint32) {
	removeConnectionTokens(h, connection)
	for i, k := range hopHeaders {
		if owned&(1<<i) != 0 {
			h.DelBytes(k)
		}
	}
}

// removeHopHeaders deletes hop-by-hop headers and every header that the
// Connection header names. connection is the Connection value as received
// (read before anything was deleted).
func removeHopHeaders(h headerDeleter, connection []byte) {
	removeConnectionTokens(h, connection)
	for _, k := range hopHeaders {
		h.DelBytes(k)
	}
}

// removeConnectionTokens deletes the headers a Connection value names.
func removeConnectionTokens(h headerDeleter, connection []byte) {
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
