package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ---- gateway ----

func (v *validator) gateway(path string, g *Gateway) {
	v.listenAddr(field(path, "listen"), g.Listen)
	if g.ControlListen != "" {
		v.listenAddr(field(path, "control_listen"), g.ControlListen)
	}
	v.controlAPI(field(path, "control_api"), &g.ControlAPI)
	v.intRange(field(path, "max_request_body_size"), g.MaxRequestBodySize, 0, maxBodySize)
	v.intRange(field(path, "max_header_size"), int64(g.MaxHeaderSize), minHeaderSize, maxHeaderSize)
	v.intRange(field(path, "max_response_header_size"), int64(g.MaxResponseHeaderSize), minHeaderSize, maxHeaderSize)
	v.positive(field(path, "client_read_timeout"), g.ClientReadTimeout)
	v.positive(field(path, "client_idle_timeout"), g.ClientIdleTimeout)
	if g.MaxConnections < 0 {
		v.add(field(path, "max_connections"), "must be >= 0 (0 = unlimited), got %d", g.MaxConnections)
	}
	v.positive(field(path, "client_header_timeout"), g.ClientHeaderTimeout)
	v.positive(field(path, "client_write_timeout"), g.ClientWriteTimeout)
	v.intRange(field(path, "max_header_count"), int64(g.MaxHeaderCount), 1, maxHeaderCount)
	v.oneOf(field(path, "path_policy"), g.PathPolicy, "reject", "decode", "keep")
	rip := field(path, "real_ip")
	if g.RealIP.Header != "" && !validHeaderName(g.RealIP.Header) {
		v.add(field(rip, "header"), "invalid header name %q", g.RealIP.Header)
	}
	for i, a := range g.RealIP.TrustedAddresses {
		v.ipOrCIDR(indexPath(field(rip, "trusted_addresses"), i), a)
	}
	if g.AccessLog.Path == "" {
		v.add(field(field(path, "access_log"), "path"), `must not be empty (use "stdout", "stderr" or a file path)`)
	}
	v.oneOf(field(path, "log_level"), g.LogLevel, "debug", "info", "warn", "error")
	v.nonNegative(field(path, "reload_debounce"), g.ReloadDebounce)
	v.positive(field(path, "shutdown_timeout"), g.ShutdownTimeout)
	v.gatewayWebsocket(field(path, "websocket"), &g.Websocket)
	v.resolver(field(path, "resolver"), &g.Resolver)
}

// resolver checks gateway.resolver (DNS discovery, issue 21).
func (v *validator) resolver(path string, r *Resolver) {
	for i, ns := range r.Nameservers {
		if _, err := NameserverAddr(ns); err != nil {
			v.add(indexPath(field(path, "nameservers"), i), "%v", err)
		}
	}
	v.positive(field(path, "timeout"), r.Timeout)
}

// NameserverAddr returns a nameserver entry, "ip" or "ip:port", as
// ip:port (port 53 when absent).
func NameserverAddr(s string) (string, error) {
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	h, p, err := net.SplitHostPort(s)
	if err == nil {
		n, perr := strconv.Atoi(p)
		if net.ParseIP(h) == nil || perr != nil || n < 1 || n > maxPort {
			err = errors.New("bad")
		}
	}
	if err != nil {
		return "", fmt.Errorf("must be an IP address or ip:port, got %q", clip(s))
	}
	return s, nil
}

// listenAddr accepts host:port with an empty host (all interfaces) and port
// 0 (any free port, which tests use).
func (v *validator) listenAddr(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > maxPort {
			err = fmt.Errorf("bad port %q", port)
		}
	}
	if err != nil {
		v.add(path, "must be host:port, got %q", addr)
	}
}
