package router

// Candidate classes, in precedence order (routing.md, "Which route wins").
const (
	classExact uint8 = iota
	classParam
	classPrefix
)

// walker is the state of one match over one tree. It lives on Match's
// caller's stack; the slices it uses belong to the Match.
//
// The walk is a depth-first search that tries, at every node, the static
// child before the parameter child, and a node's '*' entries after both.
// That order is the precedence of routing.md except across classes:
//   - among parameter patterns the static-first order is exactly the
//     "static segment at the leftmost difference wins" rule, and patterns of
//     the same shape share a node, whose list is sorted by path_prefix
//     length, priority and file order at compile time;
//   - the exact pattern, all static, is reached before any parameter one;
//   - a prefix pattern loses to any exact or parameter candidate, and to a
//     prefix candidate whose '*' starts further right, wherever the search
//     meets them; among prefixes whose '*' starts at the same place, the
//     first met wins as above.
//
// So the walk stops at the first exact or parameter candidate that fully
// matches, and after a prefix candidate fully matches it only goes on looking
// for a better one, without testing candidates that could not beat it.
type walker struct {
	req    *Request
	m      *Match
	path   []byte
	method methodSet
	vals   [][]byte // parameter values of the current branch
	depth  int

	best      *entry
	bestClass uint8
	bestK     int // where the '*' of a prefix best starts

	candidates bool      // some pattern matched the path
	varsFailed bool      // some candidate failed on vars
	allow      methodSet // methods of the candidates that failed only on methods
}

// walk searches below n, whose path ends at pos. It returns true when the
// search is over.
func (w *walker) walk(n *node, pos int) bool {
	path := w.path
	for pos < len(path) {
		c := n.child(path[pos])
		if c != nil && (len(path)-pos < len(c.path) || string(path[pos:pos+len(c.path)]) != c.path) {
			c = nil
		}
		if c != nil && n.param == nil && len(n.wild) == 0 {
			// Nothing to come back to at n: descend without recursion,
			// which is the common case of a static path.
			n, pos = c, pos+len(c.path)
			continue
		}
		if c != nil && w.walk(c, pos+len(c.path)) {
			return true
		}
		if p := n.param; p != nil {
			end := pos
			for end < len(path) && path[end] != '/' {
				end++
			}
			if end > pos {
				w.vals[w.depth] = path[pos:end]
				w.depth++
				stop := w.walk(p, end)
				w.depth--
				if stop {
					return true
				}
			}
		}
		return len(n.wild) > 0 && w.consider(n.wild, classPrefix, pos, -1)
	}
	// The whole path is matched at n.
	if n.svcEnd && w.virtualSlash(n, pos) {
		return true
	}
	if len(n.leaf) > 0 {
		class := classExact
		if w.depth > 0 {
			class = classParam
		}
		if w.consider(n.leaf, class, pos, -1) {
			return true
		}
	}
	return len(n.wild) > 0 && w.consider(n.wild, classPrefix, pos, -1)
}

// virtualSlash matches the request path S, which ends at n, as S + "/" for
// the services whose path_prefix is S: their service-relative path is "/".
// The '/' node's entries of other services (a route "/users/" under "/")
// are not candidates, since for them the request has no trailing slash.
// These candidates come first: their service path_prefix is the longest
// possible for this request.
func (w *walker) virtualSlash(n *node, pos int) bool {
	c := n.child('/')
	if c == nil || c.path != "/" {
		return false
	}
	if len(c.leaf) > 0 && w.consider(c.leaf, classExact, pos+1, pos) {
		return true
	}
	return len(c.wild) > 0 && w.consider(c.wild, classPrefix, pos+1, pos)
}

// consider tests the entries of one matched node in order; k is where the
// '*' starts for prefix entries; plen >= 0 keeps only the entries of
// services with that path_prefix length. It returns true when the search is
// over.
func (w *walker) consider(list []*entry, class uint8, k, plen int) bool {
	if w.best != nil && (class > w.bestClass || class == w.bestClass && k <= w.bestK) {
		// Cannot beat the best: only prefix bests get here (the others
		// end the search), and they lose only to a better class or to a
		// '*' further right.
		return false
	}
	for _, e := range list {
		if plen >= 0 && e.plen != plen {
			continue
		}
		w.candidates = true
		methodOK := e.methods.accepts(w.method)
		if !methodOK && w.varsFailed {
			// The answer can no longer be 405: skip the vars.
			continue
		}
		if !w.varsHold(e) {
			w.varsFailed = true
			continue
		}
		if !methodOK {
			w.allow |= e.methods
			continue
		}
		w.best, w.bestClass, w.bestK = e, class, k
		copy(w.m.bestVals, w.vals[:w.depth])
		return class != classPrefix
	}
	return false
}

// varsHold reports whether every condition of e holds for the request.
func (w *walker) varsHold(e *entry) bool {
	for i := range e.conds {
		c := &e.conds[i]
		v, missing := w.lookup(c)
		if !c.holds(v, missing) {
			return false
		}
	}
	return true
}

// lookup returns the value of c's variable; missing is true when the request
// has no such variable.
func (w *walker) lookup(c *cond) (v []byte, missing bool) {
	switch c.kind {
	case VarURI:
		return w.m.Path, false
	case VarHost:
		return w.m.Host, len(w.m.Host) == 0
	case VarMethod:
		return w.req.Method, len(w.req.Method) == 0
	case VarPath:
		if c.param < 0 || c.param >= w.depth {
			return nil, true
		}
		return w.vals[c.param], false
	}
	if w.req.Vars == nil {
		return nil, true
	}
	v = w.req.Vars.Var(c.kind, c.arg)
	return v, v == nil
}

// try searches one tree and reports whether it yielded a route. What the
// tree's candidates failed on carries over to the next tree, for the
// 404/405 decision.
func (w *walker) try(t *node) bool {
	w.best, w.depth = nil, 0
	w.walk(t, 0)
	return w.best != nil
}
