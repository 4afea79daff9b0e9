package main

import (
	"bufio"
	"net"
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/internal/wsframe"
)

// The demo's echo backends also speak just enough WebSocket (RFC 6455) to
// show the gateway's upgrade proxying: the opening handshake, then every
// message echoed back, until a close frame (echoed too) or the end of the
// connection. Messages are capped at demoWSMaxMessage bytes.

const demoWSMaxMessage = 1 << 20

// demoWSUpgrade answers a WebSocket opening handshake with 101 and echoes
// on the hijacked connection; it reports false for any other request.
func demoWSUpgrade(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	key := h.Peek("Sec-WebSocket-Key")
	if !h.ConnectionUpgrade() || !strings.EqualFold(string(h.Peek("Upgrade")), "websocket") || len(key) == 0 {
		return false
	}
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set("Upgrade", "websocket")
	ctx.Response.Header.Set("Connection", "Upgrade")
	ctx.Response.Header.Set("Sec-WebSocket-Accept", wsframe.Accept(key))
	ctx.Hijack(demoWSEcho)
	return true
}

func demoWSEcho(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		op, payload, err := wsframe.Read(br, demoWSMaxMessage)
		if err != nil {
			return
		}
		if err := wsframe.Write(c, op, payload, false); err != nil || op == wsframe.OpClose {
			return
		}
	}
}
