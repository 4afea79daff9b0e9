package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
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

// BenchmarkAccessLogLine is one `full` request's access log line, encoded
// and written into a buffered writer over a discarding file.
func BenchmarkAccessLogLine(b *testing.B) {
	b1 := leanBackend(b)
	g := New(Options{})
	b.Cleanup(g.Close)
	cfg, err := mustParseErr(`
gateway: {access_log: {enabled: true, path: /dev/null}}
consumers: [{username: bench-user, credentials: [{name: bench-app, plugins: {key-auth: {key: bench-key}}}]}]
services:
  - {id: bench, plugins: {key-auth: {}}, upstream: {nodes: [{host: 127.0.0.1, port: ` + b1.port() + `}]}, routes: [{id: r1234, paths: ["/r1234/*"]}]}
`)
	require.NoError(b, err)
	require.NoError(b, g.Apply(cfg))
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	ctx.Request.SetRequestURI("/r1234/hello")
	ctx.Request.Header.SetHost("127.0.0.1:9080")
	ctx.Request.Header.Set("apikey", "bench-key")
	g.Handler(ctx)
	require.Equal(b, 200, ctx.Response.StatusCode())
	st := statePool.Get().(*reqState)
	*st = reqState{ctx: ctx, snap: g.snap.Load(), route: g.snap.Load().routes[0], reqID: []byte("8f14e45fceea167a5a36dedd4bea2543"),
		clientIPB: []byte("127.0.0.1"), upstreamAddr: b1.addr, upstreamStatus: 200, upstreamDur: 1234567, attempts: 1, bytesOut: 11, start: time.Now()}
	st.pr.Consumer = []byte("bench-user")
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0 := threadCPU()
	for b.Loop() {
		g.access.log(st, 200, 1567890)
	}
	b.ReportMetric(float64(threadCPU()-c0)/float64(b.N), "cpu-ns/op")
}

// threadCPU is the CPU time of the calling thread, in ns.
func threadCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestAppendMillisMatchesZap: durations in milliseconds as zap wrote
// float64(us)/1000, over every value below 2 s and spread ones above.
func TestAppendMillisMatchesZap(t *testing.T) {
	check := func(us int64) {
		want := strconv.AppendFloat(nil, float64(us)/1000, 'f', -1, 64)
		if got := appendMillis(nil, us); string(got) != string(want) {
			t.Fatalf("%d us: got %s, want %s", us, got, want)
		}
	}
	for us := range int64(2_000_000) {
		check(us)
	}
	for us := int64(2_000_000); us < 1<<62; us = us*3 + 7 {
		check(us)
		check(us + 1)
		check(us - us%1000)
	}
	check(-1)
	check(-1500)
	check(1<<40 - 1)
	check(1 << 40)
	check(1<<53 - 1)
	check(1 << 53)
	check(1<<63 - 1)
}

// TestAccessLineTimeCache: the per-buffer second cache writes what
// appendLogTime writes, across seconds, zones and milliseconds.
func TestAccessLineTimeCache(t *testing.T) {
	var l accessLine
	east := time.FixedZone("x", -(3*3600 + 30*60))
	base := time.Date(2026, 11, 29, 23, 59, 58, 0, time.UTC)
	for i := range 3000 {
		at := base.Add(time.Duration(i) * 1234567 * time.Microsecond / 1000)
		for _, z := range []*time.Location{time.UTC, east, time.Local} {
			require.Equal(t, string(appendLogTime(nil, at.In(z))), string(l.appendTime(nil, at.In(z))))
		}
	}
}

// appendLogTime appends t as zap's ISO8601TimeEncoder writes it.
func appendLogTime(b []byte, t time.Time) []byte {
	return t.AppendFormat(b, "2006-01-02T15:04:05.000Z0700")
}
