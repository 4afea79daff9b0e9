package proxy

import "time"

// respond answers a request that passed every request step: with the
// answer a step set (mocking, an open breaker's downgrade), or from the
// upstream (the route's, or the one traffic-split chose). It records for
// response steps what the upstream did.
func (g *Gateway) respond(st *reqState) errType {
	if a := st.pr.Answer; a != nil {
		if st.ctx.Request.Header.ContentLength() != 0 {
			// The body is not read: what is left of it cannot be told
			// apart from the next request.
			st.ctx.SetConnectionClose()
		}
		a.Write(&st.ctx.Response)
		return errNone
	}
	st.up, st.to = st.route.up, st.route.to
	if id := st.pr.Upstream; id != "" {
		// traffic-split chose a top-level upstream (validated at load).
		if up := st.snap.upstreams[id]; up != nil && up != st.up {
			st.up, st.to = up, withRouteTimeout(up.to, st.route.r.Config.Timeout)
		}
	}
	if st.up == nil {
		// A route without an upstream is valid only with an answer.
		return errBackendUnavailable
	}
	t0 := time.Now()
	t := g.forward(st, st.start)
	st.pr.Forwarded = true
	st.pr.UpstreamLatency = time.Since(t0)
	switch t {
	case errBackendTimeout, errBackendUnavailable:
		st.pr.UpstreamFailure = t
	}
	return t
}
