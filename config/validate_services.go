package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var (
	httpMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"}
	// "!=" is accepted as another spelling of "~=": routing.md names it once
	// ("fails every operator except !=/~=") though its list has only "~=".
	varOperators = []string{"==", "~=", "!=", ">", ">=", "<", "<=", "~~", "~*", "in", "has", "ipmatch"}
)

// ---- services and routes ----

func (v *validator) services() {
	serviceIDs := newIDSet(v, "services")
	n := 0
	for i := range v.cfg.Services {
		n += len(v.cfg.Services[i].Routes)
	}
	routeIDs := routeIDSet{v: v, seen: make(map[string][2]int, n)}
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
			// Its upstream serves stream_routes that name it.
			if len(s.Routes) > 0 {
				v.add(field(path, "routes"), `a service of type "stream" has no HTTP routes (stream_routes name it by service_id)`)
			}
		default:
			v.add(field(path, "type"), `must be "http" or "stream", got %q`, s.Type)
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
		case s.Type == "stream":
			v.add(path, "exactly one of upstream and upstream_id is required, got neither")
		case v.allMocked(s):
			// Every route is answered by mocking: no upstream is called.
		default:
			v.add(path, "exactly one of upstream and upstream_id is required (unless every route has mocking), got neither")
		}
		v.plugins(field(path, "plugins"), s.Plugins)
		v.policyRef(field(path, "throttle_policy"), s.ThrottlePolicy)
		if s.Type == "stream" {
			// A stream service only lends its upstream to stream routes:
			// what acts on HTTP requests would load and do nothing (an
			// ip-restriction here would not be enforced). A stream route
			// takes ip-restriction itself.
			if len(s.Plugins) > 0 {
				v.add(field(path, "plugins"), "not supported on a service of type stream (put ip-restriction on its stream routes)")
			}
			if s.ThrottlePolicy != "" {
				v.add(field(path, "throttle_policy"), "not supported on a service of type stream")
			}
			if len(s.Hosts) > 0 {
				v.add(field(path, "hosts"), "not supported on a service of type stream (stream routes match server_addr, server_port and remote_addr)")
			}
		}
		if len(s.Routes) == 0 && s.Type != "stream" {
			v.add(field(path, "routes"), "at least one route is required")
		}
		for j := range s.Routes {
			rpath := &routePath{si: i, ri: j}
			// A bad service id is reported once, not again in every id
			// derived from it.
			if serviceOK || !derivedID(s.Routes[j].ID, s.ID, j) {
				routeIDs.check(rpath, s.Routes[j].ID)
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

// unmatchable says why a route path or path_prefix could never match a
// request under gateway.path_policy and reject_path_params, or "": request
// paths with these forms are refused (or decoded) before matching.
func (v *validator) unmatchable(p string) string {
	if strings.IndexByte(p, '%') < 0 && strings.IndexByte(p, '\\') < 0 && strings.IndexByte(p, ';') < 0 {
		return "" // every check below needs one of them (most paths: a reload checks 10,000)
	}
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

func (v *validator) route(rp *routePath, s *Service, r *Route) {
	if len(r.Name) > maxName {
		v.add(field(rp.String(), "name"), "must have at most %d characters, got %d", maxName, len(r.Name))
	}
	// Key paths are made only for what has something to check or is
	// wrong: a reload of 10,000 routes validates them all (issue 20).
	if len(r.Paths) == 0 || len(r.Paths) > maxPaths {
		v.add(field(rp.String(), "paths"), "must have 1..%d paths, got %d", maxPaths, len(r.Paths))
	}
	var params []string
	var canons []string // a route has a handful of paths
	for i, p := range r.Paths {
		pat, err := v.pathPattern(p)
		if err != nil {
			v.add(indexPath(field(rp.String(), "paths"), i), "%v, got %q", err, p)
			continue
		}
		if msg := v.unmatchable(p); msg != "" {
			v.add(indexPath(field(rp.String(), "paths"), i), "%s, got %q", msg, p)
			continue
		}
		if slices.Contains(canons, pat.Canon) {
			v.add(indexPath(field(rp.String(), "paths"), i), "duplicate path %q", p)
		}
		canons = append(canons, pat.Canon)
		params = append(params, pat.Params...)
	}
	if len(r.Methods) > len(httpMethods) {
		v.add(field(rp.String(), "methods"), "must have at most %d methods, got %d", len(httpMethods), len(r.Methods))
	}
	for i, m := range r.Methods {
		switch {
		case !slices.Contains(httpMethods, m):
			v.add(indexPath(field(rp.String(), "methods"), i), "must be one of %s, got %q", strings.Join(httpMethods, ", "), m)
		case slices.Index(r.Methods, m) < i:
			v.add(indexPath(field(rp.String(), "methods"), i), "duplicate method %q", m)
		}
	}
	for i := range r.Vars {
		v.routeVar(indexPath(field(rp.String(), "vars"), i), &r.Vars[i], params)
	}
	if len(r.ReqParams) > 0 {
		v.reqParams(field(rp.String(), "req_params"), r.ReqParams, params)
	}
	if len(r.BackendParams) > 0 {
		v.backendParams(field(rp.String(), "backend_params"), r.BackendParams, r.ReqParams)
	}
	if len(r.Plugins) > 0 {
		v.plugins(field(rp.String(), "plugins"), r.Plugins)
	}
	if r.ThrottlePolicy != "" {
		v.policyRef(field(rp.String(), "throttle_policy"), r.ThrottlePolicy)
	}
	if r.Timeout != nil {
		// 0 keeps the upstream's value (see DECISIONS.md).
		tp := field(rp.String(), "timeout")
		v.nonNegative(field(tp, "connect"), r.Timeout.Connect)
		v.nonNegative(field(tp, "send"), r.Timeout.Send)
		v.nonNegative(field(tp, "read"), r.Timeout.Read)
	}
	if r.Websocket != nil {
		v.routeWebsocket(rp.String(), r)
	}
	if r.ServiceID != "" && r.ServiceID != s.ID {
		v.add(field(rp.String(), "service_id"), "must be the enclosing service's id %q, got %q", s.ID, r.ServiceID)
	}
}

// routePath is the key path of route ri of service si, made on first use:
// most routes have nothing wrong and nothing that needs it, and a reload
// validates 10,000 of them (issue 20).
type routePath struct {
	si, ri int
	s      string
}

func (p *routePath) String() string {
	if p.s == "" {
		p.s = "services[" + strconv.Itoa(p.si) + "].routes[" + strconv.Itoa(p.ri) + "]"
	}
	return p.s
}

// derivedID reports whether id is the one a route of service svc at index
// i gets when it has none (svc.i), without building that id.
func derivedID(id, svc string, i int) bool {
	rest, ok := strings.CutPrefix(id, svc)
	if !ok || len(rest) < 2 || rest[0] != '.' {
		return false
	}
	rest = rest[1:]
	n, err := strconv.Atoi(rest)
	return err == nil && n == i && (rest == "0" || rest[0] != '0' && rest[0] != '+' && rest[0] != '-')
}

// routeIDSet is idSet for route ids, which remembers where an id was
// first used without making its key path.
type routeIDSet struct {
	v    *validator
	seen map[string][2]int // id -> service and route index of its first use
}

func (s routeIDSet) check(rp *routePath, id string) {
	switch {
	case id == "":
		s.v.add(field(rp.String(), "id"), "required")
	case !validID(id, maxID):
		s.v.add(field(rp.String(), "id"), "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxID, id)
	default:
		if first, dup := s.seen[id]; dup {
			fp := &routePath{si: first[0], ri: first[1]}
			s.v.add(field(rp.String(), "id"), "duplicate id %q in routes (first at %s)", id, field(fp.String(), "id"))
			return
		}
		s.seen[id] = [2]int{rp.si, rp.ri}
	}
}

// routeVar checks one condition and keeps its parsed variable in x.Ref.
func (v *validator) routeVar(path string, x *Var, params []string) {
	if x.Name == "" && x.Op == "" {
		return // not decoded; the decoder has said why
	}
	if ref, err := ParseVar(x.Name); err != nil {
		v.add(path, "%v", err)
	} else if x.Ref = ref; ref.Kind == VarConsumerName {
		// A rule that could never match (issue 16).
		v.add(path, "consumer_name cannot be used in route vars: a route is chosen before authentication, so the consumer is not known yet; restrict consumers with the consumer-restriction plugin on the route instead")
	} else if ref.Kind == VarPath && !slices.Contains(params, ref.Arg) {
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

// ---- route conflicts ----

// routeConflicts reports two routes that can never both be reached
// (routing.md): the same host set, the same full path pattern, overlapping
// methods, no vars on either and the same priority. The later route in the
// file is the one reported, naming the earlier.
func (v *validator) routeConflicts() {
	type entry struct {
		si, ri int // the route's place, made a key path only for an error
		route  *Route
		next   int // the next entry of the same key, -1 for none
	}
	// A route's key has no string made for it unless its service has a
	// path_prefix: hosts are the service's, and the pattern (prefix and
	// canonical path) is the path itself unless it has parameters.
	type key struct {
		hosts, pattern string
		priority       int
	}
	type bucket struct{ first, last int }
	routePath := func(e *entry) string { return (&routePath{si: e.si, ri: e.ri}).String() }
	n := 0
	for i := range v.cfg.Services {
		for j := range v.cfg.Services[i].Routes {
			n += len(v.cfg.Services[i].Routes[j].Paths)
		}
	}
	entries := make([]entry, 0, n)
	buckets := make(map[key]bucket, n)
	var reported []*Route
	var added []key // a route has a handful of paths
	for i := range v.cfg.Services {
		s := &v.cfg.Services[i]
		hosts := hostSetKey(s.Hosts)
		prefix := strings.TrimSuffix(s.PathPrefix, "/")
		for j := range s.Routes {
			r := &s.Routes[j]
			if len(r.Vars) > 0 {
				continue
			}
			reported, added = reported[:0], added[:0]
			for _, p := range r.Paths {
				pat, err := v.pathPattern(p)
				if err != nil {
					continue
				}
				k := key{hosts: hosts, pattern: pat.Canon, priority: r.Priority}
				if prefix != "" {
					k.pattern = prefix + pat.Canon
				}
				if slices.Contains(added, k) {
					continue // the same route twice: reported as a duplicate path
				}
				added = append(added, k)
				me := len(entries)
				entries = append(entries, entry{si: i, ri: j, route: r, next: -1})
				b, ok := buckets[k]
				if !ok {
					buckets[k] = bucket{first: me, last: me}
					continue
				}
				for o := b.first; o >= 0; o = entries[o].next {
					other := &entries[o]
					if slices.Contains(reported, other.route) || !methodsOverlap(r.Methods, other.route.Methods) {
						continue
					}
					reported = append(reported, other.route)
					v.add(routePath(&entries[me]), "conflicts with %s (id %q): same hosts, path pattern %q, methods and priority, and neither has vars; one of them could never match",
						routePath(other), other.route.ID, k.pattern)
				}
				entries[b.last].next = me
				buckets[k] = bucket{first: b.first, last: me}
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
