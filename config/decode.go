package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// defaulter is implemented by the schema types that have defaults. The
// decoder calls setDefaults on a value before it decodes an object into it,
// so that a key that is absent keeps its default and a key that is present
// replaces it.
type defaulter interface{ setDefaults() }

// parseTree turns the file's bytes into the generic JSON tree the decoder
// walks: map[string]any, []any, string, json.Number, bool and nil. YAML is
// converted to JSON first, so both formats meet the same decoder. A syntax
// error is fatal; duplicate keys are not, and come back with the tree.
func parseTree(data []byte, name string) (any, Errors) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	isJSON := strings.EqualFold(extension(name), ".json")
	if !isJSON {
		// The strict conversion rejects duplicate keys instead of letting
		// the last one win silently.
		j, err := yaml.YAMLToJSONStrict(data)
		if err != nil {
			return nil, Errors{{Msg: "invalid YAML: " + yamlMessage(err)}}
		}
		data = j
	}
	p := treeParser{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	p.dec.UseNumber()
	root, err := p.value("")
	if err == nil {
		if _, extra := p.dec.Token(); extra != io.EOF {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, Errors{{Msg: "invalid JSON: " + p.position() + err.Error()}}
	}
	return root, p.errs
}

func extension(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 && !strings.ContainsAny(name[i:], `/\`) {
		return name[i:]
	}
	return ""
}

// yamlMessage makes the YAML library's error one line without the wrapper
// text that says nothing to an operator.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}

// treeParser reads JSON tokens into a generic tree. encoding/json's own
// decoding into `any` lets a duplicate key silently win; reading tokens
// lets us report it with its path.
type treeParser struct {
	dec  *json.Decoder
	data []byte
	errs Errors
}

func (p *treeParser) value(path string) (any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for p.dec.More() {
			kt, err := p.dec.Token()
			if err != nil {
				return nil, err
			}
			key := kt.(string) // the decoder only yields string keys inside objects
			kpath := keyPath(path, key)
			val, err := p.value(kpath)
			if err != nil {
				return nil, err
			}
			if _, dup := obj[key]; dup {
				p.errs = append(p.errs, FieldError{Path: kpath, Msg: "duplicate key"})
			}
			obj[key] = val
		}
		_, err := p.dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		list := []any{}
		for p.dec.More() {
			val, err := p.value(indexPath(path, len(list)))
			if err != nil {
				return nil, err
			}
			list = append(list, val)
		}
		_, err := p.dec.Token() // ']'
		return list, err
	default:
		return tok, nil
	}
}

// position says where the decoder stopped, as "line L, column C: ".
func (p *treeParser) position() string {
	off := int(p.dec.InputOffset())
	if off > len(p.data) {
		off = len(p.data)
	}
	line := 1 + bytes.Count(p.data[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(p.data[:off], '\n')
	return fmt.Sprintf("line %d, column %d: ", line, col)
}

// decoder walks the generic tree against the schema types by reflection,
// using their json tags. It never stops at an error: each is recorded with
// its path and decoding goes on with the next value, so that one load
// reports everything wrong with a file.
type decoder struct {
	errs Errors
}

var (
	ignoredType = reflect.TypeFor[Ignored]()
	varType     = reflect.TypeFor[Var]()
	pluginsType = reflect.TypeFor[Plugins]()
)

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) wrongType(path, want string, in any) {
	d.fail(path, "expected %s, got %s", want, describe(in))
}

// decode stores in into v, which must be settable. A JSON null is the same
// as an absent key: v keeps its default (pointers stay nil).
func (d *decoder) decode(path string, in any, v reflect.Value) {
	t := v.Type()
	switch t {
	case ignoredType:
		return
	case varType:
		d.decodeVar(path, in, v)
		return
	}
	if in == nil {
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		// A present value allocates even when it has the wrong type, so
		// that validation sees the object with its defaults instead of
		// reporting it missing as well.
		p := reflect.New(t.Elem())
		d.decode(path, in, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(path, in, v)
	case reflect.Slice:
		list, ok := in.([]any)
		if !ok {
			d.wrongType(path, "a list", in)
			return
		}
		// A present list replaces the default; it is never merged.
		s := reflect.MakeSlice(t, len(list), len(list))
		for i, item := range list {
			d.decode(indexPath(path, i), item, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		obj, ok := in.(map[string]any)
		if !ok {
			d.wrongType(path, "an object", in)
			return
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for _, k := range sortedKeys(obj) {
			elem := reflect.New(t.Elem()).Elem()
			d.decode(keyPath(path, k), obj[k], elem)
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), elem)
		}
		v.Set(m)
	case reflect.String:
		s, ok := in.(string)
		if !ok {
			hint := ""
			switch in.(type) {
			case bool, json.Number:
				// YAML reads yes, on, y and 8080 as a boolean or a
				// number; quoting is the fix.
				hint = " (quote it to make it a string)"
			}
			d.fail(path, "expected a string, got %s%s", describe(in), hint)
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := in.(bool)
		if !ok {
			d.wrongType(path, "true or false", in)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := toInt(in)
		if !ok || v.OverflowInt(n) {
			d.wrongType(path, "an integer", in)
			return
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		num, ok := in.(json.Number)
		f, err := num.Float64()
		if !ok || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.wrongType(path, "a number", in)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if types.go gains a field of a kind added here.
		panic(fmt.Sprintf("config: cannot decode into %s at %s", t, path))
	}
}

// toInt accepts a JSON number that is a whole number, including the forms
// YAML produces for them (2.0, 1e3).
func toInt(in any) (int64, bool) {
	num, ok := in.(json.Number)
	if !ok {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(num), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func (d *decoder) decodeStruct(path string, in any, v reflect.Value) {
	// Defaults first, even for a value of the wrong type, so that
	// validation sees a default object rather than a zero one.
	if def, ok := v.Addr().Interface().(defaulter); ok {
		def.setDefaults()
	}
	obj, ok := in.(map[string]any)
	if !ok {
		d.wrongType(path, "an object", in)
		return
	}
	fields := jsonFields(v.Type())
	for _, k := range sortedKeys(obj) {
		kpath := keyPath(path, k)
		i, known := fields[k]
		if !known {
			if v.Type() == pluginsType {
				d.fail(kpath, "unknown plugin %q", k)
			} else {
				d.fail(kpath, "unknown key")
			}
			continue
		}
		val := obj[k]
		if val == nil && v.Type() == pluginsType {
			// YAML's `key-auth:` with nothing after it is null; naming a
			// plugin means enabling it, so null is its empty config.
			val = map[string]any{}
		}
		d.decode(kpath, val, v.Field(i))
	}
}

// decodeVar reads `[var, op, value]` or `["!", var, op, value]`. Only the
// shape is checked here; names, operators and operands are validated with
// the route they belong to.
func (d *decoder) decodeVar(path string, in any, v reflect.Value) {
	list, ok := in.([]any)
	if !ok {
		d.wrongType(path, `a list [var, op, value] or ["!", var, op, value]`, in)
		return
	}
	var out Var
	if len(list) > 0 && list[0] == "!" {
		out.Negate = true
		list = list[1:]
	}
	if len(list) != 3 {
		d.fail(path, `expected [var, op, value] or ["!", var, op, value], got %s`, describe(in))
		return
	}
	name, ok1 := list[0].(string)
	op, ok2 := list[1].(string)
	if !ok1 {
		d.fail(path, "variable name must be a string, got %s", describe(list[0]))
	}
	if !ok2 {
		d.fail(path, "operator must be a string, got %s", describe(list[1]))
	}
	if !ok1 || !ok2 {
		return
	}
	out.Name, out.Op = name, op
	if op == "in" || op == "ipmatch" {
		items, ok := list[2].([]any)
		if !ok {
			d.fail(path, "operator %q needs a list value, got %s", op, describe(list[2]))
			return
		}
		out.Values = make([]string, 0, len(items))
		for _, item := range items {
			s, ok := scalarString(item)
			if !ok {
				d.fail(path, "%s values must be strings or numbers, got %s", op, describe(item))
				return
			}
			out.Values = append(out.Values, s)
		}
	} else {
		s, ok := scalarString(list[2])
		if !ok {
			d.fail(path, "operator %q needs a string or number value, got %s", op, describe(list[2]))
			return
		}
		out.Value = s
	}
	v.Set(reflect.ValueOf(out))
}

// scalarString gives a var operand as the string the router compares:
// numbers keep the form they were written in.
func scalarString(in any) (string, bool) {
	switch x := in.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	}
	return "", false
}

// describe names a value in an error message.
func describe(in any) string {
	switch x := in.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v", in)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fieldCache maps a struct type to its json key -> field index table.
var fieldCache sync.Map

func jsonFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}
