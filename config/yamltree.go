package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// YAML is read with go.yaml.in/yaml/v3's node API straight into the generic
// tree the decoder walks (map[string]any, []any, string, json.Number, bool,
// nil), the tree JSON files become. Scalars resolve as YAML 1.1 plain
// scalars did when YAML went through sigs.k8s.io/yaml (yaml.v2): yes, on,
// y (and no, off, n) are booleans, 0x1F and 0o17 and 017 are integers,
// 1.50 is the number 1.5. A quoted scalar is always a string.
//
// Every node keeps its line, so errors can say where they are (locate).

// parseYAML parses data into the generic tree. It returns the tree's root
// node for locating errors (nil with the tree when the file holds no
// document). A syntax error is fatal; duplicate keys are not, and come back
// with the tree like JSON's.
func parseYAML(data []byte) (any, *yaml.Node, Errors) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, nil, nil // no document at all
	}
	if err != nil {
		msg := yamlMessage(err)
		// An unquoted value that starts with '*' is an alias, and yaml.v3
		// names it ("unknown anchor 'xyz' referenced"): that name may be
		// a key-auth key or a password written without quotes.
		if strings.Contains(msg, "anchor '") {
			return nil, nil, Errors{{Msg: "invalid YAML: an alias (*name) refers to no anchor, or to itself (the name is not shown: quote a value that starts with *)"}}
		}
		// "yaml: line 3: mapping values are not allowed in this context"
		// becomes line 3, "invalid YAML: mapping values are not allowed...".
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			// yaml.v3 numbers the lines of its parser's errors (as opposed
			// to its scanner's) from 0: the line of the construct left open.
			if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found undefined tag handle") {
				line++
			}
			return nil, nil, Errors{{Line: line, Msg: "invalid YAML: " + m[2]}}
		}
		return nil, nil, Errors{{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
	}
	// A second document would load and do nothing.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, Errors{{Line: extra.Line, Msg: "invalid YAML: the file holds more than one document (---); a config is one document"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil, nil
	}
	root := doc.Content[0]
	// Without aliases the tree has fewer values than the file has bytes;
	// aliases may repeat a value, but not to more than that again.
	b := yamlBuilder{budget: 2*len(data) + 1024}
	tree := b.value(root, 0)
	if b.fatal != nil {
		return nil, nil, Errors{*b.fatal}
	}
	if tree == nil {
		return nil, nil, b.errs // `null` or `~`: an empty file
	}
	return tree, root, b.errs
}

// yamlBuilder turns nodes into the generic tree.
type yamlBuilder struct {
	errs   Errors
	fatal  *FieldError
	path   pathStack
	budget int // values left to build: bounds alias expansion
}

func (b *yamlBuilder) stop(n *yaml.Node, msg string) {
	if b.fatal == nil {
		b.fatal = &FieldError{Path: b.path.String(), Line: n.Line, Msg: msg}
	}
}

func (b *yamlBuilder) value(n *yaml.Node, depth int) any {
	if b.fatal != nil {
		return nil
	}
	if b.budget--; b.budget < 0 {
		b.stop(n, "invalid YAML: aliases expand the file to too many values")
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			b.stop(n, "invalid YAML: unknown alias")
			return nil
		}
		return b.value(n.Alias, depth)
	case yaml.ScalarNode:
		v, err := scalarValue(n)
		if err != "" {
			b.errs = append(b.errs, FieldError{Path: b.path.String(), Line: n.Line, Msg: err})
			return nil
		}
		return v
	case yaml.SequenceNode:
		if depth >= MaxDepth {
			b.stop(n, "invalid YAML: "+errTooDeep.Error())
			return nil
		}
		list := make([]any, len(n.Content))
		for i, item := range n.Content {
			b.path.pushIndex(i)
			list[i] = b.value(item, depth+1)
			b.path.pop()
		}
		return list
	case yaml.MappingNode:
		if depth >= MaxDepth {
			b.stop(n, "invalid YAML: "+errTooDeep.Error())
			return nil
		}
		obj := make(map[string]any, len(n.Content)/2)
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				merges = append(merges, v)
				continue
			}
			key, msg := keyString(k)
			if msg != "" {
				b.stop(k, "invalid YAML: "+msg)
				return nil
			}
			b.path.pushKey(key)
			val := b.value(v, depth+1)
			if _, dup := obj[key]; dup {
				b.errs = append(b.errs, FieldError{Path: b.path.String(), Line: k.Line,
					Msg: fmt.Sprintf("duplicate key (key %s already set on line %d)", quote(key), firstKeyLine(n, key, i))})
			}
			b.path.pop()
			obj[key] = val
		}
		// `<<: *defaults` (or a list of them) adds the keys the mapping
		// does not set itself; of several merged mappings, the first wins.
		for _, m := range merges {
			b.merge(obj, m, depth)
		}
		return obj
	}
	b.stop(n, "invalid YAML: unexpected node")
	return nil
}

func (b *yamlBuilder) merge(obj map[string]any, m *yaml.Node, depth int) {
	for m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
	}
	switch m.Kind {
	case yaml.MappingNode:
		src, ok := b.value(m, depth).(map[string]any)
		if !ok {
			return
		}
		for k, v := range src {
			if _, set := obj[k]; !set {
				obj[k] = v
			}
		}
	case yaml.SequenceNode:
		for _, item := range m.Content {
			for item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind != yaml.MappingNode {
				b.stop(item, "invalid YAML: a merge (<<) takes an object or a list of objects")
				return
			}
			b.merge(obj, item, depth)
		}
	default:
		b.stop(m, "invalid YAML: a merge (<<) takes an object or a list of objects")
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Style == 0 || k.Tag == "!!merge")
}

// firstKeyLine is the line of the first key named key among the first
// end entries of mapping n.
func firstKeyLine(n *yaml.Node, key string, end int) int {
	for i := 0; i < end; i += 2 {
		if s, msg := keyString(n.Content[i]); msg == "" && s == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// keyString is a mapping key as the tree's string key, as yaml.v2's
// conversion to JSON made it: numbers and booleans become their text. A
// list, an object or null as a key is an error (its content is not shown).
func keyString(k *yaml.Node) (string, string) {
	for k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", "a list or an object is used as a map key; keys must be strings"
	}
	v, err := scalarKind(k)
	if err != "" {
		return "", err
	}
	return keyText(v)
}

// keyText is a resolved scalar as a map key (keyString).
func keyText(v any) (string, string) {
	switch x := v.(type) {
	case string:
		return x, ""
	case bool:
		return strconv.FormatBool(x), ""
	case int64:
		return strconv.FormatInt(x, 10), ""
	case uint64:
		return strconv.FormatUint(x, 10), ""
	case float64:
		switch {
		case math.IsInf(x, 1):
			return ".inf", ""
		case math.IsInf(x, -1):
			return "-.inf", ""
		case math.IsNaN(x):
			return ".nan", ""
		}
		return strconv.FormatFloat(x, 'g', -1, 32), ""
	}
	return "", "null is used as a map key; keys must be strings"
}

// scalarValue is a scalar node as a tree value: string, json.Number, bool
// or nil. A number keeps the text JSON gives it (1.50 is 1.5, 0x1F is 31);
// .inf and .nan keep theirs, which no number field accepts.
func scalarValue(n *yaml.Node) (any, string) {
	v, err := scalarKind(n)
	if err != "" {
		return nil, err
	}
	return treeValue(v, n.Value), ""
}

// treeValue is a resolved scalar (scalarKind) of the text s as a tree
// value: numbers become json.Number.
func treeValue(v any, s string) any {
	switch x := v.(type) {
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return json.Number(s)
		}
		text, _ := json.Marshal(x)
		return json.Number(text)
	}
	return v
}

// scalarKind resolves a scalar to string, bool, nil, int64, uint64 or
// float64. An explicit standard tag (!!str, !!int ...) is obeyed; any other
// tag leaves the text a string, as yaml.v2 did.
func scalarKind(n *yaml.Node) (any, string) {
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.Tag {
		case "!!str":
			return n.Value, ""
		case "!!binary":
			data, err := base64.StdEncoding.DecodeString(n.Value)
			if err != nil {
				return nil, "a !!binary value that is not valid base64"
			}
			return string(data), ""
		case "!!null", "!!bool", "!!int", "!!float":
			v := resolvePlain(n.Value)
			ok := false
			switch v.(type) {
			case nil:
				ok = n.Tag == "!!null"
			case bool:
				ok = n.Tag == "!!bool"
			case int64, uint64:
				ok = n.Tag == "!!int" || n.Tag == "!!float"
				if n.Tag == "!!float" {
					f, _ := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
					v = f
				}
			case float64:
				ok = n.Tag == "!!float"
			}
			if !ok {
				// The value is not shown: it may be a secret.
				return nil, "the value is not a valid " + n.Tag
			}
			return v, ""
		}
		return n.Value, ""
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Value, ""
	}
	return resolvePlain(n.Value), ""
}

// resolvePlain resolves a plain scalar as yaml.v2 (YAML 1.1) did.
func resolvePlain(s string) any {
	if s == "" {
		return nil
	}
	switch s[0] {
	case 'y', 'Y', 'n', 'N', 't', 'T', 'f', 'F', 'o', 'O', '~':
		if v, ok := yaml11Words[s]; ok {
			return v
		}
		return s
	case '.':
		if v, ok := yaml11Words[s]; ok {
			return v
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
		return s
	case '+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if v, ok := yaml11Words[s]; ok {
			return v // +.inf, -.inf
		}
		plain := strings.ReplaceAll(s, "_", "")
		if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
			return u
		}
		if yamlFloat.MatchString(plain) {
			if f, err := strconv.ParseFloat(plain, 64); err == nil {
				return f
			}
		}
		if rest, ok := strings.CutPrefix(plain, "0b"); ok {
			if i, err := strconv.ParseInt(rest, 2, 64); err == nil {
				return i
			}
			if u, err := strconv.ParseUint(rest, 2, 64); err == nil {
				return u
			}
		} else if rest, ok := strings.CutPrefix(plain, "-0b"); ok {
			if i, err := strconv.ParseInt("-"+rest, 2, 64); err == nil {
				return i
			}
		}
	}
	return s
}

var yamlLine = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// yaml11Words are the plain scalars YAML 1.1 gives a meaning by name.
var yaml11Words = func() map[string]any {
	m := map[string]any{}
	for v, words := range map[any][]string{
		true:  {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"},
		false: {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"},
	} {
		for _, w := range words {
			m[w] = v
		}
	}
	for _, w := range []string{"~", "null", "Null", "NULL"} {
		m[w] = nil
	}
	for _, w := range []string{".nan", ".NaN", ".NAN"} {
		m[w] = math.NaN()
	}
	for _, w := range []string{".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"} {
		m[w] = math.Inf(1)
	}
	for _, w := range []string{"-.inf", "-.Inf", "-.INF"} {
		m[w] = math.Inf(-1)
	}
	return m
}()

// locate gives each error without a line the line of the deepest node of
// its path that the file has (the key, for a key; the item, for a list
// index), and names the file.
func locate(root *yaml.Node, name string, errs Errors) {
	for i := range errs {
		e := &errs[i]
		if e.Line == 0 && root != nil {
			e.Line = lineOf(root, e.Path)
		}
		if e.Line > 0 {
			e.File = name
		}
	}
}

func lineOf(n *yaml.Node, path string) int {
	line := n.Line
	for _, st := range splitPath(path) {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		if st.index >= 0 {
			if n.Kind != yaml.SequenceNode || st.index >= len(n.Content) {
				break
			}
			n = n.Content[st.index]
			line = n.Line
			continue
		}
		k, v := findKey(n, st.key, 0)
		if k == nil {
			break
		}
		line, n = k.Line, v
	}
	return line
}

// findKey finds key in mapping n: the last entry that sets it, else the
// first merged mapping that has it.
func findKey(n *yaml.Node, key string, depth int) (*yaml.Node, *yaml.Node) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode || depth > MaxDepth {
		return nil, nil
	}
	var merges []*yaml.Node
	for i := len(n.Content) - 2; i >= 0; i -= 2 {
		k := n.Content[i]
		if isMergeKey(k) {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if s, msg := keyString(k); msg == "" && s == key {
			return k, n.Content[i+1]
		}
	}
	for i := len(merges) - 1; i >= 0; i-- {
		m := merges[i]
		for m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			if k, v := findKey(src, key, depth+1); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// splitPath turns a key path (services[2].labels["a.b"]) into its steps.
func splitPath(path string) []pathStackStep {
	var steps []pathStackStep
	for path != "" {
		switch {
		case strings.HasPrefix(path, `["`):
			end := closingQuote(path)
			key, _ := strconv.Unquote(path[1 : end+1])
			steps = append(steps, pathStackStep{key: key, index: -1})
			path = strings.TrimPrefix(path[end+1:], "]")
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return steps
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 {
				return steps
			}
			steps = append(steps, pathStackStep{index: i})
			path = path[end+1:]
		default:
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			steps = append(steps, pathStackStep{key: path[:end], index: -1})
			path = path[end:]
		}
	}
	return steps
}
