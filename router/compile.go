package router

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gateway/config"
)

// Compile compiles the routes of every service of cfg into one Router.
//
// cfg is expected to have passed config's validation; Compile still refuses
// what it cannot compile (an unknown variable or method, a bad regex, a
// path that climbs above its service's root) rather than guess, and the
// error names its place as config's errors do.
//
// Routes, entries and patterns are allocated in a few large slices rather
// than one by one: 100,000 routes compile in well under a second, and the
// garbage collector has fewer objects to walk for the life of the router.
func Compile(cfg *config.Config) (*Router, error) {
	nRoutes, nPaths := 0, 0
	for i := range cfg.Services {
		nRoutes += len(cfg.Services[i].Routes)
		for j := range cfg.Services[i].Routes {
			nPaths += len(cfg.Services[i].Routes[j].Paths)
		}
	}
	c := compiler{
		r: &Router{
			hosts:        newHosts(),
			routes:       make([]*Route, 0, nRoutes),
			pathMode:     ParsePathMode(cfg.Gateway.PathPolicy),
			rejectParams: cfg.Gateway.RejectPathParams,
		},
		routes:   make([]Route, nRoutes),
		entries:  make([]entry, nPaths),
		patterns: make([]string, nPaths),
		keys:     make([]orderKey, 0, nRoutes),
	}
	for si := range cfg.Services {
		if err := c.service(si, &cfg.Services[si]); err != nil {
			return nil, err
		}
	}
	c.r.ordered = matchOrder(c.r.routes, c.keys)
	return c.r, nil
}

// compiler holds the state of one Compile.
type compiler struct {
	r        *Router
	routes   []Route  // backing array of r.routes
	entries  []entry  // one per path
	patterns []string // backing array of every Route.Patterns
	keys     []orderKey
	nPaths   int

	src    []byte  // a config path, copied for normalizePath
	buf    []byte  // normalizePath scratch
	pieces []piece // parsePattern scratch
}

func (c *compiler) service(si int, svc *config.Service) error {
	prefix, err := normalizePrefix(svc.PathPrefix)
	if err != nil {
		return fmt.Errorf("services[%d].path_prefix: %w", si, err)
	}
	trees, err := c.r.hosts.trees(svc.Hosts)
	if err != nil {
		return fmt.Errorf("services[%d].%w", si, err)
	}
	tier := orderKey{tier: 2}
	for _, h := range svc.Hosts {
		if key, wild, err := hostKey(h); err == nil && !wild {
			tier.tier, tier.suffix = 0, 0
		} else if err == nil && tier.tier > 0 {
			tier.tier, tier.suffix = 1, max(tier.suffix, len(key))
		}
	}
	for ri := range svc.Routes {
		if err := c.route(si, svc, ri, prefix, trees, tier); err != nil {
			return fmt.Errorf("services[%d].routes[%d].%w", si, ri, err)
		}
	}
	return nil
}

func (c *compiler) route(si int, svc *config.Service, ri int, prefix string, trees []*node, key orderKey) error {
	rc := &svc.Routes[ri]
	rt := &c.routes[len(c.r.routes)]
	*rt = Route{
		Seq:        len(c.r.routes),
		ID:         rc.ID,
		ServiceSeq: si,
		Service:    svc,
		Config:     rc,
		Methods:    rc.Methods,
		Hosts:      svc.Hosts,
		Patterns:   c.patterns[c.nPaths : c.nPaths+len(rc.Paths) : c.nPaths+len(rc.Paths)],
	}
	if rt.ID == "" {
		rt.ID = svc.ID + "." + strconv.Itoa(ri)
	}
	methods, err := compileMethods(rc.Methods)
	if err != nil {
		return err
	}
	conds, err := compileVars(rc.Vars)
	if err != nil {
		return err
	}
	key.class, key.plen, key.priority = classPrefix+1, len(prefix), rc.Priority
	for pi, path := range rc.Paths {
		var ok bool
		c.src = append(c.src[:0], path...)
		c.buf, ok = normalizePath(c.buf, c.src)
		if !ok {
			return fmt.Errorf("paths[%d]: %q is not a valid path (must start with '/', stay below it, and escape '%%' properly)", pi, path)
		}
		rel := path
		if string(c.buf) != path {
			rel = string(c.buf)
		}
		full := rel
		if prefix != "" {
			full = prefix + rel
		}
		p, err := parsePattern(full, len(prefix), c.pieces)
		if err != nil {
			return fmt.Errorf("paths[%d]: %w", pi, err)
		}
		c.pieces = p.pieces
		e := &c.entries[c.nPaths]
		*e = entry{
			route:    rt,
			pattern:  full,
			names:    p.names,
			conds:    bindParams(conds, p.names),
			methods:  methods,
			plen:     len(prefix),
			priority: rc.Priority,
			order:    c.nPaths,
			strip:    svc.StripPathPrefix,
		}
		rt.Patterns[pi] = full
		c.nPaths++
		c.r.maxParams = max(c.r.maxParams, len(p.names))
		for _, t := range trees {
			t.insert(p, e)
			if prefix != "" && (rel == "/" || rel == "/*") {
				t.insertStatic(prefix).svcEnd = true
			}
		}
		class := classExact
		switch {
		case p.wild:
			class = classPrefix
		case len(p.names) > 0:
			class = classParam
		}
		if class < key.class || class == key.class && len(full) > key.length {
			key.class, key.length = class, len(full)
		}
	}
	if len(rt.Patterns) > 0 {
		rt.Pattern = rt.Patterns[0]
	}
	c.r.routes = append(c.r.routes, rt)
	c.keys = append(c.keys, key)
	return nil
}

// normalizePrefix returns a service path_prefix as it is matched: normalised
// like a request path, without trailing '/', so that "/" is "" and "/users/"
// is "/users". An empty prefix is "/", the default.
func normalizePrefix(prefix string) (string, error) {
	if prefix == "" {
		return "", nil
	}
	norm, ok := normalizePath(nil, []byte(prefix))
	if !ok {
		return "", fmt.Errorf("%q is not a valid path prefix", prefix)
	}
	return strings.TrimRight(string(norm), "/"), nil
}

// orderKey is what Routes' order compares; routes of equal keys keep file
// order.
type orderKey struct {
	tier     int   // 0 exact host, 1 wildcard host, 2 no host: the best of the service's hosts
	suffix   int   // wildcard tier: the longest suffix
	class    uint8 // the best class among the route's patterns
	length   int   // the longest pattern of that class
	plen     int   // service path_prefix length
	priority int
}

// matchOrder sorts routes as Routes documents.
func matchOrder(routes []*Route, keys []orderKey) []*Route {
	out := slices.Clone(routes)
	slices.SortFunc(out, func(a, b *Route) int {
		ka, kb := &keys[a.Seq], &keys[b.Seq]
		switch {
		case ka.tier != kb.tier:
			return ka.tier - kb.tier
		case ka.suffix != kb.suffix:
			return kb.suffix - ka.suffix
		case ka.class != kb.class:
			return int(ka.class) - int(kb.class)
		case ka.length != kb.length:
			return kb.length - ka.length
		case ka.plen != kb.plen:
			return kb.plen - ka.plen
		case ka.priority != kb.priority:
			return kb.priority - ka.priority
		}
		return a.Seq - b.Seq
	})
	return out
}
