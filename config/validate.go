package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Limits of the spec that several checks share.
const (
	maxID          = 256
	maxUsername    = 512
	maxName        = 65536
	maxHosts       = 32
	maxPaths       = 64
	maxPathLen     = 4096
	maxNodes       = 1024
	maxPort        = 65535
	maxWeight      = 65535
	maxRetries     = 65535
	maxThreshold   = 254
	maxCallLimit   = 2147483647
	maxBodySize    = 1 << 30
	minHeaderSize  = 1024
	maxHeaderSize  = 1 << 20
	maxHostnameLen = 253
	maxHeaderCount = 10000
)

var (
	httpMethods   = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
	responseTypes = overridableResponses()
	// "!=" is accepted as another spelling of "~=": routing.md names it once
	// ("fails every operator except !=/~=") though its list has only "~=".
	varOperators = []string{"==", "~=", "!=", ">", ">=", "<", "<=", "~~", "~*", "in", "has", "ipmatch"}
	plainVars    = []string{"uri", "request_uri", "host", "request_method", "remote_addr", "scheme", "server_port", "consumer_name", "ssl_client_s_dn_cn", "ssl_client_verify"}
	varPrefixes  = []string{"arg_", "http_", "cookie_", "path_"}
)

func overridableResponses() []string {
	var names []string
	for t := RespNone; t < NumResponseTypes; t++ {
		if t.Overridable() {
			names = append(names, t.String())
		}
	}
	return names
}

// validator checks a decoded and resolved config and collects every
// problem. It never stops early.
type validator struct {
	cfg  *Config
	errs Errors

	upstreams map[string]bool // ids of top-level upstreams
	policies  map[string]bool // ids of throttle policies
}

func validate(cfg *Config) Errors {
	v := &validator{cfg: cfg, upstreams: map[string]bool{}, policies: map[string]bool{}}
	for _, u := range cfg.Upstreams {
		v.upstreams[u.ID] = true
	}
	for _, p := range cfg.ThrottlePolicies {
		v.policies[p.ID] = true
	}
	v.gateway("gateway", &cfg.Gateway)
	v.services()
	ids := newIDSet(v, "upstreams")
	for i := range cfg.Upstreams {
		path := indexPath("upstreams", i)
		ids.check(field(path, "id"), cfg.Upstreams[i].ID, maxID)
		v.upstream(path, &cfg.Upstreams[i])
	}
	v.policiesList()
	v.consumers()
	v.gatewayResponses()
	v.plugins("global_plugins", cfg.GlobalPlugins)
	v.routeConflicts()
	v.tlsObjects() // validate_tls.go
	return v.errs
}

// add records an error. String arguments printed with %q are clipped to
// maxQuoted bytes; secret values must never be arguments.
func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

func field(path, name string) string { return keyPath(path, name) }

// idSet checks that ids are well-formed and unique within one list.
type idSet struct {
	v    *validator
	seen map[string]string // id -> path of its first use
	what string
}

func newIDSet(v *validator, what string) *idSet {
	return &idSet{v: v, seen: map[string]string{}, what: what}
}

// check validates an id and remembers it; it reports false when the id is
// unusable, so that callers can skip checks that would only repeat it.
func (s *idSet) check(path, id string, maxLen int) bool {
	if id == "" {
		s.v.add(path, "required")
		return false
	}
	if !validID(id, maxLen) {
		s.v.add(path, "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxLen, id)
		return false
	}
	if first, dup := s.seen[id]; dup {
		s.v.add(path, "duplicate id %q in %s (first at %s)", id, s.what, first)
		return false
	}
	s.seen[id] = path
	return true
}

func validID(id string, maxLen int) bool {
	if len(id) == 0 || len(id) > maxLen {
		return false
	}
	for _, c := range []byte(id) {
		if !isWordByte(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func validUsername(name string) bool {
	if len(name) == 0 || len(name) > maxUsername {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) && c != '-' {
			return false
		}
	}
	return true
}

// Small range checks that name the bad value.

func (v *validator) intRange(path string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.add(path, "must be %d..%d, got %d", lo, hi, n)
	}
}

// Durations. Every Seconds field is checked by positive or nonNegative:
// at most a day, since a larger value (1e300) overflows time.Duration
// (about 292 years) or makes a timeout that never fires; and not below a
// millisecond, since a value that rounds to 0 would turn a timeout into
// "none" or "keep the default".
const (
	minDuration Seconds = 0.001
	maxDuration Seconds = 86400
)

// positive checks a duration that must be set: 0.001..86400 seconds.
func (v *validator) positive(path string, s Seconds) {
	if s < minDuration || s > maxDuration {
		v.add(path, "must be %v..%v seconds (1 ms to 1 day), got %v", float64(minDuration), float64(maxDuration), float64(s))
	}
}

// nonNegative checks a duration where 0 has a meaning of its own (no
// debounce, no budget, keep the upstream's value): 0 or 0.001..86400.
func (v *validator) nonNegative(path string, s Seconds) {
	if s != 0 && (s < minDuration || s > maxDuration) {
		v.add(path, "must be 0 or %v..%v seconds (1 ms to 1 day), got %v", float64(minDuration), float64(maxDuration), float64(s))
	}
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	}
}

// ---- gateway ----

func (v *validator) gateway(path string, g *Gateway) {
	v.listenAddr(field(path, "listen"), g.Listen)
	if g.ControlListen != "" {
		v.listenAddr(field(path, "control_listen"), g.ControlListen)
	}
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

func (v *validator) ipOrCIDR(path, s string) {
	if !validIPOrCIDR(s) {
		v.add(path, "must be an IP address or CIDR, got %q", s)
	}
}

func validIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) && !strings.ContainsRune("!#$%&'*+-.^`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHostname accepts a DNS name (labels of letters, digits, '-' and '_')
// or an IP address.
func validHostname(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > maxHostnameLen {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isWordByte(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// ---- services and routes ----

func (v *validator) services() {
	serviceIDs := newIDSet(v, "services")
	routeIDs := newIDSet(v, "routes")
	for i := range v.cfg.Services {
		s := &v.cfg.Services[i]
		path := indexPath("services", i)
		serviceOK := serviceIDs.check(field(path, "id"), s.ID, maxID)
		if serviceOK && s.Upstream != nil && v.upstreams[s.ID] {
			// Health state and metrics know an inline upstream by its
			// service's id; sharing it with a top-level upstream would mix
			// the two.
			v.add(field(path, "id"), "%q is also the id of a top-level upstream; a service with an inline upstream needs an id of its own", s.ID)
		}
		if len(s.Name) > maxName {
			v.add(field(path, "name"), "must have at most %d characters, got %d", maxName, len(s.Name))
		}
		switch s.Type {
		case "http":
		case "stream":
			v.add(field(path, "type"), `"stream" is not supported yet`)
		default:
			v.add(field(path, "type"), `must be "http", got %q`, s.Type)
		}
		v.hosts(field(path, "hosts"), s.Hosts)
		v.pathPrefix(field(path, "path_prefix"), s.PathPrefix)
		switch {
		case s.Upstream != nil && s.UpstreamID != "":
			v.add(field(path, "upstream_id"), "exactly one of upstream and upstream_id, got both (upstream_id %q)", s.UpstreamID)
		case s.Upstream != nil:
			v.upstream(field(path, "upstream"), s.Upstream)
		case s.UpstreamID != "":
			if !v.upstreams[s.UpstreamID] {
				v.add(field(path, "upstream_id"), "unknown upstream %q", s.UpstreamID)
			}
		default:
			v.add(path, "exactly one of upstream and upstream_id is required, got neither")
		}
		v.plugins(field(path, "plugins"), s.Plugins)
		v.policyRef(field(path, "throttle_policy"), s.ThrottlePolicy)
		if len(s.Routes) == 0 {
			v.add(field(path, "routes"), "at least one route is required")
		}
		for j := range s.Routes {
			rpath := indexPath(field(path, "routes"), j)
			// A bad service id is reported once, not again in every id
			// derived from it.
			if derived := s.Routes[j].ID == s.ID+"."+strconv.Itoa(j); serviceOK || !derived {
				routeIDs.check(field(rpath, "id"), s.Routes[j].ID, maxID)
			}
			v.route(rpath, s, &s.Routes[j])
		}
	}
}

func (v *validator) hosts(path string, hosts []string) {
	if len(hosts) > maxHosts {
		v.add(path, "must have at most %d hosts, got %d", maxHosts, len(hosts))
	}
	seen := map[string]bool{}
	for i, h := range hosts {
		hp := indexPath(path, i)
		name, wildcard := strings.CutPrefix(h, "*.")
		if _, err := netip.ParseAddr(name); !validHostname(name) || wildcard && err == nil {
			v.add(hp, "must be a host name or *.domain, got %q", h)
			continue
		}
		if seen[h] {
			v.add(hp, "duplicate host %q", h)
		}
		seen[h] = true
	}
}

func (v *validator) policyRef(path, id string) {
	if id != "" && !v.policies[id] {
		v.add(path, "unknown throttle policy %q", id)
	}
}

func (v *validator) pathPrefix(path, prefix string) {
	if msg := checkPathChars(prefix); msg != "" {
		v.add(path, "%s, got %q", msg, prefix)
		return
	}
	if msg := v.unmatchable(prefix); msg != "" {
		v.add(path, "%s, got %q", msg, prefix)
	}
	if strings.ContainsAny(prefix, "{}*") || strings.Contains(prefix, "/:") {
		v.add(path, "must be a literal path without parameters or '*', got %q", prefix)
	}
}

// checkPathChars holds the rules route paths and path prefixes share. Request
// paths are normalised before matching (routing.md), so a pattern with an
// empty, "." or ".." segment could never match and is refused.
func checkPathChars(p string) string {
	switch {
	case p == "" || p[0] != '/':
		return "must start with '/'"
	case len(p) > maxPathLen:
		return fmt.Sprintf("must have at most %d characters", maxPathLen)
	case strings.ContainsAny(p, "?# \t"):
		return "must not contain '?', '#' or spaces"
	case strings.Contains(p, "//"):
		return "must not contain an empty segment"
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return "must not contain control characters"
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return `must not contain "." or ".." segments`
		}
	}
	return ""
}

// unmatchable says why a route path or path_prefix could never match a
// request under gateway.path_policy and reject_path_params, or "": request
// paths with these forms are refused (or decoded) before matching.
func (v *validator) unmatchable(p string) string {
	g := &v.cfg.Gateway
	if g.PathPolicy != "keep" {
		lower := strings.ToLower(p)
		for _, form := range []string{"%2f", "%5c", "%00", `\`} {
			if strings.Contains(lower, form) {
				return fmt.Sprintf("can never match: gateway.path_policy %q does not let %q through to matching (use keep)", g.PathPolicy, form)
			}
		}
		for seg := range strings.SplitSeq(p[1:], "/") {
			if dots, _, ok := strings.Cut(seg, ";"); ok && (dots == "." || dots == "..") {
				return fmt.Sprintf("can never match: gateway.path_policy %q refuses dot segments with parameters", g.PathPolicy)
			}
		}
	}
	if g.RejectPathParams && strings.Contains(p, ";") {
		return "can never match: gateway.reject_path_params refuses ';' in request paths"
	}
	return ""
}

// routePattern parses a route path. It returns the pattern with parameter
// names erased (so `{id}` and `:x` compare equal) and the parameter names.
func routePattern(p string) (canon string, params []string, msg string) {
	if msg := checkPathChars(p); msg != "" {
		return "", nil, msg
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return "", nil, "'*' may only be the last character"
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(p[1:], "/") {
		b.WriteByte('/')
		var name string
		switch {
		case strings.HasPrefix(seg, "{"):
			if !strings.HasSuffix(seg, "}") {
				return "", nil, "a {parameter} must be a whole segment"
			}
			name = seg[1 : len(seg)-1]
		case strings.HasPrefix(seg, ":"):
			name = seg[1:]
		case strings.ContainsAny(seg, "{}"):
			return "", nil, "a {parameter} must be a whole segment"
		default:
			b.WriteString(seg)
			continue
		}
		if !validParamName(name) {
			return "", nil, fmt.Sprintf("invalid parameter name %q (letters, digits and '_')", name)
		}
		if slices.Contains(params, name) {
			return "", nil, fmt.Sprintf("duplicate parameter %q", name)
		}
		params = append(params, name)
		b.WriteString("{}")
	}
	return b.String(), params, ""
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) {
			return false
		}
	}
	return true
}

func (v *validator) route(path string, s *Service, r *Route) {
	if len(r.Name) > maxName {
		v.add(field(path, "name"), "must have at most %d characters, got %d", maxName, len(r.Name))
	}
	pp := field(path, "paths")
	if len(r.Paths) == 0 || len(r.Paths) > maxPaths {
		v.add(pp, "must have 1..%d paths, got %d", maxPaths, len(r.Paths))
	}
	var params []string
	seen := map[string]bool{}
	for i, p := range r.Paths {
		canon, names, msg := routePattern(p)
		if msg == "" {
			msg = v.unmatchable(p)
		}
		if msg != "" {
			v.add(indexPath(pp, i), "%s, got %q", msg, p)
			continue
		}
		if seen[canon] {
			v.add(indexPath(pp, i), "duplicate path %q", p)
		}
		seen[canon] = true
		params = append(params, names...)
	}
	mp := field(path, "methods")
	if len(r.Methods) > len(httpMethods) {
		v.add(mp, "must have at most %d methods, got %d", len(httpMethods), len(r.Methods))
	}
	for i, m := range r.Methods {
		switch {
		case !slices.Contains(httpMethods, m):
			v.add(indexPath(mp, i), "must be one of %s, got %q", strings.Join(httpMethods, ", "), m)
		case slices.Index(r.Methods, m) < i:
			v.add(indexPath(mp, i), "duplicate method %q", m)
		}
	}
	for i, x := range r.Vars {
		v.routeVar(indexPath(field(path, "vars"), i), x, params)
	}
	v.plugins(field(path, "plugins"), r.Plugins)
	v.policyRef(field(path, "throttle_policy"), r.ThrottlePolicy)
	if r.Timeout != nil {
		// 0 keeps the upstream's value (see DECISIONS.md).
		tp := field(path, "timeout")
		v.nonNegative(field(tp, "connect"), r.Timeout.Connect)
		v.nonNegative(field(tp, "send"), r.Timeout.Send)
		v.nonNegative(field(tp, "read"), r.Timeout.Read)
	}
	if r.ServiceID != "" && r.ServiceID != s.ID {
		v.add(field(path, "service_id"), "must be the enclosing service's id %q, got %q", s.ID, r.ServiceID)
	}
}

// knownVar reports whether name is a variable of routing.md.
func knownVar(name string) bool {
	if slices.Contains(plainVars, name) {
		return true
	}
	for _, p := range varPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" {
			return true
		}
	}
	return false
}

func (v *validator) routeVar(path string, x Var, params []string) {
	if x.Name == "" && x.Op == "" {
		return // not decoded; the decoder has said why
	}
	if !knownVar(x.Name) {
		v.add(path, "unknown variable %q", x.Name)
	} else if p, ok := strings.CutPrefix(x.Name, "path_"); ok && !slices.Contains(params, p) {
		v.add(path, "variable %q names no parameter of the route's paths", x.Name)
	}
	switch x.Op {
	case "==", "~=", "!=", "has":
	case ">", ">=", "<", "<=":
		if _, err := strconv.ParseFloat(x.Value, 64); err != nil {
			v.add(path, "operator %q needs a number, got %q", x.Op, x.Value)
		}
	case "~~", "~*":
		expr := x.Value
		if x.Op == "~*" {
			expr = "(?i)" + expr
		}
		if _, err := regexp.Compile(expr); err != nil {
			v.add(path, "invalid regex %q: %v", x.Value, err)
		}
	case "in":
		if len(x.Values) == 0 {
			v.add(path, `operator "in" needs a non-empty list`)
		}
	case "ipmatch":
		if len(x.Values) == 0 {
			v.add(path, `operator "ipmatch" needs a non-empty list`)
		}
		for _, a := range x.Values {
			if !validIPOrCIDR(a) {
				v.add(path, "ipmatch: must be an IP address or CIDR, got %q", a)
			}
		}
	default:
		v.add(path, "unknown operator %q (one of %s)", x.Op, strings.Join(varOperators, " "))
	}
}

// ---- upstreams ----

func (v *validator) upstream(path string, u *Upstream) {
	v.oneOf(field(path, "scheme"), u.Scheme, "http", "https")
	v.oneOf(field(path, "type"), u.Type, "roundrobin", "chash", "least_conn")
	// hash_on and key are only used by chash; like APISIX, other types
	// accept and ignore them, but hash_on must still be a known value.
	v.oneOf(field(path, "hash_on"), u.HashOn, "vars", "header", "cookie", "consumer", "vars_combinations")
	if u.Type == "chash" {
		v.hashKey(field(path, "key"), u.HashOn, u.Key)
	}
	np := field(path, "nodes")
	if len(u.Nodes) == 0 || len(u.Nodes) > maxNodes {
		v.add(np, "must have 1..%d nodes, got %d", maxNodes, len(u.Nodes))
	}
	seen := map[string]int{}
	for i, n := range u.Nodes {
		p := indexPath(np, i)
		if n.Host == "" {
			v.add(field(p, "host"), "required")
		} else if !validHostname(n.Host) {
			v.add(field(p, "host"), "must be an IP address or DNS name, got %q", n.Host)
		}
		v.intRange(field(p, "port"), int64(n.Port), 1, maxPort)
		v.intRange(field(p, "weight"), int64(n.Weight), 0, maxWeight)
		// Health state and the tried-set are per host:port; the same node
		// twice would be one node with two entries.
		addr := net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		if first, dup := seen[addr]; dup {
			v.add(p, "duplicate node %s (also %s)", clip(addr), indexPath(np, first))
		} else {
			seen[addr] = i
		}
	}
	tp := field(path, "timeout")
	v.positive(field(tp, "connect"), u.Timeout.Connect)
	v.positive(field(tp, "send"), u.Timeout.Send)
	v.positive(field(tp, "read"), u.Timeout.Read)
	if u.Retries != nil {
		v.intRange(field(path, "retries"), int64(*u.Retries), 0, maxRetries)
	}
	v.nonNegative(field(path, "retry_timeout"), u.RetryTimeout)
	kp := field(path, "keepalive_pool")
	if u.KeepalivePool.Size < 0 {
		v.add(field(kp, "size"), "must be >= 0 (0 = no pooling), got %d", u.KeepalivePool.Size)
	}
	v.positive(field(kp, "idle_timeout"), u.KeepalivePool.IdleTimeout)
	if u.KeepalivePool.Requests < 1 {
		v.add(field(kp, "requests"), "must be >= 1, got %d", u.KeepalivePool.Requests)
	}
	v.oneOf(field(path, "pass_host"), u.PassHost, "pass", "node", "rewrite")
	if u.PassHost == "rewrite" && u.UpstreamHost == "" {
		v.add(field(path, "upstream_host"), `required with pass_host "rewrite"`)
	}
	v.upstreamTLS(field(path, "tls"), &u.TLS)
	if u.Checks != nil {
		v.checks(field(path, "checks"), u.Checks)
	}
}

// hashKey checks a chash key against what hash_on says it is. An empty key
// falls back to remote_addr (upstreams.md).
func (v *validator) hashKey(path, hashOn, key string) {
	if key == "" {
		return
	}
	switch hashOn {
	case "vars":
		if !knownVar(key) {
			v.add(path, "unknown variable %q", key)
		}
	case "header":
		if !validHeaderName(key) {
			v.add(path, "invalid header name %q", key)
		}
	case "vars_combinations":
		if msg := checkVarTemplate(key); msg != "" {
			v.add(path, "%s, got %q", msg, key)
		}
	}
}

// checkVarTemplate checks a `$var` template such as
// `$remote_addr$http_user_agent`: every `$name` must be a known variable.
// Text between variables is kept literally.
func checkVarTemplate(t string) string {
	found := false
	for i := 0; i < len(t); i++ {
		if t[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(t) && (isWordByte(t[j])) {
			j++
		}
		if name := t[i+1 : j]; !knownVar(name) {
			return fmt.Sprintf("unknown variable %q", "$"+name)
		}
		found = true
		i = j - 1
	}
	if !found {
		return "must contain at least one $variable"
	}
	return ""
}

func (v *validator) upstreamTLS(path string, t *UpstreamTLS) {
	switch {
	case t.ClientCert == "" && t.ClientKey == "":
	case t.ClientCert == "":
		v.add(field(path, "client_cert"), "required with client_key")
	case t.ClientKey == "":
		v.add(field(path, "client_key"), "required with client_cert")
	default:
		if _, err := tls.X509KeyPair([]byte(t.ClientCert), []byte(t.ClientKey)); err != nil {
			v.add(field(path, "client_cert"), "invalid certificate and key: %v", err)
		}
	}
}

func (v *validator) checks(path string, c *Checks) {
	if c.Passive != nil && c.Active == nil {
		v.add(field(path, "passive"), "requires checks.active: passive checks alone could never bring a node back")
	}
	if a := c.Active; a != nil {
		p := field(path, "active")
		v.oneOf(field(p, "type"), a.Type, "http", "https", "tcp")
		v.positive(field(p, "timeout"), a.Timeout)
		if a.Concurrency < 1 {
			v.add(field(p, "concurrency"), "must be >= 1, got %d", a.Concurrency)
		}
		if a.Host != "" && !validHostname(a.Host) {
			v.add(field(p, "host"), "must be an IP address or DNS name, got %q", a.Host)
		}
		// 0 probes the node's own port.
		v.intRange(field(p, "port"), int64(a.Port), 0, maxPort)
		if !strings.HasPrefix(a.HTTPPath, "/") {
			v.add(field(p, "http_path"), "must start with '/', got %q", a.HTTPPath)
		}
		for i, h := range a.ReqHeaders {
			name, _, ok := strings.Cut(h, ":")
			if !ok || !validHeaderName(strings.TrimSpace(name)) {
				// A probe header is often a credential (Authorization:
				// Bearer ...): the entry is not echoed.
				v.add(indexPath(field(p, "req_headers"), i), `must be "Name: value" with a header name before the colon; the entry is not shown because it may hold a credential`)
			}
		}
		hp, up := field(p, "healthy"), field(p, "unhealthy")
		v.nonNegative(field(hp, "interval"), a.Healthy.Interval)
		v.statuses(field(hp, "http_statuses"), a.Healthy.HTTPStatuses)
		v.intRange(field(hp, "successes"), int64(a.Healthy.Successes), 1, maxThreshold)
		v.nonNegative(field(up, "interval"), a.Unhealthy.Interval)
		v.statuses(field(up, "http_statuses"), a.Unhealthy.HTTPStatuses)
		v.threshold(field(up, "http_failures"), a.Unhealthy.HTTPFailures)
		v.threshold(field(up, "tcp_failures"), a.Unhealthy.TCPFailures)
		v.threshold(field(up, "timeouts"), a.Unhealthy.Timeouts)
	}
	if ps := c.Passive; ps != nil {
		p := field(path, "passive")
		v.oneOf(field(p, "type"), ps.Type, "http", "https", "tcp")
		hp, up := field(p, "healthy"), field(p, "unhealthy")
		v.statuses(field(hp, "http_statuses"), ps.Healthy.HTTPStatuses)
		// 0: real traffic never marks a node healthy; the active probes do.
		v.threshold(field(hp, "successes"), ps.Healthy.Successes)
		v.statuses(field(up, "http_statuses"), ps.Unhealthy.HTTPStatuses)
		v.threshold(field(up, "http_failures"), ps.Unhealthy.HTTPFailures)
		v.threshold(field(up, "tcp_failures"), ps.Unhealthy.TCPFailures)
		v.threshold(field(up, "timeouts"), ps.Unhealthy.Timeouts)
	}
}

// threshold is a counter threshold where 0 disables the counter.
func (v *validator) threshold(path string, n int) {
	v.intRange(path, int64(n), 0, maxThreshold)
}

func (v *validator) statuses(path string, codes []int) {
	for i, c := range codes {
		v.intRange(indexPath(path, i), int64(c), 200, 599)
	}
}

// ---- plugins ----

func (v *validator) plugins(path string, p map[string]any) {
	for _, name := range sortedPluginNames(p) {
		if c, ok := p[name].(Validating); ok {
			c.Validate(&Check{v: v, path: field(path, name)})
		}
	}
}

func sortedPluginNames(p map[string]any) []string {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ---- throttle policies ----

func (v *validator) policiesList() {
	ids := newIDSet(v, "throttle_policies")
	apps, users := v.appIDs()
	for i := range v.cfg.ThrottlePolicies {
		p := &v.cfg.ThrottlePolicies[i]
		path := indexPath("throttle_policies", i)
		ids.check(field(path, "id"), p.ID, maxID)
		if len(p.Name) > maxName {
			v.add(field(path, "name"), "must have at most %d characters, got %d", maxName, len(p.Name))
		}
		v.intRange(field(path, "api_call_limits"), p.APICallLimits, 1, maxCallLimit)
		for _, opt := range []struct {
			key string
			n   int64
		}{{"user_call_limits", p.UserCallLimits}, {"app_call_limits", p.AppCallLimits}, {"ip_call_limits", p.IPCallLimits}} {
			// 0 means not set.
			v.intRange(field(path, opt.key), opt.n, 0, maxCallLimit)
		}
		if p.UserCallLimits > p.APICallLimits {
			v.add(field(path, "user_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.UserCallLimits)
		}
		switch {
		case p.UserCallLimits > 0 && p.AppCallLimits > p.UserCallLimits:
			v.add(field(path, "app_call_limits"), "must be <= user_call_limits (%d), got %d", p.UserCallLimits, p.AppCallLimits)
		case p.UserCallLimits == 0 && p.AppCallLimits > p.APICallLimits:
			v.add(field(path, "app_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.AppCallLimits)
		}
		if p.IPCallLimits > p.APICallLimits {
			v.add(field(path, "ip_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.IPCallLimits)
		}
		v.intRange(field(path, "time_interval"), p.TimeInterval, 1, maxCallLimit)
		v.oneOf(field(path, "time_unit"), p.TimeUnit, "SECOND", "MINUTE", "HOUR", "DAY")
		if p.Type != 1 && p.Type != 2 {
			v.add(field(path, "type"), "must be 1 (per route) or 2 (shared), got %d", p.Type)
		}
		v.oneOf(field(path, "window"), p.Window, "fixed", "sliding")
		seen := map[string]bool{}
		for j := range p.Specials {
			v.special(indexPath(field(path, "specials"), j), &p.Specials[j], apps, users, seen)
		}
	}
}

func (v *validator) special(path string, sp *Special, apps map[string][]string, users map[string]bool, seen map[string]bool) {
	op := field(path, "object_id")
	switch sp.ObjectType {
	case "APP":
		if sp.ObjectID == "" {
			v.add(op, "required")
			break
		}
		switch owners := apps[sp.ObjectID]; {
		case strings.Contains(sp.ObjectID, "/") && len(owners) == 0:
			v.add(op, "unknown app %q: no consumer has that credential", sp.ObjectID)
		case len(owners) == 0:
			v.add(op, "unknown app %q: no consumer has a credential of that name", sp.ObjectID)
		case len(owners) > 1:
			v.add(op, "app %q is ambiguous (consumers %s); write it as <username>/%s", sp.ObjectID, strings.Join(owners, ", "), clip(sp.ObjectID))
		}
	case "USER":
		if sp.ObjectID == "" {
			v.add(op, "required")
		} else if !users[sp.ObjectID] {
			v.add(op, "unknown user %q: no consumer has that username", sp.ObjectID)
		}
	default:
		v.add(field(path, "object_type"), `must be "APP" or "USER", got %q`, sp.ObjectType)
	}
	key := sp.ObjectType + "\x00" + sp.ObjectID
	if sp.ObjectID != "" && seen[key] {
		v.add(op, "duplicate special for %s %q", clip(sp.ObjectType), sp.ObjectID)
	}
	seen[key] = true
	v.intRange(field(path, "call_limits"), sp.CallLimits, 1, maxCallLimit)
}

// appIDs maps every way to name an app, `<name>` and `<username>/<name>`,
// to the usernames that own it, and lists the usernames. An APISIX-shape
// consumer (key-auth on the consumer itself) is an app named after its
// username.
func (v *validator) appIDs() (apps map[string][]string, users map[string]bool) {
	apps, users = map[string][]string{}, map[string]bool{}
	addApp := func(user, name string) {
		if !slices.Contains(apps[name], user) {
			apps[name] = append(apps[name], user)
		}
		apps[user+"/"+name] = []string{user}
	}
	for _, c := range v.cfg.Consumers {
		users[c.Username] = true
		if len(c.Plugins) > 0 {
			addApp(c.Username, c.Username)
		}
		for _, cr := range c.Credentials {
			if cr.Name != "" {
				addApp(c.Username, cr.Name)
			}
		}
	}
	for _, owners := range apps {
		sort.Strings(owners)
	}
	return apps, users
}

// ---- consumers ----

func (v *validator) consumers() {
	usernames := map[string]string{}
	keys := map[string]string{} // plugin + credential -> path of its first use
	checkKeys := func(path string, p map[string]any) {
		for _, name := range sortedPluginNames(p) {
			u, ok := p[name].(UniqueCredential)
			if !ok {
				continue
			}
			key, value := u.Credential()
			if value == "" {
				continue
			}
			kp := field(field(path, name), key)
			k := name + "\x00" + value
			if first, dup := keys[k]; dup {
				// Name both places, never the credential: it is a secret.
				v.add(kp, "duplicate %s: the same %s is used by %s", key, key, first)
				continue
			}
			keys[k] = kp
		}
	}
	for i := range v.cfg.Consumers {
		c := &v.cfg.Consumers[i]
		path := indexPath("consumers", i)
		up := field(path, "username")
		switch first, dup := usernames[c.Username]; {
		case !validUsername(c.Username):
			v.add(up, "must match ^[a-zA-Z0-9_-]+$ and have 1..%d characters, got %q", maxUsername, c.Username)
		case dup:
			v.add(up, "duplicate username %q (first at %s)", c.Username, first)
		default:
			usernames[c.Username] = up
		}
		v.plugins(field(path, "plugins"), c.Plugins)
		checkKeys(field(path, "plugins"), c.Plugins)
		names := map[string]bool{}
		if len(c.Plugins) > 0 {
			// The APISIX-shape credential is named after the consumer.
			names[c.Username] = true
		}
		for j := range c.Credentials {
			cr := &c.Credentials[j]
			cp := indexPath(field(path, "credentials"), j)
			if cr.ID != "" && !validID(cr.ID, maxID) {
				v.add(field(cp, "id"), "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxID, cr.ID)
			}
			np := field(cp, "name")
			switch {
			case cr.Name == "":
				v.add(np, "required")
			case len(cr.Name) > maxID || strings.ContainsAny(cr.Name, "/\x00\n\r\t"):
				v.add(np, "must have 1..%d characters and no '/' or control characters, got %q", maxID, cr.Name)
			case names[cr.Name]:
				v.add(np, "duplicate credential name %q in consumer %q", cr.Name, c.Username)
			}
			names[cr.Name] = true
			v.plugins(field(cp, "plugins"), cr.Plugins)
			checkKeys(field(cp, "plugins"), cr.Plugins)
		}
	}
}

// ---- gateway responses ----

func (v *validator) gatewayResponses() {
	types := make([]string, 0, len(v.cfg.GatewayResponses))
	for t := range v.cfg.GatewayResponses {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		r := v.cfg.GatewayResponses[t]
		path := keyPath("gateway_responses", t)
		if !slices.Contains(responseTypes, t) {
			v.add(path, "unknown response type %q (one of %s)", t, strings.Join(responseTypes, ", "))
			continue
		}
		if r.Status != 0 {
			// 0 keeps the type's own status.
			v.intRange(field(path, "status"), int64(r.Status), 100, 599)
		}
		for name := range r.Headers {
			if !validHeaderName(name) {
				v.add(keyPath(field(path, "headers"), name), "invalid header name %q", name)
			}
		}
	}
}

// ---- route conflicts ----

// routeConflicts reports two routes that can never both be reached
// (routing.md): the same host set, the same full path pattern, overlapping
// methods, no vars on either and the same priority. The later route in the
// file is the one reported, naming the earlier.
func (v *validator) routeConflicts() {
	type entry struct {
		path    string
		route   *Route
		methods []string
	}
	buckets := map[string][]entry{}
	for i := range v.cfg.Services {
		s := &v.cfg.Services[i]
		hosts := hostSetKey(s.Hosts)
		prefix := strings.TrimSuffix(s.PathPrefix, "/")
		for j := range s.Routes {
			r := &s.Routes[j]
			if len(r.Vars) > 0 {
				continue
			}
			me := entry{path: indexPath(field(indexPath("services", i), "routes"), j), route: r, methods: r.Methods}
			reported := map[*Route]bool{}
			added := map[string]bool{}
			for _, p := range r.Paths {
				canon, _, msg := routePattern(p)
				if msg != "" {
					continue
				}
				key := hosts + "\x00" + prefix + canon + "\x00" + strconv.Itoa(r.Priority)
				if added[key] {
					continue // the same route twice: reported as a duplicate path
				}
				added[key] = true
				for _, other := range buckets[key] {
					if reported[other.route] || !methodsOverlap(me.methods, other.methods) {
						continue
					}
					reported[other.route] = true
					v.add(me.path, "conflicts with %s (id %q): same hosts, path pattern %q, methods and priority, and neither has vars; one of them could never match",
						other.path, other.route.ID, prefix+canon)
				}
				buckets[key] = append(buckets[key], me)
			}
		}
	}
}

// hostSetKey is the host set in a form that ignores order and case.
func hostSetKey(hosts []string) string {
	set := make([]string, len(hosts))
	for i, h := range hosts {
		set[i] = strings.ToLower(h)
	}
	sort.Strings(set)
	return strings.Join(slices.Compact(set), ",")
}

// methodsOverlap treats an empty list as every method.
func methodsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}
