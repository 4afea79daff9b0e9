package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n-64; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","ok":true},`, i, i*7)
	}
	b.WriteString(`{"end":true}]`)
	return b.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := kgzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return out
}

func TestGzipCompressesEligibleResponses(t *testing.T) {
	big := jsonBody(100 << 10)
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/json":
			ctx.SetContentType("application/json; charset=utf-8")
			ctx.Response.Header.Set("ETag", `"v1"`)
			ctx.SetBody(big)
		case "/small":
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"a":1}`)
		case "/encoded":
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("Content-Encoding", "br")
			ctx.SetBody(big)
		case "/png":
			ctx.SetContentType("image/png")
			ctx.SetBody(big)
		case "/chunked":
			ctx.SetContentType("application/json")
			ctx.SetBodyStream(bytes.NewReader(big), -1)
		}
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins: {gzip: {types: ["application/json", "text/html"], min_length: 1024, comp_level: 5}}
`)
	gz := map[string]string{"Accept-Encoding": "br;q=0.9, gzip"}
	resp := tg.do(t, "GET", "/json", gz, "")
	require.Equal(t, 200, resp.StatusCode())
	require.Equal(t, "gzip", string(resp.Header.Peek("Content-Encoding")))
	require.Equal(t, "Accept-Encoding", string(resp.Header.Peek("Vary")))
	require.Equal(t, `W/"v1"`, string(resp.Header.Peek("ETag")))
	require.Less(t, len(resp.Body()), len(big)/3)
	require.Equal(t, len(resp.Body()), resp.Header.ContentLength())
	require.Equal(t, big, gunzip(t, resp.Body()))

	// Not for a client that does not accept it.
	for _, ae := range []string{"", "br", "gzip;q=0"} {
		resp = tg.do(t, "GET", "/json", map[string]string{"Accept-Encoding": ae}, "")
		require.Empty(t, resp.Header.Peek("Content-Encoding"), ae)
		require.Equal(t, big, resp.Body(), ae)
		require.Equal(t, "Accept-Encoding", string(resp.Header.Peek("Vary")), ae)
		require.Equal(t, `"v1"`, string(resp.Header.Peek("ETag")), ae)
	}
	// Never recompressed, never small bodies, only the listed types.
	resp = tg.do(t, "GET", "/encoded", gz, "")
	require.Equal(t, "br", string(resp.Header.Peek("Content-Encoding")))
	require.Equal(t, big, resp.Body())
	resp = tg.do(t, "GET", "/small", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
	require.Equal(t, `{"a":1}`, string(resp.Body()))
	resp = tg.do(t, "GET", "/png", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
	// A streamed (chunked) body is compressed as it streams.
	resp = tg.do(t, "GET", "/chunked", gz, "")
	require.Equal(t, "gzip", string(resp.Header.Peek("Content-Encoding")))
	require.Equal(t, big, gunzip(t, resp.Body()))
	// HEAD gets the head of the uncompressed answer.
	resp = tg.do(t, "HEAD", "/json", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
}

func TestGzipConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{comp_level: 10}`, `gzip.comp_level`},
		{`{min_length: 0}`, `gzip.min_length`},
		{`{types: []}`, `gzip.types: at least one media type`},
		{`{types: ["json"]}`, `gzip.types[0]: not a media type`},
		{`{types: "*"}`, `gzip.types: expected a list`},
		{`{buffers: {number: 32, size: 4096}}`, `unknown key`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: {gzip: ` + tc.conf + `}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
}

func TestBrotliConfigErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{comp_level: 12}`, `brotli.comp_level`},
		{`{lgwin: 9}`, `brotli.lgwin`},
		{`{mode: 1}`, `brotli.mode: only 0 (generic) is supported`},
		{`{lgblock: 16}`, `brotli.lgblock: only 0 (automatic) is supported`},
		{`{types: ["json"]}`, `brotli.types[0]: not a media type`},
	} {
		_, err := mustParseErr(`
services: [{id: s, plugins: {brotli: ` + tc.conf + `}, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]`)
		require.ErrorContains(t, err, tc.want, tc.conf)
	}
}

func unbrotli(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(brrr.NewReader(bytes.NewReader(b)))
	require.NoError(t, err)
	return out
}

// TestBrotliAndGzip: with both plugins, a client that accepts br gets
// brotli, one that accepts only gzip gets gzip; buffered and streamed
// bodies (chunked, and a known length over the 1 MiB stream threshold);
// a node's streamed body read to its end leaves its connection reusable.
func TestBrotliAndGzip(t *testing.T) {
	big := jsonBody(100 << 10)
	huge := jsonBody(3 << 20)
	b := startBackend(t, "b", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		switch string(ctx.Path()) {
		case "/chunked":
			ctx.SetBodyStream(bytes.NewReader(big), -1)
		case "/huge":
			ctx.SetBody(huge)
		default:
			ctx.SetBody(big)
		}
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins:
          gzip: {types: ["application/json"]}
          brotli: {types: ["application/json"], comp_level: 5}
`)
	for _, path := range []string{"/json", "/chunked", "/huge"} {
		want := big
		if path == "/huge" {
			want = huge
		}
		resp := tg.do(t, "GET", path, map[string]string{"Accept-Encoding": "gzip, deflate, br"}, "")
		require.Equal(t, 200, resp.StatusCode(), path)
		require.Equal(t, "br", string(resp.Header.Peek("Content-Encoding")), path)
		require.Equal(t, "Accept-Encoding", string(resp.Header.Peek("Vary")), path)
		require.Less(t, len(resp.Body()), len(want)/3, path)
		require.Equal(t, want, unbrotli(t, resp.Body()), path)

		resp = tg.do(t, "GET", path, map[string]string{"Accept-Encoding": "gzip"}, "")
		require.Equal(t, "gzip", string(resp.Header.Peek("Content-Encoding")), path)
		require.Equal(t, want, gunzip(t, resp.Body()), path)

		resp = tg.do(t, "GET", path, map[string]string{"Accept-Encoding": "br;q=0, gzip;q=0"}, "")
		require.Empty(t, resp.Header.Peek("Content-Encoding"), path)
		require.Equal(t, want, resp.Body(), path)
	}
	require.EqualValues(t, 1, b.conns.Load(), "streamed bodies read to their end: the node's connection was reused")
}

// TestGzipStreamFlushesAsTheNodeSends: a slow streamed body (server-sent
// events) reaches the client compressed piece by piece, not at its end:
// the node sends its second event only after the client decoded the
// first. Both encodings.
func TestGzipStreamFlushesAsTheNodeSends(t *testing.T) {
	for _, enc := range []string{"gzip", "br"} {
		t.Run(enc, func(t *testing.T) { testStreamFlushes(t, enc) })
	}
}

func testStreamFlushes(t *testing.T, enc string) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	b := startBackend(t, "sse", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			w.WriteString("data: one\n\n")
			w.Flush()
			<-release // only once the client has the first event
			w.WriteString("data: two\n\n")
			w.Flush()
		})
	})
	tg := startGateway(t, `
services:
  - id: s
    upstream: `+upstreamYAML(b)+`
    routes:
      - paths: ["/*"]
        plugins:
          gzip: {types: ["text/event-stream"], min_length: 1}
          brotli: {types: ["text/event-stream"], min_length: 1}
`)
	// A failing test must not leave the node waiting (cleanups run last
	// in first: this one before the servers shut down).
	t.Cleanup(free)
	conn, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = conn.Write([]byte("GET /events HTTP/1.1\r\nHost: a\r\nAccept-Encoding: " + enc + "\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, enc, resp.Header.Get("Content-Encoding"))
	require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	var zr io.Reader
	if enc == "gzip" {
		zr, err = kgzip.NewReader(resp.Body)
		require.NoError(t, err)
	} else {
		zr = brrr.NewReader(resp.Body)
	}
	lines := bufio.NewReader(zr)
	line, err := lines.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: one\n", line, "the first event arrives before the stream ends")
	free()
	rest, err := io.ReadAll(lines)
	require.NoError(t, err)
	require.Equal(t, "\ndata: two\n\n", string(rest))
}
