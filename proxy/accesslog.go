package proxy

import (
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
	*f = accessFields{
		zap.String("request_id", b2s(st.reqID)),
		zap.String("client_ip", b2s(st.clientIPB)),
		zap.String("method", b2s(ctx.Method())),
		zap.String("host", b2s(ctx.Host())),
		zap.String("uri", b2s(ctx.RequestURI())),
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
	s.log.Info("", f[:]...)
	*f = accessFields{} // no references into the request's buffers stay behind
	accessFieldsPool.Put(f)
}

// accessFields are the fields of one access log line.
type accessFields [17]zap.Field

var accessFieldsPool = sync.Pool{New: func() any { return new(accessFields) }}
