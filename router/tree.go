package router

import (
	"fmt"
	"slices"
	"strings"

	"gateway/config"
)

// node is a radix tree node over full paths (service path_prefix + route
// path). Static bytes are compressed into path; a parameter is a child of a
// node whose path ends with '/' and matches one non-empty segment; a
// trailing '*' puts its entries into wild of the node that ends where the
// '*' stood.
type node struct {
	path     string  // static bytes matched by this node ("" for the root and parameter nodes)
	indices  string  // first byte of each static child, parallel to children
	children []*node // static children
	param    *node   // the child that matches one segment

	leaf []*entry // patterns that end here, in precedence order
	wild []*entry // patterns that end here with '*', in precedence order

	// svcEnd marks the node that ends exactly at a service path_prefix S
	// (without its trailing '/') that has a route for the service-relative
	// path "/" ("/" or "/*"): the request path S is matched as S + "/".
	svcEnd bool
}

// entry is one path of one route: what a matched leaf offers.
type entry struct {
	route    *Route
	pattern  string   // the full normalised pattern
	names    []string // parameter names, in order
	conds    []cond
	methods  methodSet
	plen     int // length of the normalised service path_prefix, "/" being 0
	priority int
	order    int // file order of (service, route, path)
	strip    bool
}

// before reports whether e takes precedence over o when both sit in the same
// leaf, i.e. have the same pattern shape: a longer service path_prefix first
// (routing.md: "a longer service path_prefix beats a shorter one for the
// same request"), then the higher priority, then the earlier in the file.
func (e *entry) before(o *entry) bool {
	if e.plen != o.plen {
		return e.plen > o.plen
	}
	if e.priority != o.priority {
		return e.priority > o.priority
	}
	return e.order < o.order
}

// piece is a static run of bytes or a parameter of a parsed pattern.
type piece struct {
	static string // static bytes, when param is false
	param  bool
}

// pattern is a parsed full pattern: static pieces and parameters, and
// whether it ends with '*'.
type pattern struct {
	pieces []piece
	names  []string
	wild   bool
}

// parsePattern splits a full pattern into tree pieces: the normalised
// service prefix (literal, without trailing '/') in full[:plen], then the
// normalised route path. Only the route path may hold parameters and a
// trailing '*'; which segment is a parameter is config's grammar
// (config.PathParam), asked segment by segment. The static pieces are
// substrings of full, and pieces is reused, so that compiling 100,000
// routes makes few allocations.
func parsePattern(full string, plen int, pieces []piece) (pattern, error) {
	p := pattern{pieces: pieces[:0]}
	end := len(full)
	if strings.HasSuffix(full, "*") {
		p.wild = true
		end--
	}
	start := 0 // of the static piece being gathered
	for i := plen; i < end; {
		// full[i] == '/'
		j := strings.IndexByte(full[i+1:end], '/')
		if j < 0 {
			j = end
		} else {
			j += i + 1
		}
		name, isParam, err := config.PathParam(full[i+1 : j])
		if err != nil {
			return p, fmt.Errorf("path %q: %w", full[plen:], err)
		}
		if isParam {
			if slices.Contains(p.names, name) {
				return p, fmt.Errorf("path %q: parameter %q twice", full[plen:], name)
			}
			p.pieces = append(p.pieces, piece{static: full[start : i+1]}, piece{param: true})
			p.names = append(p.names, name)
			start = j
		}
		i = j
	}
	if start < end {
		p.pieces = append(p.pieces, piece{static: full[start:end]})
	}
	return p, nil
}

// nodeSlab hands out the nodes of one compile from a few large chunks
// rather than one allocation each: a reload of 10,000 routes makes some
// 30,000 nodes, and fewer objects are less work for the allocator and for
// the garbage collector (issue 20). The zero value is ready.
type nodeSlab struct {
	free     []node
	children []*node // room for the first two children of nodes
	entries  []*entry
}

// childList returns an empty list with room for two children.
func (a *nodeSlab) childList() []*node {
	if len(a.children) < 2 {
		a.children = make([]*node, 2048)
	}
	l := a.children[:0:2]
	a.children = a.children[2:]
	return l
}

// entryList returns an empty list with room for one entry (most leaves
// have one).
func (a *nodeSlab) entryList() []*entry {
	if len(a.entries) == 0 {
		a.entries = make([]*entry, 1024)
	}
	l := a.entries[:0:1]
	a.entries = a.entries[1:]
	return l
}

func (a *nodeSlab) new() *node {
	if len(a.free) == 0 {
		a.free = make([]node, 1024)
	}
	n := &a.free[0]
	a.free = a.free[1:]
	return n
}

// insert adds e under pattern p, keeping each entry list in precedence order.
func (n *node) insert(a *nodeSlab, p pattern, e *entry) {
	for _, pc := range p.pieces {
		if pc.param {
			if n.param == nil {
				n.param = a.new()
			}
			n = n.param
			continue
		}
		n = n.insertStatic(a, pc.static)
	}
	if p.wild {
		if n.wild == nil {
			n.wild = a.entryList()
		}
		n.wild = insertEntry(n.wild, e)
	} else {
		if n.leaf == nil {
			n.leaf = a.entryList()
		}
		n.leaf = insertEntry(n.leaf, e)
	}
}

// insertStatic returns the node that ends exactly after s below n, splitting
// and creating nodes as needed.
func (n *node) insertStatic(a *nodeSlab, s string) *node {
	for len(s) > 0 {
		i := strings.IndexByte(n.indices, s[0])
		if i < 0 {
			c := a.new()
			c.path = s
			n.indices += s[:1]
			if n.children == nil {
				n.children = a.childList()
			}
			n.children = append(n.children, c)
			return c
		}
		c := n.children[i]
		l := commonPrefix(c.path, s)
		if l < len(c.path) {
			// Split c: mid takes the common part, c keeps the rest and
			// everything below it (its parameter child included, which
			// stays after the '/' it follows).
			mid := a.new()
			mid.path, mid.indices, mid.children = c.path[:l], c.path[l:l+1], append(a.childList(), c)
			c.path = c.path[l:]
			n.children[i] = mid
			c = mid
		}
		s = s[l:]
		n = c
	}
	return n
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// insertEntry inserts e into list, after every entry that precedes it.
func insertEntry(list []*entry, e *entry) []*entry {
	i := len(list)
	for i > 0 && e.before(list[i-1]) {
		i--
	}
	list = append(list, nil)
	copy(list[i+1:], list[i:])
	list[i] = e
	return list
}

// child returns the static child of n that starts with c. A loop beats a
// call to the vectorised IndexByte for the few children most nodes have.
func (n *node) child(c byte) *node {
	for i := 0; i < len(n.indices); i++ {
		if n.indices[i] == c {
			return n.children[i]
		}
	}
	return nil
}
