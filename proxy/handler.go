package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"gateway/balancer"
	"gateway/plugin"
	"gateway/router"
	"gateway/tlsedge"
	"gateway/transport"
)

var (
	hdrRequestID          = []byte("X-Request-Id")
	hdrXFF                = []byte("X-Forwarded-For")
	hdrXFProto            = []byte("X-Forwarded-Proto")
	hdrXFHost             = []byte("X-Forwarded-Host")
	hdrXFPort             = []byte("X-Forwarded-Port")
	hdrXRealIP            = []byte("X-Real-IP")
	hdrConsumer           = []byte("X-Consumer-Username")
	hdrCredential         = []byte("X-Credential-Identifier")
	hdrCustomID           = []byte("X-Consumer-Custom-Id")
	hdrWWWAuthenticate    = []byte("WWW-Authenticate")
	hdrAllow              = []byte("Allow")
	hdrRetryAfter         = []byte("Retry-After")
	hdrRateLimit          = []byte("X-RateLimit-Limit")
	hdrRateRemaining      = []byte("X-RateLimit-Remaining")
	hdrRateReset          = []byte("X-RateLimit-Reset")
	hdrContentLength      = []byte("content-length")
	hdrExpect             = []byte("Expect")
	strHTTP               = []byte("http")
	strHTTPS              = []byte("https")
	strSuccess            = []byte("SUCCESS")
	strNone               = []byte("NONE")
	hdrLocation           = []byte("Location")
	hdrClientCN           = []byte("X-Client-Cert-CN")
	strCommaSpace         = []byte(", ")
	msgHeaderTimeout      = []byte("Request header not received in time")
	errNoSnapshotResponse = []byte(`{"error_code":"APIG.0202","error_msg":"Gateway has no config yet"}`)
)

// reqState is the per-request working set. It is pooled, and every buffer
// in it grows once and is then reused, which is what keeps the request path
// free of allocations.
type reqState struct {
	ctx   *fasthttp.RequestCtx
	snap  *snapshot
	route *routeState
	// up is the upstream called, and to its timeouts: the route's, or the
	// one traffic-split chose (respond).
	up *upstreamState
	to transport.Timeouts
	// retries is up's retries for this request (a discovered upstream's
	// follow its node set), set by forward.
	retries int

	rreq  router.Request
	match router.Match

	upReq   fasthttp.Request
	reqBody clientBody
	bodyBuf []byte // a buffered request body (up to transport.StreamThreshold)
	xo      transport.Options
	tried   balancer.Tried
	// pr is the request as plugin steps see it: the consumer, rate-limit
	// state and a rejection's shape live there.
	pr plugin.Request

	reqID      []byte
	peer       netip.Addr
	clientIP   netip.Addr
	clientIPB  []byte
	peerB      []byte
	underscore bool   // a request header name holds '_' (checkHead)
	owned      uint32 // own* bits: the hop-by-hop and gateway headers the client sent (checkHead)
	connLines  int    // Connection header lines (checkHead)
	portB      []byte
	scheme     []byte        // strHTTP or strHTTPS, by listener
	tlsConn    *tlsedge.Conn // the client's TLS connection; nil on plain HTTP
	redirected bool          // answered by the gateway: an https redirect or a plugin's own response (serve)
	tunneled   bool          // upgraded: the tunnel writes the access log line when it ends
	keyBuf     []byte
	uriBuf     []byte
	hdrBuf     []byte
	errBuf     []byte

	start          time.Time
	attempts       int
	bytesOut       int
	upstreamAddr   string
	upstreamStatus int
	upstreamDur    time.Duration
	errType        errType
}

var statePool = sync.Pool{New: func() any {
	st := &reqState{}
	st.pr.Vars = st
	return st
}}

func (st *reqState) reset() {
	st.upReq.Reset()
	st.reqBody = clientBody{}
	if cap(st.bodyBuf) > maxRetainedBody {
		st.bodyBuf = nil // a rare large body does not pin its buffer in the pool
	}
	st.ctx, st.snap, st.route, st.up = nil, nil, nil, nil
	st.rreq = router.Request{}
	st.pr.Reset()
	st.pr.Vars = st
	st.pr.Status, st.attempts, st.upstreamStatus, st.upstreamDur, st.bytesOut = 0, 0, 0, 0, 0
	st.upstreamAddr = ""
	st.errType = errNone
	st.tlsConn, st.redirected, st.tunneled = nil, false, false
}

// Var implements router.VarSource over the request being served.
func (st *reqState) Var(kind router.VarKind, name []byte) []byte {
	ctx := st.ctx
	switch kind {
	case router.VarURI:
		return st.match.Path
	case router.VarRequestURI:
		return ctx.RequestURI()
	case router.VarHost:
		return ctx.Host()
	case router.VarMethod:
		return ctx.Method()
	case router.VarRemoteAddr:
		return st.clientIPB
	case router.VarScheme:
		return st.scheme
	case router.VarServerPort:
		return st.serverPort()
	case router.VarArg:
		return ctx.QueryArgs().PeekBytes(name)
	case router.VarHTTP:
		return ctx.Request.Header.PeekBytes(name)
	case router.VarCookie:
		return ctx.Request.Header.CookieBytes(name)
	case router.VarPath:
		if v, ok := st.pr.PathParam(name); ok {
			return v
		}
		for i := range st.match.Params {
			if st.match.Params[i].Name == b2s(name) {
				return st.match.Params[i].Value
			}
		}
	case router.VarConsumerName:
		return st.pr.Consumer
	case router.VarSSLClientCN, router.VarSSLClientVerify:
		var cn []byte
		verified := false
		if st.tlsConn != nil {
			cn, verified = st.tlsConn.ClientCN()
		}
		switch {
		case kind == router.VarSSLClientCN:
			return cn
		case verified:
			return strSuccess
		}
		return strNone
	}
	return nil
}

func (st *reqState) serverPort() []byte {
	if len(st.portB) == 0 {
		if a, ok := st.ctx.LocalAddr().(*net.TCPAddr); ok {
			st.portB = strconv.AppendInt(st.portB[:0], int64(a.Port), 10)
		}
	}
	return st.portB
}

// maxRetainedBody is the largest request-body buffer a pooled reqState
// keeps between requests.
const maxRetainedBody = 256 << 10

// admittedKey is the user value under which ExpectHandler leaves the state
// of a request it admitted for Handler to carry on with.
type ctxKey uint8

const admittedKey ctxKey = 0

// Handler is the data-plane fasthttp handler.
func (g *Gateway) Handler(ctx *fasthttp.RequestCtx) {
	var st *reqState
	if ctx.Request.MayContinue() {
		// ExpectHandler already ran the checks and plugins.
		st, _ = ctx.UserValue(admittedKey).(*reqState)
		if st != nil {
			ctx.RemoveUserValue(admittedKey)
			st.errType = g.respond(st)
			g.finish(st)
			return
		}
	}
	st = g.begin(ctx)
	if st == nil {
		return
	}
	st.errType = g.serve(st, st.start)
	if st.errType == errNone && !st.redirected {
		st.errType = g.respond(st)
	}
	g.finish(st)
}

// ExpectHandler answers "Expect: 100-continue" only once the request has
// passed routing and every plugin, so that a client is not invited to
// upload a body that key-auth or throttling will refuse. A refused request
// gets its error response (fasthttp then closes the connection, since the
// client may already be sending the body).
func (g *Gateway) ExpectHandler(ctx *fasthttp.RequestCtx) int {
	st := g.begin(ctx)
	if st == nil {
		return ctx.Response.StatusCode()
	}
	st.errType = g.serve(st, st.start)
	if st.errType == errNone && !st.redirected {
		if st.pr.Answer == nil {
			ctx.SetUserValue(admittedKey, st)
			return fasthttp.StatusContinue
		}
		// A mock or a breaker's downgrade answers without the body.
		st.errType = g.respond(st)
	}
	g.finish(st)
	return ctx.Response.StatusCode()
}

// begin takes a request state for ctx, or answers 503 and returns nil when
// no config is serving yet.
func (g *Gateway) begin(ctx *fasthttp.RequestCtx) *reqState {
	s := g.snap.Load()
	if s == nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetContentType("application/json")
		ctx.SetBody(errNoSnapshotResponse)
		return nil
	}
	st := statePool.Get().(*reqState)
	st.start = time.Now()
	st.ctx, st.snap = ctx, s

	if id := ctx.Request.Header.PeekBytes(hdrRequestID); len(id) > 0 && len(id) <= maxClientRequestID {
		st.reqID = append(st.reqID[:0], id...)
	} else {
		st.reqID = appendRequestID(st.reqID[:0])
	}
	st.portB = st.portB[:0]
	st.scheme = strHTTP
	if cc := clientConnOf(ctx); cc != nil && cc.tls != nil {
		st.scheme, st.tlsConn = strHTTPS, cc.tls
	}
	st.peer = peerAddr(ctx)
	st.peerB = st.peer.AppendTo(st.peerB[:0])
	st.clientIP = s.realIP.clientIP(ctx, st.peer)
	st.clientIPB = st.clientIP.AppendTo(st.clientIPB[:0])
	return st
}

// finish writes the error response if there is one, the rate-limit
// headers, metrics and the access log line, and releases st.
func (g *Gateway) finish(st *reqState) {
	ctx, s := st.ctx, st.snap
	if st.errType == errClientClosed {
		// Nobody is there to read an answer: close without one.
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(closeHijacked)
	} else if st.errType != errNone {
		g.fail(st)
	}
	ctx.Response.Header.SetBytesKV(hdrRequestID, st.reqID)
	if st.pr.Rate.Set {
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], st.pr.Rate.Limit, 10)
		ctx.Response.Header.SetBytesKV(hdrRateLimit, st.hdrBuf)
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], st.pr.Rate.Remaining, 10)
		ctx.Response.Header.SetBytesKV(hdrRateRemaining, st.hdrBuf)
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], ceilSeconds(st.pr.Rate.Reset), 10)
		ctx.Response.Header.SetBytesKV(hdrRateReset, st.hdrBuf)
		if st.pr.Rate.RetryAfter {
			ctx.Response.Header.SetBytesKV(hdrRetryAfter, st.hdrBuf)
		}
	}
	if st.route != nil && st.errType != errClientClosed && !st.redirected && st.route.chain.HasResponseSteps() {
		st.route.chain.OnResponse(&st.pr)
	}

	elapsed := time.Since(st.start)
	rm := &s.noRoute
	if st.route != nil {
		rm = &st.route.m
	}
	code := ctx.Response.StatusCode()
	if st.errType == errClientClosed {
		code = errDefs[errClientClosed].status
	}
	rm.count(code, elapsed)
	if n := ctx.Request.Header.ContentLength(); n > 0 {
		rm.bytesIn.Add(float64(n))
	}
	// What is written to the client: the body in hand, or for a streamed
	// body what the stream copies, counted when it closes.
	switch {
	case st.errType == errClientClosed, ctx.IsHead():
	case ctx.Response.IsBodyStream():
		// A node's stream, or gzip's compressing one around it.
		if rsp, ok := ctx.Response.BodyStream().(interface{ CountInto(transport.Adder) }); ok {
			rsp.CountInto(&rm.bytesOut)
		}
		st.bytesOut = max(ctx.Response.Header.ContentLength(), 0)
	default:
		st.bytesOut = len(ctx.Response.Body())
		if st.bytesOut > 0 {
			rm.bytesOut.Add(float64(st.bytesOut))
		}
	}
	if g.access.enabled() && !st.tunneled {
		g.access.log(st, code, elapsed)
	}
	st.reset()
	statePool.Put(st)
}

func closeHijacked(net.Conn) {}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// serve runs one request through checks, matching and plugins; it returns
// the error to answer with, or errNone when the request may be forwarded.
func (g *Gateway) serve(st *reqState, now time.Time) errType {
	ctx, s := st.ctx, st.snap
	h := &ctx.Request.Header

	// Ambiguous framing is refused before anything else reads the body:
	// fasthttp lets Transfer-Encoding win over Content-Length, but a
	// request carrying both is how smuggling starts (routing.md).
	cl := h.ContentLength()
	if cl == -1 && hasHeader(h.RawHeaders(), hdrContentLength) {
		ctx.SetConnectionClose()
		return errBadRequest
	}
	if s.maxBody > 0 && int64(cl) > s.maxBody {
		ctx.SetConnectionClose() // the unread body would be parsed as the next request
		return errEntityTooLarge
	}
	// What fasthttp accepts but must not be forwarded (edge.go); the
	// connection is closed since the framing of what follows is unknown.
	if t := s.edge.checkHead(st); t != errNone {
		ctx.SetConnectionClose()
		return t
	}
	if !applyTarget(h) {
		ctx.SetConnectionClose()
		return errBadRequest
	}

	st.rreq.Method = ctx.Method()
	st.rreq.Host = ctx.Host()
	st.rreq.Path = ctx.Request.URI().PathOriginal()
	st.rreq.Vars = st
	s.rt.Match(&st.rreq, &st.match)
	switch st.match.Status {
	case 0:
	case fasthttp.StatusMethodNotAllowed:
		ctx.Response.Header.SetBytesKV(hdrAllow, st.match.Allow)
		return errMethodNotAllowed
	case fasthttp.StatusBadRequest:
		return errBadRequest
	default:
		return errNotFound
	}
	rs := s.routes[st.match.Route.Seq]
	st.route = rs
	if rs.httpsRedirect && st.tlsConn == nil {
		return g.redirectHTTPS(st)
	}

	st.pr.Ctx, st.pr.Now, st.pr.ClientIP, st.pr.ClientIPB = ctx, now, st.clientIP, st.clientIPB
	st.pr.Path, st.pr.RequestID = st.match.UpstreamPath, st.reqID
	st.pr.RouteID, st.pr.RouteScope = rs.id, rs.scope
	if t := rs.chain.OnRequest(&st.pr); t != errNone {
		return t
	}
	if st.pr.Answered {
		st.redirected = true // a step wrote the response: nothing is forwarded
	}
	return errNone
}

// redirectHTTPS answers a plain-HTTP request to a service with
// https_redirect: 308 to the same host (on the TLS listener's port) and
// URI. 308 keeps the method and body for every method.
func (g *Gateway) redirectHTTPS(st *reqState) errType {
	ctx := st.ctx
	host := ctx.Host()
	port := g.tlsPort.Load()
	if len(host) == 0 || port == nil {
		return errBadRequest
	}
	if host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i > 0 {
			host = host[:i+1]
		}
	} else if i := bytes.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	st.hdrBuf = append(append(append(append(st.hdrBuf[:0], strHTTPS...), "://"...), host...), *port...)
	st.hdrBuf = append(st.hdrBuf, ctx.RequestURI()...)
	ctx.Response.SetStatusCode(fasthttp.StatusPermanentRedirect)
	ctx.Response.Header.SetBytesKV(hdrLocation, st.hdrBuf)
	if ctx.Request.Header.ContentLength() != 0 {
		ctx.SetConnectionClose() // the body is not read
	}
	st.redirected = true
	return errNone
}

// setForwarded sets one X-Forwarded-* header on the upstream request: a
// trusted peer's first value when it sent one (it terminated the client
// connection), the gateway's own otherwise. Other copies are deleted.
func setForwarded(up, in *fasthttp.RequestHeader, name, own []byte, trusted, present bool) {
	if !present {
		up.SetBytesKV(name, own)
		return
	}
	v := own
	if trusted {
		if prior := in.PeekBytes(name); len(prior) > 0 {
			v = prior
		}
	}
	up.DelBytes(name)
	up.SetBytesKV(name, v)
}

// hasHeader reports whether raw request headers contain a header named
// name (lower case), compared case-insensitively.
func hasHeader(raw, name []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], b2s(name)) {
			return true
		}
	}
	return false
}

// appendQueryWithout re-encodes the query without the argument skip (nil:
// none) and those in drop.
func appendQueryWithout(dst []byte, args *fasthttp.Args, skip []byte, drop [][]byte) []byte {
	first := true
next:
	for k, v := range args.All() {
		if skip != nil && bytes.Equal(k, skip) {
			continue
		}
		for _, d := range drop {
			if bytes.Equal(k, d) {
				continue next
			}
		}
		if !first {
			dst = append(dst, '&')
		}
		first = false
		dst = fasthttp.AppendQuotedArg(dst, k)
		if len(v) > 0 {
			dst = append(dst, '=')
			dst = fasthttp.AppendQuotedArg(dst, v)
		}
	}
	return dst
}

// fail writes the error response for st.errType.
func (g *Gateway) fail(st *reqState) {
	ctx := st.ctx
	allow := st.match.Allow
	closeConn := ctx.Response.ConnectionClose() // write resets the response
	st.errBuf = st.snap.responses.write(ctx, st.errType, st.reqID, st.pr.Message, st.errBuf)
	if closeConn {
		ctx.SetConnectionClose()
	}
	if st.errType == errMethodNotAllowed {
		ctx.Response.Header.SetBytesKV(hdrAllow, allow)
	}
	if st.pr.Challenge != nil {
		ctx.Response.Header.SetBytesKV(hdrWWWAuthenticate, st.pr.Challenge)
	}
	if st.pr.Status != 0 {
		ctx.Response.SetStatusCode(st.pr.Status)
	}
	if st.pr.Body != nil {
		ctx.Response.SetBody(st.pr.Body)
	}
}

// errorHandler answers requests fasthttp could not parse, in the gateway's
// error format.
func (g *Gateway) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	s := g.snap.Load()
	if s == nil {
		ctx.Error("bad request", fasthttp.StatusBadRequest)
		return
	}
	t := errBadRequest
	var msg []byte
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		t = errHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		t = errEntityTooLarge
	case transport.IsTimeout(err):
		// client_header_timeout: the head did not arrive in time (nginx
		// answers 408 too).
		t, msg = errRequestTimeout, msgHeaderTimeout
	}
	id := appendRequestID(nil)
	s.responses.write(ctx, t, id, msg, nil)
	ctx.Response.Header.SetBytesKV(hdrRequestID, id)
	s.noRoute.codes.inc(ctx.Response.StatusCode()) // every snapshot has the no-route slot: never reused
}
