package proxy

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/internal/testlog"
)

// TestFasthttpErrorsAreJSONLogLines sends what an HTTPS client sends to the
// plain-HTTP port. fasthttp reports the connection's failure through its
// Logger, which used to be a plain-text log.Logger on stderr.
func TestFasthttpErrorsAreJSONLogLines(t *testing.T) {
	buf := &testlog.Buffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), buf, zapcore.DebugLevel))
	b := startBackend(t, "b", nil)
	g := New(Options{Logger: log})
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)))
	tg := serveGateway(t, g)

	// A real TLS ClientHello, from crypto/tls.
	c, err := net.Dial("tcp", tg.addr)
	require.NoError(t, err)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: "gateway.test", InsecureSkipVerify: true})
	require.Error(t, tc.Handshake(), "the HTTP port does not speak TLS")
	_ = c.Close()

	// The line is written after the connection ends; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), `"component":"fasthttp"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := buf.String()
	require.Contains(t, out, `"component":"fasthttp"`, "fasthttp's error reached the gateway's log")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	found := false
	for _, line := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON line: %q", line)
		if m["component"] == "fasthttp" {
			found = true
			require.Equal(t, "debug", m["level"], "clients decide how many of these there are")
			require.Equal(t, "client connection", m["msg"])
			detail, _ := m["detail"].(string)
			require.Contains(t, detail, "error when serving connection")
			require.NotContains(t, detail, "\n")
			require.LessOrEqual(t, len(detail), maxServerLogDetail+len("...(truncated)"),
				"a hostile client cannot make the line as long as its read buffer")
		}
	}
	require.True(t, found)
}
