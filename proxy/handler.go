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

	"gateway/balancer"
	"gateway/healthcheck"
	"gateway/ratelimit"
	"gateway/router"
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
	strHTTP               = []byte("http")
	strCommaSpace         = []byte(", ")
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

	upReq     fasthttp.Request
	reqStream requestStream
	tried     balancer.Tried
	checks    []ratelimit.Check

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

	rate           rateState
	status         int    // limit-count's rejected_code overrides the error status
	body           []byte // and its rejected_msg the body
	errMsg         []byte // a plugin's message for error_msg (ip-restriction)
	attempts       int
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
	st.reqStream = requestStream{}
	st.ctx, st.snap, st.route = nil, nil, nil
	st.rreq = router.Request{}
	st.consumer, st.app, st.hideHdr, st.hideQuery, st.body, st.errMsg = nil, nil, nil, nil, nil, nil
	st.rate = rateState{}
	st.status, st.attempts, st.upstreamStatus, st.upstreamDur = 0, 0, 0, 0
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

// Handler is the data-plane fasthttp handler.
func (g *Gateway) Handler(ctx *fasthttp.RequestCtx) {
	s := g.snap.Load()
	if s == nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetContentType("application/json")
		ctx.SetBody(errNoSnapshotResponse)
		return
	}
	start := time.Now()
	st := statePool.Get().(*reqState)
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

	st.errType = g.serve(st, start)
	if st.errType != errNone {
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

	elapsed := time.Since(start)
	rm := &s.noRoute
	if st.route != nil {
		rm = &st.route.m
	}
	code := ctx.Response.StatusCode()
	rm.codes.inc(code)
	rm.duration.Observe(elapsed.Seconds())
	if n := ctx.Request.Header.ContentLength(); n > 0 {
		rm.bytesIn.Add(float64(n))
	}
	if n := ctx.Response.Header.ContentLength(); n > 0 {
		rm.bytesOut.Add(float64(n))
	}
	if g.access.enabled() {
		g.access.log(st, code, elapsed)
	}
	st.reset()
	statePool.Put(st)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// serve runs one request through checks, matching, plugins and the
// upstream; it returns the error to answer with, or errNone when the
// response is in place.
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
	return g.forward(st, now)
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

	// Body: small bodies are buffered so that an attempt can be repeated;
	// large and chunked ones stream through once.
	var stream *requestStream
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl == 0 || cl == -2:
	case cl > 0 && cl <= streamThreshold:
		req.SetBodyRaw(ctx.Request.Body())
	default:
		stream = &st.reqStream
		*stream = requestStream{inner: ctx.RequestBodyStream(), sendTimeout: rs.to.send, limit: st.snap.maxBody}
		req.SetBodyStream(stream, cl)
	}

	var hash uint64
	if up.chash {
		st.keyBuf = up.key.appendKey(st.keyBuf[:0], st)
		if len(st.keyBuf) == 0 {
			st.keyBuf = append(st.keyBuf, st.clientIPB...)
		}
		hash = xxhash.Sum64(st.keyBuf)
	}

	isHead := ctx.IsHead()
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

		ctx.Response.Reset()
		n.long.inflight.Add(1)
		t0 := time.Now()
		err := n.pool.roundTrip(req, &ctx.Response, rs.to, isHead, stream)
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
		if errors.Is(err, errBodyTooLarge) {
			ctx.SetConnectionClose()
			return errEntityTooLarge
		}
		var ae *attemptError
		if !errors.As(err, &ae) {
			ae = &attemptError{phase: phaseSent, err: err}
		}
		lastTimeout = ae.timeout
		result := resultError
		switch {
		case ae.timeout:
			result = resultTimeout
		case ae.phase == phaseConnect:
			result = resultConnectError
		}
		n.long.m.attempts[result].Inc()
		if n.health != nil {
			n.health.Observe(healthcheck.Outcome{TCPFailure: !ae.timeout, Timeout: ae.timeout})
		}

		retryable := ae.phase == phaseConnect || (idempotent && stream == nil)
		if !retryable || st.attempts > up.retries || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
	}
	ctx.Response.Reset()
	if stream != nil {
		// Part of the client's body may still be unread.
		ctx.SetConnectionClose()
	}
	if lastTimeout {
		return errBackendTimeout
	}
	return errBackendUnavailable
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
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small), errors.Is(err, fasthttp.ErrSmallReadBuffer):
		t = errHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		t = errEntityTooLarge
	}
	id := appendRequestID(nil)
	s.responses.write(ctx, t, id, nil, nil)
	ctx.Response.Header.SetBytesKV(hdrRequestID, id)
	s.noRoute.codes.inc(ctx.Response.StatusCode())
}
