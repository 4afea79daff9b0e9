package proxy

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ControlHandler serves the control API (operations.md). reload is called
// by POST /v1/reload; it returns the new revision or the load errors.
func (g *Gateway) ControlHandler(reload func() (string, error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !g.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /v1/config", g.serveConfigInfo)
	mux.HandleFunc("GET /v1/routes", g.serveRoutes)
	mux.HandleFunc("GET /v1/healthcheck", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"upstreams": g.health.Snapshot()})
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, _ *http.Request) {
		if reload == nil {
			writeJSON(w, http.StatusNotImplemented, map[string]any{"error": "reload is not available"})
			return
		}
		rev, err := reload()
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "errors": ErrorLines(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "revision": rev})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (g *Gateway) serveConfigInfo(w http.ResponseWriter, _ *http.Request) {
	s := g.snap.Load()
	if s == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "no config"})
		return
	}
	g.reloadMu.Lock()
	last := g.lastReload
	g.reloadMu.Unlock()
	var lastReload any
	if !last.At.IsZero() {
		lastReload = last
	}
	cfg := s.cfg
	writeJSON(w, http.StatusOK, map[string]any{
		"revision":          cfg.Revision,
		"loaded_at":         s.loadedAt.UTC().Format(time.RFC3339Nano),
		"source":            cfg.Source,
		"services":          len(cfg.Services),
		"routes":            s.rt.NumRoutes(),
		"upstreams":         len(s.upstreams),
		"throttle_policies": len(cfg.ThrottlePolicies),
		"consumers":         len(cfg.Consumers),
		"last_reload":       lastReload,
	})
}

type routeInfo struct {
	Service  string   `json:"service"`
	Route    string   `json:"route"`
	Hosts    []string `json:"hosts"`
	Paths    []string `json:"paths"`
	Methods  []string `json:"methods"`
	Priority int      `json:"priority"`
}

func (g *Gateway) serveRoutes(w http.ResponseWriter, _ *http.Request) {
	s := g.snap.Load()
	if s == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "no config"})
		return
	}
	out := make([]routeInfo, 0, s.rt.NumRoutes())
	for _, r := range s.rt.Routes() {
		hosts := r.Hosts
		if hosts == nil {
			hosts = []string{}
		}
		methods := r.Methods
		if methods == nil {
			methods = []string{}
		}
		out = append(out, routeInfo{Service: r.Service.ID, Route: r.ID, Hosts: hosts, Paths: r.Patterns, Methods: methods, Priority: r.Config.Priority})
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out})
}
