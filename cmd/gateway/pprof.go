package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
)

// pprofEnv turns on the profiling endpoints: GATEWAY_PPROF=127.0.0.1:6060
// serves net/http/pprof on that address. It is opt-in and kept apart from
// the control API because profiles expose internals and cost CPU while
// they are taken; `go run ./bench --pprof ADDR` sets it for the gateway
// under test.
const pprofEnv = "GATEWAY_PPROF"

// startPprof serves the pprof endpoints on addr for the life of the
// process. A failure to listen is logged, not fatal: profiling is a
// diagnostic, never a reason not to serve.
func startPprof(addr string, log *zap.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("cannot serve pprof", zap.String("env", pprofEnv), zap.Error(err))
		return
	}
	log.Info("serving pprof", zap.String("addr", ln.Addr().String()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log.Named("pprof"))}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server stopped", zap.Error(err))
		}
	}()
}
