package proxy

import (
	"bytes"

	"gateway/transport"
)

// prepareRequest builds the upstream request in st.upReq from the client's:
// headers without hop-by-hop ones, the forwarding and identity headers the
// gateway owns, the upstream path and query, and the body (buffered, or
// streamed through), with the attempt options in st.xo. It returns the
// client's error when its body could not be read.
func (g *Gateway) prepareRequest(st *reqState) errType {
	ctx := st.ctx
	req := &st.upReq

	ctx.Request.Header.CopyTo(&req.Header)
	removeRequestHopHeaders(&req.Header, ctx.Request.Header.PeekBytes(strConnection), st.owned)
	if st.connLines > 1 {
		removeConnectionLines(ctx.Request.Header.RawHeaders(), &req.Header)
	}
	req.Header.ResetConnectionClose()

	// Path and query: the normalised (and maybe stripped) path, or
	// proxy-rewrite's (after which the query goes with '&' if it has a
	// query of its own), the query as it came.
	path, sep := st.match.UpstreamPath, byte('?')
	if st.pr.UpstreamURI != nil {
		path = st.pr.UpstreamURI
		if bytes.IndexByte(path, '?') >= 0 {
			sep = '&'
		}
	}
	st.uriBuf = append(st.uriBuf[:0], path...)
	if q := ctx.URI().QueryString(); len(q) > 0 && !st.pr.UpstreamURIRaw {
		st.uriBuf = append(st.uriBuf, sep)
		if st.pr.HideQuery != nil || len(st.pr.DropQuery) > 0 {
			st.uriBuf = appendQueryWithout(st.uriBuf, ctx.QueryArgs(), st.pr.HideQuery, st.pr.DropQuery)
			if st.uriBuf[len(st.uriBuf)-1] == sep {
				st.uriBuf = st.uriBuf[:len(st.uriBuf)-1]
			}
		} else {
			st.uriBuf = append(st.uriBuf, q...)
		}
	}
	if len(st.pr.ExtraQuery) > 0 { // backend_params
		if bytes.IndexByte(st.uriBuf, '?') >= 0 {
			st.uriBuf = append(st.uriBuf, '&')
		} else {
			st.uriBuf = append(st.uriBuf, '?')
		}
		st.uriBuf = append(st.uriBuf, st.pr.ExtraQuery...)
	}
	req.Header.SetRequestURIBytes(st.uriBuf)
	isHead := ctx.IsHead()
	if st.pr.UpstreamMethod != nil {
		req.Header.SetMethodBytes(st.pr.UpstreamMethod)
		isHead = false // proxy-rewrite never sets HEAD
	}

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
	// Client copies are deleted only when checkHead saw them (st.owned).
	st.hdrBuf = st.hdrBuf[:0]
	if st.owned&ownXFF != 0 {
		for _, prior := range ctx.Request.Header.PeekAll(b2s(hdrXFF)) {
			if len(prior) > 0 {
				st.hdrBuf = append(append(st.hdrBuf, prior...), strCommaSpace...)
			}
		}
		h.DelBytes(hdrXFF)
	}
	st.hdrBuf = append(st.hdrBuf, st.peerB...)
	h.SetBytesKV(hdrXFF, st.hdrBuf)
	trusted := st.snap.realIP.isTrusted(st.peer)
	setForwarded(h, &ctx.Request.Header, hdrXFProto, st.scheme, trusted, st.owned&ownXFProto != 0)
	setForwarded(h, &ctx.Request.Header, hdrXFHost, ctx.Host(), trusted, st.owned&ownXFHost != 0)
	setForwarded(h, &ctx.Request.Header, hdrXFPort, st.serverPort(), trusted, st.owned&ownXFPort != 0)
	if st.owned&ownXRealIP != 0 {
		h.DelBytes(hdrXRealIP)
	}
	h.SetBytesKV(hdrXRealIP, st.clientIPB)
	if st.owned&ownRequestID != 0 {
		h.DelBytes(hdrRequestID)
	}
	h.SetBytesKV(hdrRequestID, st.reqID)
	// Identity headers are the gateway's to set: a client must not be able
	// to claim a consumer on a route without key-auth.
	if st.owned&(ownConsumer|ownCredential|ownCustomID) != 0 {
		h.DelBytes(hdrConsumer)
		h.DelBytes(hdrCredential)
		h.DelBytes(hdrCustomID)
	}
	if st.pr.Consumer != nil {
		h.SetBytesKV(hdrConsumer, st.pr.Consumer)
		h.SetBytesKV(hdrCredential, st.pr.App)
		if st.pr.CustomID != nil {
			h.SetBytesKV(hdrCustomID, st.pr.CustomID)
		}
	}
	// The verified client certificate's CN, only from mTLS.
	if st.owned&ownClientCN != 0 {
		h.DelBytes(hdrClientCN)
	}
	if st.tlsConn != nil {
		if cn, ok := st.tlsConn.ClientCN(); ok {
			h.SetBytesKV(hdrClientCN, cn)
		}
	}
	for _, name := range st.pr.DropHeaders { // req_params pass_through 2
		h.DelBytes(name)
	}
	if st.pr.HideHeader != nil {
		h.DelBytes(st.pr.HideHeader)
	}

	// Expect was answered by the gateway (ExpectHandler): the body follows
	// without waiting, so the node has nothing to answer it with.
	if st.owned&ownExpect != 0 {
		h.DelBytes(hdrExpect)
	}

	// Body: small bodies are read whole first, so that an attempt can be
	// repeated and a client that fails mid-body never reaches a node; large
	// and chunked ones stream through once.
	o := &st.xo
	*o = transport.Options{To: st.to, IsHead: isHead, MaxResponseHeader: st.snap.maxRespHeader, ReplayableBody: true}
	st.reqBody = clientBody{inner: ctx.RequestBodyStream(), limit: st.snap.maxBody, conn: clientConnOf(ctx), check: st.pr.BodyCheck}
	switch cl := ctx.Request.Header.ContentLength(); {
	case cl == 0 || cl == -2:
		if !st.reqBody.verify() {
			return g.clientBodyFailed(st)
		}
	case cl > 0 && cl <= transport.StreamThreshold && st.reqBody.inner == nil:
		// The whole body is already in memory (a server without
		// StreamRequestBody, as in-process tests run the handler).
		if st.reqBody.check != nil {
			st.reqBody.check.Write(ctx.Request.Body())
			if !st.reqBody.verify() {
				return g.clientBodyFailed(st)
			}
		}
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
	return errNone
}
