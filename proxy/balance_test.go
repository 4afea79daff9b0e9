package proxy

import (
	"bufio"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testnet"
)

// hangingBackend accepts connections and reads requests but never answers.
// It counts the request lines it received, by method.
type hangingBackend struct {
	addr  string
	posts atomic.Int64
	gets  atomic.Int64
}

func startHangingBackend(t *testing.T) *hangingBackend {
	ln := testnet.Listen(t)
	h := &hangingBackend{addr: ln.Addr().String()}
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.HasPrefix(line, "POST "):
						h.posts.Add(1)
					case strings.HasPrefix(line, "GET "):
						h.gets.Add(1)
					}
				}
			}()
		}
	}()
	return h
}

func (h *hangingBackend) port() string { return testnet.Port(h.addr) }

func TestRetryConnectionRefusedForEveryMethod(t *testing.T) {
	good := startBackend(t, "good", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes:
        - {host: 127.0.0.1, port: `+testnet.DeadPort(t)+`}
        - {host: 127.0.0.1, port: `+good.port()+`}
    routes: [{paths: ["/*"]}]
`)
	for range 10 {
		require.Equal(t, 200, tg.get(t, "/x").StatusCode())
		require.Equal(t, 200, tg.do(t, "POST", "/x", nil, "body").StatusCode())
	}
	require.Equal(t, int64(20), good.hits.Load())
}

func TestRetryAfterSendOnlyWhenIdempotent(t *testing.T) {
	hang := startHangingBackend(t)
	good := startBackend(t, "good", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      timeout: {connect: 1, send: 1, read: 0.3}
      nodes:
        - {host: 127.0.0.1, port: `+hang.port()+`, priority: 1}
        - {host: 127.0.0.1, port: `+good.port()+`}
    routes: [{paths: ["/*"]}]
`)
	resp := tg.get(t, "/x")
	require.Equal(t, 200, resp.StatusCode(), "a GET that timed out is retried on the next node")
	require.Equal(t, "good", string(resp.Header.Peek("X-Backend")))
	require.Equal(t, int64(1), hang.gets.Load())

	resp = tg.do(t, "POST", "/x", nil, "pay once")
	requireGatewayError(t, resp, 504, "APIG.0203")
	require.Equal(t, int64(1), hang.posts.Load(), "the POST reached the hanging node once")
	require.Equal(t, int64(1), good.hits.Load(), "and was never sent again elsewhere")
}

func TestRetriesZeroMeansOneAttempt(t *testing.T) {
	good := startBackend(t, "good", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      retries: 0
      nodes:
        - {host: 127.0.0.1, port: `+testnet.DeadPort(t)+`, priority: 1}
        - {host: 127.0.0.1, port: `+good.port()+`}
    routes: [{paths: ["/*"]}]
`)
	requireGatewayError(t, tg.get(t, "/x"), 502, "APIG.0202")
	require.Zero(t, good.hits.Load())
}

func TestRetryTimeoutBoundsAllAttempts(t *testing.T) {
	h1, h2 := startHangingBackend(t), startHangingBackend(t)
	good := startBackend(t, "good", nil)
	upstream := func(rt string) string {
		return `{retry_timeout: ` + rt + `, timeout: {connect: 1, send: 1, read: 0.4}, nodes: [
          {host: 127.0.0.1, port: ` + h1.port() + `, priority: 2},
          {host: 127.0.0.1, port: ` + h2.port() + `, priority: 1},
          {host: 127.0.0.1, port: ` + good.port() + `}]}`
	}
	tg := startGateway(t, `
services:
  - {id: bounded, path_prefix: /bounded, upstream: `+upstream("0.5")+`, routes: [{paths: ["/*"]}]}
  - {id: unbounded, path_prefix: /unbounded, upstream: `+upstream("0")+`, routes: [{paths: ["/*"]}]}
`)
	start := time.Now()
	requireGatewayError(t, tg.get(t, "/bounded/x"), 504, "APIG.0203")
	require.Less(t, time.Since(start), 2*time.Second)
	require.Zero(t, good.hits.Load(), "the budget ran out before the third node")

	require.Equal(t, 200, tg.get(t, "/unbounded/x").StatusCode())
	require.Equal(t, int64(1), good.hits.Load())
}

func TestAttemptsCountedInMetrics(t *testing.T) {
	good := startBackend(t, "good", nil)
	dead := testnet.DeadPort(t)
	tg := startGateway(t, `
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: `+dead+`, priority: 1}, {host: 127.0.0.1, port: `+good.port()+`}]}
    routes: [{paths: ["/*"]}]
`)
	require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	text := scrape(t, tg.g)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:`+dead+`",result="connect_error",upstream="s"} 1`)
	require.Contains(t, text, `gateway_upstream_attempts_total{node="127.0.0.1:`+good.port()+`",result="ok",upstream="s"} 1`)
	require.Contains(t, text, `gateway_http_requests_total{code="200",route="s.0",service="s"} 1`)
}

func TestChashModesEndToEnd(t *testing.T) {
	var bs []*backend
	for i := range 4 {
		bs = append(bs, startBackend(t, fmt.Sprintf("n%d", i), nil))
	}
	nodes := "["
	for i, b := range bs {
		if i > 0 {
			nodes += ", "
		}
		nodes += "{host: 127.0.0.1, port: " + b.port() + "}"
	}
	nodes += "]"
	tg := startGateway(t, `
services:
  - {id: header, path_prefix: /header, upstream: {type: chash, hash_on: header, key: X-User-Id, nodes: `+nodes+`}, routes: [{paths: ["/*"]}]}
  - {id: cookie, path_prefix: /cookie, upstream: {type: chash, hash_on: cookie, key: session, nodes: `+nodes+`}, routes: [{paths: ["/*"]}]}
  - {id: vars, path_prefix: /vars, upstream: {type: chash, hash_on: vars, key: arg_user, nodes: `+nodes+`}, routes: [{paths: ["/*"]}]}
  - {id: combo, path_prefix: /combo, upstream: {type: chash, hash_on: vars_combinations, key: "$http_x_a-$arg_b", nodes: `+nodes+`}, routes: [{paths: ["/*"]}]}
  - {id: consumer, path_prefix: /consumer, plugins: {key-auth: {}}, upstream: {type: chash, hash_on: consumer, nodes: `+nodes+`}, routes: [{paths: ["/*"]}]}
consumers:
`+func() string {
		s := ""
		for i := range 40 {
			s += fmt.Sprintf("  - {username: user%d, plugins: {key-auth: {key: key-%d}}}\n", i, i)
		}
		return s
	}())
	cases := []struct {
		name string
		req  func(v int) (string, map[string]string)
	}{
		{"header", func(v int) (string, map[string]string) {
			return "/header/x", map[string]string{"X-User-Id": fmt.Sprint("u", v)}
		}},
		{"cookie", func(v int) (string, map[string]string) {
			return "/cookie/x", map[string]string{"Cookie": fmt.Sprint("session=s", v)}
		}},
		{"vars", func(v int) (string, map[string]string) { return fmt.Sprint("/vars/x?user=u", v), nil }},
		{"vars_combinations", func(v int) (string, map[string]string) {
			return fmt.Sprint("/combo/x?b=", v), map[string]string{"X-A": "a"}
		}},
		{"consumer", func(v int) (string, map[string]string) {
			return "/consumer/x", map[string]string{"apikey": fmt.Sprint("key-", v)}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uri, hdr := c.req(7)
			first := ""
			for range 100 {
				resp := tg.do(t, "GET", uri, hdr, "")
				require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
				got := string(resp.Header.Peek("X-Backend"))
				if first == "" {
					first = got
				}
				require.Equal(t, first, got, "the same key always reaches the same node")
			}
			seen := map[string]bool{}
			for v := range 40 {
				uri, hdr := c.req(v)
				seen[string(tg.do(t, "GET", uri, hdr, "").Header.Peek("X-Backend"))] = true
			}
			require.GreaterOrEqual(t, len(seen), 3, "different keys spread over the nodes")
		})
	}
}

func TestLeastConnPrefersTheFastNode(t *testing.T) {
	slow := startBackend(t, "slow", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(100 * time.Millisecond)
		ctx.Response.Header.Set("X-Backend", "slow")
	})
	fast := startBackend(t, "fast", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: {type: least_conn, nodes: [{host: 127.0.0.1, port: `+slow.port()+`}, {host: 127.0.0.1, port: `+fast.port()+`}]}
    routes: [{paths: ["/*"]}]
`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				req := fasthttp.AcquireRequest()
				req.SetRequestURI("http://" + tg.addr + "/x")
				resp := fasthttp.AcquireResponse()
				if testClient.Do(req, resp) == nil && resp.StatusCode() != 200 {
					t.Errorf("status %d", resp.StatusCode())
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	wg.Wait()
	total := slow.hits.Load() + fast.hits.Load()
	require.Equal(t, int64(160), total)
	require.Greater(t, fast.hits.Load(), 3*slow.hits.Load(), "slow=%d fast=%d", slow.hits.Load(), fast.hits.Load())
}
