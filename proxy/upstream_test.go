package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testheap"
)

func TestWeightedRoundRobinExactSequence(t *testing.T) {
	a := startBackend(t, "a", nil)
	b := startBackend(t, "b", nil)
	c := startBackend(t, "c", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream:
      nodes:
        - {host: 127.0.0.1, port: `+a.port()+`, weight: 5}
        - {host: 127.0.0.1, port: `+b.port()+`, weight: 1}
        - {host: 127.0.0.1, port: `+c.port()+`, weight: 1}
        - {host: 127.0.0.1, port: 1, weight: 0}
    routes: [{paths: ["/*"]}]
`)
	var got []string
	for range 21 {
		resp := tg.get(t, "/x")
		require.Equal(t, 200, resp.StatusCode())
		got = append(got, string(resp.Header.Peek("X-Backend")))
	}
	want := strings.Fields(strings.Repeat("a a b a c a a ", 3))
	require.Equal(t, want, got, "nginx smooth weighted round robin; weight 0 never picked")
}

func TestKeepAliveReusedWhenClientsClose(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	for range 200 {
		resp := tg.do(t, "GET", "/x", map[string]string{"Connection": "close"}, "")
		require.Equal(t, 200, resp.StatusCode())
		require.True(t, resp.ConnectionClose(), "the client asked to close its own connection")
	}
	require.Equal(t, int64(200), b.hits.Load())
	require.LessOrEqual(t, b.conns.Load(), int64(2), "client Connection: close must not close upstream connections")
}

func TestKeepAlivePoolRequestsLimit(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    upstream: {keepalive_pool: {size: 4, idle_timeout: 60, requests: 10}, nodes: [{host: 127.0.0.1, port: `+b.port()+`}]}
    routes: [{paths: ["/*"]}]
`)
	for range 50 {
		require.Equal(t, 200, tg.get(t, "/x").StatusCode())
	}
	require.Equal(t, int64(5), b.conns.Load(), "a connection serves at most keepalive_pool.requests requests")
}

// counter is an io.Reader producing n bytes without holding them.
type counter struct{ left int64 }

func (c *counter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > c.left {
		n = c.left
	}
	for i := range p[:n] {
		p[i] = 'x'
	}
	c.left -= n
	return int(n), nil
}

func TestLargeBodiesStreamBothWays(t *testing.T) {
	const size = 100 << 20
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPost() {
			n, err := io.Copy(io.Discard, ctx.RequestBodyStream())
			if err != nil {
				ctx.SetStatusCode(500)
				return
			}
			ctx.SetBodyString(strconv.FormatInt(n, 10))
			return
		}
		ctx.SetBodyStream(&counter{left: size}, size)
	})
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_request_body_size: 209715200}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	client := &fasthttp.Client{StreamResponseBody: true, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	count := testheap.Count()

	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + tg.addr + "/upload")
	req.Header.SetMethod("POST")
	req.SetBodyStream(&counter{left: size}, size)
	resp := fasthttp.AcquireResponse()
	require.NoError(t, client.Do(req, resp))
	require.Equal(t, 200, resp.StatusCode())
	body, err := io.ReadAll(resp.BodyStream())
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(size), string(body), "the backend received the whole upload")
	fasthttp.ReleaseResponse(resp)
	fasthttp.ReleaseRequest(req)

	req = fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + tg.addr + "/download")
	resp = fasthttp.AcquireResponse()
	require.NoError(t, client.Do(req, resp))
	require.Equal(t, 200, resp.StatusCode())
	n, err := io.Copy(io.Discard, resp.BodyStream())
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	fasthttp.ReleaseResponse(resp)
	fasthttp.ReleaseRequest(req)

	// 200 MiB crossed the gateway twice (in and out); buffering either body
	// whole would allocate at least 100 MiB.
	_, allocated := count.Since()
	require.Less(t, allocated, uint64(40<<20), "allocated %d MiB", allocated>>20)
}

func TestChunkedUploadOverLimitIs413(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		_, _ = io.Copy(io.Discard, ctx.RequestBodyStream())
	})
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_request_body_size: 2000000}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	c, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// The gateway answers before the body ends; later writes may fail.
		_, _ = c.Write([]byte("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"))
		chunk := []byte("10000\r\n" + strings.Repeat("x", 0x10000) + "\r\n")
		for range 50 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufio.NewReader(c)))
	requireGatewayError(t, resp, 413, "APIG.0201")
	require.True(t, resp.ConnectionClose(), "the rest of the body is never read, so the connection must close")
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(500 * time.Millisecond)
		ctx.SetBodyString("done")
	})
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	var wg sync.WaitGroup
	var resp *fasthttp.Response
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := &fasthttp.Response{}
		req := &fasthttp.Request{}
		req.SetRequestURI("http://" + tg.addr + "/slow")
		if err := testClient.Do(req, r); err == nil {
			resp = r
		}
	}()
	require.Eventually(t, func() bool { return b.hits.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.True(t, tg.g.Ready())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, tg.g.Shutdown(ctx))
	require.False(t, tg.g.Ready(), "readyz turns 503 on shutdown")
	wg.Wait()
	require.NotNil(t, resp, "the in-flight request completed")
	require.Equal(t, "done", string(resp.Body()))
}
