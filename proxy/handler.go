package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/balancer"
	"gateway/healthcheck"
	"gateway/ratelimit"
	"gateway/router"
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
	hdrAllow              = []byte("Allow")
	hdrRetryAfter         = []byte("Retry-After")
	hdrRateLimit          = []byte("X-RateLimit-Limit")
	hdrRateRemaining      = []byte("X-RateLimit-Remaining")
	hdrRateReset          = []byte("X-RateLimit-Reset")
	hdrContentLength      = []byte("content-length")
	hdrExpect             = []byte("Expect")
	strHTTP               = []byte("http")
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

	rreq  router.Request
	match router.Match

	upReq   fasthttp.Request
	reqBody clientBody
	bodyBuf []byte // a buffered request body (up to transport.StreamThreshold)
	xo      transport.Options
	tried   balancer.Tried
	checks  []ratelimit.Check

	reqID      []byte
	peer       netip.Addr
	clientIP   netip.Addr
	clientIPB  []byte
	peerB      []byte
	underscore bool // a request header name holds '_' (checkHead)
	connLines  int  // Connection header lines (checkHead)
	portB      []byte
	consumer   []byte
	app        []byte
	hideHdr    []byte
	hideQuery  []byte
	keyBuf     []byte
	uriBuf     []byte
	hdrBuf     []byte
	errBuf     []byte

	start          time.Time
	rate           rateState
	status         int    // limit-count's rejected_code overrides the error status
	body           []byte // and its rejected_msg the body
	errMsg         []byte // a plugin's message for error_msg (ip-restriction)
	attempts       int
	bytesOut       int
	upstreamAddr   string
	upstreamStatus int
	upstreamDur    time.Duration
	errType        errType
}

var statePool = sync.Pool{New: func() any {
	return &reqState{checks: make([]ratelimit.Check, 0, 4)}
}}

func (st *reqState) reset() {
	st.upReq.Reset()
	st.reqBody = clientBody{}
	if cap(st.bodyBuf) > maxRetainedBody {
		st.bodyBuf = nil // a rare large body does not pin its buffer in the pool
	}
	st.ctx, st.snap, st.route = nil, nil, nil
	st.rreq = router.Request{}
	st.consumer, st.app, st.hideHdr, st.hideQuery, st.body, st.errMsg = nil, nil, nil, nil, nil, nil
	st.rate = rateState{}
	st.status, st.attempts, st.upstreamStatus, st.upstreamDur, st.bytesOut = 0, 0, 0, 0, 0
	st.upstreamAddr = ""
	st.errType = errNone
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
		return strHTTP
	case router.VarServerPort:
		return st.serverPort()
	case router.VarArg:
		return ctx.QueryArgs().PeekBytes(name)
	case router.VarHTTP:
		return ctx.Request.Header.PeekBytes(name)
	case router.VarCookie:
		return ctx.Request.Header.CookieBytes(name)
	case router.VarPath:
		for i := range st.match.Params {
			if st.match.Params[i].Name == b2s(name) {
				return st.match.Params[i].Value
			}
		}
	case router.VarConsumerName:
		return st.consumer
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
			st.errType = g.forward(st, st.start)
			g.finish(st)
			return
		}
	}
	st = g.begin(ctx)
	if st == nil {
		return
	}
	st.errType = g.serve(st, st.start)
	if st.errType == errNone {
		st.errType = g.forward(st, st.start)
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
	if st.errType == errNone {
		ctx.SetUserValue(admittedKey, st)
		return fasthttp.StatusContinue
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
	if st.rate.set {
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], st.rate.limit, 10)
		ctx.Response.Header.SetBytesKV(hdrRateLimit, st.hdrBuf)
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], st.rate.remaining, 10)
		ctx.Response.Header.SetBytesKV(hdrRateRemaining, st.hdrBuf)
		st.hdrBuf = strconv.AppendInt(st.hdrBuf[:0], ceilSeconds(st.rate.reset), 10)
		ctx.Response.Header.SetBytesKV(hdrRateReset, st.hdrBuf)
		if st.rate.retryAfter {
			ctx.Response.Header.SetBytesKV(hdrRetryAfter, st.hdrBuf)
		}
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
	rm.codes.inc(code)
	rm.duration.Observe(elapsed.Seconds())
	if n := ctx.Request.Header.ContentLength(); n > 0 {
		rm.bytesIn.Add(float64(n))
	}
	// What is written to the client: the body in hand, or for a streamed
	// body what the stream copies, counted when it closes.
	switch {
	case st.errType == errClientClosed, ctx.IsHead():
	case ctx.Response.IsBodyStream():
		if rsp, ok := ctx.Response.BodyStream().(*transport.ResponseStream); ok {
			rsp.CountInto(rm.bytesOut)
		}
		st.bytesOut = max(ctx.Response.Header.ContentLength(), 0)
	default:
		st.bytesOut = len(ctx.Response.Body())
		if st.bytesOut > 0 {
			rm.bytesOut.Add(float64(st.bytesOut))
		}
	}
	if g.access.enabled() {
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

	if rs.ipr != nil && !rs.ipr.permits(st.clientIP) {
		st.errMsg = rs.ipr.message
		return errAccessDenied
	}
	if ka := rs.keyAuth; ka != nil {
		key := h.PeekBytes(ka.header)
		if len(key) > 0 {
			st.hideHdr = ka.header
		} else if key = ctx.QueryArgs().PeekBytes(ka.query); len(key) > 0 {
			st.hideQuery = ka.query
		} else {
			return errAuthMissing
		}
		c := ka.keys.lookup(key)
		if c == nil {
			return errAuthFailure
		}
		st.consumer, st.app = c.username, c.app
		if !ka.hide {
			st.hideHdr, st.hideQuery = nil, nil
		}
	}
	if b := rs.throttle; b != nil {
		ok, counter, res := b.policy.p.Admit(now, rs.scope, st.consumer, st.app, st.clientIPB, st.checks[:0])
		if !ok {
			b.throttled[counter].Inc()
			st.rate = rateState{set: true, limit: res.Limit, remaining: res.Remaining, reset: res.Reset, retryAfter: true}
			return errThrottled
		}
		st.rate.merge(res)
	}
	if lc := rs.limit; lc != nil {
		st.keyBuf = lc.key.appendKey(st.keyBuf[:0], st)
		if len(st.keyBuf) == 0 {
			st.keyBuf = append(st.keyBuf, st.clientIPB...)
		}
		ok, res := lc.c.Admit(now, xxhash.Sum64(st.keyBuf))
		if lc.showHeaders {
			st.rate.merge(res)
		}
		if !ok {
			lc.throttled.Inc()
			st.status, st.body = lc.rejectedCode, lc.rejectedBody
			if lc.showHeaders {
				st.rate = rateState{set: true, limit: res.Limit, remaining: res.Remaining, reset: res.Reset}
			}
			return errThrottled
		}
	}
	return errNone
}

// setForwarded sets one X-Forwarded-* header on the upstream request: a
// trusted peer's first value when it sent one (it terminated the client
// connection), the gateway's own otherwise. Other copies are deleted.
func setForwarded(up, in *fasthttp.RequestHeader, name, own []byte, trusted bool) {
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

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// forward builds the upstream request and runs the attempts.
func (g *Gateway) forward(st *reqState, start time.Time) errType {
	ctx, rs := st.ctx, st.route
	up := rs.up
	req := &st.upReq

	ctx.Request.Header.CopyTo(&req.Header)
	removeHopHeaders(&req.Header, ctx.Request.Header.PeekBytes(strConnection))
	if st.connLines > 1 {
		removeConnectionLines(ctx.Request.Header.RawHeaders(), &req.Header)
	}
	req.Header.ResetConnectionClose()

	// Path and query: the normalised (and maybe stripped) path, the query
	// as it came.
	st.uriBuf = append(st.uriBuf[:0], st.match.UpstreamPath...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		st.uriBuf = append(st.uriBuf, '?')
		if st.hideQuery != nil {
			st.uriBuf = appendQueryWithout(st.uriBuf, ctx.QueryArgs(), st.hideQuery)
			if st.uriBuf[len(st.uriBuf)-1] == '?' {
				st.uriBuf = st.uriBuf[:len(st.uriBuf)-1]
			}
		} else {
			st.uriBuf = append(st.uriBuf, q...)
		}
	}
	req.Header.SetRequestURIBytes(st.uriBuf)

	// Forwarding headers. A trusted peer's X-Forwarded-Proto/Host/Port are
	// kept (it terminated the client connection); anyone else's are replaced.
	// Every client copy of a header the gateway sets is deleted first:
	// fasthttp's Set replaces only the first of several lines, and the
	// others would reach the backend.
	h := &req.Header
	if st.underscore {
		st.snap.edge.dropUnderscoreHeaders(ctx.Request.Header.RawHeaders(), h)
	}
	// X-Forwarded-For: every line the client sent, in order, then the
	// peer (as Go's ReverseProxy does), on one line.
	st.hdrBuf = st.hdrBuf[:0]
	for _, prior := range ctx.Request.Header.PeekAll(b2s(hdrXFF)) {
		if len(prior) > 0 {
			st.hdrBuf = append(append(st.hdrBuf, prior...), strCommaSpace...)
		}
	}
	st.hdrBuf = append(st.hdrBuf, st.peerB...)
	h.DelBytes(hdrXFF)
	h.SetBytesKV(hdrXFF, st.hdrBuf)
	trusted := st.snap.realIP.isTrusted(st.peer)
	setForwarded(h, &ctx.Request.Header, hdrXFProto, strHTTP, trusted)
	setForwarded(h, &ctx.Request.Header, hdrXFHost, ctx.Host(), trusted)
	setForwarded(h, &ctx.Request.Header, hdrXFPort, st.serverPort(), trusted)
	h.DelBytes(hdrXRealIP)
	h.SetBytesKV(hdrXRealIP, st.clientIPB)
	h.DelBytes(hdrRequestID)
	h.SetBytesKV(hdrRequestID, st.reqID)
	// Identity headers are the gateway's to set: a client must not be able
	// to claim a consumer on a route without key-auth.
	h.DelBytes(hdrConsumer)
	h.DelBytes(hdrCredential)
	if st.consumer != nil {
		h.SetBytesKV(hdrConsumer, st.consumer)
		h.SetBytesKV(hdrCredential, st.app)
	}
	if st.hideHdr != nil {
		h.DelBytes(st.hideHdr)
	}

	// Expect was answered by the gateway (ExpectHandler): the body follows
	// without waiting, so the node has nothing to answer it with.
	h.DelBytes(hdrExpect)

	// Body: small bodies are read whole first, so that an attempt can be
	// repeated and a client that fails mid-body never reaches a node; large
	// and chunked ones stream through once.
	o := &st.xo
	*o = transport.Options{To: rs.to, IsHead: ctx.IsHead(), MaxResponseHeader: st.snap.maxRespHeader, ReplayableBody: true}
	st.reqBody = clientBody{inner: ctx.RequestBodyStream(), limit: st.snap.maxBody, conn: clientConnOf(ctx)}
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl == 0 || cl == -2:
	case cl > 0 && cl <= transport.StreamThreshold && st.reqBody.inner == nil:
		// The whole body is already in memory (a server without
		// StreamRequestBody, as in-process tests run the handler).
		req.SetBodyRaw(ctx.Request.Body())
	case cl > 0 && cl <= transport.StreamThreshold:
		st.reqBody.cl = int64(cl)
		if cap(st.bodyBuf) < cl {
			st.bodyBuf = make([]byte, 0, cl)
		}
		var err error
		if st.bodyBuf, err = st.reqBody.readAll(st.bodyBuf[:0]); err != nil {
			return g.clientBodyFailed(st)
		}
		req.SetBodyRaw(st.bodyBuf)
	default:
		st.reqBody.cl = int64(cl)
		o.Body = &st.reqBody
		o.ReplayableBody = false
		req.SetBodyStream(&st.reqBody, cl)
	}

	var hash uint64
	if up.chash {
		st.keyBuf = up.key.appendKey(st.keyBuf[:0], st)
		if len(st.keyBuf) == 0 {
			st.keyBuf = append(st.keyBuf, st.clientIPB...)
		}
		hash = xxhash.Sum64(st.keyBuf)
	}

	idempotent := isIdempotent(ctx.Method())
	var deadline time.Time
	if up.retryTimeout > 0 {
		deadline = start.Add(up.retryTimeout)
	}
	st.tried.Reset()
	lastTimeout := false
	for {
		idx, failOpen := up.bal.Pick(&st.tried, hash)
		if idx < 0 {
			break
		}
		g.noteFailOpen(up, failOpen)
		st.tried.Add(idx)
		n := up.nodes[idx]
		switch up.passHost {
		case passHostNode:
			h.SetHostBytes(n.hostPort)
		case passHostRewrite:
			h.SetHostBytes(up.upstreamHost)
		default:
			if len(h.Host()) == 0 {
				h.SetHostBytes(n.hostPort)
			}
		}

		if o.Body != nil {
			// Writing an attempt consumes the stream setting; nothing of
			// the body has been read yet if we get here again.
			req.SetBodyStream(&st.reqBody, int(st.reqBody.cl))
		}
		ctx.Response.Reset()
		n.long.inflight.Add(1)
		t0 := time.Now()
		err := n.pool.RoundTrip(req, &ctx.Response, o)
		d := time.Since(t0)
		n.long.inflight.Add(-1)
		st.attempts++
		st.upstreamAddr = n.addr
		st.upstreamDur += d
		n.long.m.duration.Observe(d.Seconds())

		if err == nil {
			n.long.m.attempts[resultOK].Inc()
			st.upstreamStatus = ctx.Response.StatusCode()
			if n.health != nil {
				n.health.Observe(healthcheck.Outcome{Status: st.upstreamStatus})
			}
			removeHopHeaders(&ctx.Response.Header, ctx.Response.Header.PeekBytes(strConnection))
			return errNone
		}
		var cbe *clientBodyError
		if errors.As(err, &cbe) {
			// The client's fault: the node is not blamed and nothing is
			// retried (part of the body may have reached the node).
			ctx.Response.Reset()
			return g.clientBodyFailed(st)
		}
		var ae *transport.AttemptError
		if !errors.As(err, &ae) {
			ae = &transport.AttemptError{Phase: transport.PhaseSent, Op: transport.OpRead, Err: err}
		}
		lastTimeout = ae.Timeout
		result := resultError
		switch {
		case ae.Timeout:
			result = resultTimeout
		case ae.Phase == transport.PhaseConnect:
			result = resultConnectError
		}
		n.long.m.attempts[result].Inc()
		if n.health != nil {
			n.health.Observe(healthcheck.Outcome{TCPFailure: !ae.Timeout, Timeout: ae.Timeout})
		}
		g.logAttemptFailure(st, n, ae)

		// After any byte of the request was sent, only an idempotent
		// request whose body can be sent again whole may go to a node again.
		retryable := ae.Phase == transport.PhaseConnect || ae.Stale || (idempotent && o.ReplayableBody)
		if o.Body != nil && st.reqBody.n > 0 {
			retryable = false
		}
		if !retryable || st.attempts > up.retries || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
	}
	ctx.Response.Reset()
	if o.Body != nil {
		// Part of the client's body may still be unread.
		ctx.SetConnectionClose()
	}
	if lastTimeout {
		return errBackendTimeout
	}
	return errBackendUnavailable
}

// attemptLogInterval is the least time between two logged attempt failures
// of one node: a dead node under load must not flood the log.
const attemptLogInterval = time.Second

// logAttemptFailure logs why an attempt failed: the node, how far it got
// (connect, write, read) and the error (an x509 reason, "response header
// too large", a timeout...), rate-limited per node.
func (g *Gateway) logAttemptFailure(st *reqState, n *nodeState, ae *transport.AttemptError) {
	now := time.Now().UnixNano()
	last := n.long.lastFailLog.Load()
	if now-last < int64(attemptLogInterval) || !n.long.lastFailLog.CompareAndSwap(last, now) {
		n.long.suppressedFL.Add(1)
		return
	}
	route := ""
	if st.route != nil {
		route = st.route.id
	}
	g.log.Warn("upstream attempt failed",
		zap.String("upstream", n.upstream),
		zap.String("node", n.addr),
		zap.String("phase", ae.Op),
		zap.Bool("timeout", ae.Timeout),
		zap.String("error", ae.Err.Error()),
		zap.String("route", route),
		zap.ByteString("request_id", st.reqID),
		zap.Int64("suppressed", n.long.suppressedFL.Swap(0)),
	)
}

// clientBodyFailed answers a request whose body could not be read from the
// client, closing the connection: the rest of the body cannot be told
// apart from the next request.
func (g *Gateway) clientBodyFailed(st *reqState) errType {
	st.ctx.SetConnectionClose()
	if st.reqBody.err == nil {
		return errBadRequest
	}
	if ce := g.log.Check(zapcore.DebugLevel, "request body failed"); ce != nil {
		ce.Write(zap.ByteString("request_id", st.reqID), zap.Error(st.reqBody.err.err))
	}
	return st.reqBody.err.kind
}

// noteFailOpen counts picks made while no node is healthy and logs each
// transition into and out of that state once.
func (g *Gateway) noteFailOpen(up *upstreamState, failOpen bool) {
	if failOpen {
		up.allUnhealthy.Inc()
		if !up.long.failingOpen.Swap(true) {
			g.log.Warn("no healthy node: balancing over all nodes (fail open)")
		}
		return
	}
	if up.long.failingOpen.Load() && up.long.failingOpen.Swap(false) {
		g.log.Info("healthy nodes available again: fail open ended")
	}
}

// appendQueryWithout re-encodes the query without the argument skip.
func appendQueryWithout(dst []byte, args *fasthttp.Args, skip []byte) []byte {
	first := true
	for k, v := range args.All() {
		if bytes.Equal(k, skip) {
			continue
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
	st.errBuf = st.snap.responses.write(ctx, st.errType, st.reqID, st.errMsg, st.errBuf)
	if closeConn {
		ctx.SetConnectionClose()
	}
	if st.errType == errMethodNotAllowed {
		ctx.Response.Header.SetBytesKV(hdrAllow, allow)
	}
	if st.status != 0 {
		ctx.Response.SetStatusCode(st.status)
	}
	if st.body != nil {
		ctx.Response.SetBody(st.body)
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
	s.noRoute.codes.inc(ctx.Response.StatusCode())
}
