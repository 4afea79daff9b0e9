// Package importer converts what the API7 Admin API and the Huawei Cloud
// APIG API return (JSON list and detail responses) into the gateway's own
// config, printed as YAML with a comment naming each source object.
//
// It knows config (to check plugin names and response types) and nothing
// else of the gateway. What it cannot convert it reports as a Warning with
// the source path; nothing is dropped silently.
package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Warning is a source construct that was not imported, or imported
// differently, at a path such as `apis.json: apis[3].backend_api.x`.
type Warning struct {
	Path string
	Msg  string
}

func (w Warning) String() string { return w.Path + ": " + w.Msg }

// Result is a converted config: the YAML and what was not imported.
type Result struct {
	YAML     []byte
	Warnings []Warning
}

// input is one JSON file.
type input struct {
	name string // file name as given (for messages)
	base string // base name without .json
	root any
}

// readInputs reads the files given, and every *.json file of a directory
// given, in name order.
func readInputs(paths []string) ([]input, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(p, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(matches)
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no *.json files", p)
		}
		files = append(files, matches...)
	}
	var out []input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var root any
		if err := dec.Decode(&root); err != nil {
			return nil, fmt.Errorf("%s: not JSON: %v", f, err)
		}
		if _, ok := root.(map[string]any); !ok {
			return nil, fmt.Errorf("%s: not a JSON object (a list or detail response)", f)
		}
		base := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		out = append(out, input{name: f, base: base, root: root})
	}
	return out, nil
}

// warner collects warnings.
type warner struct{ list []Warning }

func (w *warner) add(path, format string, args ...any) {
	w.list = append(w.list, Warning{Path: where(path), Msg: fmt.Sprintf(format, args...)})
}

// obj is a source object whose keys are read through it: done() warns
// about every key nobody read that holds a non-empty value.
type obj struct {
	m    map[string]any
	path string
	used map[string]bool
	w    *warner
}

func newObj(m map[string]any, path string, w *warner) *obj {
	return &obj{m: m, path: path, used: map[string]bool{}, w: w}
}

func joinPath(path, key string) string {
	if strings.HasSuffix(path, ": ") || path == "" {
		return path + key
	}
	return path + "." + key
}

// where is a path for messages: a file's root object is the file.
func where(path string) string { return strings.TrimSuffix(path, ": ") }

func indexed(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (o *obj) at(key string) string { return joinPath(o.path, key) }

func (o *obj) has(key string) bool {
	v, ok := o.m[key]
	return ok && !empty(v)
}

func (o *obj) raw(key string) any {
	o.used[key] = true
	return o.m[key]
}

// ignore marks keys as read: response-only fields with no meaning for the
// gateway (ids of the product's own bookkeeping, times, statuses).
func (o *obj) ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

func (o *obj) str(key string) string {
	switch t := o.raw(key).(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(t)
	}
	o.w.add(o.at(key), "expected a string")
	return ""
}

// num reads a number (or a number written as a string, as Huawei writes
// some); ok is false when absent.
func (o *obj) num(key string) (float64, bool) {
	switch t := o.raw(key).(type) {
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	case string:
		if t == "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			o.w.add(o.at(key), "expected a number, got %q", t)
			return 0, false
		}
		return f, true
	case nil:
		return 0, false
	}
	o.w.add(o.at(key), "expected a number")
	return 0, false
}

func (o *obj) integer(key string) (int64, bool) {
	f, ok := o.num(key)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) {
		o.w.add(o.at(key), "expected an integer, got %v", f)
		return 0, false
	}
	return int64(f), true
}

func (o *obj) boolean(key string) bool {
	switch t := o.raw(key).(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(t, "true")
	}
	return false
}

func (o *obj) sub(key string) *obj {
	m, _ := o.raw(key).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return newObj(m, o.at(key), o.w)
}

func (o *obj) list(key string) []any {
	l, _ := o.raw(key).([]any)
	return l
}

// done warns about every key not read that holds a value.
func (o *obj) done() {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !o.used[k] && !empty(o.m[k]) {
			o.w.add(o.at(k), "not supported, not imported")
		}
	}
}

// empty is a value that says nothing: null, "", 0, false, [] or {} (or an
// object of empty values).
func empty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case json.Number:
		f, err := t.Float64()
		return err == nil && f == 0
	case bool:
		return !t
	case []any:
		return len(t) == 0
	case map[string]any:
		for _, e := range t {
			if !empty(e) {
				return false
			}
		}
		return true
	}
	return false
}

// objects returns the maps of a list, warning about other elements.
func objects(l []any, path string, w *warner) []*obj {
	var out []*obj
	for i, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			w.add(indexed(path, i), "expected an object, skipped")
			continue
		}
		out = append(out, newObj(m, indexed(path, i), w))
	}
	return out
}

// validID reports whether s is a config ID.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// sanitizeID turns s into a config ID, replacing other characters by '_'.
func sanitizeID(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() > 256 {
		return b.String()[:256]
	}
	return b.String()
}

// envName is an environment variable name made of s.
func envName(prefix, s string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, c := range strings.ToUpper(s) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func secs(ms float64) float64 { return ms / 1000 }
