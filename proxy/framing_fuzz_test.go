package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"gateway/internal/testnet"
)

// framingSeeds are request-smuggling classics and plain requests.
var framingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x?y=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /z HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET http://a/abs HTTP/1.1\r\nHost: b\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
	// CL.TE and TE.CL
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
	// TE.TE obfuscations
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX: y\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	// duplicate and odd Content-Length
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 99999999999999999999\r\n\r\nx",
	// bare LF, NUL, a cut request, garbage, a TLS ClientHello
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nshort",
	"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	"",
}

// framingRig is one gateway in front of one backend for a fuzz run. The
// backend counts requests and checks the framing of each one it gets.
type framingRig struct {
	addr     string
	hits     atomic.Int64
	mu       sync.Mutex
	badFrame string // the first upstream request with ambiguous framing
	token    []byte // set on every request the rig's gateway forwards
}

func startFramingRig(f *testing.F) *framingRig {
	rig := &framingRig{token: []byte(strconv.FormatInt(time.Now().UnixNano(), 36))}
	bsrv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			// Only the rig's own gateway sets the token: a test running in
			// parallel whose "dead" node address is this backend's port
			// (a request or a health probe) is not counted.
			if !bytes.Equal(ctx.Request.Header.Peek("X-Framing-Rig"), rig.token) {
				ctx.SetStatusCode(fasthttp.StatusMisdirectedRequest)
				return
			}
			rig.hits.Add(1)
			if why := ambiguousFraming(ctx.Request.Header.RawHeaders()); why != "" {
				rig.mu.Lock()
				if rig.badFrame == "" {
					rig.badFrame = why + ": " + string(ctx.Request.Header.RawHeaders())
				}
				rig.mu.Unlock()
			}
			ctx.SetBodyString("ok")
		},
		StreamRequestBody: true,
	}
	bln := testnet.Serve(f, bsrv)

	host, port, _ := net.SplitHostPort(bln.Addr().String())
	cfg, err := mustParseErr(`
gateway: {access_log: {enabled: false}, max_request_body_size: 65536}
services:
  - id: s
    upstream: {nodes: [{host: ` + host + `, port: ` + port + `}], timeout: {connect: 5, send: 5, read: 5}}
    routes: [{paths: ["/*"], plugins: {proxy-rewrite: {headers: {set: {X-Framing-Rig: "` + string(rig.token) + `"}}}}}]
`)
	if err != nil {
		f.Fatal(err)
	}
	g := New(Options{})
	if err := g.Apply(cfg); err != nil {
		f.Fatal(err)
	}
	rig.addr = serveGateway(f, g).addr
	// The rig must see what its gateway forwards (the token reaches the
	// backend), or no execution could fail.
	status, _, err := fasthttp.Get(nil, "http://"+rig.addr+"/self-check")
	if err != nil || status != fasthttp.StatusOK || rig.hits.Load() != 1 {
		f.Fatalf("the rig does not count a forwarded request: status %d, hits %d, %v", status, rig.hits.Load(), err)
	}
	return rig
}

// ambiguousFraming reads raw header lines (after the request line or not)
// and says why their body framing is ambiguous, or "". A request with two
// framings, or one that different parsers could read differently, must not
// be forwarded: the gateway and the upstream could disagree on where it
// ends.
func ambiguousFraming(raw []byte) string {
	cl, te := 0, 0
	var clValue string
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			// obs-fold: a continuation of the previous field's value,
			// which a recipient unfolds into it (RFC 9112, 5.2).
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := strings.ToLower(string(bytes.TrimSpace(line[:colon])))
		value := string(bytes.TrimSpace(line[colon+1:]))
		switch name {
		case "content-length":
			if cl > 0 && value != clValue {
				return "two Content-Length values"
			}
			cl++
			clValue = value
		case "transfer-encoding":
			te++
		}
	}
	if cl > 0 && te > 0 {
		return "Content-Length and Transfer-Encoding"
	}
	return ""
}

// firstHead returns the header block of the first request in data (without
// the request line), or false when data holds no complete head.
func firstHead(data []byte) ([]byte, bool) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if lf := bytes.Index(data, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		end = lf
	}
	if end < 0 {
		return nil, false
	}
	head := data[:end]
	nl := bytes.IndexByte(head, '\n')
	if nl < 0 {
		return nil, true
	}
	return head[nl+1:], true
}

// FuzzRequestFraming sends raw bytes to a real gateway listener and then
// half-closes. Properties: the gateway does not panic (a panic kills the
// process); it answers with a parseable HTTP response or closes without a
// byte; it never forwards a request whose first head has ambiguous
// framing; and every request the upstream gets has unambiguous framing.
func FuzzRequestFraming(f *testing.F) {
	for _, s := range framingSeeds {
		f.Add([]byte(s))
	}
	rig := startFramingRig(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		before := rig.hits.Load()
		c, err := net.Dial("tcp", rig.addr)
		if err != nil {
			t.Skip("dial:", err)
		}
		tc := c.(*net.TCPConn)
		_ = tc.SetLinger(0) // no TIME_WAIT per execution
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := tc.Write(data); err != nil && !isConnGone(err) {
			t.Fatalf("write: %v", err)
		}
		_ = tc.CloseWrite()
		out, err := io.ReadAll(tc)
		if err != nil && !isConnGone(err) {
			t.Fatalf("the gateway neither answered nor closed: %v (input %q)", err, data)
		}
		forwarded := rig.hits.Load() - before

		if len(out) > 0 {
			var h fasthttp.ResponseHeader
			if err := h.Read(bufio.NewReader(bytes.NewReader(out))); err != nil {
				t.Fatalf("not an HTTP response: %v\ninput %q\noutput %q", err, data, out)
			}
		}
		if head, ok := firstHead(data); ok {
			if why := ambiguousFraming(head); why != "" && forwarded > 0 {
				t.Fatalf("forwarded a request with %s: %q", why, data)
			}
		}
		rig.mu.Lock()
		bad := rig.badFrame
		rig.mu.Unlock()
		if bad != "" {
			t.Fatalf("the upstream got ambiguous framing (%s) from input %q", bad, data)
		}
	})
}

func isConnGone(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}
