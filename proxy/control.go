package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gateway/config"
)

// ControlHandler serves the control API (operations.md). reload is called
// by POST /v1/reload; it returns the new revision or the load errors.
//
// Every request passes controlGuard first: the Host check against DNS
// rebinding, the cross-site checks on POST, and the bearer token of
// gateway.control_api. The listen address the Host check accepts is the
// control_listen of the config serving when ControlHandler is called (a
// reload cannot move the socket); the token, protect_metrics and
// allowed_hosts follow reloads.
func (g *Gateway) ControlHandler(reload func() (string, error)) http.Handler {
	listen := ""
	if cfg := g.Config(); cfg != nil {
		listen = cfg.Gateway.ControlListen
	}
	return &controlGuard{g: g, next: g.controlMux(reload), listenHost: listenHost(listen)}
}

func (g *Gateway) controlMux(reload func() (string, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", g.serveMetrics)
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

// controlGuard protects the control API from browsers and from anyone
// without the token.
type controlGuard struct {
	g    *Gateway
	next http.Handler
	// listenHost is the host of control_listen, lower case; "" when it is
	// an unspecified address (0.0.0.0, ::) or empty.
	listenHost string
}

// listenHost returns the host part of a listen address when it names one
// address, "" when it listens on all of them.
func listenHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return ""
	}
	return strings.ToLower(host)
}

func (c *controlGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var api config.ControlAPI
	if cfg := c.g.Config(); cfg != nil {
		api = cfg.Gateway.ControlAPI
	}
	// DNS rebinding: a page on evil.example whose name is made to resolve
	// to 127.0.0.1 reaches this listener from the victim's browser, but the
	// browser still sends Host: evil.example.
	if !c.hostAllowed(r.Host, api.AllowedHosts) {
		writeJSON(w, http.StatusMisdirectedRequest, map[string]any{"error": "the Host header does not name this control API"})
		return
	}
	// Cross-site requests: a browser sends a form POST (or a fetch with a
	// CORS-simple content type) to any address without a preflight. No
	// legitimate client of the control API sends Origin or those types.
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if _, ok := r.Header["Origin"]; ok {
			writeJSON(w, http.StatusForbidden, map[string]any{"error": "cross-origin requests to the control API are refused"})
			return
		}
		if browserSimpleType(r.Header.Get("Content-Type")) {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"error": "send no body, or Content-Type: application/json"})
			return
		}
	}
	if api.Token != "" && !openPath(r.URL.Path, api.ProtectMetrics) {
		if !bearerMatches(r.Header.Get("Authorization"), api.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gateway-control"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "missing or wrong bearer token"})
			return
		}
	}
	c.next.ServeHTTP(w, r)
}

// openPath reports whether a path is served without the token: the probes
// always, /metrics unless protect_metrics. Everything else (/v1/*, and any
// path added later) needs it.
func openPath(path string, protectMetrics bool) bool {
	switch path {
	case "/healthz", "/readyz":
		return true
	case "/metrics":
		return !protectMetrics
	}
	return false
}

// hostAllowed reports whether the Host header names this listener:
// localhost, a loopback literal, the control_listen host, one of
// allowed_hosts, or, when control_listen is an unspecified address, any IP
// literal (a DNS rebinding attack needs a name). Any port is accepted, so
// that port forwarding works.
func (c *controlGuard) hostAllowed(hostport string, allowed []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	if host == "localhost" || host == c.listenHost || slices.Contains(allowed, host) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip == netip.MustParseAddr("127.0.0.1") || ip == netip.IPv6Loopback() {
		return true
	}
	if c.listenHost == "" {
		return true
	}
	if lip, err := netip.ParseAddr(c.listenHost); err == nil && lip.Unmap() == ip {
		return true
	}
	return false
}

// browserSimpleType reports whether a Content-Type is one that a browser
// sends cross-site without a CORS preflight.
func browserSimpleType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// Unparsable: browsers send these without a preflight too
		// (e.g. "text/plain;;"), so refuse.
		return true
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

// bearerMatches compares an Authorization header with the token in
// constant time. Both sides are hashed first so that the comparison takes
// the same time whatever the length of the guess.
func bearerMatches(header, token string) bool {
	scheme, cred, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		cred = ""
	}
	cred = strings.TrimLeft(cred, " ")
	got := sha256.Sum256([]byte(cred))
	want := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && ok && cred != ""
}
