package proxy

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
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
	// Never recompressed, never small bodies, only the listed types,
	// streamed (chunked) bodies pass through as they are.
	resp = tg.do(t, "GET", "/encoded", gz, "")
	require.Equal(t, "br", string(resp.Header.Peek("Content-Encoding")))
	require.Equal(t, big, resp.Body())
	resp = tg.do(t, "GET", "/small", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
	require.Equal(t, `{"a":1}`, string(resp.Body()))
	resp = tg.do(t, "GET", "/png", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
	resp = tg.do(t, "GET", "/chunked", gz, "")
	require.Empty(t, resp.Header.Peek("Content-Encoding"))
	require.Equal(t, big, resp.Body())
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
