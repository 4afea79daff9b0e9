package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Incremental loading (issue 20). A reload of a large file usually changes
// a few of its items, yet Parse reads, hashes and decodes all of them. A
// Loader keeps, from its last successful load only, what the fast YAML
// path made of each item of the block sequences at the top two levels
// (each service, upstream, consumer... and each route, node, credential
// of those), keyed by the item's exact text: an item whose text is
// unchanged gets its old tree back without being read, its old hash for
// the digest, and, for a route, its old decoded value.
//
// What is reused is what a fresh Parse makes of the same text, so a
// Loader's config is deep-equal to Parse's (TestLoaderMatchesParse,
// FuzzLoader). That holds because an item is kept only when its tree has
// no string with '#' or '$' in it: environment substitution (#name#)
// changes nothing in it, in place or otherwise, and it has no $env://
// reference whose value could change between loads; and because a route's
// decoded value is kept only when it decoded without an error and has
// nothing that validation writes into (plugins, request or backend
// parameters, a websocket section; Vars are copied). Everything else of
// a load (the top-level mapping, environment substitution of what is not
// kept, validation, resolve) runs as in Parse. A file the fast path
// declines, or that has any error, is loaded by Parse.
//
// Memory: each kept item's text is a copy of its own, so nothing kept
// holds on to an older file; the entries of the last successful load are
// all that is kept, and a kept route is a pointer into the last config
// that has it, not a copy (~4 MB for 10,000 routes, the path memo
// included).

// Loader loads successive versions of a config file, reusing what did
// not change since its last successful load. Its zero value is ready; it
// is safe for concurrent use (loads are serialized). The configs it
// returns must not be modified: a later load copies unchanged routes
// from them.
type Loader struct {
	mu    sync.Mutex
	prev  map[string]*itemEntry // the last successful load's items
	paths pathMemo              // route paths parsed, of the last loads
	gen   uint64

	// stats of the last load, for tests.
	stats LoadStats
}

// LoadStats counts the work of a Loader's load.
type LoadStats struct {
	Read          int // items read from their text
	Reused        int // items whose tree was reused (nested ones not counted)
	RoutesDecoded int // routes decoded from their tree
	RoutesReused  int // routes whose decoded value was reused
}

// NewLoader returns an empty Loader.
func NewLoader() *Loader { return &Loader{} }

// LoadFile is config.LoadFile through the loader.
func (l *Loader) LoadFile(path string, lim ReadLimits) (*Config, error) {
	data, err := ReadFile(path, lim)
	if err != nil {
		return nil, err
	}
	return l.Parse(data, path)
}

// Parse is config.Parse through the loader: the same result, computed
// from fewer items when the previous successful load had the same ones.
func (l *Loader) Parse(data []byte, name string) (*Config, error) {
	if isJSONName(name) {
		return Parse(data, name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	c := &itemCache{
		prev:   l.prev,
		next:   make(map[string]*itemEntry, len(l.prev)+16),
		byTree: make(map[unsafe.Pointer]*itemEntry), // kept routes are not in it
		gen:    l.gen,
	}
	if l.paths == nil {
		l.paths = pathMemo{}
	}
	c.paths = l.paths
	if root, ok := fastYAMLCached(data, c); ok {
		if cfg, errs := loadTreeCached(data, name, root, nil, c); len(errs) == 0 {
			compactRoutes(root, c)
			l.prev = c.next
			l.stats = c.stats
			l.trimPaths(cfg)
			return cfg, nil
		}
	}
	l.paths = nil
	l.stats = LoadStats{}
	return Parse(data, name)
}

// trimPaths lets the path memo go when it holds many paths cfg does not
// have: it is bounded by the paths of the last loads.
func (l *Loader) trimPaths(cfg *Config) {
	n := 0
	for i := range cfg.Services {
		for j := range cfg.Services[i].Routes {
			n += len(cfg.Services[i].Routes[j].Paths)
		}
	}
	if len(l.paths) > 2*n+1024 {
		l.paths = nil
	}
}

// pathMemo is ParsePathPattern's results by path. Its keys are copies,
// and its values are read from them: it holds on to no file's text.
type pathMemo map[string]parsedPath

type parsedPath struct {
	pat PathPattern
	err error
}

// pathPattern is ParsePathPattern, through the memo if there is one.
func (v *validator) pathPattern(p string) (PathPattern, error) {
	if v.paths == nil {
		return ParsePathPattern(p)
	}
	if r, ok := v.paths[p]; ok {
		return r.pat, r.err
	}
	p = strings.Clone(p) // what it parses to is substrings of the copy
	pat, err := ParsePathPattern(p)
	v.paths[p] = parsedPath{pat, err}
	return pat, err
}

// Stats returns the counts of the last load.
func (l *Loader) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// itemEntry is one kept item: its text (a copy), the tree read from it,
// and what later stages made of that tree.
type itemEntry struct {
	key      string
	depth    int
	tree     any
	children []*itemEntry // the kept items inside this one
	gen      uint64       // the load that last registered it

	hash, own       uint64 // digest of the tree; of a service without its routes
	hashed, ownDone bool
	route           *Route // the route of the last config made from it; nil: not (yet) reusable
	idEmpty         bool   // its id and name were empty before resolve
	nameEmpty       bool
	noRoute         bool // decoded with an error or not reusable

	// atRoute: the item is a route (services[i].routes[j]). A route
	// with its hash and decoded value kept needs no tree: after a
	// successful load its tree is let go and the entry itself stands in
	// the tree for it (compact), in its service's tree too (only at a
	// route's place: elsewhere the item is read again; and a service's
	// tree is reused only in services).
	atRoute, compact, inServices bool
}

// itemCache is one load's view: the previous load's entries and this
// load's.
type itemCache struct {
	prev   map[string]*itemEntry
	next   map[string]*itemEntry
	byTree map[unsafe.Pointer]*itemEntry // the entries of next, by map tree
	gen    uint64
	open   *[]*itemEntry // the children of the item being read
	paths  pathMemo
	stats  LoadStats
}

// mapPointer identifies a map tree; nil for any other value.
func mapPointer(v any) unsafe.Pointer {
	if m, ok := v.(map[string]any); ok {
		return reflect.ValueOf(m).UnsafePointer()
	}
	return nil
}

// entryOf returns the kept entry whose tree is v, or nil.
func (c *itemCache) entryOf(v any) *itemEntry {
	if c == nil {
		return nil
	}
	if e, ok := v.(*itemEntry); ok {
		return e
	}
	if k := mapPointer(v); k != nil {
		return c.byTree[k]
	}
	return nil
}

// register adds e, and the items inside it, to this load's entries.
func (c *itemCache) register(e *itemEntry) {
	if c.open != nil {
		*c.open = append(*c.open, e)
	}
	c.registerTree(e)
}

func (c *itemCache) registerTree(e *itemEntry) {
	if e.gen == c.gen {
		return
	}
	e.gen = c.gen
	c.next[e.key] = e
	if k := mapPointer(e.tree); k != nil {
		c.byTree[k] = e
	}
	for _, ch := range e.children {
		c.registerTree(ch)
	}
}

// cachedItem is item for an entry at the top two levels: it reuses the
// tree of the same text from the previous load, or reads the item from a
// copy of its text and keeps it.
func (p *fastParser) cachedItem(col, depth int) any {
	c := p.cache
	end, last := p.itemEnd(col)
	text := p.src[p.lineStart:last]
	atRoute := depth == 3 && p.topKey == "services" && p.itemKey == "routes"
	inServices := p.topKey == "services"
	if e := c.prev[text]; e != nil && e.depth == depth && e.inServices == inServices && (!e.compact || atRoute) {
		c.stats.Reused++
		c.register(e)
		p.next(end)
		if e.compact {
			return e // a route kept without its tree
		}
		return e.tree
	}
	c.stats.Read++
	key := strings.Clone(text)
	sub := fastParser{src: key, marker: true, cache: c, topKey: p.topKey, itemKey: p.itemKey}
	sub.next(0)
	outer := c.open
	var children []*itemEntry
	c.open = &children
	v := sub.item(col, depth)
	c.open = outer
	if sub.bad || !sub.eof {
		// What the item's lines do not say alone, the whole file's
		// reading would have declined too; decline.
		p.bad = true
		return nil
	}
	if c.clean(v) {
		c.register(&itemEntry{key: key, depth: depth, tree: v, children: children, atRoute: atRoute, inServices: inServices})
	} else if outer != nil {
		*outer = append(*outer, children...)
	}
	p.next(end)
	return v
}

// itemEnd finds where the sequence entry at the current line (at column
// col) ends: end is the start of the next line with content at column
// col or less (or the end of src), last the end of the entry's last line
// with content (comments and blank lines after it are not its text).
func (p *fastParser) itemEnd(col int) (end, last int) {
	last = p.nextLine
	for i := p.nextLine; i < len(p.src); {
		nl := strings.IndexByte(p.src[i:], '\n')
		next := len(p.src)
		if nl >= 0 {
			next = i + nl + 1
		}
		j := i
		for j < next && p.src[j] == ' ' {
			j++
		}
		if j == next || p.src[j] == '\n' || p.src[j] == '\r' || p.src[j] == '#' {
			i = next // blank (fastYAMLChars lets '\r' only before '\n') or a comment
			continue
		}
		if j-i <= col {
			return i, last
		}
		last = next
		i = next
	}
	return len(p.src), last
}

// clean says whether no string of v (keys included) has '#' or '$':
// environment substitution leaves it alone and it has no $env://
// reference. The items kept in this load are clean.
func (c *itemCache) clean(v any) bool {
	switch x := v.(type) {
	case string:
		return plainText(x)
	case []any:
		for _, it := range x {
			if !c.clean(it) {
				return false
			}
		}
	case map[string]any:
		if c.byTree[reflect.ValueOf(x).UnsafePointer()] != nil {
			return true
		}
		for k, it := range x {
			if !plainText(k) || !c.clean(it) {
				return false
			}
		}
	}
	return true
}

func plainText(s string) bool {
	return strings.IndexByte(s, '#') < 0 && strings.IndexByte(s, '$') < 0
}

var routeType = reflect.TypeFor[Route]()

// reuseRoute sets v (a Route) to the decoded value kept for the tree in,
// if any; it returns the entry that should keep v's decoded value when
// there is none yet.
//
// What is kept is a pointer to the route of the last config that has it
// (so a Loader holds no copy of the routes of the config being served):
// that route is the decoded value with resolve's id and name and
// validation's Var.Ref filled in, which are undone in the copy.
func (d *decoder) reuseRoute(in any, v reflect.Value) (done bool, keep *itemEntry) {
	e := d.cache.entryOf(in)
	if e == nil || e.noRoute {
		return false, nil
	}
	if e.route == nil {
		return false, e
	}
	r := v.Addr().Interface().(*Route)
	*r = *e.route
	if e.idEmpty {
		r.ID = ""
	}
	if e.nameEmpty {
		r.Name = ""
	}
	if len(r.Vars) > 0 {
		r.Vars = slices.Clone(r.Vars) // validation writes Var.Ref
		for i := range r.Vars {
			r.Vars[i].Ref = VarRef{}
		}
	}
	e.route = r
	d.cache.stats.RoutesReused++
	return true, nil
}

// keepRoute keeps the decoded value v of e's tree, if it decoded without
// an error (errs is the error count before it) and validation writes
// nothing into it but Var.Ref (no plugins, request or backend
// parameters, websocket section).
func (d *decoder) keepRoute(e *itemEntry, v reflect.Value, errs int) {
	r := v.Addr().Interface().(*Route)
	if len(d.errs) > errs || len(r.Plugins) > 0 || len(r.ReqParams) > 0 || len(r.BackendParams) > 0 || r.Websocket != nil {
		e.noRoute = true
		return
	}
	e.route, e.idEmpty, e.nameEmpty = r, r.ID == "", r.Name == ""
}

// compactRoutes puts in the services' trees, for each route whose hash
// and decoded value are kept, the route's entry in place of its tree,
// which is let go: the next load reuses the route from the entry alone.
// It runs after a successful load, when nothing reads this load's tree
// any more.
func compactRoutes(root any, c *itemCache) {
	top, _ := root.(map[string]any)
	svcs, _ := top["services"].([]any)
	for _, s := range svcs {
		m, _ := s.(map[string]any)
		routes, _ := m["routes"].([]any)
		for j, r := range routes {
			if _, ok := r.(*itemEntry); ok {
				continue
			}
			if e := c.entryOf(r); e != nil && e.atRoute && e.route != nil && e.hashed {
				routes[j] = e
				e.tree, e.compact = nil, true
			}
		}
	}
}
