package importer

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Map is an ordered YAML mapping: keys are written in the order they were
// set, each with an optional comment line above it.
type Map struct {
	entries []entry
}

type entry struct {
	key     string
	val     any
	comment string
}

// Commented is a list item with comment lines above it.
type Commented struct {
	Comment string
	Val     any
}

// Set appends key (or replaces its value, keeping its place).
func (m *Map) Set(key string, val any) *Map { return m.SetC(key, val, "") }

// SetC is Set with a comment above the key.
func (m *Map) SetC(key string, val any, comment string) *Map {
	for i := range m.entries {
		if m.entries[i].key == key {
			m.entries[i].val = val
			if comment != "" {
				m.entries[i].comment = comment
			}
			return m
		}
	}
	m.entries = append(m.entries, entry{key: key, val: val, comment: comment})
	return m
}

// Get returns the value of key.
func (m *Map) Get(key string) (any, bool) {
	for _, e := range m.entries {
		if e.key == key {
			return e.val, true
		}
	}
	return nil, false
}

// Len is the number of keys.
func (m *Map) Len() int { return len(m.entries) }

// sortedMap makes a Map of a Go map with its keys sorted, converting the
// values (JSON trees) recursively.
func sortedMap(src map[string]any) *Map {
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := &Map{}
	for _, k := range keys {
		m.Set(k, tree(src[k]))
	}
	return m
}

// tree converts a decoded JSON value to Map/[]any (maps sorted by key).
func tree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return sortedMap(t)
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = tree(t[i])
		}
		return out
	case map[string]string:
		m := &Map{}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.Set(k, t[k])
		}
		return m
	}
	return v
}

// Marshal writes v (a *Map) as block YAML.
func Marshal(v *Map) []byte {
	var b bytes.Buffer
	writeMap(&b, v, 0)
	return b.Bytes()
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

func yamlKey(k string) string {
	switch strings.ToLower(k) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
		return quoteString(k)
	}
	if plainKey.MatchString(k) {
		return k
	}
	return quoteString(k)
}

// quoteString is a JSON string, which is a YAML double-quoted scalar.
func quoteString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func writeComment(b *bytes.Buffer, c string, indent int) {
	if c == "" {
		return
	}
	for _, line := range strings.Split(c, "\n") {
		b.WriteString(strings.Repeat(" ", indent))
		b.WriteString("# ")
		b.WriteString(strings.Map(func(r rune) rune {
			// YAML also ends a comment at NEL, LS and PS: a source remark
			// holding one would start a key of its own.
			if r < 0x20 || r == 0x7f || r == '\u0085' || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			return r
		}, line))
		b.WriteByte('\n')
	}
}

func isScalar(v any) bool {
	switch t := v.(type) {
	case *Map:
		return t.Len() == 0
	case []any:
		for _, e := range t {
			if !isScalar(e) {
				return false
			}
			if m, ok := e.(*Map); ok && m.Len() == 0 {
				return false
			}
		}
		return true
	case []string, []int:
		return true
	case Commented:
		return false
	}
	return true
}

func scalar(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return quoteString(t)
	case bool:
		return strconv.FormatBool(t)
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case json.Number:
		return t.String()
	case *Map:
		return "{}"
	case []string:
		parts := make([]string, len(t))
		for i, s := range t {
			parts[i] = quoteString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []int:
		parts := make([]string, len(t))
		for i, n := range t {
			parts[i] = strconv.Itoa(n)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = scalar(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return quoteString("?")
}

func writeMap(b *bytes.Buffer, m *Map, indent int) {
	pad := strings.Repeat(" ", indent)
	for i, e := range m.entries {
		if indent == 0 && i > 0 {
			b.WriteByte('\n')
		}
		writeComment(b, e.comment, indent)
		b.WriteString(pad)
		b.WriteString(yamlKey(e.key))
		b.WriteByte(':')
		writeValue(b, e.val, indent)
	}
}

// writeValue writes what follows "key:" (or "- ").
func writeValue(b *bytes.Buffer, v any, indent int) {
	if isScalar(v) {
		b.WriteByte(' ')
		b.WriteString(scalar(v))
		b.WriteByte('\n')
		return
	}
	b.WriteByte('\n')
	switch t := v.(type) {
	case *Map:
		writeMap(b, t, indent+2)
	case []any:
		writeList(b, t, indent+2)
	case Commented:
		writeList(b, []any{t}, indent+2)
	}
}

func writeList(b *bytes.Buffer, l []any, indent int) {
	pad := strings.Repeat(" ", indent)
	for _, e := range l {
		if c, ok := e.(Commented); ok {
			writeComment(b, c.Comment, indent)
			e = c.Val
		}
		if m, ok := e.(*Map); ok && m.Len() > 0 {
			// "- key: value" then the other keys under it.
			var sub bytes.Buffer
			writeMap(&sub, m, indent+2)
			s := sub.String()
			// The first key's comment lines stay above the dash.
			for strings.HasPrefix(strings.TrimLeft(s, " "), "#") {
				nl := strings.IndexByte(s, '\n')
				b.WriteString(pad)
				b.WriteString(strings.TrimLeft(s[:nl+1], " "))
				s = s[nl+1:]
			}
			b.WriteString(pad)
			b.WriteString("- ")
			b.WriteString(strings.TrimPrefix(s, pad+"  "))
			continue
		}
		b.WriteString(pad)
		b.WriteByte('-')
		writeValue(b, e, indent)
	}
}
