package config

import (
	"net"
	"net/netip"
	"strconv"
)

// TCP stream routes (README "TCP stream routes"): connections accepted on
// gateway.stream_listen are matched to a stream route by the listener's
// port, the local address and the client's address, and spliced to a node
// of the route's upstream.

// StreamRoute is an API7 stream route (Admin API "stream routes"), with
// the upstream given as in APISIX: service_id (a service of type stream),
// upstream_id or an inline upstream.
type StreamRoute struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Desc       string            `json:"desc"`
	Labels     map[string]string `json:"labels"`
	ServiceID  string            `json:"service_id"`
	UpstreamID string            `json:"upstream_id"`
	Upstream   *Upstream         `json:"upstream"` // its id is the route's when loading
	// ServerAddr is the local address the connection came to (an IP);
	// ServerPort the listener's port; RemoteAddr the client's IP or CIDR.
	// Each empty/0 matches any.
	ServerAddr string  `json:"server_addr"`
	ServerPort int     `json:"server_port"`
	RemoteAddr string  `json:"remote_addr"`
	Plugins    Plugins `json:"plugins"` // ip-restriction only
	// IdleTimeout replaces gateway.stream.idle_timeout; 0 keeps it.
	IdleTimeout Seconds `json:"idle_timeout"`

	// Parsed by validation: Server is the zero Addr for any, Remote the
	// zero Prefix for any.
	Server netip.Addr   `json:"-"`
	Remote netip.Prefix `json:"-"`

	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// GatewayStream holds the settings of every stream listener:
// gateway.stream.
type GatewayStream struct {
	// IdleTimeout closes a connection with no byte either way for this
	// long (default 600 s, nginx's proxy_timeout).
	IdleTimeout Seconds `json:"idle_timeout"`
	// MaxConnections caps open connections per listener (0 = unlimited).
	MaxConnections int `json:"max_connections"`
}

// StreamPlugins are the plugins a stream route accepts: the rest act on
// HTTP requests.
var StreamPlugins = []string{"ip-restriction"}

// StreamUpstream returns the upstream a stream route uses and its id (the
// health and metrics identity), nil when the reference is unresolved.
func (c *Config) StreamUpstream(r *StreamRoute) (string, *Upstream) {
	switch {
	case r.Upstream != nil:
		return r.ID, r.Upstream
	case r.UpstreamID != "":
		return r.UpstreamID, c.upstreamByID(r.UpstreamID)
	case r.ServiceID != "":
		for i := range c.Services {
			s := &c.Services[i]
			if s.ID != r.ServiceID {
				continue
			}
			if s.Upstream != nil {
				return s.ID, s.Upstream
			}
			return s.UpstreamID, c.upstreamByID(s.UpstreamID)
		}
	}
	return "", nil
}

func (c *Config) upstreamByID(id string) *Upstream {
	for i := range c.Upstreams {
		if c.Upstreams[i].ID == id {
			return &c.Upstreams[i]
		}
	}
	return nil
}

// streamRoutes checks stream_routes and gateway.stream_listen.
func (v *validator) streamRoutes() {
	cfg := v.cfg
	g := &cfg.Gateway
	ports := map[int]bool{}
	anyPort := false
	seenListen := map[string]string{}
	for i, a := range g.StreamListen {
		p := indexPath("gateway.stream_listen", i)
		v.listenAddr(p, a)
		if first, dup := seenListen[a]; dup {
			v.add(p, "duplicate address %q (also %s)", a, first)
		}
		seenListen[a] = p
		if _, port, err := net.SplitHostPort(a); err == nil {
			n, _ := strconv.Atoi(port)
			ports[n] = true
			anyPort = anyPort || n == 0
		}
	}
	v.positive("gateway.stream.idle_timeout", g.Stream.IdleTimeout)
	if g.Stream.MaxConnections < 0 {
		v.add("gateway.stream.max_connections", "must be >= 0 (0 = unlimited), got %d", g.Stream.MaxConnections)
	}
	if len(cfg.StreamRoutes) > 0 && len(g.StreamListen) == 0 {
		v.add("gateway.stream_listen", "required: stream_routes has %d routes and no listener", len(cfg.StreamRoutes))
	}
	services := map[string]*Service{}
	for i := range cfg.Services {
		services[cfg.Services[i].ID] = &cfg.Services[i]
	}
	ids := newIDSet(v, "stream_routes")
	type key struct {
		port   int
		server netip.Addr
		remote netip.Prefix
	}
	matches := map[key]string{}
	for i := range cfg.StreamRoutes {
		r := &cfg.StreamRoutes[i]
		path := indexPath("stream_routes", i)
		idOK := ids.check(field(path, "id"), r.ID, maxID)
		if len(r.Name) > maxName {
			v.add(field(path, "name"), "must have at most %d characters, got %d", maxName, len(r.Name))
		}
		refs := 0
		for _, set := range []bool{r.ServiceID != "", r.UpstreamID != "", r.Upstream != nil} {
			if set {
				refs++
			}
		}
		switch {
		case refs != 1:
			v.add(path, "exactly one of service_id, upstream_id and upstream is required, got %d", refs)
		case r.ServiceID != "":
			if s := services[r.ServiceID]; s == nil {
				v.add(field(path, "service_id"), "unknown service %q", r.ServiceID)
			} else if s.Type != "stream" {
				v.add(field(path, "service_id"), "service %q has type %q; a stream route needs a service of type \"stream\"", r.ServiceID, s.Type)
			}
		case r.UpstreamID != "":
			if !v.upstreams[r.UpstreamID] {
				v.add(field(path, "upstream_id"), "unknown upstream %q", r.UpstreamID)
			}
		default:
			if idOK && (v.upstreams[r.ID] || services[r.ID] != nil) {
				v.add(field(path, "id"), "%q is also the id of an upstream or a service; a stream route with an inline upstream needs an id of its own (it names the upstream)", r.ID)
			}
			v.upstream(field(path, "upstream"), r.Upstream)
		}
		if id, u := cfg.StreamUpstream(r); u != nil && refs == 1 {
			up := path
			if r.Upstream != nil {
				up = field(path, "upstream")
			}
			v.streamUpstream(up, id, u)
		}
		if r.ServerPort != 0 {
			v.intRange(field(path, "server_port"), int64(r.ServerPort), 1, maxPort)
			if !ports[r.ServerPort] && !anyPort && len(g.StreamListen) > 0 {
				v.add(field(path, "server_port"), "no gateway.stream_listen address has port %d", r.ServerPort)
			}
		}
		if r.ServerAddr != "" {
			a, err := netip.ParseAddr(r.ServerAddr)
			if err != nil {
				v.add(field(path, "server_addr"), "must be an IP address, got %q", r.ServerAddr)
			}
			r.Server = a.Unmap()
		}
		if r.RemoteAddr != "" {
			if ps := ParsePrefixes([]string{r.RemoteAddr}); len(ps) == 1 {
				r.Remote = ps[0]
			} else {
				v.add(field(path, "remote_addr"), "must be an IP address or CIDR, got %q", r.RemoteAddr)
			}
		}
		v.nonNegative(field(path, "idle_timeout"), r.IdleTimeout)
		for _, name := range sortedPluginNames(r.Plugins) {
			ok := false
			for _, s := range StreamPlugins {
				ok = ok || s == name
			}
			if !ok {
				v.add(field(field(path, "plugins"), name), "is not supported on a stream route (only %v: the others act on HTTP requests)", StreamPlugins)
			}
		}
		v.plugins(field(path, "plugins"), r.Plugins)
		k := key{r.ServerPort, r.Server, r.Remote}
		if first, dup := matches[k]; dup {
			v.add(path, "matches the same connections as %s (same server_port, server_addr and remote_addr)", first)
		} else {
			matches[k] = path
		}
	}
}

// streamUpstream checks what a stream route needs of its upstream: plain
// TCP to the nodes and a chash key a connection has.
func (v *validator) streamUpstream(path, id string, u *Upstream) {
	if u.Scheme == SchemeHTTPS {
		v.add(path, "upstream %q has scheme https: TLS to the nodes of a stream route is not supported yet", id)
	}
	if u.DiscoveryType != "" {
		v.add(path, "upstream %q uses discovery_type %q: discovered nodes on a stream route are not supported yet (give the nodes)", id, u.DiscoveryType)
	}
	if u.Type == CHash {
		ok := u.HashOn == HashOnVars
		for _, p := range u.HashKey.Parts {
			ok = ok && (!p.IsVar || p.Var.Kind == VarRemoteAddr || p.Var.Kind == VarServerPort)
		}
		if !ok {
			v.add(path, "upstream %q hashes on %s %q: a stream route can hash only on vars remote_addr and server_port", id, u.HashOn, u.Key)
		}
	}
}
