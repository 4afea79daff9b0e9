package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"gateway/internal/race"
	"gateway/internal/testheap"
	"gateway/internal/testnet"
)

// Issue 12.5: a client that never reads a large response is cut off after
// client_write_timeout, and the backend connection is released with it.
func TestClientWriteTimeout(t *testing.T) {
	chunk := make([]byte, 64<<10)
	var backendErr atomic.Value
	b := startBackend(t, "big", func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for range 1024 { // 64 MiB, far more than loopback buffers hold
				_, err := w.Write(chunk)
				if err == nil {
					err = w.Flush()
				}
				if err != nil {
					backendErr.Store(err)
					return
				}
			}
			backendErr.Store(errors.New("the whole body was written"))
		})
	})
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, client_write_timeout: 1}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	c, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /big HTTP/1.1\r\nHost: a\r\n\r\n"))
	require.NoError(t, err)
	// Read nothing for well over the timeout: the gateway's writes stall
	// once the socket buffers are full.
	time.Sleep(4 * time.Second)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, c)
	require.NoError(t, err, "the gateway closed the connection (EOF), the read did not time out")
	require.Less(t, n, int64(1024*len(chunk)), "the response was cut short")

	// The backend's writes fail too: its connection was not kept.
	require.Eventually(t, func() bool { return backendErr.Load() != nil }, 30*time.Second, 50*time.Millisecond)
	require.NotEqual(t, "the whole body was written", backendErr.Load().(error).Error())
}

// Issue 12.6: max_connections counts connections; one over the cap gets a
// 503 in the gateway's format and is closed.
func TestMaxConnections(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_connections: 3}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	open := make([]net.Conn, 3)
	for i := range open {
		c, err := net.Dial("tcp", tg.addr)
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"))
		require.NoError(t, err)
		resp := &fasthttp.Response{}
		require.NoError(t, resp.Read(bufio.NewReader(c)))
		require.Equal(t, 200, resp.StatusCode())
		open[i] = c
	}
	over := func() string {
		c, err := net.Dial("tcp", tg.addr)
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"))
		all, _ := io.ReadAll(c)
		return string(all)
	}
	resp := over()
	require.True(t, strings.HasPrefix(resp, "HTTP/1.1 503 "), resp)
	require.Contains(t, resp, `"error_code":"APIG.0202"`)
	require.Contains(t, resp, "Too many connections")
	require.Contains(t, scrape(t, tg.g), "gateway_connections_refused_total 1")

	// A closed connection frees its place.
	require.NoError(t, open[0].Close())
	require.Eventually(t, func() bool {
		return tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") == 200
	}, 10*time.Second, 20*time.Millisecond)
}

// Issue 12.6: the request head must arrive within client_header_timeout;
// the body then has client_read_timeout.
func TestClientHeaderTimeout(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, client_header_timeout: 1, client_read_timeout: 30}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	c, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = c.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n")) // never finished
	require.NoError(t, err)
	all, err := io.ReadAll(c)
	require.NoError(t, err, "the gateway closed the connection before the test's deadline")
	require.True(t, strings.HasPrefix(string(all), "HTTP/1.1 408 "), string(all))
	require.Contains(t, string(all), "Request header not received in time")
	require.Zero(t, b.hits.Load())

	// A slow body is not cut by the head timeout.
	c2, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = c2.Write([]byte("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab"))
	require.NoError(t, err)
	time.Sleep(2500 * time.Millisecond)
	_, err = c2.Write([]byte("cd"))
	require.NoError(t, err)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufio.NewReader(c2)))
	require.Equal(t, 200, resp.StatusCode())
}

// Issue 12.6: memory per idle keep-alive client connection. Opens 2,000
// connections that each made one proxied request and now idle, and
// reports the growth of heap and stacks per connection, less what the
// test's own client sockets cost (measured against a listener that only
// holds connections).
func TestIdleConnectionMemory(t *testing.T) {
	if race.Enabled || testing.Short() {
		t.Skip("memory is measured without the race detector and not in -short")
	}
	const n = 2000
	b := leanBackend(t)
	client := idleClientCost(t, n)
	for _, hdr := range []int{16384, 4096} {
		t.Run(itoa(hdr), func(t *testing.T) {
			tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_header_size: `+itoa(hdr)+`}
services:
  - {id: s, upstream: {keepalive_pool: {size: 4}, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}, routes: [{paths: ["/*"]}]}
`)
			perConn := idleConnCost(t, tg.addr, n) - client
			t.Logf("max_header_size %d: %.0f bytes per idle keep-alive connection (client side, %.0f bytes, subtracted)", hdr, perConn, client)
			// Not a target, a tripwire: the read buffer (which fasthttp
			// keeps while a connection idles) plus the request context and
			// the goroutine's stack.
			require.Less(t, perConn, float64(hdr+16<<10))
		})
	}
}

// idleConnCost opens n connections to addr, sends one request on each and
// reads its response, and returns the heap and stack growth per
// connection while they idle.
func idleConnCost(t *testing.T, addr string, n int) float64 {
	t.Helper()
	before := heapAndStacks()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 4096)
	for range n {
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.EMFILE) {
			t.Skip("not enough file descriptors for the measurement")
		}
		require.NoError(t, err)
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"))
		require.NoError(t, err)
		// The lean backend's response fits one read.
		m, err := c.Read(buf)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(buf[:m]), "HTTP/1.1 200 "))
	}
	time.Sleep(200 * time.Millisecond) // let the last responses' goroutines park
	after := heapAndStacks()
	return float64(after-before) / float64(n)
}

// idleClientCost is idleConnCost's figure for a server that only holds the
// connections: what the client sockets and the accepted net.Conns cost.
func idleClientCost(t *testing.T, n int) float64 {
	ln := testnet.Listen(t)
	defer ln.Close()
	held := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	before := heapAndStacks()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if errors.Is(err, syscall.EMFILE) {
			t.Skip("not enough file descriptors for the measurement")
		}
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for len(held) < n {
		time.Sleep(10 * time.Millisecond)
	}
	after := heapAndStacks()
	for _, c := range conns {
		c.Close()
	}
	return float64(after-before) / float64(n)
}

func heapAndStacks() int64 {
	m := testheap.Live()
	return int64(m.HeapInuse + m.StackInuse)
}

// fasthttp's messages about unparsable requests go to the gateway's log at
// debug level, not to the standard logger, where clients could flood it.
func TestServerMessagesAtDebug(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	g := New(Options{Logger: zap.New(core)})
	require.NoError(t, g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\nservices: []\n")))
	tg := serveGateway(t, g)

	require.Equal(t, 400, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nBad\r\n\r\n"))
	require.Eventually(t, func() bool { return logs.FilterMessage("client connection").Len() > 0 }, 10*time.Second, 10*time.Millisecond)
	for _, e := range logs.FilterMessage("client connection").All() {
		require.Equal(t, zap.DebugLevel, e.Level)
	}
}
