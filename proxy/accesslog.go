package proxy

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

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
	// The line is encoded by hand into a pooled buffer, byte for byte what
	// zap's JSON encoder with the sink's config writes (accessLineZap in
	// the tests is the reference), then handed to zap's buffered writer:
	// zap's field encoding was ~5 % of a `full` request's CPU.
	l := accessLinePool.Get().(*accessLine)
	uri := ctx.RequestURI()
	if names := st.snap.maskQuery; len(names) > 0 {
		// Only a URI that has a masked argument is copied into the pooled
		// buffer: maskQueryArgs returns any other URI itself, and keeping
		// that slice in the pool would let the next masked line be written
		// into this request's (its connection's) URI buffer.
		if q := bytes.IndexByte(uri, '?'); q >= 0 && hasMaskedArg(uri[q+1:], names) {
			l.uri = maskQueryArgs(l.uri[:0], uri, names)
			uri = l.uri
		}
	}
	b := append(l.buf[:0], `{"time":"`...)
	b = l.appendTime(b, st.start.Add(elapsed))
	b = appendLogString(append(b, `","request_id":"`...), st.reqID)
	b = appendLogString(append(b, `","client_ip":"`...), st.clientIPB)
	b = appendLogString(append(b, `","method":"`...), ctx.Method())
	b = appendLogString(append(b, `","host":"`...), ctx.Host())
	b = appendLogString(append(b, `","uri":"`...), uri)
	b = strconv.AppendInt(append(b, `","status":`...), int64(code), 10)
	b = strconv.AppendInt(append(b, `,"bytes_in":`...), int64(bytesIn), 10)
	b = strconv.AppendInt(append(b, `,"bytes_out":`...), int64(bytesOut), 10)
	b = appendMillis(append(b, `,"duration_ms":`...), elapsed.Microseconds())
	b = appendLogString(append(b, `,"service":"`...), s2b(service))
	b = appendLogString(append(b, `","route":"`...), s2b(route))
	b = appendLogString(append(b, `","consumer":"`...), st.pr.Consumer)
	b = appendLogString(append(b, `","upstream_addr":"`...), s2b(st.upstreamAddr))
	b = strconv.AppendInt(append(b, `","upstream_status":`...), int64(st.upstreamStatus), 10)
	b = appendMillis(append(b, `,"upstream_duration_ms":`...), st.upstreamDur.Microseconds())
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(st.attempts), 10)
	b = appendLogString(append(b, `,"error_type":"`...), s2b(errName))
	b = append(b, "\"}\n"...)
	_, _ = s.buf.Write(b)
	l.buf = b
	accessLinePool.Put(l)
}

// accessLine is the buffer one access log line is encoded into, and the
// one its masked uri is written into.
type accessLine struct {
	buf []byte
	uri []byte
	// The second of the last line this buffer encoded, as appendLogTime
	// writes it up to the seconds (head) and from the zone on (zone): the
	// lines of one second differ only in their milliseconds.
	sec  int64
	loc  *time.Location
	head []byte
	zone []byte
}

// appendTime is zap's ISO8601TimeEncoder layout (appendLogTime in the
// tests is the reference), formatting the date, the time to the second
// and the zone once per second.
func (l *accessLine) appendTime(b []byte, t time.Time) []byte {
	if sec := t.Unix(); sec != l.sec || t.Location() != l.loc || len(l.head) == 0 {
		l.sec, l.loc = sec, t.Location()
		l.head = t.AppendFormat(l.head[:0], "2006-01-02T15:04:05")
		l.zone = t.AppendFormat(l.zone[:0], "Z0700")
	}
	ms := t.Nanosecond() / 1e6
	b = append(append(b, l.head...), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, l.zone...)
}

// appendMillis appends us microseconds in milliseconds as zap wrote
// float64(us)/1000 (strconv 'f', shortest): the exact decimal with its
// trailing zeros dropped, which is that float's shortest form: it has at
// most 3 decimals, and below 2^40 us (12 days) floats are far closer
// together than 0.001 ms. Beyond, and for a negative duration, strconv.
func appendMillis(b []byte, us int64) []byte {
	if us < 0 || us >= 1<<40 {
		return strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	b = append(b, '.', byte('0'+frac/100))
	if frac%100 != 0 {
		b = append(b, byte('0'+frac/10%10))
		if frac%10 != 0 {
			b = append(b, byte('0'+frac%10))
		}
	}
	return b
}

var accessLinePool = sync.Pool{New: func() any { return &accessLine{buf: make([]byte, 0, 512)} }}

// appendLogString appends s JSON-escaped as zap escapes strings: '"' and
// '\\' backslashed, \n \r \t, other bytes below 0x20 as \u00XX, invalid
// UTF-8 as \ufffd, everything else (HTML characters, valid multi-byte
// runes) as is.
func appendLogString(b, s []byte) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(append(b, s[last:i]...), `\ufffd`...)
			i++
			last = i
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', logHex[c>>4], logHex[c&0xf])
		}
		i++
		last = i
	}
	return append(b, s[last:]...)
}

const logHex = "0123456789abcdef"

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

// s2b views s as bytes, which appendLogString only reads.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
