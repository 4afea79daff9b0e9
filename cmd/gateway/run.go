package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gateway/config"
	"gateway/configwatch"
	"gateway/proxy"
)

// runner is one `gateway run`: the Gateway, where its config comes from,
// and the reload that the file watcher, SIGHUP and POST /v1/reload share.
type runner struct {
	gc    *runtimeSettings // GOGC/GOMEMLIMIT in effect (gcdefaults.go)
	log   *zap.Logger
	level zap.AtomicLevel // follows gateway.log_level across reloads
	g     *proxy.Gateway
	load  func() (*config.Config, error)

	// The listener settings the process started with: a reload cannot move
	// a bound socket, so changes to them are reported, not applied.
	listen, controlListen, tlsListen string

	mu  sync.Mutex     // serialises reloads; guards cfg
	cfg *config.Config // the config that is serving

	// Certificate files are watched like the config file: a change reloads.
	// The set follows the serving config; the main loop owns certWatch and
	// re-syncs it when resync says a reload succeeded.
	limits    config.ReadLimits
	certWatch map[string]*configwatch.Watcher
	resync    chan struct{}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	f := newConfigFlags("run", stderr)
	if code, ok := f.parse(args); !ok {
		return code
	}

	// Signals are caught from the start so that a SIGTERM during startup
	// still ends in an orderly way and a SIGHUP never kills the process.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)

	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	log := newLogger(level, stderr)
	defer func() { _ = log.Sync() }()

	if addr := os.Getenv(pprofEnv); addr != "" {
		startPprof(addr, log)
	}
	rs := applyRuntimeDefaults(os.Getenv, cgroupMemoryFiles)

	r := &runner{log: log, level: level, limits: f.limits(), certWatch: map[string]*configwatch.Watcher{}, resync: make(chan struct{}, 1)}
	var demo *demoBackends
	if !f.given() && notExist(f.path) {
		log.Info("demo mode: no config file given and ./" + defaultConfig +
			" does not exist; serving the built-in demo config with two echo backends on loopback")
		var err error
		if demo, err = startDemoBackends(log); err != nil {
			log.Error("cannot start the demo backends", zap.Error(err))
			return exitConfig
		}
		defer demo.Close()
		r.load = demo.config
	} else {
		// The loader keeps what the last load read, so that a reload
		// reads only the items of the file that changed (issue 20).
		path, lim, loader := f.path, f.limits(), config.NewLoader()
		r.load = func() (*config.Config, error) { return loader.LoadFile(path, lim) }
	}

	cfg, err := r.load()
	if err != nil {
		log.Error("cannot load config", zap.String("file", f.path), zap.Strings("errors", errorLines(err)))
		return exitConfig
	}
	r.cfg = cfg
	r.setLevel(cfg)
	r.listen, r.controlListen, r.tlsListen = cfg.Gateway.Listen, cfg.Gateway.ControlListen, cfg.Gateway.TLSListen
	logWarnings(log, cfg)

	r.g = proxy.New(proxy.Options{Logger: log})
	defer r.g.Close()
	if err := r.g.Apply(cfg); err != nil {
		log.Error("cannot compile config", zap.String("file", f.path), zap.Strings("errors", errorLines(err)))
		return exitConfig
	}
	r.gc = &rs
	r.tuneGC(true)

	// The watch starts as early as it can (it needs the debounce from the
	// config), so that an edit made while the gateway starts is not missed.
	var watcher *configwatch.Watcher
	if demo == nil {
		watcher, err = configwatch.New(f.path, cfg.Gateway.ReloadDebounce.Duration(), f.limits(), func() { r.reload("file") })
		if err != nil {
			log.Warn("cannot watch the config file; reload with SIGHUP or POST /v1/reload", zap.Error(err))
		} else {
			defer watcher.Close() // before r.g.Close: no reload may race it
		}
		r.syncCertWatchers()
		defer r.closeCertWatchers()
	}

	// Both listeners are bound before anything is served, so that a port in
	// use fails the start (exit 1) instead of leaving half a gateway.
	ln, err := net.Listen("tcp", cfg.Gateway.Listen)
	if err != nil {
		log.Error("cannot listen", zap.String("listen", cfg.Gateway.Listen), zap.Error(err))
		return exitConfig
	}
	var tln net.Listener
	if cfg.Gateway.TLSListen != "" {
		if tln, err = net.Listen("tcp", cfg.Gateway.TLSListen); err != nil {
			ln.Close()
			log.Error("cannot listen", zap.String("tls_listen", cfg.Gateway.TLSListen), zap.Error(err))
			return exitConfig
		}
	}
	var cln net.Listener
	if cfg.Gateway.ControlListen != "" {
		if cln, err = net.Listen("tcp", cfg.Gateway.ControlListen); err != nil {
			ln.Close()
			closeIf(tln)
			log.Error("cannot listen", zap.String("control_listen", cfg.Gateway.ControlListen), zap.Error(err))
			return exitConfig
		}
	}

	// Logged before serving starts (the sockets are bound, so connections
	// already queue), so that the line comes before anything that /readyz
	// or a first request could cause.
	controlAddr, tlsAddr := "", ""
	if cln != nil {
		controlAddr = cln.Addr().String()
	}
	if tln != nil {
		tlsAddr = tln.Addr().String()
	}
	log.Info("gateway started", append([]zap.Field{
		zap.String("version", version),
		zap.String("listen", ln.Addr().String()),
		zap.String("tls_listen", tlsAddr),
		zap.String("control_listen", controlAddr),
		zap.String("source", sourceName(cfg)),
	}, summary(cfg)...)...)
	if demo != nil {
		demo.printTry(stdout, ln.Addr().String(), tlsAddr, controlAddr)
	}

	serveDone := make(chan error, 2)
	go func() { serveDone <- r.g.Serve(ln) }()
	if tln != nil {
		go func() { serveDone <- r.g.ServeTLS(tln) }()
	}

	var ctrl *http.Server
	ctrlDone := make(chan error, 1)
	if cln != nil {
		ctrl = &http.Server{
			Handler:           r.g.ControlHandler(func() (string, error) { return r.reload("api") }),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          zap.NewStdLog(log.Named("control")),
		}
		go func() { ctrlDone <- ctrl.Serve(cln) }()
	}

	for {
		select {
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				r.reload("SIGHUP")
				continue
			}
			if watcher != nil {
				// No reload may start during the drain; Close waits for
				// one in progress.
				_ = watcher.Close()
			}
			r.closeCertWatchers()
			r.shutdown(sig, ln, tln, serveDone, ctrl)
			return exitOK
		case err := <-serveDone:
			log.Error("the data plane stopped", zap.Error(err))
			if ctrl != nil {
				_ = ctrl.Close()
			}
			return exitConfig
		case <-r.resync:
			r.syncCertWatchers()
		case err := <-ctrlDone:
			// The data plane goes on serving; only /metrics and the control
			// endpoints are lost.
			log.Error("the control API stopped", zap.Error(err))
			ctrl, ctrlDone = nil, nil
		}
	}
}

// shutdown drains: /readyz turns 503 and the listener closes at once, in-flight
// requests get gateway.shutdown_timeout. The control API stays up during the
// drain so that /readyz and /metrics can be watched, and stops last.
func (r *runner) shutdown(sig os.Signal, ln, tln net.Listener, serveDone <-chan error, ctrl *http.Server) {
	// A second SIGINT/SIGTERM kills the process at once, as operators expect
	// of a second Ctrl-C.
	signal.Reset(syscall.SIGINT, syscall.SIGTERM)

	r.mu.Lock()
	timeout := r.cfg.Gateway.ShutdownTimeout.Duration()
	r.mu.Unlock()
	r.log.Info("shutting down", zap.String("signal", sig.String()), zap.Duration("timeout", timeout))

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.g.Shutdown(ctx); err != nil {
		r.log.Warn("shutdown timeout reached; remaining connections were closed", zap.Error(err))
	}
	// Shutdown has closed the listener already; closing it again covers a
	// signal that came before Serve set its server up, which Shutdown
	// would not have seen.
	_ = ln.Close()
	closeIf(tln)
	waitFor := 1
	if tln != nil {
		waitFor = 2
	}
	for range waitFor {
		select {
		case <-serveDone:
		case <-time.After(5 * time.Second):
			r.log.Warn("the data plane did not stop after Shutdown")
		}
	}
	if ctrl != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := ctrl.Shutdown(cctx); err != nil {
			_ = ctrl.Close()
		}
		ccancel()
	}
	r.log.Info("stopped")
}

// reload loads the config again and swaps it in; on any error the serving
// snapshot stays. trigger says who asked: "file", "SIGHUP" or "api".
func (r *runner) reload(trigger string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	cfg, err := r.load()
	if err == nil {
		err = r.g.Apply(cfg)
	}
	r.g.RecordReload(err)
	if err != nil {
		r.log.Error("config reload failed; the previous config keeps serving",
			zap.String("trigger", trigger),
			zap.String("revision", r.cfg.Revision),
			zap.Strings("errors", errorLines(err)))
		return "", err
	}
	previous := r.cfg.Revision
	r.cfg = cfg
	select {
	case r.resync <- struct{}{}:
	default: // one pending re-sync covers this reload too
	}
	r.setLevel(cfg)
	logWarnings(r.log, cfg)
	r.tuneGC(false)
	if cfg.Gateway.Listen != r.listen || cfg.Gateway.ControlListen != r.controlListen || cfg.Gateway.TLSListen != r.tlsListen {
		r.log.Warn("gateway.listen, gateway.tls_listen and gateway.control_listen need a restart; the new values were not applied",
			zap.String("listen", r.listen), zap.String("new_listen", cfg.Gateway.Listen),
			zap.String("tls_listen", r.tlsListen), zap.String("new_tls_listen", cfg.Gateway.TLSListen),
			zap.String("control_listen", r.controlListen), zap.String("new_control_listen", cfg.Gateway.ControlListen))
	}
	r.log.Info("config reloaded", append([]zap.Field{
		zap.String("trigger", trigger),
		zap.String("previous_revision", previous),
	}, summary(cfg)...)...)
	return cfg.Revision, nil
}

// syncCertWatchers watches the certificate files of the serving config
// and stops watching the ones it no longer uses. Only the main loop calls
// it (a watcher's own onChange could not close that watcher).
func (r *runner) syncCertWatchers() {
	r.mu.Lock()
	files := r.cfg.TLSFiles()
	debounce := r.cfg.Gateway.ReloadDebounce.Duration()
	r.mu.Unlock()
	for path, w := range r.certWatch {
		if !slices.Contains(files, path) {
			_ = w.Close()
			delete(r.certWatch, path)
		}
	}
	for _, path := range files {
		if r.certWatch[path] != nil {
			continue
		}
		w, err := configwatch.New(path, debounce, r.limits, func() { r.reload("certificate file") })
		if err != nil {
			r.log.Warn("cannot watch a certificate file; reload with SIGHUP or POST /v1/reload after changing it",
				zap.String("file", path), zap.Error(err))
			continue
		}
		r.certWatch[path] = w
	}
}

func (r *runner) closeCertWatchers() {
	for path, w := range r.certWatch {
		_ = w.Close()
		delete(r.certWatch, path)
	}
}

// logWarnings logs what loading found worth a warning (a certificate close
// to expiry, TLSv1.1 allowed).
func logWarnings(log *zap.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn("config warning", zap.String("path", w.Path), zap.String("warning", w.Msg))
	}
}

func closeIf(ln net.Listener) {
	if ln != nil {
		_ = ln.Close()
	}
}

func (r *runner) setLevel(cfg *config.Config) {
	// The config loader has validated the level; a failure here keeps the
	// current one.
	if lvl, err := zapcore.ParseLevel(cfg.Gateway.LogLevel); err == nil {
		r.level.SetLevel(lvl)
	}
}

// newLogger builds the gateway's own log: JSON lines on w. Sampling is off:
// operators must see every reload and error line.
func newLogger(level zap.AtomicLevel, w io.Writer) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder
	out := zapcore.Lock(zapcore.AddSync(w))
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), out, level), zap.ErrorOutput(out))
}

// summary is what the start and reload lines say about a config.
func summary(cfg *config.Config) []zap.Field {
	return []zap.Field{
		zap.String("revision", cfg.Revision),
		zap.Int("services", len(cfg.Services)),
		zap.Int("routes", numRoutes(cfg)),
		zap.Int("upstreams", numUpstreams(cfg)),
		zap.Int("throttle_policies", len(cfg.ThrottlePolicies)),
		zap.Int("consumers", len(cfg.Consumers)),
		zap.Int("stream_routes", len(cfg.StreamRoutes)),
	}
}

func sourceName(cfg *config.Config) string {
	if cfg.Source == "" {
		return "built-in demo"
	}
	return cfg.Source
}

// notExist reports whether path certainly does not exist; any other stat
// error leaves it to Load to report.
func notExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// tuneGC chooses the GC percent for the config just applied and logs the
// garbage collector's settings.
func (r *runner) tuneGC(collect bool) {
	tuneGC(r.gc, collect)
	rs := r.gc
	fields := []zap.Field{zap.Int("gc_percent", rs.GCPercent), zap.String("gc_percent_from", rs.GCSource), zap.String("memory_limit_from", rs.LimitSource)}
	if rs.LiveHeap > 0 {
		fields = append(fields, zap.Uint64("live_heap_bytes", rs.LiveHeap))
	}
	if rs.LimitSource != "none" {
		fields = append(fields, zap.Int64("memory_limit_bytes", rs.MemoryLimit))
	}
	r.log.Info("garbage collector", fields...)
}
