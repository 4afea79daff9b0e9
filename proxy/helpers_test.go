package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/internal/testnet"
)

// backend is a real fasthttp server on loopback that records what it saw.
type backend struct {
	name  string
	addr  string
	ln    net.Listener
	srv   *fasthttp.Server
	hits  atomic.Int64
	conns atomic.Int64

	mu   sync.Mutex
	last *fasthttp.Request
}

// startBackend serves h (or an echo of the request line when h is nil).
func startBackend(t *testing.T, name string, h fasthttp.RequestHandler) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			b.hits.Add(1)
			r := &fasthttp.Request{}
			ctx.Request.Header.CopyTo(&r.Header)
			b.mu.Lock()
			b.last = r
			b.mu.Unlock()
			if h != nil {
				h(ctx)
				return
			}
			ctx.Response.Header.Set("X-Backend", name)
			ctx.SetBodyString(name + " " + string(ctx.Method()) + " " + string(ctx.RequestURI()))
		},
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateNew {
				b.conns.Add(1)
			}
		},
		StreamRequestBody:  true,
		MaxRequestBodySize: 1 << 30,
		CloseOnShutdown:    true,
	}
	b.ln = testnet.Serve(t, b.srv)
	b.addr = b.ln.Addr().String()
	return b
}

func (b *backend) lastRequest() *fasthttp.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *backend) port() string { return testnet.Port(b.addr) }

// testGateway is an in-process gateway serving on loopback.
type testGateway struct {
	g    *Gateway
	addr string
	ln   net.Listener
}

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	require.NoError(t, err)
	return cfg
}

// startGateway applies yaml (access log off unless the yaml says otherwise)
// and serves it on an ephemeral port.
func startGateway(t *testing.T, yaml string) *testGateway {
	t.Helper()
	if !strings.Contains(yaml, "access_log") {
		yaml = "gateway: {access_log: {enabled: false}}\n" + yaml
	}
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	return serveGateway(t, g)
}

// serveGateway serves g on an ephemeral loopback port until the test
// ends, then shuts it down and closes it.
func serveGateway(t testing.TB, g *Gateway) *testGateway {
	t.Helper()
	ln := testnet.Listen(t)
	done := make(chan struct{})
	go func() { _ = g.Serve(ln); close(done) }()
	t.Cleanup(func() {
		_ = g.Shutdown(t.Context())
		<-done
		g.Close()
	})
	return &testGateway{g: g, addr: ln.Addr().String(), ln: ln}
}

var testClient = &fasthttp.Client{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}

// do sends one request through the gateway.
func (tg *testGateway) do(t *testing.T, method, uri string, hdr map[string]string, body string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://" + tg.addr + uri)
	req.Header.SetMethod(method)
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Header.SetHost(v)
			req.UseHostHeader = true
			continue
		}
		req.Header.Set(k, v)
	}
	if body != "" {
		req.SetBodyString(body)
	}
	resp := &fasthttp.Response{}
	require.NoError(t, testClient.Do(req, resp))
	return resp
}

func (tg *testGateway) get(t *testing.T, uri string) *fasthttp.Response {
	return tg.do(t, "GET", uri, nil, "")
}

// rawResponseTo writes a raw HTTP/1.1 request on a new connection and
// reads the response.
func (tg *testGateway) rawResponseTo(t *testing.T, request string) *fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte(request))
	require.NoError(t, err)
	resp := &fasthttp.Response{}
	require.NoError(t, resp.Read(bufio.NewReader(c)))
	return resp
}

// raw writes a raw HTTP/1.1 request and returns the raw response head and
// body as text.
func (tg *testGateway) raw(t *testing.T, request string) string {
	t.Helper()
	return tg.rawResponseTo(t, request).String()
}

// rawStatus sends a raw request and returns the status of the response.
func (tg *testGateway) rawStatus(t *testing.T, request string) int {
	t.Helper()
	return tg.rawResponseTo(t, request).StatusCode()
}

func upstreamYAML(nodes ...*backend) string {
	var b strings.Builder
	b.WriteString("{nodes: [")
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		host, port, _ := net.SplitHostPort(n.addr)
		fmt.Fprintf(&b, "{host: %s, port: %s}", host, port)
	}
	b.WriteString("]}")
	return b.String()
}

func itoa(i int) string { return fmt.Sprint(i) }

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// scrape returns the gateway's metrics in the Prometheus text format.
func scrape(t *testing.T, g *Gateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Host = "127.0.0.1:9091"
	g.ControlHandler(nil).ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	return rec.Body.String()
}

// sampleValue is the value of the sample series (name and labels, as
// the text format writes them) in a scrape.
func sampleValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no series %s in the scrape", series)
	return 0
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func mustParseErr(yaml string) (*config.Config, error) { return config.Parse([]byte(yaml), "t.yaml") }

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
