package transport

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/internal/testnet"
)

// upgradeNode answers every connection's first request with answer, then
// echoes what it reads. It counts connections.
func upgradeNode(t *testing.T, answer string) (*Pool, *atomic.Int64) {
	t.Helper()
	ln := testnet.Listen(t)
	conns := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var req fasthttp.Request
				if req.Read(br) != nil {
					return
				}
				if _, err := io.WriteString(c, answer); err != nil {
					return
				}
				_, _ = io.Copy(c, br)
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	n, _ := strconv.Atoi(port)
	up := &config.Upstream{Scheme: "http", KeepalivePool: config.KeepalivePool{Size: 4, IdleTimeout: 60}}
	p, err := NewPool(up, &config.Node{Host: "127.0.0.1", Port: n})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	t.Cleanup(func() { ln.Close() })
	return p, conns
}

func upgradeReq() *fasthttp.Request {
	var req fasthttp.Request
	req.SetRequestURI("/ws")
	req.Header.SetHost("node")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	return &req
}

func TestUpgradeTurnsA101IntoATunnel(t *testing.T) {
	// The node's first bytes after the 101 arrive with it: the tunnel
	// must hand them over before reading the socket.
	p, _ := upgradeNode(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello")
	o := opts()
	o.To.Read = 50 * time.Millisecond // the attempt's read timeout must not cut the tunnel
	o.Upgrade = true
	resp := &fasthttp.Response{}
	require.NoError(t, p.RoundTrip(upgradeReq(), resp, o))
	require.Equal(t, 101, resp.StatusCode())
	tn := o.Tunnel
	require.NotNil(t, tn)
	defer tn.Close()
	require.Equal(t, "websocket", string(tn.Protocol))

	buf := make([]byte, 5)
	_, err := io.ReadFull(tn, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))
	time.Sleep(2 * o.To.Read) // longer than timeout.read: not a deadline on the tunnel any more
	_, err = tn.Write([]byte("ping"))
	require.NoError(t, err)
	buf = buf[:4]
	_, err = io.ReadFull(tn, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.True(t, tn.CloseWrite())
	_, err = tn.Read(buf)
	require.ErrorIs(t, err, io.EOF, "the node saw the half-close and ended its copy")

	p.mu.Lock()
	require.Empty(t, p.idle, "a tunnel's connection never enters the pool")
	p.mu.Unlock()
}

func TestUpgradeRefusedIsARelayedResponseOnAClosedConnection(t *testing.T) {
	p, conns := upgradeNode(t, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
	o := opts()
	o.Upgrade = true
	resp := &fasthttp.Response{}
	require.NoError(t, p.RoundTrip(upgradeReq(), resp, o))
	require.Equal(t, 403, resp.StatusCode())
	require.Equal(t, "no", string(resp.Body()))
	require.Nil(t, o.Tunnel)
	p.mu.Lock()
	require.Empty(t, p.idle, "a connection offered an upgrade is not pooled")
	p.mu.Unlock()
	require.Equal(t, int64(1), conns.Load())
}
