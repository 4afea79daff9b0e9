package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testnet"
	"gateway/internal/wsframe"
)

// Real WebSocket traffic through the gateway, with the frame codec of
// internal/wsframe: the opening handshake, masked client frames, unmasked
// node frames, close frames.

const (
	wsOpText   = wsframe.OpText
	wsOpBinary = wsframe.OpBinary
	wsOpClose  = wsframe.OpClose
)

func wsAccept(key []byte) string { return wsframe.Accept(key) }

func wsWriteFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	return wsframe.Write(w, op, payload, mask)
}

func wsReadFrame(r *bufio.Reader) (byte, []byte, error) { return wsframe.Read(r, 0) }

// wsEcho is a backend handler that upgrades WebSocket requests and echoes
// messages; after closeAfter messages (0: never) it closes the connection.
// A request that does not ask to upgrade gets 200 "plain".
func wsEcho(closeAfter int) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Request.Header
		if !h.ConnectionUpgrade() || !strings.EqualFold(string(h.Peek("Upgrade")), "websocket") {
			ctx.SetBodyString("plain")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.Header.Set("Upgrade", "websocket")
		ctx.Response.Header.Set("Connection", "Upgrade")
		ctx.Response.Header.Set("Sec-WebSocket-Accept", wsAccept(h.Peek("Sec-WebSocket-Key")))
		ctx.Hijack(func(c net.Conn) {
			br := bufio.NewReader(c)
			for i := 0; closeAfter == 0 || i < closeAfter; i++ {
				op, p, err := wsReadFrame(br)
				if err != nil {
					return
				}
				if err := wsWriteFrame(c, op, p, false); err != nil || op == wsOpClose {
					return
				}
			}
		})
	}
}

// wsClient is one client WebSocket connection.
type wsClient struct {
	c  net.Conn
	br *bufio.Reader
}

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

// wsDial sends a WebSocket opening handshake to the gateway and returns
// the response; the client is nil unless the response is a 101.
func wsDial(t *testing.T, addr, path string, extra ...string) (*wsClient, *fasthttp.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	return wsHandshake(t, c, path, extra...)
}

// wsHandshake is wsDial on a connection already made (TLS).
func wsHandshake(t *testing.T, c net.Conn, path string, extra ...string) (*wsClient, *fasthttp.Response) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a guard against a hang, not a measure
	req := "GET " + path + " HTTP/1.1\r\nHost: ws.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + wsKey + "\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	_, err := c.Write([]byte(req + "\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Header.Read(br))
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		require.NoError(t, resp.ReadBody(br, 0))
		c.Close()
		return nil, resp
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{c: c, br: br}, resp
}

func (w *wsClient) send(t *testing.T, op byte, p []byte) {
	t.Helper()
	require.NoError(t, wsWriteFrame(w.c, op, p, true))
}

func (w *wsClient) echo(t *testing.T, op byte, p []byte) {
	t.Helper()
	w.send(t, op, p)
	gotOp, got, err := wsReadFrame(w.br)
	require.NoError(t, err)
	require.Equal(t, op, gotOp)
	require.True(t, bytes.Equal(p, got), "echoed payload differs (%d bytes sent, %d back)", len(p), len(got))
}

// readEOF reads until the connection ends and returns the error that
// ended it.
func (w *wsClient) readEOF() error {
	_, err := io.Copy(io.Discard, w.br)
	if err == nil {
		return io.EOF
	}
	return err
}

func wsGatewayYAML(b *backend, route string) string {
	return `
services:
  - id: chat
    path_prefix: /
    strip_path_prefix: false
    upstream: ` + upstreamYAML(b) + `
    routes:
      - ` + route + `
`
}

func TestWebsocketEchoThroughGateway(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.NotNil(t, w, "status %d: %s", resp.StatusCode(), resp.Body())
	require.Equal(t, wsAccept([]byte(wsKey)), string(resp.Header.Peek("Sec-WebSocket-Accept")))
	require.True(t, resp.Header.ConnectionUpgrade(), "Connection: %q", resp.Header.Peek("Connection"))
	require.Equal(t, "websocket", string(resp.Header.Peek("Upgrade")))

	// The node was asked to upgrade.
	last := b.lastRequest()
	require.True(t, last.Header.ConnectionUpgrade())
	require.Equal(t, "websocket", string(last.Header.Peek("Upgrade")))

	w.echo(t, wsOpText, []byte("hello"))
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	w.echo(t, wsOpBinary, big)
	w.echo(t, wsOpText, []byte("after the big one"))

	require.Contains(t, scrape(t, tg.g), `gateway_websocket_connections_active{route="ws",service="chat"} 1`)
	require.Contains(t, scrape(t, tg.g), `gateway_websocket_connections_total{result="upgraded",route="ws",service="chat"} 1`)

	// A close handshake: the node answers and closes, so does the gateway.
	w.echo(t, wsOpClose, []byte{0x03, 0xe8})
	require.ErrorIs(t, w.readEOF(), io.EOF)
	w.c.Close() // the node's end reached the client as a half-close; the client closes too
	require.Eventually(t, func() bool { return tg.g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)
	m := scrape(t, tg.g)
	require.Contains(t, m, `gateway_websocket_connections_active{route="ws",service="chat"} 0`)
	// Bytes of the tunnel count in gateway_http_bytes_total.
	text := scrape(t, tg.g)
	require.Greater(t, sampleValue(t, text, `gateway_http_bytes_total{direction="in",service="chat"}`), float64(1<<20))
	require.Greater(t, sampleValue(t, text, `gateway_http_bytes_total{direction="out",service="chat"}`), float64(1<<20))
}

func TestWebsocketKeyAuthRefusesUpgradeWithoutKey(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, `
consumers: [{username: alice, plugins: {key-auth: {key: alice-key}}}]
`+wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true, plugins: {key-auth: {}}}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.Nil(t, w)
	require.Equal(t, fasthttp.StatusUnauthorized, resp.StatusCode())
	require.Zero(t, b.hits.Load(), "a refused upgrade must not reach the node")

	w, resp = wsDial(t, tg.addr, "/ws/chat", "apikey: alice-key")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpText, []byte("authorised"))
}

func TestWebsocketRouteWithoutEnableStripsUpgrade(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, wsGatewayYAML(b, `{id: plain, paths: ["/ws/*"]}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.Nil(t, w)
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "plain", string(resp.Body()))
	last := b.lastRequest()
	require.Empty(t, last.Header.Peek("Upgrade"))
	require.False(t, last.Header.ConnectionUpgrade())
}

func TestWebsocketNodeRefusingUpgradeIsRelayed(t *testing.T) {
	b := startBackend(t, "ws", func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		ctx.SetBodyString("no websocket for you")
	})
	tg := startGateway(t, wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.Nil(t, w)
	require.Equal(t, fasthttp.StatusForbidden, resp.StatusCode())
	require.Equal(t, "no websocket for you", string(resp.Body()))
	require.Contains(t, scrape(t, tg.g), `gateway_websocket_connections_total{result="refused",route="ws",service="chat"} 1`)
}

func TestWebsocketBackendCloseClosesClient(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(1))
	tg := startGateway(t, wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpText, []byte("one and done"))
	// The node closed after its echo: the client reads the end (a
	// half-close: the client may still send) and then closes.
	require.ErrorIs(t, w.readEOF(), io.EOF)
	w.send(t, wsOpText, []byte("still allowed to write"))
	w.c.Close()
	require.Eventually(t, func() bool { return tg.g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestWebsocketIdleTimeoutCloses(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true, websocket: {idle_timeout: 0.2}}`))

	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpText, []byte("then silence"))
	// Nothing either way: the gateway closes the tunnel.
	require.ErrorIs(t, w.readEOF(), io.EOF)
	require.Eventually(t, func() bool { return tg.g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestWebsocketRetriesConnectFailure(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	dead := testnet.DeadAddr(t)
	host, port, _ := net.SplitHostPort(dead)
	tg := startGateway(t, `
services:
  - id: chat
    upstream: {nodes: [{host: `+host+`, port: `+port+`}, `+strings.TrimSuffix(strings.TrimPrefix(upstreamYAML(b), "{nodes: ["), "]}")+`]}
    routes:
      - {id: ws, paths: ["/ws/*"], enable_websocket: true}
`)
	for range 4 {
		w, resp := wsDial(t, tg.addr, "/ws/chat")
		require.NotNil(t, w, "status %d", resp.StatusCode())
		w.echo(t, wsOpText, []byte("via the live node"))
	}
	require.Contains(t, scrape(t, tg.g), `gateway_upstream_attempts_total{node="`+dead+`",result="connect_error",upstream="chat"}`,
		"the dead node was tried and the upgrade retried on the live one")
}

func TestWebsocketShutdownClosesTunnels(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	g, addr, served := serveWSGateway(t, b)

	var clients []*wsClient
	for range 3 {
		w, resp := wsDial(t, addr, "/ws/chat")
		require.NotNil(t, w, "status %d", resp.StatusCode())
		w.echo(t, wsOpText, []byte("open"))
		clients = append(clients, w)
	}
	require.Equal(t, 3, g.tunnels.open())

	// The tunnels outlive the drain period: Shutdown closes them.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = g.Shutdown(ctx)
	<-served
	g.Close()
	require.Zero(t, g.tunnels.open())
	for _, w := range clients {
		require.ErrorIs(t, w.readEOF(), io.EOF)
	}
	// Shutdown returned once every tunnel left its set; their goroutines
	// (fasthttp's hijack goroutine and the copy it joins) then return
	// promptly. A leaked one would stay forever.
	require.Eventually(t, func() bool { return !strings.Contains(goroutines(), "proxy.(*tunnel)") },
		10*time.Second, 10*time.Millisecond, "a tunnel goroutine outlived Shutdown")

	// No new upgrade after shutdown.
	_, err := net.Dial("tcp", addr)
	require.Error(t, err)
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func TestWebsocketOverTLSListener(t *testing.T) {
	f := newTLSFixture(t)
	b := startBackend(t, "ws", wsEcho(1))
	tg := startTLSGateway(t, f.yaml(t, b, `
  - id: chat
    upstream_id: u
    routes:
      - {id: ws, paths: ["/ws/*"], enable_websocket: true}`))
	c, err := tls.Dial("tcp", tg.tlsAddr, &tls.Config{ServerName: "www.example.com", RootCAs: f.srv.Pool()})
	require.NoError(t, err)
	w, resp := wsHandshake(t, c, "/ws/chat")
	require.NotNil(t, w, "status %d: %s", resp.StatusCode(), resp.Body())
	w.echo(t, wsOpText, []byte("over wss"))
	// The node closed after one echo: it reaches the TLS client as its end.
	require.ErrorIs(t, w.readEOF(), io.EOF)
	w.c.Close()
	require.Eventually(t, func() bool { return tg.g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestWebsocketSurvivesReload(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))
	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpText, []byte("before"))

	// The route is gone from the new config: the open tunnel goes on, a
	// new upgrade finds no route.
	require.NoError(t, tg.g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+
		wsGatewayYAML(b, `{id: other, paths: ["/other"]}`))))
	w.echo(t, wsOpText, []byte("after the reload"))
	w2, resp := wsDial(t, tg.addr, "/ws/chat")
	require.Nil(t, w2)
	require.Equal(t, 404, resp.StatusCode())
	w.echo(t, wsOpText, []byte("still"))
}

func TestWebsocketAccessLogLineWhenTheTunnelEnds(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, "gateway: {access_log: {enabled: true, path: "+path+"}}\n"+
		wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))
	w, resp := wsDial(t, tg.addr, "/ws/chat?room=1", "X-Request-Id: ws-1")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w.echo(t, wsOpText, []byte("0123456789"))
	w.echo(t, wsOpClose, []byte{0x03, 0xe8})
	require.ErrorIs(t, w.readEOF(), io.EOF)
	w.c.Close()
	require.Eventually(t, func() bool { return tg.g.tunnels.open() == 0 }, 10*time.Second, 5*time.Millisecond)
	tg.g.Close() // flushes the buffered log

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 1, "one line per upgrade, when it ends: %s", data)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
	require.Equal(t, "ws-1", m["request_id"])
	require.Equal(t, "/ws/chat?room=1", m["uri"])
	require.EqualValues(t, 101, m["status"])
	require.EqualValues(t, 101, m["upstream_status"])
	require.Equal(t, "ws", m["route"])
	require.Equal(t, b.addr, m["upstream_addr"])
	// Client frames are masked (4-byte key): 2+4+10 and 2+4+2 bytes in;
	// the node's unmasked echoes 2+10 and 2+2 out.
	require.EqualValues(t, 24, m["bytes_in"])
	require.EqualValues(t, 16, m["bytes_out"])
	require.Contains(t, m, "duration_ms")
}

// Issue 15: 1,000 WebSocket connections held through 20 reloads, none
// dropped: each echoes after every reload.
func TestWebsocketManyConnectionsThroughReloads(t *testing.T) {
	conns, reloads := 1000, 20
	if testing.Short() {
		conns, reloads = 100, 5
	}
	b := startBackend(t, "ws", wsEcho(0))
	yaml := func(rev int) string {
		return "revision: r" + itoa(rev) + "\ngateway: {access_log: {enabled: false}}\n" +
			wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`)
	}
	tg := startGateway(t, yaml(0))
	clients := make([]*wsClient, conns)
	for i := range clients {
		w, resp := wsDial(t, tg.addr, "/ws/chat")
		require.NotNil(t, w, "connection %d: status %d", i, resp.StatusCode())
		clients[i] = w
	}
	require.Equal(t, conns, tg.g.tunnels.open())
	for r := 1; r <= reloads; r++ {
		require.NoError(t, tg.g.Apply(mustParse(t, yaml(r))))
		msg := []byte("reload " + itoa(r))
		for _, w := range clients {
			w.echo(t, wsOpText, msg)
		}
	}
	require.Equal(t, conns, tg.g.tunnels.open(), "no tunnel dropped")
}

// Throttling counts the upgrade request: with a limit of one, the second
// upgrade is refused (limit-count's rejected_code, 503 by default) and
// never reaches the node, while the first tunnel goes on.
func TestWebsocketUpgradeCountsAgainstLimit(t *testing.T) {
	b := startBackend(t, "ws", wsEcho(0))
	tg := startGateway(t, wsGatewayYAML(b,
		`{id: ws, paths: ["/ws/*"], enable_websocket: true, plugins: {limit-count: {count: 1, time_window: 3600, key_type: constant, key: x}}}`))
	w, resp := wsDial(t, tg.addr, "/ws/chat")
	require.NotNil(t, w, "status %d", resp.StatusCode())
	w2, resp := wsDial(t, tg.addr, "/ws/chat")
	require.Nil(t, w2)
	require.Equal(t, fasthttp.StatusServiceUnavailable, resp.StatusCode())
	require.EqualValues(t, 1, b.hits.Load())
	w.echo(t, wsOpText, []byte("the first tunnel is not throttled per message"))
}

// An upgrade the node answers while the gateway shuts down: fasthttp
// writes the 101 with Connection: close and closes the client connection
// instead of hijacking it. The tunnel must not be left holding the node's
// connection: the connection's close aborts it, the node sees its end, and
// Shutdown (with a context that never ends) returns.
func TestWebsocketUpgradeAnsweredDuringShutdownIsAborted(t *testing.T) {
	release := make(chan struct{})
	nodeDone := make(chan struct{})
	b := startBackend(t, "ws", func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.Header.Set("Upgrade", "websocket")
		ctx.Response.Header.Set("Connection", "Upgrade")
		ctx.Response.Header.Set("Sec-WebSocket-Accept", wsAccept(ctx.Request.Header.Peek("Sec-WebSocket-Key")))
		ctx.Hijack(func(c net.Conn) {
			_, _ = io.Copy(io.Discard, c) // until the gateway closes its side
			close(nodeDone)
		})
	})
	g, addr, served := serveWSGateway(t, b)

	type result struct {
		w    *wsClient
		resp *fasthttp.Response
	}
	dialed := make(chan result, 1)
	go func() {
		w, resp := wsDial(t, addr, "/ws/chat")
		dialed <- result{w, resp}
	}()
	require.Eventually(t, func() bool { return b.hits.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	shut := make(chan struct{})
	go func() { _ = g.Shutdown(context.Background()); close(shut) }()
	// The listener is closed once shutdown has begun.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
	close(release)

	r := <-dialed
	if r.w != nil {
		// Written as a 101, but not hijacked: the connection ends.
		require.True(t, r.resp.ConnectionClose(), "a 101 written during shutdown carries Connection: close")
		require.ErrorIs(t, r.w.readEOF(), io.EOF)
	}
	select {
	case <-nodeDone:
	case <-time.After(20 * time.Second): // a hang guard, not a measure
		t.Fatal("the node's connection of an aborted upgrade was never closed")
	}
	select {
	case <-shut:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown waits for a tunnel that will never run")
	}
	<-served
	g.Close()
	require.Zero(t, g.tunnels.open())
}

// serveWSGateway serves a ws route in front of b for a test that shuts the
// gateway down itself: served is closed when Serve returns.
func serveWSGateway(t *testing.T, b *backend) (g *Gateway, addr string, served chan struct{}) {
	t.Helper()
	g = New(Options{})
	require.NoError(t, g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+
		wsGatewayYAML(b, `{id: ws, paths: ["/ws/*"], enable_websocket: true}`))))
	ln := testnet.Listen(t)
	served = make(chan struct{})
	go func() { _ = g.Serve(ln); close(served) }()
	return g, ln.Addr().String(), served
}
