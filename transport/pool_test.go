package transport

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/internal/testnet"
)

func testPool(t *testing.T, b *testnet.RawBackend) *Pool {
	t.Helper()
	port, err := strconv.Atoi(b.Port())
	require.NoError(t, err)
	up := &config.Upstream{Scheme: "http", KeepalivePool: config.KeepalivePool{Size: 4, IdleTimeout: 60}}
	p, err := NewPool(up, &config.Node{Host: "127.0.0.1", Port: port})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

var testTimeouts = Timeouts{Connect: time.Second, Send: time.Second, Read: time.Second}

// do runs one request with X-Id id and X-Act act through p.
func do(t *testing.T, p *Pool, method, id, act string, o *Options, extra ...string) (*fasthttp.Response, error) {
	t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI("/x")
	req.Header.SetHost("node")
	req.Header.Set("X-Id", id)
	if act != "" {
		req.Header.Set("X-Act", act)
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, ": ")
		req.Header.Set(k, v)
	}
	if method == "POST" && o.Body == nil {
		req.SetBodyString("hello")
	}
	if o.Body != nil {
		req.SetBodyStream(o.Body, -1)
	}
	resp := &fasthttp.Response{}
	err := p.RoundTrip(&req, resp, o)
	return resp, err
}

func opts() *Options {
	return &Options{To: testTimeouts, MaxResponseHeader: 64 << 10, ReplayableBody: true}
}

func connsOf(b *testnet.RawBackend) map[int]bool {
	seen := map[int]bool{}
	for _, r := range b.Received() {
		seen[r.Conn] = true
	}
	return seen
}

func TestIdleConnectionIsReused(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	p := testPool(t, b)
	for _, id := range []string{"a", "b", "c"} {
		resp, err := do(t, p, "GET", id, "", opts())
		require.NoError(t, err)
		require.Equal(t, "id="+id, string(resp.Body()))
	}
	require.Len(t, connsOf(b), 1)
}

func TestConnectionWithStrayBytesIsNotReused(t *testing.T) {
	for _, act := range []string{"extra", "extra-late"} {
		t.Run(act, func(t *testing.T) {
			b := testnet.StartRawBackend(t, "ok")
			p := testPool(t, b)
			resp, err := do(t, p, "GET", "first", act, opts())
			require.NoError(t, err)
			require.Equal(t, "id=first", string(resp.Body()))
			if act == "extra-late" {
				// The injected bytes arrive while the connection is idle.
				require.Eventually(t, func() bool { return b.LateExtrasSent() == 1 }, 5*time.Second, time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			resp, err = do(t, p, "GET", "second", "", opts())
			require.NoError(t, err)
			require.Equal(t, "id=second", string(resp.Body()))
			require.Equal(t, "second", string(resp.Header.Peek("X-Id")))
			require.Len(t, connsOf(b), 2)
		})
	}
}

func TestConnectionClosedWhileIdleIsNotUsed(t *testing.T) {
	b := testnet.StartRawBackend(t, "close-after")
	p := testPool(t, b)
	_, err := do(t, p, "GET", "first", "", opts())
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	resp, err := do(t, p, "POST", "post", "", opts())
	require.NoError(t, err, "a POST must not be written on a connection the node closed")
	require.Equal(t, "id=post", string(resp.Body()))
}

func TestFailureAfterWritingIsNotStale(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	p := testPool(t, b)
	_, err := do(t, p, "GET", "warm", "", opts())
	require.NoError(t, err)
	_, err = do(t, p, "POST", "once", "readclose", opts())
	var ae *AttemptError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, PhaseSent, ae.Phase)
	require.Equal(t, OpRead, ae.Op)
	require.False(t, ae.Stale, "bytes of the request were written: only an idempotent request may go again")
	require.Equal(t, 1, b.Count("POST", "once"))
}

func TestReadTimeoutIsBetweenReads(t *testing.T) {
	b := testnet.StartRawBackend(t, "drip")
	p := testPool(t, b)
	o := opts()
	o.To.Read = 500 * time.Millisecond
	resp, err := do(t, p, "GET", "slowly", "", o, "X-Drip-Ms: 150")
	require.NoError(t, err, "1.5 s in all, but never 500 ms without a byte")
	require.Equal(t, "id=slowly", string(resp.Body()))

	_, err = do(t, p, "GET", "stalled", "stall", o)
	var ae *AttemptError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.Timeout)
}

func TestLargeResponseHeaderGrowsTheBufferUpToTheLimit(t *testing.T) {
	b := testnet.StartRawBackend(t, "bigheader")
	p := testPool(t, b)
	resp, err := do(t, p, "GET", "big", "", opts(), "X-Header-Size: 30000")
	require.NoError(t, err)
	require.Len(t, resp.Header.Peek("X-Big"), 30000)

	o := opts()
	o.MaxResponseHeader = 16 << 10
	p = testPool(t, b)
	_, err = do(t, p, "GET", "too-big", "", o, "X-Header-Size: 30000")
	require.ErrorIs(t, err, ErrResponseHeaderTooLarge)
}

func TestUnsolicitedUpgradeFailsTheAttempt(t *testing.T) {
	b := testnet.StartRawBackend(t, "upgrade")
	p := testPool(t, b)
	_, err := do(t, p, "GET", "u", "", opts())
	require.ErrorIs(t, err, ErrUnsolicitedUpgrade)
}

// failingBody yields some bytes, then the client's error.
type failingBody struct {
	n   int
	err error
}

var errClientGone = errors.New("client gone")

func (f *failingBody) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n--
		return copy(p, "chunk"), nil
	}
	f.err = errClientGone
	return 0, f.err
}

func (f *failingBody) ClientErr() error { return f.err }

func TestClientBodyErrorIsTheClientsAndLeavesTheMessageIncomplete(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	p := testPool(t, b)
	o := opts()
	o.Body = &failingBody{n: 3}
	o.ReplayableBody = false
	_, err := do(t, p, "PUT", "cut", "", o)
	require.ErrorIs(t, err, errClientGone)
	var ae *AttemptError
	require.False(t, errors.As(err, &ae), "not the node's failure")

	require.Eventually(t, func() bool { return b.Count("PUT", "cut") == 1 }, 3*time.Second, 10*time.Millisecond)
	got := b.Received()[0]
	require.False(t, got.Complete, "no last chunk written for the client")
	require.NotContains(t, string(b.Bytes()), "0\r\n\r\n")
}

func TestStreamedResponseReturnsTheConnectionOnlyWhenReadToTheEnd(t *testing.T) {
	b := testnet.StartRawBackend(t, "chunked")
	p := testPool(t, b)
	for _, id := range []string{"a", "b"} {
		resp, err := do(t, p, "GET", id, "", opts())
		require.NoError(t, err)
		require.True(t, resp.IsBodyStream(), "a chunked answer streams")
		body, err := io.ReadAll(resp.BodyStream())
		require.NoError(t, err)
		require.Equal(t, "id="+id, string(body))
		require.NoError(t, resp.CloseBodyStream())
	}
	require.Len(t, connsOf(b), 1, "read to its end, the connection went back to the pool")

	// Closed before the end (the client went away): the rest of the body
	// is still on the connection, which must not be reused.
	resp, err := do(t, p, "GET", "c", "", opts())
	require.NoError(t, err)
	require.NoError(t, resp.CloseBodyStream())
	resp, err = do(t, p, "GET", "d", "", opts())
	require.NoError(t, err)
	body, err := io.ReadAll(resp.BodyStream())
	require.NoError(t, err)
	require.Equal(t, "id=d", string(body))
	require.NoError(t, resp.CloseBodyStream())
	require.Len(t, connsOf(b), 2)
}
