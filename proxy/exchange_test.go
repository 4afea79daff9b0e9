package proxy

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"gateway/internal/testnet"
)

// rawUpstreamYAML is an upstream over raw backends, plus extra keys.
func rawUpstreamYAML(extra string, nodes ...*testnet.RawBackend) string {
	var b strings.Builder
	b.WriteString("{" + extra + " nodes: [")
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{host: 127.0.0.1, port: %s}", n.Port())
	}
	b.WriteString("]}")
	return b.String()
}

func startRawGateway(t *testing.T, gatewayKeys, upstreamKeys string, nodes ...*testnet.RawBackend) *testGateway {
	t.Helper()
	return startGateway(t, `
gateway: {access_log: {enabled: false}`+gatewayKeys+`}
services:
  - {id: s, upstream: `+rawUpstreamYAML(upstreamKeys, nodes...)+`, routes: [{id: r, paths: ["/*"]}]}
`)
}

// warm sends one GET so that the gateway holds a pooled connection to b.
func warm(t *testing.T, tg *testGateway) {
	t.Helper()
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/warm", "warm", "ok"))
	require.NoError(t, err)
	require.Equal(t, 200, r.Status)
}

// waitFor polls cond for up to 3 s: a backend records what it received
// in its own goroutine, shortly after the gateway answered.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 3*time.Second, 10*time.Millisecond)
}

// settle gives a backend time to receive anything still in flight, for
// the assertions that something did NOT happen.
func settle() { time.Sleep(200 * time.Millisecond) }

func TestMalformedChunkIsClientErrorAndNotResent(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("PUT /public/file HTTP/1.1\r\nHost: t\r\nX-Id: put1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZZ\r\nworld\r\n0\r\n\r\n")
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 400, r.Status, r.Body)
	require.Contains(t, r.Body, `"APIG.0201"`)
	require.Equal(t, "close", r.Header["connection"])

	settle()
	for _, got := range b.Received() {
		if got.Method == "PUT" {
			require.False(t, got.Complete, "the node must see the PUT incomplete, not as a whole message")
		}
	}
	require.LessOrEqual(t, b.Count("PUT", ""), 1, "a PUT is never sent again")
}

func TestLargeBodyCutShortIsNeverResentOrCompleted(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: big\r\nContent-Length: 1572864\r\n\r\n")
	part := make([]byte, 600<<10)
	_, _ = rand.Read(part)
	_, err := rc.Conn.Write(part)
	require.NoError(t, err)
	rc.CloseWrite()
	// The client went away mid-body: it gets no answer, only the close.
	r, err := rc.ReadResponse(false)
	require.Error(t, err, "got a response: %d %s", r.Status, r.Body)

	settle()
	require.LessOrEqual(t, b.Count("POST", "big"), 1, "a POST is never sent again")
	for _, got := range b.Received() {
		if got.Method == "POST" {
			require.False(t, got.Complete)
			require.Less(t, len(got.Body), 1572864)
		}
	}
}

func TestChunkedBodyCutAtChunkBoundaryStaysIncomplete(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: ch\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	time.Sleep(100 * time.Millisecond)
	rc.CloseWrite()
	_, err := rc.ReadResponse(false)
	require.Error(t, err, "the client went away: no answer")

	settle()
	require.LessOrEqual(t, b.Count("POST", "ch"), 1)
	for _, got := range b.Received() {
		if got.Method == "POST" {
			require.False(t, got.Complete, "the gateway must not write the last chunk for the client")
		}
	}
}

func TestCompleteChunkedBodyThenHalfCloseIsForwarded(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)

	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: whole\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	rc.CloseWrite()
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 200, r.Status)
	require.Equal(t, "id=whole", r.Body)
	got := b.Received()
	require.Len(t, got, 1)
	require.True(t, got[0].Complete)
	require.Equal(t, "hello", string(got[0].Body))
}

func TestSmallBodyCutShortNeverReachesNode(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /form HTTP/1.1\r\nHost: t\r\nX-Id: small\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 50000))
	rc.CloseWrite()
	_, err := rc.ReadResponse(false)
	require.Error(t, err)
	// A body within fasthttp's 8 KiB read-ahead is cut short before the
	// handler runs: fasthttp's error path answers 400 and closes.
	rc = testnet.DialRaw(t, tg.addr)
	rc.Send("POST /form HTTP/1.1\r\nHost: t\r\nX-Id: tiny\r\nContent-Length: 10\r\n\r\nabc")
	rc.CloseWrite()
	if r, err := rc.ReadResponse(false); err == nil {
		require.Equal(t, 400, r.Status)
	}
	settle()
	require.Zero(t, b.Count("POST", ""), "a body that never arrived whole is not forwarded")
}

func TestExtraBytesAfterResponseDoNotReachTheNextClient(t *testing.T) {
	for _, act := range []string{"extra", "extra-late"} {
		t.Run(act, func(t *testing.T) {
			b := testnet.StartRawBackend(t, "ok")
			tg := startRawGateway(t, "", "", b)
			r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/a", "first", act))
			require.NoError(t, err)
			require.Equal(t, "id=first", r.Body)
			if act == "extra-late" {
				// The injected bytes arrive while the connection is idle.
				require.Eventually(t, func() bool { return b.LateExtrasSent() == 1 }, 5*time.Second, time.Millisecond)
				time.Sleep(20 * time.Millisecond)
			}
			for i := range 3 {
				id := fmt.Sprint("next", i)
				r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/a", id, "ok"))
				require.NoError(t, err)
				require.Equal(t, 200, r.Status)
				require.Equal(t, id, r.Header["x-id"])
				require.Equal(t, "id="+id, r.Body)
			}
		})
	}
}

func TestBodyOnHeadAnd204DoesNotPoisonThePool(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	for i, req := range []string{
		testnet.RawReq("HEAD", "/h", "head", "body"),
		testnet.RawReq("GET", "/n", "nocontent", "body", "X-Status: 204"),
		testnet.RawReq("GET", "/n", "notmod", "body", "X-Status: 304"),
	} {
		r, err := testnet.RawDo(t, tg.addr, req)
		require.NoError(t, err)
		require.Less(t, r.Status, 400)
		id := fmt.Sprint("after", i)
		r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/a", id, "ok"))
		require.NoError(t, err)
		require.Equal(t, id, r.Header["x-id"])
		require.Equal(t, "id="+id, r.Body)
	}
}

func TestPostIsNotSentTwiceWhenNodeClosesAfterReading(t *testing.T) {
	b1 := testnet.StartRawBackend(t, "ok")
	b2 := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "retries: 3,", b1, b2)
	// Warm both nodes so that the POST goes out on a reused connection.
	for range 4 {
		warm(t, tg)
	}
	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /order HTTP/1.1\r\nHost: t\r\nX-Id: order-1\r\nX-Act: readclose\r\nContent-Length: 5\r\n\r\nhello")
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 502, r.Status)
	settle()
	require.Equal(t, 1, b1.Count("POST", "order-1")+b2.Count("POST", "order-1"), "the POST reached a node exactly once")

	// An idempotent request may go again, on the other node.
	r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/g", "get-1", "readclose"))
	require.NoError(t, err)
	require.Equal(t, 502, r.Status)
	require.GreaterOrEqual(t, b1.Count("GET", "get-1")+b2.Count("GET", "get-1"), 2)
}

func TestIdleConnectionClosedByNodeIsNotUsed(t *testing.T) {
	// The node closes every connection after one response, without saying
	// so: the gateway must notice the close before it sends the POST.
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "retries: 0,", b)
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/w", "w", "close-after"))
	require.NoError(t, err)
	require.Equal(t, "id=w", r.Body)
	time.Sleep(30 * time.Millisecond)
	for i := range 5 {
		rc := testnet.DialRaw(t, tg.addr)
		id := fmt.Sprint("p", i)
		rc.Send("POST /p HTTP/1.1\r\nHost: t\r\nX-Id: " + id + "\r\nX-Act: close-after\r\nContent-Length: 2\r\n\r\nhi")
		r, err := rc.ReadResponse(false)
		require.NoError(t, err)
		require.Equal(t, 200, r.Status, "POST %d on a connection the node had closed", i)
		require.Equal(t, "id="+id, r.Body)
		time.Sleep(30 * time.Millisecond) // the FIN arrives while the connection is idle
	}
}

func TestReadTimeoutIsBetweenReads(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startRawGateway(t, "", "timeout: {read: 1},", b)
	// 11 body bytes, one every 250 ms: 2.75 s in all, never 1 s without a byte.
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/slow", "dripping", "drip", "X-Drip-Ms: 250"))
	require.NoError(t, err)
	require.Equal(t, 200, r.Status, r.Body)
	require.Equal(t, "id=dripping", r.Body)

	// A node that stops sending is still cut off.
	r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/stall", "stalled", "stall"))
	require.NoError(t, err)
	require.Equal(t, 504, r.Status)
}

func TestExpectContinueOnlyAfterPlugins(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startGateway(t, `
services:
  - {id: s, plugins: {key-auth: {}}, upstream: `+rawUpstreamYAML("", b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
`)
	// Without a key: the 401 comes at once, instead of a 100.
	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /up HTTP/1.1\r\nHost: t\r\nX-Id: e1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 401, r.Status)
	require.Contains(t, r.Body, `"APIG.0303"`)

	// With a key: 100, then the body, then the node's answer.
	rc = testnet.DialRaw(t, tg.addr)
	rc.Send("POST /up HTTP/1.1\r\nHost: t\r\nX-Id: e2\r\napikey: k1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r, err = rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 100, r.Status)
	rc.Send("hello")
	r, err = rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 200, r.Status)
	require.Equal(t, "id=e2", r.Body)
	got := b.Received()
	require.Len(t, got, 1)
	require.Equal(t, "hello", string(got[0].Body))
	require.Empty(t, got[0].Header["expect"], "the gateway answered the expectation itself")
}

func TestUnsolicitedUpgradeIsBadGateway(t *testing.T) {
	b := testnet.StartRawBackend(t, "upgrade")
	tg := startRawGateway(t, "", "retries: 0,", b)
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/ws", "u1", ""))
	require.NoError(t, err)
	require.Equal(t, 502, r.Status)
	require.Contains(t, r.Body, `"APIG.0202"`)
}

// observedGateway serves yaml with a logger whose lines the test reads.
func observedGateway(t *testing.T, yaml string) (*testGateway, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	g := New(Options{Logger: zap.New(core)})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	return serveGateway(t, g), logs
}

func attemptLogs(logs *observer.ObservedLogs) []map[string]any {
	var out []map[string]any
	for _, e := range logs.FilterMessage("upstream attempt failed").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

func TestResponseHeaderLimitAndFailureLog(t *testing.T) {
	b := testnet.StartRawBackend(t, "bigheader")
	// 20 KiB of header fits the default 64 KiB limit.
	tg, _ := observedGateway(t, `
gateway: {access_log: {enabled: false}}
services: [{id: s, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{paths: ["/*"]}]}]`)
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/h", "big1", "", "X-Header-Size: 20000"))
	require.NoError(t, err)
	require.Equal(t, 200, r.Status)
	require.Len(t, r.Header["x-big"], 20000)
	// The connection that grew its buffer keeps working.
	r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/h", "big2", "", "X-Header-Size: 10"))
	require.NoError(t, err)
	require.Equal(t, "id=big2", r.Body)

	// Over a lowered limit: 502 and a log line that says why.
	tg, logs := observedGateway(t, `
gateway: {access_log: {enabled: false}, max_response_header_size: 16384}
services: [{id: s, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{paths: ["/*"]}]}]`)
	r, err = testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/h", "big3", "", "X-Header-Size: 20000"))
	require.NoError(t, err)
	require.Equal(t, 502, r.Status)
	lines := attemptLogs(logs)
	require.Len(t, lines, 1)
	require.Equal(t, "read", lines[0]["phase"])
	require.Equal(t, b.Addr, lines[0]["node"])
	require.Contains(t, lines[0]["error"], "response header too large")
}

// A node's response head that does not parse is logged as a failed
// attempt without its bytes: they may hold the node's Set-Cookie.
func TestUnparsableResponseIsLoggedWithoutItsBytes(t *testing.T) {
	b := testnet.StartRawBackend(t, "badheader")
	tg, logs := observedGateway(t, `
gateway: {access_log: {enabled: false}}
services: [{id: s, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{paths: ["/*"]}]}]`)
	r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/x", "bad", ""))
	require.NoError(t, err)
	require.Equal(t, 502, r.Status)
	lines := attemptLogs(logs)
	require.Len(t, lines, 1)
	require.Equal(t, "read", lines[0]["phase"])
	require.NotContains(t, lines[0]["error"], "NODE-SECRET-COOKIE")
}

func TestUpstreamTLSFailureIsLoggedWithReason(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "secret") }))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	tg, logs := observedGateway(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, upstream: {scheme: https, tls: {verify: true}, retries: 0, nodes: [{host: `+host+`, port: `+port+`}]}, routes: [{paths: ["/*"]}]}`)
	const n = 20
	for range n {
		r, err := testnet.RawDo(t, tg.addr, testnet.RawReq("GET", "/x", "tls", ""))
		require.NoError(t, err)
		require.Equal(t, 502, r.Status)
	}
	lines := attemptLogs(logs)
	// At most one line per node per second, the rest counted in the next.
	require.NotEmpty(t, lines)
	require.Less(t, len(lines), n)
	require.Equal(t, "connect", lines[0]["phase"])
	require.Contains(t, lines[0]["error"], "x509")
}

func TestGatewayMadeResponsesCountBytesOut(t *testing.T) {
	b := testnet.StartRawBackend(t, "readclose")
	tg := startGateway(t, `
services:
  - {id: s, path_prefix: /api, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{id: r, paths: ["/x"], methods: [GET]}]}
`)
	before := scrape(t, tg.g)
	var sizes int
	for _, req := range []string{testnet.RawReq("GET", "/nowhere", "a", ""), testnet.RawReq("POST", "/api/x", "b", ""), testnet.RawReq("GET", "/api/x", "c", "")} {
		r, err := testnet.RawDo(t, tg.addr, req)
		require.NoError(t, err)
		require.GreaterOrEqual(t, r.Status, 400)
		sizes += len(r.Body)
	}
	after := scrape(t, tg.g)
	require.Equal(t, sizes, bytesOutTotal(after)-bytesOutTotal(before))
}

// bytesOutTotal sums gateway_http_bytes_total{direction="out"}.
func bytesOutTotal(metrics string) int {
	total := 0.0
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "gateway_http_bytes_total{") && strings.Contains(line, `direction="out"`) {
			var v float64
			_, _ = fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			total += v
		}
	}
	return int(total)
}

// TestConcurrentClientsNeverGetAnotherClientsResponse: clients send
// requests with unique ids through shared keep-alive pools to nodes that
// misbehave at random; every answer is the client's own or a gateway error.
func TestConcurrentClientsNeverGetAnotherClientsResponse(t *testing.T) {
	nodes := []*testnet.RawBackend{testnet.StartRawBackend(t, "ok"), testnet.StartRawBackend(t, "ok"), testnet.StartRawBackend(t, "ok")}
	tg := startRawGateway(t, "", "timeout: {read: 0.3}, keepalive_pool: {size: 4},", nodes...)
	// Not extra-late: bytes a node sends after the gateway checked the idle
	// connection and sent the next request cannot be told from its answer
	// (Go's Transport has the same window); TestExtraBytesAfterResponse
	// covers bytes that arrive while the connection is idle.
	acts := []string{"ok", "ok", "ok", "extra", "body", "readclose", "drip", "reset", "close-after"}
	const clients, perClient = 12, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				id := fmt.Sprintf("c%d-r%d", c, i)
				act := acts[(seed/int64(c+1)+int64(i*7+c))%int64(len(acts))]
				method := "GET"
				extra := []string{"X-Drip-Ms: 20"}
				switch (i + c) % 3 {
				case 1:
					method = "POST"
					extra = append(extra, "Content-Length: 3")
				case 2:
					if act == "body" {
						method = "HEAD"
					}
				}
				req := testnet.RawReq(method, "/p", id, act, extra...)
				if method == "POST" {
					req += "abc"
				}
				conn, err := net.Dial("tcp", tg.addr)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				rc := testnet.NewRawClient(conn)
				_, _ = io.WriteString(conn, req)
				r, err := rc.ReadResponse(method == "HEAD")
				conn.Close()
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, id+": "+err.Error())
				case r.Status == 502 || r.Status == 504:
					// A HEAD answer has no body, the gateway's error body
					// included (a node that sends a body to HEAD is a 502).
					if method != "HEAD" && !strings.Contains(r.Body, `"error_code":"APIG.020`) {
						failures = append(failures, id+": gateway error without the gateway's body: "+r.Body)
					}
				case r.Header["x-id"] != id:
					failures = append(failures, fmt.Sprintf("%s (%s %s) got %q's response: %d %q", id, method, act, r.Header["x-id"], r.Status, r.Body))
				case method != "HEAD" && r.Body != "id="+id:
					failures = append(failures, fmt.Sprintf("%s got body %q", id, r.Body))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, failures)

	// No POST reached a node twice.
	seen := map[string]int{}
	for _, n := range nodes {
		for _, r := range n.Received() {
			if r.Method == "POST" {
				seen[r.ID]++
			}
		}
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "POST %s reached the nodes %d times", id, n)
	}
}

func TestClientBodyFailuresAreLoggedAsClientErrors(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	path := t.TempDir() + "/access.log"
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services: [{id: s, upstream: `+rawUpstreamYAML("", b)+`, routes: [{id: r, paths: ["/*"]}]}]
`)
	rc := testnet.DialRaw(t, tg.addr)
	rc.Send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("a", 10000))
	rc.CloseWrite()
	_, err := rc.ReadResponse(false)
	require.Error(t, err)

	rc = testnet.DialRaw(t, tg.addr)
	rc.Send("POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nQQ\r\n")
	r, err := rc.ReadResponse(false)
	require.NoError(t, err)
	require.Equal(t, 400, r.Status)

	metrics := scrape(t, tg.g)
	require.Contains(t, metrics, `gateway_upstream_attempts_total{node="`+b.Addr+`",result="error",upstream="s"} 0`, "the node is not blamed")
	tg.g.Close() // flushes the log
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 2)
	var aborted, malformed map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &aborted))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &malformed))
	require.EqualValues(t, 499, aborted["status"])
	require.Equal(t, "CLIENT_CLOSED_REQUEST", aborted["error_type"])
	require.EqualValues(t, 0, aborted["attempts"], "a small body is read whole before any node is tried")
	require.EqualValues(t, 400, malformed["status"])
	require.Equal(t, "REQUEST_PARAMETERS_FAILURE", malformed["error_type"])
}
