package proxy

import (
	"bufio"
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
)

// rawUpstreamYAML is an upstream over raw backends, plus extra keys.
func rawUpstreamYAML(extra string, nodes ...*rawBackend) string {
	var b strings.Builder
	b.WriteString("{" + extra + " nodes: [")
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{host: 127.0.0.1, port: %s}", n.port())
	}
	b.WriteString("]}")
	return b.String()
}

func startRawGateway(t *testing.T, gatewayKeys, upstreamKeys string, nodes ...*rawBackend) *testGateway {
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
	r, err := rawDo(t, tg.addr, rawReq("GET", "/warm", "warm", "ok"))
	require.NoError(t, err)
	require.Equal(t, 200, r.status)
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
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := dialRaw(t, tg.addr)
	rc.send("PUT /public/file HTTP/1.1\r\nHost: t\r\nX-Id: put1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZZ\r\nworld\r\n0\r\n\r\n")
	r, err := rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 400, r.status, r.body)
	require.Contains(t, r.body, `"APIG.0201"`)
	require.Equal(t, "close", r.header["connection"])

	settle()
	for _, got := range b.received() {
		if got.method == "PUT" {
			require.False(t, got.complete, "the node must see the PUT incomplete, not as a whole message")
		}
	}
	require.LessOrEqual(t, b.count("PUT", ""), 1, "a PUT is never sent again")
}

func TestLargeBodyCutShortIsNeverResentOrCompleted(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := dialRaw(t, tg.addr)
	rc.send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: big\r\nContent-Length: 1572864\r\n\r\n")
	part := make([]byte, 600<<10)
	_, _ = rand.Read(part)
	_, err := rc.c.Write(part)
	require.NoError(t, err)
	rc.closeWrite()
	// The client went away mid-body: it gets no answer, only the close.
	r, err := rc.readResponse(false)
	require.Error(t, err, "got a response: %d %s", r.status, r.body)

	settle()
	require.LessOrEqual(t, b.count("POST", "big"), 1, "a POST is never sent again")
	for _, got := range b.received() {
		if got.method == "POST" {
			require.False(t, got.complete)
			require.Less(t, len(got.body), 1572864)
		}
	}
}

func TestChunkedBodyCutAtChunkBoundaryStaysIncomplete(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := dialRaw(t, tg.addr)
	rc.send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: ch\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	time.Sleep(100 * time.Millisecond)
	rc.closeWrite()
	_, err := rc.readResponse(false)
	require.Error(t, err, "the client went away: no answer")

	settle()
	require.LessOrEqual(t, b.count("POST", "ch"), 1)
	for _, got := range b.received() {
		if got.method == "POST" {
			require.False(t, got.complete, "the gateway must not write the last chunk for the client")
		}
	}
}

func TestCompleteChunkedBodyThenHalfCloseIsForwarded(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)

	rc := dialRaw(t, tg.addr)
	rc.send("POST /upload HTTP/1.1\r\nHost: t\r\nX-Id: whole\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	rc.closeWrite()
	r, err := rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 200, r.status)
	require.Equal(t, "id=whole", r.body)
	got := b.received()
	require.Len(t, got, 1)
	require.True(t, got[0].complete)
	require.Equal(t, "hello", string(got[0].body))
}

func TestSmallBodyCutShortNeverReachesNode(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	warm(t, tg)

	rc := dialRaw(t, tg.addr)
	rc.send("POST /form HTTP/1.1\r\nHost: t\r\nX-Id: small\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 50000))
	rc.closeWrite()
	_, err := rc.readResponse(false)
	require.Error(t, err)
	// A body within fasthttp's 8 KiB read-ahead is cut short before the
	// handler runs: fasthttp's error path answers 400 and closes.
	rc = dialRaw(t, tg.addr)
	rc.send("POST /form HTTP/1.1\r\nHost: t\r\nX-Id: tiny\r\nContent-Length: 10\r\n\r\nabc")
	rc.closeWrite()
	if r, err := rc.readResponse(false); err == nil {
		require.Equal(t, 400, r.status)
	}
	settle()
	require.Zero(t, b.count("POST", ""), "a body that never arrived whole is not forwarded")
}

func TestExtraBytesAfterResponseDoNotReachTheNextClient(t *testing.T) {
	for _, act := range []string{"extra", "extra-late"} {
		t.Run(act, func(t *testing.T) {
			b := startRawBackend(t, "ok")
			tg := startRawGateway(t, "", "", b)
			r, err := rawDo(t, tg.addr, rawReq("GET", "/a", "first", act))
			require.NoError(t, err)
			require.Equal(t, "id=first", r.body)
			if act == "extra-late" {
				time.Sleep(150 * time.Millisecond) // the injected bytes arrive while the connection is idle
			}
			for i := range 3 {
				id := fmt.Sprint("next", i)
				r, err = rawDo(t, tg.addr, rawReq("GET", "/a", id, "ok"))
				require.NoError(t, err)
				require.Equal(t, 200, r.status)
				require.Equal(t, id, r.header["x-id"])
				require.Equal(t, "id="+id, r.body)
			}
		})
	}
}

func TestBodyOnHeadAnd204DoesNotPoisonThePool(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "", b)
	for i, req := range []string{
		rawReq("HEAD", "/h", "head", "body"),
		rawReq("GET", "/n", "nocontent", "body", "X-Status: 204"),
		rawReq("GET", "/n", "notmod", "body", "X-Status: 304"),
	} {
		r, err := rawDo(t, tg.addr, req)
		require.NoError(t, err)
		require.Less(t, r.status, 400)
		id := fmt.Sprint("after", i)
		r, err = rawDo(t, tg.addr, rawReq("GET", "/a", id, "ok"))
		require.NoError(t, err)
		require.Equal(t, id, r.header["x-id"])
		require.Equal(t, "id="+id, r.body)
	}
}

func TestPostIsNotSentTwiceWhenNodeClosesAfterReading(t *testing.T) {
	b1 := startRawBackend(t, "ok")
	b2 := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "retries: 3,", b1, b2)
	// Warm both nodes so that the POST goes out on a reused connection.
	for range 4 {
		warm(t, tg)
	}
	rc := dialRaw(t, tg.addr)
	rc.send("POST /order HTTP/1.1\r\nHost: t\r\nX-Id: order-1\r\nX-Act: readclose\r\nContent-Length: 5\r\n\r\nhello")
	r, err := rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 502, r.status)
	settle()
	require.Equal(t, 1, b1.count("POST", "order-1")+b2.count("POST", "order-1"), "the POST reached a node exactly once")

	// An idempotent request may go again, on the other node.
	r, err = rawDo(t, tg.addr, rawReq("GET", "/g", "get-1", "readclose"))
	require.NoError(t, err)
	require.Equal(t, 502, r.status)
	require.GreaterOrEqual(t, b1.count("GET", "get-1")+b2.count("GET", "get-1"), 2)
}

func TestIdleConnectionClosedByNodeIsNotUsed(t *testing.T) {
	// The node closes every connection after one response, without saying
	// so: the gateway must notice the close before it sends the POST.
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "retries: 0,", b)
	r, err := rawDo(t, tg.addr, rawReq("GET", "/w", "w", "close-after"))
	require.NoError(t, err)
	require.Equal(t, "id=w", r.body)
	time.Sleep(30 * time.Millisecond)
	for i := range 5 {
		rc := dialRaw(t, tg.addr)
		id := fmt.Sprint("p", i)
		rc.send("POST /p HTTP/1.1\r\nHost: t\r\nX-Id: " + id + "\r\nX-Act: close-after\r\nContent-Length: 2\r\n\r\nhi")
		r, err := rc.readResponse(false)
		require.NoError(t, err)
		require.Equal(t, 200, r.status, "POST %d on a connection the node had closed", i)
		require.Equal(t, "id="+id, r.body)
		time.Sleep(30 * time.Millisecond) // the FIN arrives while the connection is idle
	}
}

func TestReadTimeoutIsBetweenReads(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startRawGateway(t, "", "timeout: {read: 1},", b)
	// 11 body bytes, one every 250 ms: 2.75 s in all, never 1 s without a byte.
	r, err := rawDo(t, tg.addr, rawReq("GET", "/slow", "dripping", "drip", "X-Drip-Ms: 250"))
	require.NoError(t, err)
	require.Equal(t, 200, r.status, r.body)
	require.Equal(t, "id=dripping", r.body)

	// A node that stops sending is still cut off.
	r, err = rawDo(t, tg.addr, rawReq("GET", "/stall", "stalled", "stall"))
	require.NoError(t, err)
	require.Equal(t, 504, r.status)
}

func TestExpectContinueOnlyAfterPlugins(t *testing.T) {
	b := startRawBackend(t, "ok")
	tg := startGateway(t, `
services:
  - {id: s, plugins: {key-auth: {}}, upstream: `+rawUpstreamYAML("", b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: k1}}}]
`)
	// Without a key: the 401 comes at once, instead of a 100.
	rc := dialRaw(t, tg.addr)
	rc.send("POST /up HTTP/1.1\r\nHost: t\r\nX-Id: e1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r, err := rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 401, r.status)
	require.Contains(t, r.body, `"APIG.0303"`)

	// With a key: 100, then the body, then the node's answer.
	rc = dialRaw(t, tg.addr)
	rc.send("POST /up HTTP/1.1\r\nHost: t\r\nX-Id: e2\r\napikey: k1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	r, err = rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 100, r.status)
	rc.send("hello")
	r, err = rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 200, r.status)
	require.Equal(t, "id=e2", r.body)
	got := b.received()
	require.Len(t, got, 1)
	require.Equal(t, "hello", string(got[0].body))
	require.Empty(t, got[0].header["expect"], "the gateway answered the expectation itself")
}

func TestUnsolicitedUpgradeIsBadGateway(t *testing.T) {
	b := startRawBackend(t, "upgrade")
	tg := startRawGateway(t, "", "retries: 0,", b)
	r, err := rawDo(t, tg.addr, rawReq("GET", "/ws", "u1", ""))
	require.NoError(t, err)
	require.Equal(t, 502, r.status)
	require.Contains(t, r.body, `"APIG.0202"`)
}

// observedGateway serves yaml with a logger whose lines the test reads.
func observedGateway(t *testing.T, yaml string) (*testGateway, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	g := New(Options{Logger: zap.New(core)})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { _ = g.Serve(ln); close(done) }()
	t.Cleanup(func() {
		_ = g.Shutdown(t.Context())
		<-done
		g.Close()
	})
	return &testGateway{g: g, addr: ln.Addr().String(), ln: ln}, logs
}

func attemptLogs(logs *observer.ObservedLogs) []map[string]any {
	var out []map[string]any
	for _, e := range logs.FilterMessage("upstream attempt failed").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

func TestResponseHeaderLimitAndFailureLog(t *testing.T) {
	b := startRawBackend(t, "bigheader")
	// 20 KiB of header fits the default 64 KiB limit.
	tg, _ := observedGateway(t, `
gateway: {access_log: {enabled: false}}
services: [{id: s, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{paths: ["/*"]}]}]`)
	r, err := rawDo(t, tg.addr, rawReq("GET", "/h", "big1", "", "X-Header-Size: 20000"))
	require.NoError(t, err)
	require.Equal(t, 200, r.status)
	require.Len(t, r.header["x-big"], 20000)
	// The connection that grew its buffer keeps working.
	r, err = rawDo(t, tg.addr, rawReq("GET", "/h", "big2", "", "X-Header-Size: 10"))
	require.NoError(t, err)
	require.Equal(t, "id=big2", r.body)

	// Over a lowered limit: 502 and a log line that says why.
	tg, logs := observedGateway(t, `
gateway: {access_log: {enabled: false}, max_response_header_size: 16384}
services: [{id: s, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{paths: ["/*"]}]}]`)
	r, err = rawDo(t, tg.addr, rawReq("GET", "/h", "big3", "", "X-Header-Size: 20000"))
	require.NoError(t, err)
	require.Equal(t, 502, r.status)
	lines := attemptLogs(logs)
	require.Len(t, lines, 1)
	require.Equal(t, "read", lines[0]["phase"])
	require.Equal(t, b.addr, lines[0]["node"])
	require.Contains(t, lines[0]["error"], "response header too large")
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
		r, err := rawDo(t, tg.addr, rawReq("GET", "/x", "tls", ""))
		require.NoError(t, err)
		require.Equal(t, 502, r.status)
	}
	lines := attemptLogs(logs)
	// At most one line per node per second, the rest counted in the next.
	require.NotEmpty(t, lines)
	require.Less(t, len(lines), n)
	require.Equal(t, "connect", lines[0]["phase"])
	require.Contains(t, lines[0]["error"], "x509")
}

func TestGatewayMadeResponsesCountBytesOut(t *testing.T) {
	b := startRawBackend(t, "readclose")
	tg := startGateway(t, `
services:
  - {id: s, path_prefix: /api, upstream: `+rawUpstreamYAML("retries: 0,", b)+`, routes: [{id: r, paths: ["/x"], methods: [GET]}]}
`)
	before := scrape(t, tg.g)
	var sizes int
	for _, req := range []string{rawReq("GET", "/nowhere", "a", ""), rawReq("POST", "/api/x", "b", ""), rawReq("GET", "/api/x", "c", "")} {
		r, err := rawDo(t, tg.addr, req)
		require.NoError(t, err)
		require.GreaterOrEqual(t, r.status, 400)
		sizes += len(r.body)
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
	nodes := []*rawBackend{startRawBackend(t, "ok"), startRawBackend(t, "ok"), startRawBackend(t, "ok")}
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
				req := rawReq(method, "/p", id, act, extra...)
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
				rc := &rawClient{t: t, c: conn, br: bufio.NewReader(conn)}
				_, _ = io.WriteString(conn, req)
				r, err := rc.readResponse(method == "HEAD")
				conn.Close()
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, id+": "+err.Error())
				case r.status == 502 || r.status == 504:
					if !strings.Contains(r.body, `"error_code":"APIG.020`) {
						failures = append(failures, id+": gateway error without the gateway's body: "+r.body)
					}
				case r.header["x-id"] != id:
					failures = append(failures, fmt.Sprintf("%s (%s %s) got %q's response: %d %q", id, method, act, r.header["x-id"], r.status, r.body))
				case method != "HEAD" && r.body != "id="+id:
					failures = append(failures, fmt.Sprintf("%s got body %q", id, r.body))
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
		for _, r := range n.received() {
			if r.method == "POST" {
				seen[r.id]++
			}
		}
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "POST %s reached the nodes %d times", id, n)
	}
}

func TestClientBodyFailuresAreLoggedAsClientErrors(t *testing.T) {
	b := startRawBackend(t, "ok")
	path := t.TempDir() + "/access.log"
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services: [{id: s, upstream: `+rawUpstreamYAML("", b)+`, routes: [{id: r, paths: ["/*"]}]}]
`)
	rc := dialRaw(t, tg.addr)
	rc.send("POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("a", 10000))
	rc.closeWrite()
	_, err := rc.readResponse(false)
	require.Error(t, err)

	rc = dialRaw(t, tg.addr)
	rc.send("POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nQQ\r\n")
	r, err := rc.readResponse(false)
	require.NoError(t, err)
	require.Equal(t, 400, r.status)

	metrics := scrape(t, tg.g)
	require.Contains(t, metrics, `gateway_upstream_attempts_total{node="`+b.addr+`",result="error",upstream="s"} 0`, "the node is not blamed")
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
