package proxy

import "time"

// respond answers a request that passed every request step: with the
// answer a step set (mocking, an open breaker's downgrade), or from the
// upstream. It records for response steps what the upstream did.
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
	if st.route.up == nil {
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
