package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/internal/testlog"
	"gateway/internal/testnet"
	"gateway/internal/wsframe"
)

// The binary is built once per test run and run as a subprocess, so that
// exit codes, signals and the real listeners are what is tested.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gateway-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "gateway")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the gateway:", err)
		return 1
	}
	return m.Run()
}

// runCmd runs the binary to completion and returns its exit code and
// output. It is bounded (20 s), so that a command that hangs fails the
// test instead of hanging it.
func runCmd(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "gateway %q did not finish", args)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// gatewayProc is a running `gateway run`.
type gatewayProc struct {
	cmd    *exec.Cmd
	stdout testlog.Buffer
	stderr testlog.Buffer
	done   chan struct{}
	err    error // set when done is closed
}

func startGateway(t *testing.T, dir string, args ...string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("gateway stdout:\n%s\ngateway stderr:\n%s", p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

func (p *gatewayProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// wait waits for the process to exit and returns its exit code.
func (p *gatewayProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("gateway did not exit within %s", timeout)
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}

// stop sends sig and requires a clean exit (code 0) within 15 s.
func (p *gatewayProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	p.signal(t, sig)
	require.Equal(t, 0, p.wait(t, 15*time.Second))
}

// waitReady polls /readyz on the control address until it answers 200.
func (p *gatewayProc) waitReady(t *testing.T, control string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("gateway exited before it was ready: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if status, _ := get("http://"+control+"/readyz", nil); status == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway not ready on %s\nstderr:\n%s", control, p.stderr.String())
}

var client = &http.Client{
	Timeout: 10 * time.Second,
	// Each request on its own connection: keep-alive connections would
	// outlive a test's gateway and make shutdown timing depend on them.
	Transport: &http.Transport{DisableKeepAlives: true},
}

// get returns the status and body of a GET, or 0 when the request failed.
// It takes no *testing.T: it is also called from goroutines.
func get(url string, header http.Header) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return do(req)
}

// do sends req and returns the status and body, or 0 when it failed.
func do(req *http.Request) (int, string) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// startBackend serves "backend <path>" on a loopback port; /slow answers
// after a second. It stops when the test ends.
func startBackend(t *testing.T) (port int) {
	t.Helper()
	ln := testnet.Serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			time.Sleep(time.Second)
		}
		ctx.SetBodyString("backend " + string(ctx.Path()))
	}})
	return ln.Addr().(*net.TCPAddr).Port
}

// serving is a `gateway run -c FILE` in front of one backend, ready.
type serving struct {
	*gatewayProc
	backend         int    // the backend's port
	listen, control string // the gateway's addresses
	dir, path       string // the config file and its directory
}

// startServing writes a config (testConfig) for a new backend and two
// free addresses, runs the gateway on it and waits until it is ready.
func startServing(t *testing.T) *serving {
	t.Helper()
	s := &serving{backend: startBackend(t), listen: testnet.FreeAddr(t), control: testnet.FreeAddr(t), dir: t.TempDir()}
	s.path = writeConfig(t, s.dir, testConfig(s.listen, s.control, s.backend))
	s.gatewayProc = startGateway(t, s.dir, "-c", s.path)
	s.waitReady(t, s.control)
	return s
}

// testConfig is a config with one service in front of the backend; extra
// is appended to its routes list.
func testConfig(listen, control string, backend int, extraRoutes ...string) string {
	routes := append([]string{
		`{id: a, paths: ["/a/*"]}`,
		`{id: slow, paths: ["/slow"]}`,
	}, extraRoutes...)
	return fmt.Sprintf(`gateway:
  listen: %s
  control_listen: %s
  reload_debounce: 0.1
  shutdown_timeout: 10
  access_log: {enabled: false}
services:
  - id: svc
    upstream:
      nodes: [{host: 127.0.0.1, port: %d}]
    routes:
      - %s
`, listen, control, backend, strings.Join(routes, "\n      - "))
}

func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "gateway.yaml")
	// Write-then-rename, so that the gateway's watcher never reads half a file.
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
	return path
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, t.TempDir(), "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "gateway dev")
	require.Contains(t, out, "go1.")
}

func TestValidateOK(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, testConfig("127.0.0.1:9080", "127.0.0.1:9091", 8080))
	for _, flag := range []string{"-c", "--config", "-config"} {
		code, out, errOut := runCmd(t, dir, "validate", flag, path)
		require.Equal(t, 0, code, "stderr: %s", errOut)
		require.Regexp(t, `^ok: .*gateway\.yaml \(revision [0-9a-f]{12}, 1 services, 2 routes\)\n$`, out)
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`services:
  - id: svc
    upstream:
      nodes: [{host: 127.0.0.1, port: 0}]
    routes:
      - {paths: ["/a"], methods: [FETCH]}
`), 0o644))
	code, out, errOut := runCmd(t, dir, "validate", "-c", path)
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "services[0].upstream.nodes[0].port")
	require.Contains(t, errOut, "services[0].routes[0].methods")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	require.GreaterOrEqual(t, len(lines), 2, "one error per line: %q", errOut)
	for _, l := range lines {
		// "file: path: message", or "file:line: path: message" (issue 20).
		require.Regexp(t, `^`+regexp.QuoteMeta(path)+`(:[0-9]+)?: services\[0\]`, l, "line names the file")
	}
}

func TestValidateMissingFile(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCmd(t, dir, "validate", "-c", filepath.Join(dir, "nope.yaml"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "nope.yaml")

	// Without -c, validate checks ./gateway.yaml and never falls back to the demo.
	code, _, _ = runCmd(t, dir, "validate")
	require.Equal(t, 1, code)
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"frobnicate"},
		{"validate", "--bogus"},
		{"validate", "-c"},
		{"run", "--bogus"},
		{"--bogus"},
		{"run", "stray"},
		{"version", "extra"},
	} {
		code, _, errOut := runCmd(t, dir, args...)
		require.Equal(t, 2, code, "args %q: stderr %s", args, errOut)
		require.NotEmpty(t, errOut, "args %q", args)
	}
	code, out, _ := runCmd(t, dir, "help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "gateway validate -c FILE")
}

func TestRunBadConfigExits1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("services: [{id: x}]\nbogus: 1\n"), 0o644))
	p := startGateway(t, dir, "-c", path)
	require.Equal(t, 1, p.wait(t, 10*time.Second))
	require.Contains(t, p.stderr.String(), "bogus")

	// -c naming a missing file is an error, never demo mode.
	p = startGateway(t, dir, "run", "--config", filepath.Join(dir, "nope.yaml"))
	require.Equal(t, 1, p.wait(t, 10*time.Second))
	require.NotContains(t, p.stderr.String(), "demo mode")
}

func TestRunCannotListenExits1(t *testing.T) {
	busy := testnet.Listen(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, testConfig(busy.Addr().String(), testnet.FreeAddr(t), startBackend(t)))
	p := startGateway(t, dir, "-c", path)
	require.Equal(t, 1, p.wait(t, 10*time.Second))
	require.Contains(t, p.stderr.String(), "cannot listen")
}

func TestRunProxiesAndReloads(t *testing.T) {
	backend := startBackend(t)
	listen, control := testnet.FreeAddr(t), testnet.FreeAddr(t)
	dir := t.TempDir()
	writeConfig(t, dir, testConfig(listen, control, backend))

	// No -c: ./gateway.yaml in the working directory is the default.
	p := startGateway(t, dir)
	p.waitReady(t, control)
	require.Contains(t, p.stderr.String(), `"msg":"gateway started"`)
	require.Contains(t, p.stderr.String(), `"routes":2`)

	status, body := get("http://"+listen+"/a/x", nil)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "backend /a/x", body)
	status, _ = get("http://"+listen+"/b", nil)
	require.Equal(t, http.StatusNotFound, status)

	// SIGHUP picks up an added route.
	writeConfig(t, dir, testConfig(listen, control, backend, `{id: b, paths: ["/b"]}`))
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool {
		status, _ := get("http://"+listen+"/b", nil)
		return status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)

	// A broken file is refused: the old routes keep serving.
	writeConfig(t, dir, "services: [{id: svc, routes: oops}]\n")
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool {
		return strings.Contains(p.stderr.String(), "config reload failed")
	}, 5*time.Second, 50*time.Millisecond)
	for _, path := range []string{"/a/x", "/b"} {
		status, body := get("http://"+listen+path, nil)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
	}

	// A changed listener is reported, not applied.
	writeConfig(t, dir, testConfig(testnet.FreeAddr(t), control, backend, `{id: b, paths: ["/b"]}`, `{id: c, paths: ["/c"]}`))
	p.signal(t, syscall.SIGHUP)
	require.Eventually(t, func() bool {
		status, _ := get("http://"+listen+"/c", nil)
		return status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
	require.Contains(t, p.stderr.String(), "need a restart")

	p.stop(t, syscall.SIGTERM)
}

func TestRunWatchesFile(t *testing.T) {
	s := startServing(t)

	// No signal: the file watcher (debounce 0.1 s) sees the rename.
	writeConfig(t, s.dir, testConfig(s.listen, s.control, s.backend, `{id: w, paths: ["/w"]}`))
	require.Eventually(t, func() bool {
		status, _ := get("http://"+s.listen+"/w", nil)
		return status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
	require.Contains(t, s.stderr.String(), `"trigger":"file"`)

	s.stop(t, syscall.SIGINT)
}

func TestGracefulShutdown(t *testing.T) {
	s := startServing(t)

	type result struct {
		status int
		body   string
	}
	slow := make(chan result, 1)
	go func() {
		status, body := get("http://"+s.listen+"/slow", nil)
		slow <- result{status, body}
	}()
	time.Sleep(300 * time.Millisecond) // the request is at the backend now
	s.signal(t, syscall.SIGTERM)

	// Best effort: the control API stays up during the drain and says 503.
	sawNotReady := false
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && !sawNotReady; {
		status, _ := get("http://"+s.control+"/readyz", nil)
		sawNotReady = status == http.StatusServiceUnavailable
		time.Sleep(20 * time.Millisecond)
	}
	if !sawNotReady {
		t.Log("did not observe /readyz 503 during the drain")
	}

	r := <-slow
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "backend /slow", r.body)
	require.Equal(t, 0, s.wait(t, 15*time.Second))
	require.Contains(t, s.stderr.String(), "shutting down")
}

func TestDemoMode(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9080", "127.0.0.1:9091", "127.0.0.1:9443", "127.0.0.1:9070"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("demo port %s is busy: %v", addr, err)
		}
		require.NoError(t, ln.Close())
	}
	p := startGateway(t, t.TempDir()) // no -c and no ./gateway.yaml
	p.waitReady(t, "127.0.0.1:9091")

	first, _, _ := strings.Cut(p.stderr.String(), "\n")
	require.Contains(t, first, "demo mode")
	require.Contains(t, p.stdout.String(), "curl -s localhost:9080/demo/echo/hello")

	const gw = "http://127.0.0.1:9080"
	seen := map[string]int{}
	for range 6 {
		status, body := get(gw+"/demo/echo/hello", nil)
		require.Equal(t, http.StatusOK, status, body)
		var reply echoReply
		require.NoError(t, json.Unmarshal([]byte(body), &reply), body)
		require.Equal(t, "/echo/hello", reply.Path, "strip_path_prefix")
		seen[reply.Backend]++
	}
	// Weights 2:1: smooth weighted round robin gives exactly 4:2 over six
	// picks; allow any split that favours echo-1 and uses both.
	require.Positive(t, seen["echo-2"], "seen: %v", seen)
	require.Greater(t, seen["echo-1"], seen["echo-2"], "seen: %v", seen)

	status, body := get(gw+"/demo/users/42", nil)
	require.Equal(t, http.StatusOK, status, body)

	status, body = get(gw+"/demo/private/x", nil)
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = get(gw+"/demo/private/x", http.Header{"Apikey": {"wrong"}})
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = get(gw+"/demo/private/x", http.Header{"Apikey": {"demo-key"}})
	require.Equal(t, http.StatusOK, status, body)

	codes := map[int]int{}
	for range 7 {
		status, _ := get(gw+"/demo/limited", nil)
		codes[status]++
	}
	require.Positive(t, codes[http.StatusTooManyRequests], "codes: %v", codes)
	require.LessOrEqual(t, codes[http.StatusOK], 5, "codes: %v", codes)

	status, body = get("http://127.0.0.1:9091/metrics", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "gateway_http_requests_total")

	// WebSocket: the printed handshake gets a 101 and an echo.
	require.Contains(t, p.stdout.String(), "localhost:9080/demo/ws")
	demoWebsocketEcho(t, "127.0.0.1:9080", "/demo/ws")

	// The TCP stream route on 9070 echoes.
	require.Contains(t, p.stdout.String(), "nc localhost 9070")
	tc, err := net.DialTimeout("tcp", "127.0.0.1:9070", 5*time.Second)
	require.NoError(t, err)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(tc, "hello stream\n")
	require.NoError(t, err)
	echoed := make([]byte, len("hello stream\n"))
	_, err = io.ReadFull(tc, echoed)
	require.NoError(t, err)
	require.Equal(t, "hello stream\n", string(echoed))
	require.NoError(t, tc.Close())

	// TLS on 9443 with the certificate printed for curl --cacert.
	m := regexp.MustCompile(`curl -s --cacert (\S+) https://localhost:9443/demo/echo/hello`).FindStringSubmatch(p.stdout.String())
	require.NotNil(t, m, p.stdout.String())
	caPEM, err := os.ReadFile(m[1])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := hc.Get("https://localhost:9443/demo/echo/hello")
	require.NoError(t, err)
	tlsBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(tlsBody))
	var reply echoReply
	require.NoError(t, json.Unmarshal(tlsBody, &reply))
	require.Equal(t, "https", reply.Headers["X-Forwarded-Proto"])

	p.stop(t, syscall.SIGTERM)
}

// demoWebsocketEcho opens a WebSocket through the gateway and checks that
// one masked text message comes back.
func demoWebsocketEcho(t *testing.T, addr, path string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(t, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", resp.Header.Get("Sec-WebSocket-Accept"))
	// A masked client frame (mask 1,2,3,4) carrying "hi".
	_, err = c.Write([]byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2})
	require.NoError(t, err)
	op, payload, err := wsframe.Read(br, 0)
	require.NoError(t, err)
	require.Equal(t, byte(1), op)
	require.Equal(t, "hi", string(payload))
}
