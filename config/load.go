package config

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem of a config file, at a key path such as
// `services[2].upstream.nodes[0].port`. Path is empty for problems of the
// file as a whole (syntax errors). Errors of a YAML file also have the
// line of the path's deepest node the file has, and the file's name.
type FieldError struct {
	Path string
	Msg  string
	File string // set with Line
	Line int    // 1-based; 0: unknown (JSON files, built-in configs)
}

// Error returns "path: message", after "file:line: " when the line is
// known.
func (e FieldError) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + e.Msg
	}
	if e.File != "" && e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + s
	}
	return s
}

// Errors is every problem of a config file, in the order of their places in
// the file. Load and Parse return it as their error.
type Errors []FieldError

// Error returns one FieldError per line.
func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, fe := range e {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and loads the config file at path with the default ReadLimits;
// its extension picks the format (.json is JSON, anything else YAML).
func Load(path string) (*Config, error) {
	return LoadFile(path, ReadLimits{})
}

// LoadFile reads the config file at path with ReadFile and loads it. A file
// that cannot be read (missing, not a regular file, too large, a read that
// timed out) yields ReadFile's *fs.PathError, so that errors.Is(err,
// fs.ErrNotExist) works; a file that reads but does not load yields Errors.
func LoadFile(path string, lim ReadLimits) (*Config, error) {
	data, err := ReadFile(path, lim)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse loads a config from data. name is the file name: its extension
// picks the format as in Load, and it becomes Config.Source.
//
// Loading decodes strictly, fills the defaults of the spec, resolves the
// defaults that depend on other fields and validates the result. Either the
// config is valid, or the error is Errors with every problem found.
func Parse(data []byte, name string) (*Config, error) {
	if !isJSONName(name) {
		// The fast YAML path (yamlfast.go) loads most files. A file it
		// declines, or that has any error, is loaded from yaml.v3's
		// reading, whose errors have their lines.
		if root, ok := fastYAML(data); ok {
			if cfg, errs := loadTree(data, name, root, nil); len(errs) == 0 {
				return cfg, nil
			}
		}
	}
	root, node, errs := parseSource(data, name)
	if root == nil {
		if len(errs) == 0 {
			// A file with nothing in it is refused rather than loaded as a
			// gateway without routes: an editor that truncates a file
			// before writing it must not blank the serving config.
			errs = Errors{{Msg: "the file is empty"}}
		}
		locate(node, name, errs)
		return nil, errs
	}
	cfg, all := loadTree(data, name, root, errs)
	if len(all) > 0 {
		// The nodes were let go after the tree was built (garbage for the
		// rest of the load); a file with errors is parsed again for lines.
		cfg.Locate(all)
		return nil, all
	}
	return cfg, nil
}

// loadTree decodes, resolves and validates the parsed tree of data; errs
// are the parser's. The errors it returns are sorted and not located.
func loadTree(data []byte, name string, root any, errs Errors) (*Config, Errors) {
	return loadTreeCached(data, name, root, errs, nil)
}

// loadTreeCached is loadTree reusing what a Loader kept of the items of
// the tree (incremental.go); c may be nil.
func loadTreeCached(data []byte, name string, root any, errs Errors, c *itemCache) (*Config, Errors) {
	errs = append(errs, substituteEnvironmentCached(root, c)...)
	cfg := &Config{Source: name, src: data, digest: digestTreeCached(root, c)}
	d := decoder{errs: errs, cache: c}
	d.decode(root, reflect.ValueOf(cfg).Elem())
	resolve(cfg, data)
	var paths pathMemo
	if c != nil {
		paths = c.paths
	}
	all := append(d.errs, withoutDecoded(validateWith(cfg, paths), d.errs)...)
	sortErrors(all)
	return cfg, all
}

// Locate gives the errors found in cfg after it loaded (compiling its
// routes and plugins) the file and line of their paths, as Parse does for
// its own; it changes only errors that have none. It parses the file
// again, which only a config with errors pays for.
func (cfg *Config) Locate(errs Errors) {
	if cfg == nil || len(cfg.src) == 0 || isJSONName(cfg.Source) {
		return
	}
	_, node, _ := parseYAML(cfg.src)
	locate(node, cfg.Source, errs)
}

// Default returns a config with every gateway default applied and nothing
// else: no services, upstreams, policies or consumers. Revision and Source
// are empty; a caller that serves it names it.
func Default() *Config {
	cfg := &Config{}
	cfg.setDefaults()
	return cfg
}

// resolve fills the defaults that depend on other fields or on the file.
func resolve(cfg *Config, data []byte) {
	if cfg.Revision == "" {
		sum := sha256.Sum256(data)
		cfg.Revision = hex.EncodeToString(sum[:])[:12]
	}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.Name == "" {
			s.Name = s.ID
		}
		for j, h := range s.Hosts {
			s.Hosts[j] = strings.ToLower(h)
		}
		if s.Upstream != nil {
			// An inline upstream is known by its service's id: it keys
			// health state and labels metrics (upstreams.md).
			s.Upstream.ID = s.ID
			resolveUpstream(s.Upstream)
		}
		for j := range s.Routes {
			r := &s.Routes[j]
			if r.ID == "" {
				r.ID = s.ID + "." + strconv.Itoa(j)
			}
			if r.Name == "" {
				r.Name = r.ID
			}
		}
	}
	for i := range cfg.Upstreams {
		resolveUpstream(&cfg.Upstreams[i])
	}
	for i := range cfg.StreamRoutes {
		r := &cfg.StreamRoutes[i]
		if r.Name == "" {
			r.Name = r.ID
		}
		if r.Upstream != nil {
			r.Upstream.ID = r.ID // like a service's inline upstream
			resolveUpstream(r.Upstream)
		}
	}
	for i := range cfg.ThrottlePolicies {
		if p := &cfg.ThrottlePolicies[i]; p.Name == "" {
			p.Name = p.ID
		}
	}
}

func resolveUpstream(u *Upstream) {
	// A discovered upstream's default retries follow its current node
	// set (the proxy counts them), so they stay nil.
	if u.Retries == nil && u.DiscoveryType == "" {
		n := max(len(u.Nodes)-1, 0)
		u.Retries = &n
	}
	// `checks: {}` checks nothing; dropping it lets every user of the
	// config rely on Checks != nil meaning Checks.Active != nil.
	if u.Checks != nil && u.Checks.Active == nil && u.Checks.Passive == nil {
		u.Checks = nil
	}
}

// withoutDecoded drops validation errors at or under a place that already
// failed to decode: a value that could not be read is reported once, not
// again as missing or out of range.
func withoutDecoded(verrs, derrs Errors) Errors {
	if len(derrs) == 0 {
		return verrs
	}
	bad := make(map[string]bool, len(derrs))
	for _, e := range derrs {
		bad[e.Path] = true
	}
	out := verrs[:0]
	for _, e := range verrs {
		if !underAny(e.Path, bad) {
			out = append(out, e)
		}
	}
	return out
}

func underAny(path string, set map[string]bool) bool {
	for p := path; ; {
		if set[p] {
			return true
		}
		if p == "" {
			return false
		}
		p = p[:max(strings.LastIndexAny(p, ".["), 0)]
	}
}

// Paths. A map key that is not a plain word is quoted: labels["app.io/x"].

func keyPath(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain || len(key) > maxQuoted:
		// A long key is clipped: paths are printed, and a key can be
		// anything a file holds.
		if len(key) > maxQuoted {
			key = key[:cutAt(key, maxQuoted)] + "..."
		}
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// sortErrors puts errors in the order of their places in the file: list
// items by index and an object's keys in the schema's order (the order of
// the tables in config.md), so that decode and validation errors interleave
// as an operator reads the file. The order is the same for YAML and JSON;
// YAML's conversion to JSON does not keep key order, so the schema order
// stands in for it.
func sortErrors(errs Errors) {
	keys := make(map[string][]pathStep, len(errs))
	for _, e := range errs {
		if _, ok := keys[e.Path]; !ok {
			keys[e.Path] = pathOrder(e.Path)
		}
	}
	slices.SortStableFunc(errs, func(a, b FieldError) int {
		return slices.CompareFunc(keys[a.Path], keys[b.Path], func(x, y pathStep) int {
			return cmp.Or(cmp.Compare(x.n, y.n), cmp.Compare(x.s, y.s))
		})
	})
}

// pathStep is one step of a path as a sort key: a list index or a field's
// position in its struct (n), or a map key or unknown key (s).
type pathStep struct {
	n int
	s string
}

// pathOrder turns a path into sort keys by walking the schema types.
func pathOrder(path string) []pathStep {
	var steps []pathStep
	t := reflect.TypeFor[Config]()
	for path != "" {
		var name string
		index := -1
		switch {
		case strings.HasPrefix(path, `["`):
			end := closingQuote(path)
			name, _ = strconv.Unquote(path[1 : end+1])
			path = strings.TrimPrefix(path[end+1:], "]")
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				end = len(path) - 1
			}
			index, _ = strconv.Atoi(path[1:end])
			path = path[end+1:]
		default:
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			name, path = path[:end], path[end:]
		}
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case index >= 0:
			steps = append(steps, pathStep{n: index})
			if t != nil && t.Kind() == reflect.Slice {
				t = t.Elem()
			} else {
				t = nil
			}
		case t != nil && t.Kind() == reflect.Struct:
			if i, ok := jsonFields(t)[name]; ok {
				steps = append(steps, pathStep{n: i})
				t = t.Field(i).Type
			} else {
				steps = append(steps, pathStep{n: t.NumField(), s: name})
				t = nil
			}
		case t != nil && t.Kind() == reflect.Map:
			steps = append(steps, pathStep{s: name})
			t = t.Elem()
		default:
			steps = append(steps, pathStep{s: name})
			t = nil
		}
	}
	return steps
}

// closingQuote returns the index of the quote that ends the quoted key at
// the start of path (`["...`).
func closingQuote(path string) int {
	for i := 2; i < len(path); i++ {
		switch path[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(path) - 1
}
