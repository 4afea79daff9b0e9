package main

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/internal/testlog"
	"gateway/internal/testnet"
)

// TestRunStderrIsOnlyJSON: an HTTPS client on the HTTP port makes fasthttp
// report the connection's failure; that message must be a JSON line of the
// gateway's log (at debug level), not plain text between them.
func TestRunStderrIsOnlyJSON(t *testing.T) {
	backend := startBackend(t)
	listen, control := testnet.FreeAddr(t), testnet.FreeAddr(t)
	dir := t.TempDir()
	// At debug level, so that fasthttp's message is written at all.
	writeConfig(t, dir, strings.Replace(testConfig(listen, control, backend), "gateway:\n", "gateway:\n  log_level: debug\n", 1))
	p := startGateway(t, dir)
	p.waitReady(t, control)

	c, err := net.Dial("tcp", listen)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	require.Error(t, tls.Client(c, &tls.Config{ServerName: "gateway.test", InsecureSkipVerify: true}).Handshake())
	_ = c.Close()
	require.Eventually(t, func() bool {
		return strings.Contains(p.stderr.String(), `"component":"fasthttp"`)
	}, 10*time.Second, 20*time.Millisecond)

	status, _ := get("http://"+listen+"/a/x", nil)
	require.Equal(t, http.StatusOK, status)
	p.stop(t, syscall.SIGTERM)

	lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
	require.Greater(t, len(lines), 2)
	for _, line := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "stderr line is not JSON: %q", line)
		require.Contains(t, m, "level")
		require.Contains(t, m, "msg")
	}
}

// TestDemoBackendsLogJSON: the demo mode's own echo servers are fasthttp
// servers too; their messages go to the gateway's JSON log.
func TestDemoBackendsLogJSON(t *testing.T) {
	var buf testlog.Buffer
	log := newLogger(zap.NewAtomicLevelAt(zapcore.DebugLevel), &buf)
	d, err := startDemoBackends(log)
	require.NoError(t, err)
	defer d.Close()

	c, err := net.Dial("tcp", d.addrs[0])
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	require.Error(t, tls.Client(c, &tls.Config{ServerName: "gateway.test", InsecureSkipVerify: true}).Handshake())
	_ = c.Close()
	require.Eventually(t, func() bool {
		return strings.Contains(buf.String(), `"component":"fasthttp"`)
	}, 10*time.Second, 20*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not JSON: %q", line)
		require.Equal(t, "echo-1", m["backend"])
	}
}
