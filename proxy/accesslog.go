package proxy

import (
	"bytes"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/config"
)

// accessLog writes one JSON line per request through zap into a buffered
// writer, so a request never waits on the disk (operations.md). The sink
// can change on reload; the swap is one atomic store.
type accessLog struct {
	mu     sync.Mutex // serialises configure and close
	path   string
	sink   atomic.Pointer[accessSink]
	closed bool
}

type accessSink struct {
	log  *zap.Logger
	buf  *zapcore.BufferedWriteSyncer
	file *os.File // nil for stdout/stderr
}

func (a *accessLog) enabled() bool { return a.sink.Load() != nil }

// configure points the log at c.Path, or turns it off.
func (a *accessLog) configure(c config.AccessLog, g *Gateway) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	if !c.Enabled {
		a.swap(nil)
		a.path = ""
		return nil
	}
	if c.Path == a.path && a.sink.Load() != nil {
		return nil
	}
	var ws zapcore.WriteSyncer
	var file *os.File
	switch c.Path {
	case "stdout", "":
		ws = zapcore.AddSync(os.Stdout)
	case "stderr":
		ws = zapcore.AddSync(os.Stderr)
	default:
		f, err := os.OpenFile(c.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		ws, file = f, f
	}
	buf := &zapcore.BufferedWriteSyncer{WS: ws, Size: 256 << 10, FlushInterval: time.Second}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:        "time",
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeDuration: zapcore.MillisDurationEncoder,
	})
	a.swap(&accessSink{log: zap.New(zapcore.NewCore(enc, buf, zapcore.InfoLevel)), buf: buf, file: file})
	a.path = c.Path
	return nil
}

func (a *accessLog) swap(s *accessSink) {
	if old := a.sink.Swap(s); old != nil {
		// Requests still holding old finish their line before Stop flushes;
		// a line written after Stop is lost, which a reload accepts.
		_ = old.buf.Stop()
		if old.file != nil {
			_ = old.file.Close()
		}
	}
}

func (a *accessLog) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	a.swap(nil)
}

func (a *accessLog) log(st *reqState, code int, elapsed time.Duration) {
	s := a.sink.Load()
	if s == nil {
		return
	}
	ctx := st.ctx
	service, route := "", ""
	if st.route != nil {
		service, route = st.route.service, st.route.id
	}
	bytesOut := st.bytesOut
	bytesIn := ctx.Request.Header.ContentLength()
	if bytesIn < 0 {
		bytesIn = 0
	}
	errName := ""
	if st.errType != errNone {
		errName = st.errType.String()
	}
	// Byte slices go in as string views, not zap.ByteString, which boxes
	// each slice (an allocation): the encoder copies them into the line
	// before Info returns. The fields live in a pooled array because a
	// variadic slice of them would escape to the heap on every request.
	f := accessFieldsPool.Get().(*accessFields)
	uri := ctx.RequestURI()
	if names := st.snap.maskQuery; len(names) > 0 {
		f.uri = maskQueryArgs(f.uri[:0], uri, names)
		uri = f.uri
	}
	f.f = [17]zap.Field{
		zap.String("request_id", b2s(st.reqID)),
		zap.String("client_ip", b2s(st.clientIPB)),
		zap.String("method", b2s(ctx.Method())),
		zap.String("host", b2s(ctx.Host())),
		zap.String("uri", b2s(uri)),
		zap.Int("status", code),
		zap.Int("bytes_in", bytesIn),
		zap.Int("bytes_out", bytesOut),
		zap.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		zap.String("service", service),
		zap.String("route", route),
		zap.String("consumer", b2s(st.pr.Consumer)),
		zap.String("upstream_addr", st.upstreamAddr),
		zap.Int("upstream_status", st.upstreamStatus),
		zap.Float64("upstream_duration_ms", float64(st.upstreamDur.Microseconds())/1000),
		zap.Int("attempts", st.attempts),
		zap.String("error_type", errName),
	}
	s.log.Info("", f.f[:]...)
	f.f = [17]zap.Field{} // no references into the request's buffers stay behind
	accessFieldsPool.Put(f)
}

// accessFields are the fields of one access log line, and the buffer the
// line's masked uri is written into.
type accessFields struct {
	f   [17]zap.Field
	uri []byte
}

// maskedValue replaces a credential's value in the access log.
var maskedValue = []byte("***")

// maskQueryArgs returns uri with the value of every query argument named in
// names replaced by ***, so that `?apikey=...` never reaches the access
// log. Names are compared as fasthttp decodes them for key-auth
// (percent-escapes and '+'), so `?api%6Bey=...` is masked too. When nothing
// is masked uri itself is returned; otherwise the result is built in
// dst[:0], which the caller reuses, so no allocation happens once it has
// grown to the longest uri seen.
func maskQueryArgs(dst, uri []byte, names [][]byte) []byte {
	q := bytes.IndexByte(uri, '?')
	if q < 0 || !hasMaskedArg(uri[q+1:], names) {
		return uri
	}
	dst = append(dst[:0], uri[:q+1]...)
	rest := uri[q+1:]
	for len(rest) > 0 {
		end := len(rest)
		if i := bytes.IndexAny(rest, "&#"); i >= 0 {
			end = i
		}
		pair := rest[:end]
		if eq := bytes.IndexByte(pair, '='); eq >= 0 && eq < len(pair)-1 && argNamed(pair[:eq], names) {
			dst = append(append(dst, pair[:eq+1]...), maskedValue...)
		} else {
			dst = append(dst, pair...)
		}
		rest = rest[end:]
		if len(rest) > 0 {
			if rest[0] == '#' {
				return append(dst, rest...) // the fragment is not query
			}
			dst = append(dst, '&')
			rest = rest[1:]
		}
	}
	return dst
}

// hasMaskedArg reports whether the query string has a non-empty value for
// one of names.
func hasMaskedArg(query []byte, names [][]byte) bool {
	for len(query) > 0 {
		end := len(query)
		if i := bytes.IndexAny(query, "&#"); i >= 0 {
			end = i
		}
		pair := query[:end]
		if eq := bytes.IndexByte(pair, '='); eq >= 0 && eq < len(pair)-1 && argNamed(pair[:eq], names) {
			return true
		}
		if end == len(query) || query[end] == '#' {
			return false
		}
		query = query[end+1:]
	}
	return false
}

// argNamed reports whether the raw (still escaped) argument name decodes
// to one of names.
func argNamed(raw []byte, names [][]byte) bool {
	for _, n := range names {
		if decodedEqual(raw, n) {
			return true
		}
	}
	return false
}

// decodedEqual compares a query argument name as fasthttp decodes it
// (%XX escapes, '+' as a space, a '%' without two hex digits kept as is)
// with name, without decoding into a buffer.
func decodedEqual(raw, name []byte) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			c = hexVal(raw[i+1])<<4 | hexVal(raw[i+2])
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

var accessFieldsPool = sync.Pool{New: func() any { return new(accessFields) }}
