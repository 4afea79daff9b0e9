package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testnet"
)

// TCP stream routes end to end: real listeners of the gateway on loopback,
// real TCP backends, raw clients.

// tcpBackend is a TCP node. "echo" copies what it reads back and, at EOF,
// half-closes after sending "bye:<n>" (n: bytes read); "name" writes its
// name and a newline, then closes; "hold" writes its name and a newline
// and keeps the connection until the client closes it.
type tcpBackend struct {
	name, mode, addr string
	ln               net.Listener
	wg               sync.WaitGroup
	mu               sync.Mutex
	conns            []net.Conn
}

func startTCPBackend(t *testing.T, name, mode string) *tcpBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &tcpBackend{name: name, mode: mode, addr: ln.Addr().String(), ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				switch b.mode {
				case "name":
					_, _ = io.WriteString(c, b.name+"\n")
					return
				case "hold": // its name, then open until the client closes
					_, _ = io.WriteString(c, b.name+"\n")
					_, _ = io.Copy(io.Discard, c)
					return
				}
				n, _ := io.Copy(c, c)
				_, _ = io.WriteString(c, "bye:"+strconv.FormatInt(n, 10))
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *tcpBackend) port() string { return testnet.Port(b.addr) }

// startStreamGateway applies yaml (access log off unless it says) on a
// gateway that serves no HTTP; the test's end shuts it down and checks
// that no stream connection is left.
func startStreamGateway(t *testing.T, yaml string) *Gateway {
	t.Helper()
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	t.Cleanup(func() {
		_ = g.Shutdown(t.Context())
		g.Close()
		require.Equal(t, 0, g.streams.Open())
	})
	return g
}

func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// readName reads a "name" backend's line through the gateway.
func readName(t *testing.T, addr string) string {
	t.Helper()
	c := dialTCP(t, addr)
	b, err := io.ReadAll(c)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// requireClosed asserts the gateway closes c without sending anything.
func requireClosed(t *testing.T, c net.Conn) {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		require.NotContains(t, err.Error(), "timeout")
	}
	require.Empty(t, b)
}

func TestStreamEchoBytesExactBothWaysAndHalfClose(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: echo, server_port: `+testnet.Port(addr)+`, upstream: {nodes: [{host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	c := dialTCP(t, addr)
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = c.Write(payload)
		// Half-close: the node sees EOF and still answers.
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	want := append(append([]byte(nil), payload...), "bye:1048576"...)
	require.True(t, bytes.Equal(want, got), "got %d bytes, want %d", len(got), len(want))

	require.Eventually(t, func() bool { return g.streams.Open() == 0 }, 10*time.Second, 10*time.Millisecond)
	m := scrape(t, g)
	require.Contains(t, m, `gateway_stream_connections_total{result="ok",route="echo"} 1`)
	require.Contains(t, m, `gateway_stream_bytes_total{direction="in",route="echo"} 1.048576e+06`)
	require.Contains(t, m, `gateway_stream_bytes_total{direction="out",route="echo"} 1.048587e+06`)
	require.Contains(t, m, `gateway_stream_connections_active{route="echo"} 0`)
}

func TestStreamMatchMostSpecificWins(t *testing.T) {
	a, b, c := startTCPBackend(t, "a", "name"), startTCPBackend(t, "b", "name"), startTCPBackend(t, "c", "name")
	addrs, err := testnet.FreeAddrs(2)
	require.NoError(t, err)
	p1, p2 := testnet.Port(addrs[0]), testnet.Port(addrs[1])
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addrs[0]+`", ":`+p2+`"]}
upstreams:
  - {id: a, nodes: [{host: 127.0.0.1, port: `+a.port()+`}]}
  - {id: b, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
  - {id: c, nodes: [{host: 127.0.0.1, port: `+c.port()+`}]}
stream_routes:
  - {id: port1, upstream_id: a, server_port: `+p1+`}
  - {id: port1-local, upstream_id: b, server_port: `+p1+`, remote_addr: 127.0.0.0/8}
  - {id: port1-other, upstream_id: c, server_port: `+p1+`, remote_addr: 10.0.0.0/8}
  - {id: port2-addr, upstream_id: c, server_port: `+p2+`, server_addr: 127.0.0.1}
  - {id: port2-other, upstream_id: a, server_port: `+p2+`, remote_addr: 10.0.0.0/8}
`)
	require.Equal(t, "b", readName(t, addrs[0]))
	require.Equal(t, "c", readName(t, addrs[1]))
	// server_addr matches the local address exactly: 127.0.0.2 is another.
	requireClosed(t, dialTCP(t, "127.0.0.2:"+p2))
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_stream_connections_total{result="no_route",route=""} 1`)
	}, 10*time.Second, 10*time.Millisecond)
}

func TestStreamBalancesAndRetriesConnectFailures(t *testing.T) {
	a, b := startTCPBackend(t, "a", "name"), startTCPBackend(t, "b", "name")
	dead := testnet.DeadPort(t)
	addr := testnet.FreeAddr(t)
	startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes:
  - id: r
    upstream:
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+dead+`}, {host: 127.0.0.1, port: `+b.port()+`}]
`)
	seen := map[string]int{}
	for range 9 {
		seen[readName(t, addr)]++
	}
	// Every connection reached a live node (a dead pick is retried on
	// another), and both live nodes took some.
	require.Equal(t, 9, seen["a"]+seen["b"], "%v", seen)
	require.NotZero(t, seen["a"])
	require.NotZero(t, seen["b"])
}

func TestStreamChashOnRemoteAddrSticks(t *testing.T) {
	a, b := startTCPBackend(t, "a", "name"), startTCPBackend(t, "b", "name")
	addr := testnet.FreeAddr(t)
	startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes:
  - {id: r, upstream: {type: chash, hash_on: vars, key: remote_addr, nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}]}}
`)
	first := readName(t, addr)
	for range 5 {
		require.Equal(t, first, readName(t, addr))
	}
}

func TestStreamActiveTCPCheckRemovesDeadNode(t *testing.T) {
	a := startTCPBackend(t, "a", "name")
	dead := testnet.DeadPort(t)
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes:
  - id: r
    upstream:
      retries: 0
      nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+dead+`}]
      checks: {active: {type: tcp, timeout: 1, healthy: {interval: 0.05, successes: 1}, unhealthy: {interval: 0.05, tcp_failures: 1}}}
`)
	require.Eventually(t, func() bool {
		n := g.health.Node("r", "127.0.0.1:"+dead)
		return n != nil && n.Down().Load()
	}, 10*time.Second, 10*time.Millisecond)
	// With no retry, only health keeps connections off the dead node.
	for range 6 {
		require.Equal(t, "a", readName(t, addr))
	}
}

func TestStreamIdleTimeoutCloses(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"], stream: {idle_timeout: 600}}
stream_routes: [{id: r, idle_timeout: 0.2, upstream: {nodes: [{host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	c := dialTCP(t, addr)
	_, err := c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	// Then nothing either way: the gateway closes (the node's "bye:4" may
	// come first, when its side of the close reaches it).
	rest, err := io.ReadAll(c)
	if err != nil {
		require.NotContains(t, err.Error(), "timeout")
	}
	require.True(t, len(rest) == 0 || string(rest) == "bye:4", "%q", rest)
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_stream_connections_total{result="idle",route="r"} 1`)
	}, 10*time.Second, 10*time.Millisecond)
}

// A connection where only the node talks is not idle: the idle check asks
// the other direction before closing.
func TestStreamOneWayTrafficIsNotIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range 40 { // a byte every 25 ms: 1 s, five idle timeouts
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	addr := testnet.FreeAddr(t)
	startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, idle_timeout: 0.2, upstream: {nodes: [{host: 127.0.0.1, port: `+testnet.Port(ln.Addr().String())+`}]}}]
`)
	got, err := io.ReadAll(dialTCP(t, addr))
	require.NoError(t, err)
	require.Len(t, got, 40)
}

func TestStreamMaxConnectionsRefusesExtra(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"], stream: {max_connections: 1}}
stream_routes: [{id: r, upstream: {nodes: [{host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	c1 := dialTCP(t, addr)
	_, err := c1.Write([]byte("one"))
	require.NoError(t, err)
	buf := make([]byte, 3)
	_, err = io.ReadFull(c1, buf)
	require.NoError(t, err)
	requireClosed(t, dialTCP(t, addr))
	require.Contains(t, scrape(t, g), `gateway_stream_connections_total{result="over_limit",route=""} 1`)
	require.NoError(t, c1.Close())
	require.Eventually(t, func() bool { return g.streams.Open() == 0 }, 10*time.Second, 10*time.Millisecond)
	c3 := dialTCP(t, addr)
	_, err = c3.Write([]byte("two"))
	require.NoError(t, err)
	_, err = io.ReadFull(c3, buf)
	require.NoError(t, err)
	require.Equal(t, "two", string(buf))
}

func TestStreamIPRestriction(t *testing.T) {
	be := startTCPBackend(t, "a", "name")
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, plugins: {ip-restriction: {blacklist: [127.0.0.0/8]}}, upstream: {nodes: [{host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	requireClosed(t, dialTCP(t, addr))
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_stream_connections_total{result="denied",route="r"} 1`)
	}, 10*time.Second, 10*time.Millisecond)
}

func TestStreamReloadAddsAndRemovesListeners(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addrs, err := testnet.FreeAddrs(2)
	require.NoError(t, err)
	conf := func(addr string) string {
		return `
gateway: {access_log: {enabled: false}, stream_listen: ["` + addr + `"]}
stream_routes: [{id: r, upstream: {nodes: [{host: 127.0.0.1, port: ` + be.port() + `}]}}]
`
	}
	goroutines := runtime.NumGoroutine()
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, conf(addrs[0]))))
	c := dialTCP(t, addrs[0])
	echo := func(s string) {
		t.Helper()
		_, err := c.Write([]byte(s))
		require.NoError(t, err)
		buf := make([]byte, len(s))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, s, string(buf))
	}
	echo("before")

	require.NoError(t, g.Apply(mustParse(t, conf(addrs[1]))))
	echo("after") // established: finishes on its snapshot
	_, err = net.DialTimeout("tcp", addrs[0], 5*time.Second)
	require.Error(t, err, "the removed listener is closed")
	c2 := dialTCP(t, addrs[1])
	_, err = c2.Write([]byte("new"))
	require.NoError(t, err)
	require.NoError(t, c2.CloseWrite())
	got, err := io.ReadAll(c2)
	require.NoError(t, err)
	require.Equal(t, "newbye:3", string(got))

	// A listener that cannot be opened fails the reload at its key, and
	// changes nothing.
	busy := testnet.Listen(t)
	err = g.Apply(mustParse(t, conf(busy.Addr().String())))
	require.ErrorContains(t, err, "gateway.stream_listen[0]")
	require.Equal(t, map[string]string{addrs[1]: addrs[1]}, g.streams.Addrs())

	// Shutdown waits for the established connection until its context
	// ends, then closes it; no goroutine is left.
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	require.NoError(t, g.Shutdown(ctx))
	g.Close()
	_, err = io.ReadAll(c)
	require.NoError(t, err)
	require.Contains(t, scrape(t, g), `gateway_stream_connections_total{result="closed",route="r"} 1`)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 20*time.Millisecond,
		"goroutines: before %d, now %d", goroutines, runtime.NumGoroutine())
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func TestStreamAccessLogLinePerConnection(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addr := testnet.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "access.log")
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, upstream: {nodes: [{host: 127.0.0.1, port: 1}, {host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	for range 2 {
		c := dialTCP(t, addr)
		_, err := c.Write([]byte("hi"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "hibye:2", string(got))
	}
	require.Eventually(t, func() bool { return g.streams.Open() == 0 }, 10*time.Second, 10*time.Millisecond)
	g.Close() // flushes the buffered log

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 2)
	attempts := 0
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		require.Equal(t, "tcp", m["protocol"])
		require.Equal(t, "127.0.0.1", m["client_ip"])
		require.Equal(t, "r", m["route"])
		require.Equal(t, be.addr, m["upstream_addr"])
		require.Equal(t, "ok", m["result"])
		require.EqualValues(t, 2, m["bytes_in"])
		require.EqualValues(t, 7, m["bytes_out"])
		require.Contains(t, m, "duration_ms")
		attempts += int(m["attempts"].(float64))
	}
	// Round robin from the dead node once: one of the two retried.
	require.Equal(t, 3, attempts)
}

// A node that stops reading leaves the client's bytes with nowhere to go:
// no progress either way, so the idle timeout closes the connection even
// though the client is still writing.
func TestStreamIdleClosesAStuckWriter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	accepted := make(chan net.Conn, 1)
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-accepted:
			_ = c.Close()
		default:
		}
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if c, err := ln.Accept(); err == nil {
			accepted <- c // never read
		}
	}()
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, idle_timeout: 0.2, upstream: {nodes: [{host: 127.0.0.1, port: `+testnet.Port(ln.Addr().String())+`}]}}]
`)
	c := dialTCP(t, addr)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			require.NotContains(t, err.Error(), "timeout")
			break
		}
	}
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_stream_connections_total{result="idle",route="r"} 1`)
	}, 10*time.Second, 10*time.Millisecond)
}

// TestStreamIdleClosesAStuckWriterAfterHalfClose: the node half-closes
// (its side is done) and never reads; the client's direction blocks
// writing to it. With the other direction ended, only the half-close
// watch can see that nothing moves (it failed before the watch existed:
// the connection stayed open until shutdown).
func TestStreamIdleClosesAStuckWriterAfterHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	accepted := make(chan net.Conn, 1)
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-accepted:
			_ = c.Close()
		default:
		}
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		if c, err := ln.Accept(); err == nil {
			_ = c.(*net.TCPConn).CloseWrite() // done sending; never reads
			accepted <- c
		}
	}()
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, idle_timeout: 0.2, upstream: {nodes: [{host: 127.0.0.1, port: `+testnet.Port(ln.Addr().String())+`}]}}]
`)
	c := dialTCP(t, addr)
	var got [1]byte
	_, err = c.Read(got[:])
	require.ErrorIs(t, err, io.EOF, "the node's half-close reaches the client")
	chunk := make([]byte, 64<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			require.NotContains(t, err.Error(), "timeout")
			break
		}
	}
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_stream_connections_total{result="idle",route="r"} 1`)
	}, 10*time.Second, 10*time.Millisecond)
}

// A stream service's upstream with passive checks: a failed connect is a
// TCP failure that takes the node out; the retry reaches the live one.
func TestStreamPassiveTCPFailureOnStreamService(t *testing.T) {
	a := startTCPBackend(t, "a", "name")
	dead := testnet.DeadPort(t)
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
services:
  - id: db
    type: stream
    upstream:
      nodes: [{host: 127.0.0.1, port: `+dead+`}, {host: 127.0.0.1, port: `+a.port()+`}]
      checks:
        # active probes count no failure (threshold 0): only the passive
        # observation can take the node out
        active: {type: tcp, healthy: {interval: 60}, unhealthy: {interval: 60, tcp_failures: 0, timeouts: 0}}
        passive: {type: tcp, unhealthy: {tcp_failures: 1}}
stream_routes: [{id: r, service_id: db}]
`)
	for range 4 {
		require.Equal(t, "a", readName(t, addr))
	}
	n := g.health.Node("db", "127.0.0.1:"+dead)
	require.NotNil(t, n)
	require.True(t, n.Down().Load(), "the dead node is marked down by its connect failure")
	live := g.health.Node("db", "127.0.0.1:"+a.port())
	require.False(t, live.Down().Load())
}

// Stream connects count as upstream attempts of their node (by result; not
// in the HTTP request duration histogram) and feed fail open, as HTTP
// attempts do.
func TestStreamConnectsFeedAttemptsAndFailOpen(t *testing.T) {
	be := startTCPBackend(t, "a", "name")
	dead := testnet.DeadPort(t)
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, upstream: {nodes: [{host: 127.0.0.1, port: `+dead+`}, {host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	for range 2 {
		require.Equal(t, "a", readName(t, addr))
	}
	text := scrape(t, g)
	require.Equal(t, 2.0, sampleValue(t, text, `gateway_upstream_attempts_total{node="`+be.addr+`",result="ok",upstream="r"}`))
	require.NotContains(t, text, `gateway_upstream_request_duration_seconds_count{node="`+be.addr+`",upstream="r"} 2`)
	require.Equal(t, 1.0, sampleValue(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:`+dead+`",result="connect_error",upstream="r"}`),
		"round robin from the dead node once")

	// Both nodes dead and marked down by their connect failures: the next
	// connection is balanced over all of them (fail open) and counted.
	dead2 := testnet.DeadPort(t)
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes:
  - id: r
    upstream:
      nodes: [{host: 127.0.0.1, port: `+dead+`}, {host: 127.0.0.1, port: `+dead2+`}]
      checks:
        active: {type: tcp, healthy: {interval: 60}, unhealthy: {interval: 60, tcp_failures: 0, timeouts: 0}}
        passive: {type: tcp, unhealthy: {tcp_failures: 1}}
`)))
	requireClosed(t, dialTCP(t, addr)) // both tried, both down
	require.Equal(t, 0.0, sampleValue(t, scrape(t, g), `gateway_upstream_all_unhealthy_total{upstream="r"}`))
	requireClosed(t, dialTCP(t, addr))
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g), `gateway_upstream_all_unhealthy_total{upstream="r"} 2`)
	}, 10*time.Second, 10*time.Millisecond, "two fail-open picks: the first node and the retry\n%s", grepLines(scrape(t, g), "unhealthy", "attempts"))
}

// A connection refused for gateway.stream.max_connections has its access
// log line (result over_limit, no route).
func TestStreamOverLimitIsLogged(t *testing.T) {
	be := startTCPBackend(t, "a", "echo")
	addr := testnet.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "access.log")
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}, stream_listen: ["`+addr+`"], stream: {max_connections: 1}}
stream_routes: [{id: r, upstream: {nodes: [{host: 127.0.0.1, port: `+be.port()+`}]}}]
`)
	c1 := dialTCP(t, addr)
	_, err := c1.Write([]byte("one"))
	require.NoError(t, err)
	_, err = io.ReadFull(c1, make([]byte, 3))
	require.NoError(t, err)
	requireClosed(t, dialTCP(t, addr))
	require.NoError(t, c1.Close())
	require.Eventually(t, func() bool { return g.streams.Open() == 0 }, 10*time.Second, 10*time.Millisecond)
	g.Close() // flushes the buffered log

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	results := map[string]int{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		results[m["result"].(string)]++
		if m["result"] == "over_limit" {
			require.Equal(t, "", m["route"])
			require.Equal(t, "127.0.0.1", m["client_ip"])
			require.EqualValues(t, testnet.Port(addr), strconv.Itoa(int(m["server_port"].(float64))))
		}
	}
	require.Equal(t, map[string]int{"ok": 1, "over_limit": 1}, results)
}

// A reload that keeps a listener while its routes change: new connections
// follow the new routes, an established one keeps flowing to its node.
// Written ":port" then "0.0.0.0:port", the listener is the same one (it
// used to fail the reload: the second bind found the port taken).
func TestStreamReloadKeepsListenerRoutesChange(t *testing.T) {
	echo, b := startTCPBackend(t, "e", "echo"), startTCPBackend(t, "b", "name")
	port := testnet.Port(testnet.FreeAddr(t))
	conf := func(listen, route, node string) *config.Config {
		return mustParse(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+listen+`"]}
stream_routes: [{id: `+route+`, upstream: {nodes: [{host: 127.0.0.1, port: `+node+`}]}}]
`)
	}
	g := New(Options{})
	require.NoError(t, g.Apply(conf(":"+port, "r1", echo.port())))
	t.Cleanup(func() {
		_ = g.Shutdown(t.Context())
		g.Close()
	})
	addr := "127.0.0.1:" + port
	c := dialTCP(t, addr)
	roundTrip := func(s string) {
		t.Helper()
		_, err := c.Write([]byte(s))
		require.NoError(t, err)
		buf := make([]byte, len(s))
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, s, string(buf))
	}
	roundTrip("before")

	require.NoError(t, g.Apply(conf("0.0.0.0:"+port, "r2", b.port())))
	require.Equal(t, map[string]string{"0.0.0.0:" + port: "[::]:" + port}, g.streams.Addrs())
	require.Equal(t, "b", readName(t, addr), "a new connection follows the new route")
	roundTrip("after") // the established one is still spliced to its node
	require.Equal(t, "b", readName(t, addr))
	require.NoError(t, c.CloseWrite())
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "bye:11", string(rest))
	require.Eventually(t, func() bool {
		m := scrape(t, g)
		return strings.Contains(m, `gateway_stream_connections_total{result="ok",route="r1"} 1`)
	}, 10*time.Second, 10*time.Millisecond, "%s", grepLines(scrape(t, g), "stream_connections_total"))
}

// grepLines are the lines of text that contain one of subs.
func grepLines(text string, subs ...string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// least_conn counts open stream connections: a node holding one gets the
// next, until it is closed.
func TestStreamLeastConnCountsConnections(t *testing.T) {
	a, b := startTCPBackend(t, "a", "hold"), startTCPBackend(t, "b", "hold")
	addr := testnet.FreeAddr(t)
	g := startStreamGateway(t, `
gateway: {access_log: {enabled: false}, stream_listen: ["`+addr+`"]}
stream_routes: [{id: r, upstream: {type: least_conn, nodes: [{host: 127.0.0.1, port: `+a.port()+`}, {host: 127.0.0.1, port: `+b.port()+`}]}}]
`)
	hold := func() (*net.TCPConn, string) {
		c := dialTCP(t, addr)
		line := make([]byte, 2)
		_, err := io.ReadFull(c, line)
		require.NoError(t, err)
		return c, string(line[:1])
	}
	c1, first := hold()
	other := map[string]string{"a": "b", "b": "a"}[first]
	for range 3 {
		c, name := hold()
		require.Equal(t, other, name, "the node without a connection")
		require.NoError(t, c.Close())
		require.Eventually(t, func() bool { return g.streams.Open() == 1 }, 10*time.Second, 5*time.Millisecond)
	}
	c2, name := hold()
	require.Equal(t, other, name)
	require.NoError(t, c1.Close())
	require.Eventually(t, func() bool { return g.streams.Open() == 1 }, 10*time.Second, 5*time.Millisecond)
	c3, name := hold()
	require.Equal(t, first, name, "c1's node has none any more")
	_, _ = c2, c3
}
