package proxy

import (
	"errors"
	"time"

	"github.com/cespare/xxhash/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/healthcheck"
	"gateway/transport"
)

// forward sends the request to the route's upstream: prepare it once, then
// attempts on the nodes the balancer picks until one answers or tryAgain
// says no (Caddy's prepareRequest / proxyLoopIteration / tryAgain).
func (g *Gateway) forward(st *reqState, start time.Time) errType {
	if t := g.prepareRequest(st); t != errNone {
		return t
	}
	g.prepareUpgrade(st)
	ctx, up := st.ctx, st.up

	var hash uint64
	if up.chash {
		st.keyBuf = up.key.Append(st.keyBuf[:0], st)
		if len(st.keyBuf) == 0 {
			st.keyBuf = append(st.keyBuf, st.clientIPB...)
		}
		hash = xxhash.Sum64(st.keyBuf)
	}
	var deadline time.Time
	if up.retryTimeout > 0 {
		deadline = start.Add(up.retryTimeout)
	}
	st.tried.Reset()
	// One node set for every attempt of the request: a discovered
	// upstream's may change meanwhile.
	bal, nodes := up.bal, up.nodes
	st.retries = up.retries
	if up.discovered {
		set := up.live.Load()
		bal, nodes, st.retries = set.bal, set.nodes, set.retries
	}
	lastTimeout := false
	idx, failOpen := bal.Pick(&st.tried, hash)
	for idx >= 0 {
		g.noteFailOpen(up, failOpen)
		st.tried.Add(idx)
		err := g.attempt(st, nodes[idx])
		if err == nil {
			if st.xo.Upgrade {
				return g.upgraded(st)
			}
			if !up.retriesStatus(st.upstreamStatus) || !g.mayResendAfterStatus(st, deadline) {
				return errNone
			}
			// retry_on_statuses: another node if one is left, else the
			// client gets this node's answer.
			if idx, failOpen = bal.Pick(&st.tried, hash); idx < 0 {
				return errNone
			}
			ctx.Response.Reset() // closes a streamed body
			continue
		}
		var cbe *clientBodyError
		if errors.As(err, &cbe) {
			// The client's fault: the node is not blamed and nothing is
			// retried (part of the body may have reached the node).
			ctx.Response.Reset()
			return g.clientBodyFailed(st)
		}
		ae := err.(*transport.AttemptError)
		lastTimeout = ae.Timeout
		if !g.tryAgain(st, ae, deadline) {
			break
		}
		idx, failOpen = bal.Pick(&st.tried, hash)
	}
	ctx.Response.Reset()
	if st.xo.Body != nil {
		// Part of the client's body may still be unread.
		ctx.SetConnectionClose()
	}
	if lastTimeout {
		return errBackendTimeout
	}
	return errBackendUnavailable
}

// attempt sends the request to node n once and reads its response head
// into the client's response; it records the attempt (metrics, passive
// health, the failure log). The error is a *clientBodyError (the client's)
// or a *transport.AttemptError.
func (g *Gateway) attempt(st *reqState, n *nodeState) error {
	ctx, up, req, o := st.ctx, st.up, &st.upReq, &st.xo
	h := &req.Header
	switch {
	case st.pr.UpstreamHost != nil: // proxy-rewrite's host
		h.SetHostBytes(st.pr.UpstreamHost)
	case up.passHost == passHostNode:
		h.SetHostBytes(n.hostPort)
	case up.passHost == passHostRewrite:
		h.SetHostBytes(up.upstreamHost)
	default:
		if len(h.Host()) == 0 {
			h.SetHostBytes(n.hostPort)
		}
	}
	if o.Body != nil {
		// Writing an attempt consumes the stream setting; nothing of the
		// body has been read yet if we get here again.
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
	counted := n.long.mref.current()
	if counted {
		n.long.m.duration.observe(d)
	}

	if err == nil {
		if counted {
			n.long.m.attempts[resultOK].Add(1)
		}
		st.upstreamStatus = ctx.Response.StatusCode()
		if n.health != nil {
			n.health.Observe(healthcheck.Outcome{Status: st.upstreamStatus})
		}
		removeHopHeaders(&ctx.Response.Header, ctx.Response.Header.PeekBytes(strConnection))
		return nil
	}
	var cbe *clientBodyError
	if errors.As(err, &cbe) {
		return err
	}
	var ae *transport.AttemptError
	if !errors.As(err, &ae) {
		ae = &transport.AttemptError{Phase: transport.PhaseSent, Op: transport.OpRead, Err: err}
	}
	result := resultError
	switch {
	case ae.Timeout:
		result = resultTimeout
	case ae.Phase == transport.PhaseConnect:
		result = resultConnectError
	}
	if counted {
		n.long.m.attempts[result].Add(1)
	}
	if n.health != nil {
		n.health.Observe(healthcheck.Outcome{TCPFailure: !ae.Timeout, Timeout: ae.Timeout})
	}
	g.logAttemptFailure(st, n, ae)
	return ae
}

// tryAgain decides whether a failed attempt may be followed by another
// (upstreams.md): a failure before anything was sent, for every method;
// after any byte of the request was sent, only an idempotent request whose
// body can be sent again whole; never past retries or retry_timeout.
func (g *Gateway) tryAgain(st *reqState, ae *transport.AttemptError, deadline time.Time) bool {
	o := &st.xo
	retryable := ae.Phase == transport.PhaseConnect || ae.Stale || (isIdempotent(st.ctx.Method()) && o.ReplayableBody)
	if (o.Body != nil && st.reqBody.n > 0) || (o.Upgrade && ae.Phase != transport.PhaseConnect) {
		retryable = false // an upgrade is retried on connect failures only
	}
	return retryable && g.retryBudget(st, deadline)
}

// mayResendAfterStatus reports whether a node's answer whose status is in
// retry_on_statuses may be followed by an attempt on another node. A
// status (502 and 503 included) is no proof that the request was not
// processed, so only by the rule for a request that was sent: an
// idempotent method whose body can be sent again whole (never an upgrade).
func (g *Gateway) mayResendAfterStatus(st *reqState, deadline time.Time) bool {
	o := &st.xo
	if !isIdempotent(st.ctx.Method()) || !o.ReplayableBody || o.Upgrade || (o.Body != nil && st.reqBody.n > 0) {
		return false
	}
	return g.retryBudget(st, deadline)
}

// retryBudget reports whether retries and retry_timeout allow another
// attempt.
func (g *Gateway) retryBudget(st *reqState, deadline time.Time) bool {
	return st.attempts <= st.retries && (deadline.IsZero() || !time.Now().After(deadline))
}

// retriesStatus reports whether status is in retry_on_statuses.
func (up *upstreamState) retriesStatus(status int) bool {
	for _, s := range up.retryOn {
		if s == status {
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
	if st.reqBody.err.msg != nil {
		st.pr.Message = st.reqBody.err.msg
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
