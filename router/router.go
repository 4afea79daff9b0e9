package router

import (
	"sync"

	"gateway/config"
)

// Router is a compiled route table.
type Router struct {
	hosts     *hosts
	routes    []*Route // by Seq
	maxParams int

	// ordered is the match order, for Routes, sorted on first use: only
	// the control API lists routes, and a reload of 10,000 routes need
	// not sort them (issue 20). keys are the sort keys, by Seq.
	orderOnce sync.Once
	ordered   []*Route
	keys      []orderKey

	pathMode     PathMode // gateway.path_policy
	rejectParams bool     // gateway.reject_path_params
}

// Route is a compiled config route.
type Route struct {
	Seq        int // 0..NumRoutes-1, dense, file order: index for per-route state in proxy
	ID         string
	ServiceSeq int // index of the service in cfg.Services
	Service    *config.Service
	Config     *config.Route
	Pattern    string   // full pattern of the first path: path_prefix + path
	Patterns   []string // full pattern of every path, in config order
	Methods    []string // empty = all
	Hosts      []string // the service's hosts as configured
}

// Request is what the router needs of a request.
type Request struct {
	Method []byte    // as received
	Host   []byte    // Host header or absolute-URI host, as received (router lower-cases, strips port)
	Path   []byte    // request path as received, without query, not yet decoded
	Vars   VarSource // lazily reads everything else that vars may need; may be nil when no route has vars
}

// Param is one path parameter of the matched pattern.
type Param struct {
	Name  string
	Value []byte // a slice of Match.Path
}

// Match is the result of matching one request, and the buffers that
// matching reuses. The zero value is ready to use; its slices are valid
// until the next Match call with it.
type Match struct {
	Status       int     // 0 matched; 400 bad path; 404 no route; 405 methods only
	Route        *Route  // when Status == 0
	Allow        []byte  // when Status == 405: "GET, POST" (precomputed at compile time)
	Path         []byte  // the normalised full path (what matching used)
	UpstreamPath []byte  // Path, or the service-relative path when strip_path_prefix
	Params       []Param // path parameters, slices into Path
	Pattern      string  // the matched full pattern, when Status == 0
	Host         []byte  // the normalised host (lower case, no port) matching used

	pathBuf  []byte
	hostBuf  []byte
	vals     [][]byte // parameter values of the branch being searched
	bestVals [][]byte // parameter values of the best candidate so far
}

// NumRoutes returns the number of routes, the size of the Seq space.
func (r *Router) NumRoutes() int { return len(r.routes) }

// Routes returns the routes in match order: exact hosts, then wildcard
// hosts (longer suffix first), then services without hosts; within a tier
// by the class of the route's most specific path (exact, parameter,
// prefix), longer patterns first, then longer path_prefix, higher priority
// and file order. For a request that several routes match, the earlier one
// is tried first. The slice is shared: do not modify it.
func (r *Router) Routes() []*Route {
	r.orderOnce.Do(func() { r.ordered = matchOrder(r.routes, r.keys) })
	return r.ordered
}

// Route returns the route with sequence number seq.
func (r *Router) Route(seq int) *Route { return r.routes[seq] }

// Match matches req and fills m. It allocates nothing once m's buffers have
// grown to the longest path and host and the most parameters seen.
func (r *Router) Match(req *Request, m *Match) {
	m.Status, m.Route, m.Allow, m.Pattern = 0, nil, nil, ""
	m.Params = m.Params[:0]
	m.UpstreamPath = nil

	// One spare byte after the path holds the '/' of the service-relative
	// path of a request for a path_prefix itself.
	if need := len(req.Path) + 1; cap(m.pathBuf) < need {
		m.pathBuf = make([]byte, 0, max(2*need, 128))
	}
	path, ok := normalizePathMode(m.pathBuf, req.Path, r.pathMode, r.rejectParams)
	m.Path = path
	if !ok {
		m.Path = nil
		m.Status = 400
		return
	}
	m.pathBuf[:len(path)+1][len(path)] = '/'

	if cap(m.hostBuf) < len(req.Host) {
		m.hostBuf = make([]byte, 0, max(2*len(req.Host), 64))
	}
	m.Host = normalizeHost(m.hostBuf, req.Host)

	if len(m.vals) < r.maxParams {
		m.vals = make([][]byte, r.maxParams)
		m.bestVals = make([][]byte, r.maxParams)
	}

	w := walker{req: req, m: m, path: path, method: requestMethod(req.Method), vals: m.vals}
	r.hosts.lookup(m.Host, &w)

	e := w.best
	switch {
	case e != nil:
	case !w.candidates:
		m.Status = 404
		return
	case w.varsFailed:
		// Some candidates failed on vars, the others on methods alone.
		// routing.md answers 405 only when every candidate failed on
		// methods alone. A request that a route's conditions reject is
		// not found, whatever its method; that some other route would take
		// another method does not make this one "not allowed".
		m.Status = 404
		return
	default:
		m.Status = 405
		m.Allow = allowHeaders[w.allow]
		return
	}

	m.Route, m.Pattern = e.route, e.pattern
	for i, name := range e.names {
		m.Params = append(m.Params, Param{Name: name, Value: m.bestVals[i]})
	}
	switch {
	case !e.strip:
		m.UpstreamPath = path
	case e.plen < len(path):
		m.UpstreamPath = path[e.plen:]
	default:
		// The request path is the path_prefix itself: the service-relative
		// path is "/", the spare byte.
		m.UpstreamPath = m.pathBuf[len(path) : len(path)+1]
	}
}
