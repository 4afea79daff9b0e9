package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLineEncoder is the encoder the access log used before its lines were
// encoded by hand (accesslog.go): the reference its lines must equal.
func zapLineEncoder() zapcore.Encoder {
	return zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:        "time",
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeDuration: zapcore.MillisDurationEncoder,
	})
}

// zapLine is the line zap writes for fields at t.
func zapLine(t *testing.T, at time.Time, fields ...zap.Field) string {
	t.Helper()
	buf, err := zapLineEncoder().EncodeEntry(zapcore.Entry{Time: at}, fields)
	require.NoError(t, err)
	defer buf.Free()
	return buf.String()
}

// TestAppendLogStringMatchesZap: every byte value, escapes, multi-byte
// runes and invalid UTF-8 come out as zap's JSON encoder writes them.
func TestAppendLogStringMatchesZap(t *testing.T) {
	cases := []string{"", "plain", `q"uote`, `back\slash`, "tab\tnl\ncr\r", "<html>&amp;", "é日本語🙂",
		"\xff", "a\xc3", "\xe6\x97", "\xed\xa0\x80", "mixed \x01\x1f\x7f é \xfe end", strings.Repeat("x\"", 300)}
	for c := range 256 {
		cases = append(cases, string([]byte{'a', byte(c), 'b'}))
	}
	at := time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC)
	for _, s := range cases {
		want := zapLine(t, at, zap.String("k", s))
		got := `{"time":"` + string(appendLogTime(nil, at)) + `","k":"` + string(appendLogString(nil, []byte(s))) + "\"}\n"
		require.Equal(t, want, got, "%q", s)
	}
}

// TestAppendLogTimeMatchesZap: the time field in UTC, another zone and
// the local one, milliseconds truncated as zap's layout does.
func TestAppendLogTimeMatchesZap(t *testing.T) {
	east := time.FixedZone("x", 5*3600+30*60)
	for _, at := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 1_000_000, east),
		time.Now(),
	} {
		want := zapLine(t, at)
		require.Equal(t, want, `{"time":"`+string(appendLogTime(nil, at))+"\"}\n")
	}
}

// TestAccessLogLineMatchesZap sends requests through a gateway logging to
// a file and checks each line byte for byte against zap's encoding of the
// same values in the same order (the order README documents).
func TestAccessLogLineMatchesZap(t *testing.T) {
	b := startBackend(t, "b", nil)
	path := filepath.Join(t.TempDir(), "access.log")
	tg := startGateway(t, `
gateway: {access_log: {enabled: true, path: `+path+`}}
services:
  - {id: s, path_prefix: /api, plugins: {key-auth: {}}, upstream: `+upstreamYAML(b)+`, routes: [{id: r, paths: ["/*"]}]}
consumers: [{username: alice, plugins: {key-auth: {key: k}}}]
`)
	tg.do(t, "POST", "/api/x?q=%22%01&apikey=k", map[string]string{"X-Request-Id": "rid\"9é"}, "hello")
	tg.do(t, "GET", "/api/y", map[string]string{"apikey": "k"}, "")
	tg.get(t, "/nowhere")
	tg.do(t, "GET", "/api/z", nil, "") // 401
	tg.g.Close()                       // flushes the buffered log

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text() + "\n"
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		_, err := dec.Token() // {
		require.NoError(t, err)
		var at time.Time
		var fields []zap.Field
		for dec.More() {
			k, err := dec.Token()
			require.NoError(t, err)
			v, err := dec.Token()
			require.NoError(t, err)
			key := k.(string)
			switch v := v.(type) {
			case string:
				if key == "time" {
					at, err = time.Parse("2006-01-02T15:04:05.000Z0700", v)
					require.NoError(t, err)
					continue
				}
				fields = append(fields, zap.String(key, v))
			case json.Number:
				if strings.HasSuffix(key, "_ms") {
					x, err := v.Float64()
					require.NoError(t, err)
					fields = append(fields, zap.Float64(key, x))
				} else {
					x, err := v.Int64()
					require.NoError(t, err)
					fields = append(fields, zap.Int64(key, x))
				}
			default:
				t.Fatalf("%s: unexpected %T", key, v)
			}
		}
		require.Len(t, fields, 17, line)
		// Parsing gives the zone as a fixed offset; its layout is the same.
		require.Equal(t, zapLine(t, at, fields...), line)
	}
	require.Equal(t, 4, n)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"consumer":"alice"`)
	require.Contains(t, string(raw), `"request_id":"rid\"9é"`)
	require.True(t, bytes.Contains(raw, []byte(`"error_type":"NOT_FOUND"`)))
}
