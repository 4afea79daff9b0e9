package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
)

// controlServer serves g's control API on loopback, as `gateway run` does,
// and counts the reloads it was asked for.
type controlServer struct {
	addr    string
	reloads atomic.Int64
}

func startControl(t *testing.T, g *Gateway) *controlServer {
	t.Helper()
	ln := testnet.Listen(t)
	cs := &controlServer{addr: ln.Addr().String()}
	srv := &http.Server{
		Handler: g.ControlHandler(func() (string, error) {
			cs.reloads.Add(1)
			return "rev", nil
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return cs
}

// rawControl sends one raw request and returns the status and the whole
// response text.
func rawControl(t *testing.T, addr, request string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var b strings.Builder
	_ = resp.Header.Write(&b)
	return resp.StatusCode, b.String() + "\n" + string(body)
}

func req(method, path, host string, headers ...string) string {
	s := method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n"
	for _, h := range headers {
		s += h + "\r\n"
	}
	if method == "POST" {
		s += "Content-Length: 0\r\n"
	}
	return s + "\r\n"
}

const controlToken = "ctl-token-0123456789abcdef"

func gatewayWithControlAPI(t *testing.T, controlAPI string) *Gateway {
	t.Helper()
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway:
  access_log: {enabled: false}
  control_listen: 127.0.0.1:9091
  control_api: `+controlAPI+`
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	return tg.g
}

func TestControlAPIToken(t *testing.T) {
	g := gatewayWithControlAPI(t, `{token: `+controlToken+`}`)
	cs := startControl(t, g)
	host := cs.addr
	bearer := "Authorization: Bearer " + controlToken

	for _, path := range []string{"/v1/config", "/v1/routes", "/v1/healthcheck"} {
		code, text := rawControl(t, cs.addr, req("GET", path, host))
		require.Equal(t, 401, code, path)
		require.Contains(t, text, `Www-Authenticate: Bearer realm="gateway-control"`)
		code, text = rawControl(t, cs.addr, req("GET", path, host, "Authorization: Bearer "+controlToken+"x"))
		require.Equal(t, 401, code, path)
		require.NotContains(t, text, controlToken, "the token is never echoed")
		code, _ = rawControl(t, cs.addr, req("GET", path, host, "Authorization: Basic "+controlToken))
		require.Equal(t, 401, code, "only the Bearer scheme")
		code, text = rawControl(t, cs.addr, req("GET", path, host, bearer))
		require.Equal(t, 200, code, path)
		require.NotContains(t, text, controlToken, "the token is never echoed")
	}
	code, _ := rawControl(t, cs.addr, req("GET", "/v1/config", host, "authorization: bearer "+controlToken))
	require.Equal(t, 200, code, "the scheme is case-insensitive")
	code, _ = rawControl(t, cs.addr, req("GET", "/v1/config", host, "Authorization: Bearer "))
	require.Equal(t, 401, code)
	// Spellings of a /v1 path and paths no endpoint serves need the token
	// too: only the probes and /metrics are open.
	for _, path := range []string{"/%761/config", "/v1/./config", "//v1/config", "/nothing", "/metrics/", "/healthz/x"} {
		code, _ := rawControl(t, cs.addr, req("GET", path, host))
		require.Equal(t, 401, code, path)
	}

	code, _ = rawControl(t, cs.addr, req("POST", "/v1/reload", host))
	require.Equal(t, 401, code)
	require.Zero(t, cs.reloads.Load())
	code, _ = rawControl(t, cs.addr, req("POST", "/v1/reload", host, bearer))
	require.Equal(t, 200, code)
	require.EqualValues(t, 1, cs.reloads.Load())

	// Probes and scrapes stay open unless protect_metrics.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		code, _ := rawControl(t, cs.addr, req("GET", path, host))
		require.Equal(t, 200, code, path)
	}
}

func TestControlAPIProtectMetrics(t *testing.T) {
	g := gatewayWithControlAPI(t, `{token: `+controlToken+`, protect_metrics: true}`)
	cs := startControl(t, g)
	code, _ := rawControl(t, cs.addr, req("GET", "/metrics", cs.addr))
	require.Equal(t, 401, code)
	code, text := rawControl(t, cs.addr, req("GET", "/metrics", cs.addr, "Authorization: Bearer "+controlToken))
	require.Equal(t, 200, code)
	require.Contains(t, text, "gateway_connections_active")
	for _, path := range []string{"/healthz", "/readyz"} {
		code, _ := rawControl(t, cs.addr, req("GET", path, cs.addr))
		require.Equal(t, 200, code, path+" stays open for probes")
	}
}

func TestControlAPINoTokenIsOpen(t *testing.T) {
	g := gatewayWithControlAPI(t, `{}`)
	cs := startControl(t, g)
	code, _ := rawControl(t, cs.addr, req("GET", "/v1/config", cs.addr))
	require.Equal(t, 200, code)
	code, _ = rawControl(t, cs.addr, req("POST", "/v1/reload", cs.addr))
	require.Equal(t, 200, code)
}

func TestControlAPITokenFollowsReload(t *testing.T) {
	b := startBackend(t, "b", nil)
	doc := func(token string) string {
		return `
gateway: {access_log: {enabled: false}, control_api: {token: ` + token + `}}
services:
  - {id: s, upstream: ` + upstreamYAML(b) + `, routes: [{paths: ["/*"]}]}
`
	}
	tg := startGateway(t, doc(controlToken))
	cs := startControl(t, tg.g)
	code, _ := rawControl(t, cs.addr, req("GET", "/v1/config", cs.addr, "Authorization: Bearer "+controlToken))
	require.Equal(t, 200, code)
	require.NoError(t, tg.g.Apply(mustParse(t, doc("rotated-token-0123456789"))))
	code, _ = rawControl(t, cs.addr, req("GET", "/v1/config", cs.addr, "Authorization: Bearer "+controlToken))
	require.Equal(t, 401, code, "the old token stops working after a reload")
	code, _ = rawControl(t, cs.addr, req("GET", "/v1/config", cs.addr, "Authorization: Bearer rotated-token-0123456789"))
	require.Equal(t, 200, code)
}

func TestControlAPIHostCheck(t *testing.T) {
	g := gatewayWithControlAPI(t, `{allowed_hosts: [gw-control.internal]}`)
	cs := startControl(t, g)
	_, port, _ := net.SplitHostPort(cs.addr)
	for _, host := range []string{
		cs.addr, "127.0.0.1", "localhost", "LOCALHOST:" + port, "localhost.", "[::1]:" + port, "[::1]",
		"127.0.0.1:19091", // port forwarding changes the port
		"gw-control.internal:" + port,
	} {
		code, _ := rawControl(t, cs.addr, req("GET", "/healthz", host))
		require.Equal(t, 200, code, host)
	}
	for _, host := range []string{
		"evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil.example",
		"10.1.2.3:" + port, // not the listen address (127.0.0.1)
	} {
		for _, path := range []string{"/healthz", "/metrics", "/v1/config"} {
			code, text := rawControl(t, cs.addr, req("GET", path, host))
			require.Equal(t, 421, code, host+path)
			require.Contains(t, text, "Host header")
		}
		code, _ := rawControl(t, cs.addr, req("POST", "/v1/reload", host))
		require.Equal(t, 421, code, host)
	}
	// HTTP/1.0 without a Host header.
	code, _ := rawControl(t, cs.addr, "GET /healthz HTTP/1.0\r\n\r\n")
	require.Equal(t, 421, code)
	require.Zero(t, cs.reloads.Load())
}

func TestControlAPIHostCheckAllAddresses(t *testing.T) {
	// Listening on every address, any IP literal names this listener; a
	// name still has to be localhost or allowed.
	g := gatewayWithControlAPI(t, `{}`)
	cs := &controlGuard{g: g, listenHost: listenHost("0.0.0.0:9091")}
	require.True(t, cs.hostAllowed("10.1.2.3:9091", nil))
	require.True(t, cs.hostAllowed("[fd00::1]:9091", nil))
	require.True(t, cs.hostAllowed("localhost:9091", nil))
	require.False(t, cs.hostAllowed("evil.example:9091", nil))
	require.True(t, cs.hostAllowed("gw.internal", []string{"gw.internal"}))
	cs = &controlGuard{g: g, listenHost: listenHost("10.0.0.7:9091")}
	require.True(t, cs.hostAllowed("10.0.0.7:9091", nil))
	require.False(t, cs.hostAllowed("10.0.0.8:9091", nil))
}

func TestControlAPIReloadRefusesCrossSite(t *testing.T) {
	g := gatewayWithControlAPI(t, `{}`)
	cs := startControl(t, g)
	for _, ct := range []string{
		"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain",
		"TEXT/PLAIN; charset=utf-8", "text/plain;;",
	} {
		code, _ := rawControl(t, cs.addr, req("POST", "/v1/reload", cs.addr, "Content-Type: "+ct))
		require.Equal(t, 415, code, ct)
	}
	for _, origin := range []string{"https://evil.example", "null", "http://" + cs.addr} {
		code, text := rawControl(t, cs.addr, req("POST", "/v1/reload", cs.addr, "Origin: "+origin))
		require.Equal(t, 403, code, origin)
		require.Contains(t, text, "cross-origin")
	}
	require.Zero(t, cs.reloads.Load(), "no cross-site request reloaded")

	code, _ := rawControl(t, cs.addr, req("POST", "/v1/reload", cs.addr))
	require.Equal(t, 200, code, "curl -X POST: no body, no content type")
	code, _ = rawControl(t, cs.addr, req("POST", "/v1/reload", cs.addr, "Content-Type: application/json"))
	require.Equal(t, 200, code)
	require.EqualValues(t, 2, cs.reloads.Load())
}

func TestBearerMatches(t *testing.T) {
	require.True(t, bearerMatches("Bearer "+controlToken, controlToken))
	require.True(t, bearerMatches("Bearer  "+controlToken, controlToken))
	require.False(t, bearerMatches(controlToken, controlToken))
	require.False(t, bearerMatches("Bearer", controlToken))
	require.False(t, bearerMatches("Bearer "+controlToken[:10], controlToken))
	require.False(t, bearerMatches("", ""), "an empty token never matches")
}
