package testnet

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// Listen returns a listener on an ephemeral loopback port, closed when the
// test ends (closing it earlier is fine).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// The range FreeAddrs picks from: below Linux's default ephemeral range
// (32768-60999).
const (
	freePortLow  = 20000
	freePortHigh = 32000
)

// FreeAddrs returns n distinct loopback addresses ("127.0.0.1:port") whose
// ports were free a moment ago: it holds all n listeners at once, so the
// ports differ, then closes them. For what must be given an address before
// it starts (a gateway's listen in its config file, a child process).
//
// The ports come from below the kernel's ephemeral range (32768 and up on
// Linux), from which every outgoing connection takes its local port: with
// many tests connecting in parallel, a port picked there and closed is
// often taken by a connection before the gateway binds it. Below it only
// another FreeAddrs can collide, and the pick is random. It takes no
// testing.TB, so that goroutines and the bench (a tool, not a test) can
// call it.
func FreeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for tries := 0; len(addrs) < n; tries++ {
		port := freePortLow + rand.IntN(freePortHigh-freePortLow)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			if tries > 1000 {
				return nil, err
			}
			continue
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// FreeAddr returns one loopback address whose port was free a moment ago
// (see FreeAddrs).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addrs, err := FreeAddrs(1)
	require.NoError(t, err)
	return addrs[0]
}

// DeadAddr returns a loopback address nothing listens on, so that a
// connection to it is refused: a dead upstream node or health-check
// target. It is FreeAddr under a name that says what the test wants.
func DeadAddr(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}

// DeadPort is DeadAddr's port, as text (what a YAML config wants).
func DeadPort(t testing.TB) string {
	t.Helper()
	return Port(FreeAddr(t))
}

// Port returns the port of a "host:port" address, as text (what a YAML
// config wants).
func Port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Serve serves srv on a new loopback listener until the test ends and
// returns the listener. At the end srv is shut down (which waits for its
// open connections) and Serve's goroutine is waited for. To kill the
// backend earlier, a test shuts srv down and closes the listener: Shutdown
// alone does nothing while srv.Serve has not started yet.
func Serve(t testing.TB, srv *fasthttp.Server) net.Listener {
	t.Helper()
	ln := Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		_ = ln.Close() // in case Serve had not started when Shutdown ran
		<-done
	})
	return ln
}
