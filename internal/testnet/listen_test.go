package testnet

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// refused reports whether a connection to addr is refused.
func refused(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func TestFreeAddrsDistinctAndFree(t *testing.T) {
	addrs, err := FreeAddrs(3)
	require.NoError(t, err)
	require.Len(t, addrs, 3)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.True(t, strings.HasPrefix(a, "127.0.0.1:"), a)
		require.False(t, seen[a], "ports differ: %v", addrs)
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		require.NoError(t, err, "the port is free again")
		ln.Close()
	}
}

func TestDeadAddrRefuses(t *testing.T) {
	addr := DeadAddr(t)
	require.True(t, refused(t, addr), addr)
	require.Equal(t, addr[strings.LastIndexByte(addr, ':')+1:], Port(addr))
	require.NotEmpty(t, DeadPort(t))
}

func TestListenClosedWhenTheTestEnds(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		ln := Listen(t)
		addr = ln.Addr().String()
		require.False(t, refused(t, addr))
	})
	require.True(t, refused(t, addr))
}

func TestServeUntilTheTestEnds(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) {
		ln := Serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hi") }})
		addr = ln.Addr().String()
		status, body, err := fasthttp.Get(nil, "http://"+addr+"/")
		require.NoError(t, err)
		require.Equal(t, 200, status)
		require.Equal(t, "hi", string(body))
	})
	require.True(t, refused(t, addr), "shut down at the end of the test")

	// A test may kill the server itself first; the cleanup copes.
	t.Run("killed early", func(t *testing.T) {
		srv := &fasthttp.Server{Handler: func(*fasthttp.RequestCtx) {}}
		ln := Serve(t, srv)
		require.NoError(t, srv.Shutdown())
		_ = ln.Close() // already closed if Serve had started
		require.True(t, refused(t, ln.Addr().String()))
	})
}
