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

	yaml "go.yaml.in/yaml/v3"
)

// defaulter is implemented by the schema types that have defaults. The
// decoder calls setDefaults on a value before it decodes an object into it,
// so that a key that is absent keeps its default and a key that is present
// replaces it.
type defaulter interface{ setDefaults() }

// parseTree turns the file's bytes into the generic tree the decoder
// walks: map[string]any, []any, string, json.Number, bool and nil. JSON is
// read by encoding/json's tokens, YAML by go.yaml.in/yaml/v3's nodes
// (yamltree.go); both formats meet the same decoder. A syntax error is
// fatal; duplicate keys are not, and come back with the tree.
func parseTree(data []byte, name string) (any, Errors) {
	root, _, errs := parseSource(data, name)
	return root, errs
}

// parseSource is parseTree that also returns a YAML file's root node, which
// locates errors by their paths (nil for JSON).
func parseSource(data []byte, name string) (any, *yaml.Node, Errors) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, nil
	}
	if !isJSONName(name) {
		return parseYAML(data)
	}
	p := treeParser{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
	p.dec.UseNumber()
	root, err := p.value()
	if err == nil {
		if _, extra := p.dec.Token(); extra != io.EOF {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, Errors{{Msg: "invalid JSON: " + p.position() + err.Error()}}
	}
	return root, nil, p.errs
}

func isJSONName(name string) bool { return strings.EqualFold(extension(name), ".json") }

func extension(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 && !strings.ContainsAny(name[i:], `/\`) {
		return name[i:]
	}
	return ""
}

// yamlMessage makes the YAML library's error one line without the wrapper
// text that says nothing to an operator.
//
// Its messages quote at most a token of the file; they are clipped, as
// values in errors are.
func yamlMessage(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "exceeded max depth") {
		// The YAML library's own, looser cap.
		return errTooDeep.Error()
	}
	if len(msg) > 4*maxQuoted {
		msg = msg[:cutAt(msg, 4*maxQuoted)] + "..."
	}
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}

// MaxDepth is how deeply objects and lists may nest in a config file. The
// schema needs fewer than 10 levels; the cap stops a small hostile file
// (`[[[[...` 100,000 deep) from costing memory and time in every stage that
// walks the tree.
const MaxDepth = 64

// errTooDeep stops the tree parser at the first container past MaxDepth.
var errTooDeep = fmt.Errorf("objects and lists nested deeper than %d levels", MaxDepth)

// treeParser reads JSON tokens into a generic tree. encoding/json's own
// decoding into `any` lets a duplicate key silently win; reading tokens
// lets us report it with its path.
//
// The path of the value being read is kept as a stack of steps and only
// turned into a string when there is an error to report: building the
// string at every level costs memory quadratic in the depth.
type treeParser struct {
	dec  *json.Decoder
	data []byte
	errs Errors
	path pathStack
}

func (p *treeParser) value() (any, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		if len(p.path) >= MaxDepth {
			return nil, errTooDeep
		}
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
			p.path.pushKey(key)
			val, err := p.value()
			if err != nil {
				return nil, err
			}
			if _, dup := obj[key]; dup {
				p.errs = append(p.errs, FieldError{Path: p.path.String(), Msg: "duplicate key"})
			}
			p.path.pop()
			obj[key] = val
		}
		_, err := p.dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		list := []any{}
		for p.dec.More() {
			p.path.pushIndex(len(list))
			val, err := p.value()
			if err != nil {
				return nil, err
			}
			p.path.pop()
			list = append(list, val)
		}
		_, err := p.dec.Token() // ']'
		return list, err
	default:
		return tok, nil
	}
}

// pathStack is a path as steps, turned into a string such as
// `services[2].upstream` only when an error needs it.
type pathStack []pathStackStep

type pathStackStep struct {
	key   string
	index int // < 0: the step is key
}

func (s *pathStack) pushKey(key string) { *s = append(*s, pathStackStep{key: key, index: -1}) }
func (s *pathStack) pushIndex(i int)    { *s = append(*s, pathStackStep{index: i}) }
func (s *pathStack) pop()               { *s = (*s)[:len(*s)-1] }

func (s pathStack) String() string {
	path := ""
	for _, st := range s {
		if st.index < 0 {
			path = keyPath(path, st.key)
		} else {
			path = indexPath(path, st.index)
		}
	}
	return path
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

// Raw accepts any JSON value and keeps it as JSON text (a JSON schema's
// example); null is the same as absent (nil).
type Raw []byte

// decoder walks the generic tree against the schema types by reflection,
// using their json tags. It never stops at an error: each is recorded with
// its path and decoding goes on with the next value, so that one load
// reports everything wrong with a file. The path of the value being decoded
// is a stack of steps, made a string only for an error.
type decoder struct {
	errs  Errors
	path  pathStack
	cache *itemCache // a Loader's kept items (incremental.go); nil for Parse
}

var (
	ignoredType         = reflect.TypeFor[Ignored]()
	notSupportedType    = reflect.TypeFor[NotSupported]()
	rawType             = reflect.TypeFor[Raw]()
	varType             = reflect.TypeFor[Var]()
	pluginsType         = reflect.TypeFor[Plugins]()
	consumerPluginsType = reflect.TypeFor[ConsumerPlugins]()
	configType          = reflect.TypeFor[Config]()
)

// fail records an error at the current path. String arguments printed with
// %q are clipped to maxQuoted bytes.
func (d *decoder) fail(format string, args ...any) {
	d.errs = append(d.errs, FieldError{Path: d.path.String(), Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

func (d *decoder) wrongType(want string, in any) {
	d.fail("expected %s, got %s", want, describe(in))
}

// decode stores in into v, which must be settable. A JSON null is the same
// as an absent key: v keeps its default (pointers stay nil).
func (d *decoder) decode(in any, v reflect.Value) {
	if d.cache != nil && v.Type() == routeType {
		done, keep := d.reuseRoute(in, v)
		if done {
			return
		}
		d.cache.stats.RoutesDecoded++
		if keep != nil {
			n := len(d.errs)
			d.decodeValue(in, v)
			d.keepRoute(keep, v, n)
			return
		}
	}
	d.decodeValue(in, v)
}

func (d *decoder) decodeValue(in any, v reflect.Value) {
	if d.decodeSeedShape(in, v) { // types_seeds.go
		return
	}
	t := v.Type()
	switch t {
	case ignoredType:
		return
	case notSupportedType:
		d.fail("is not supported yet")
		return
	case rawType:
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				d.fail("cannot be read: %v", err)
				return
			}
			v.SetBytes(b)
		}
		return
	case varType:
		d.decodeVar(in, v)
		return
	case pluginsType, consumerPluginsType:
		d.decodePlugins(in, v, t == consumerPluginsType)
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
		d.decode(in, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(in, v)
	case reflect.Slice:
		list, ok := in.([]any)
		if !ok {
			d.wrongType("a list", in)
			return
		}
		// A present list replaces the default; it is never merged.
		s := reflect.MakeSlice(t, len(list), len(list))
		for i, item := range list {
			d.path.pushIndex(i)
			d.decode(item, s.Index(i))
			d.path.pop()
		}
		v.Set(s)
	case reflect.Map:
		obj, ok := in.(map[string]any)
		if !ok {
			d.wrongType("an object", in)
			return
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for k, val := range obj { // errors are sorted by path at the end
			elem := reflect.New(t.Elem()).Elem()
			d.path.pushKey(k)
			d.decode(val, elem)
			d.path.pop()
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
			d.fail("expected a string, got %s%s", describe(in), hint)
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := in.(bool)
		if !ok {
			d.wrongType("true or false", in)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := toInt(in)
		if !ok || v.OverflowInt(n) {
			d.wrongType("an integer", in)
			return
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		num, ok := in.(json.Number)
		f, err := num.Float64()
		if !ok || err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.wrongType("a number", in)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if types.go gains a field of a kind added here.
		panic(fmt.Sprintf("config: cannot decode into %s at %s", t, d.path))
	}
}

// decodeSecret decodes the value of a field tagged `secret:"true"`. Its
// value is never printed, not even when it has the wrong type: an
// unquoted numeric key is still the key.
func (d *decoder) decodeSecret(in any, v reflect.Value) {
	if in == nil {
		return
	}
	s, ok := in.(string)
	if !ok || v.Kind() != reflect.String {
		hint := ""
		switch in.(type) {
		case bool, json.Number:
			hint = " (quote it to make it a string)"
		}
		d.fail("expected a string, got %s%s; the value is not shown because it is a secret", kind(in), hint)
		return
	}
	s, msg, ok := resolveSecret(s)
	if !ok {
		d.fail("%s", msg)
		return
	}
	v.SetString(s)
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

func (d *decoder) decodeStruct(in any, v reflect.Value) {
	// Defaults first, even for a value of the wrong type, so that
	// validation sees a default object rather than a zero one.
	switch def := v.Addr().Interface().(type) {
	case defaulter:
		def.setDefaults()
	case Defaulter:
		def.SetDefaults()
	}
	obj, ok := in.(map[string]any)
	if !ok {
		switch {
		case v.Type() == configType:
			// The file as a whole: what is in it is not echoed, since
			// -c pointed at the wrong file may be any file.
			d.fail("the file must hold an object (a YAML mapping or JSON object) at the top level, got %s", kind(in))
		case holdsSecrets(v.Type()):
			// key-auth: "the-key" is a key in the wrong place.
			d.fail("expected an object, got %s; the value is not shown because it may be a secret", kind(in))
		default:
			d.wrongType("an object", in)
		}
		return
	}
	fields := jsonFields(v.Type())
	if v.Type() == configType && len(obj) > 0 && !anyKnown(obj, fields) {
		// Not a gateway config at all (-c pointed at the wrong file): its
		// keys are its content, and they are not echoed.
		d.fail("not a gateway config: none of its %d top-level keys is one of revision, gateway, services, upstreams, throttle_policies, consumers, gateway_responses, global_plugins, certificates, ca_certificates, snis (the keys are not shown)", len(obj))
		return
	}
	marks := fieldMarks(v.Type())
	for k, val := range obj { // errors are sorted by path at the end
		d.path.pushKey(k)
		i, known := fields[k]
		switch {
		case !known:
			d.fail("unknown key")
		case marks[i]&markSecret != 0:
			d.decodeSecret(val, v.Field(i))
		case marks[i]&markStatuses != 0 && d.decodeStatusString(v.Type().Field(i), val, v.Field(i)): // types_seeds.go
		default:
			d.decode(val, v.Field(i))
		}
		d.path.pop()
	}
}

// Marks of a struct field's tags that change how it decodes.
const (
	markSecret   = 1 << iota // secret:"true"
	markStatuses             // statuses:"..."
)

// markCache maps a struct type to the marks of its fields, by index:
// reading the tags for every key of every object is a tenth of decoding.
var markCache sync.Map

func fieldMarks(t reflect.Type) []uint8 {
	if m, ok := markCache.Load(t); ok {
		return m.([]uint8)
	}
	m := make([]uint8, t.NumField())
	for i := range m {
		f := t.Field(i)
		if isSecret(f) {
			m[i] |= markSecret
		}
		if f.Tag.Get("statuses") != "" {
			m[i] |= markStatuses
		}
	}
	markCache.Store(t, m)
	return m
}

// decodePlugins decodes a plugins object through the plugin registry: each
// name makes its plugin's config value, decoded strictly like the rest.
func (d *decoder) decodePlugins(in any, v reflect.Value, consumer bool) {
	if in == nil {
		return
	}
	obj, ok := in.(map[string]any)
	if !ok {
		d.wrongType("an object", in)
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(obj))
	for name, val := range obj { // errors are sorted by path at the end
		d.path.pushKey(name)
		def, known := LookupPlugin(name)
		newConf := (func() any)(nil)
		if known {
			newConf = def.Route
			if consumer {
				newConf = def.Consumer
			}
		}
		switch {
		case !known:
			d.fail("unknown plugin %q", name)
		case def.Route == nil && def.Consumer == nil:
			d.fail("%q is not set under plugins", name)
		case newConf == nil && consumer:
			d.fail("not supported on a consumer or credential")
		case newConf == nil:
			d.fail("not supported here (only on a consumer or credential)")
		default:
			if val == nil {
				// YAML's `key-auth:` with nothing after it is null; naming
				// a plugin means enabling it, so null is its empty config.
				val = map[string]any{}
			}
			conf := newConf()
			d.decode(val, reflect.ValueOf(conf).Elem())
			m.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(conf))
		}
		d.path.pop()
	}
	v.Set(m)
}

func anyKnown(obj map[string]any, fields map[string]int) bool {
	for k := range obj {
		if _, ok := fields[k]; ok {
			return true
		}
	}
	return false
}

// isSecret reports whether a field holds a secret (a key-auth key, a TLS
// private key, a token): its value is never printed in an error.
func isSecret(f reflect.StructField) bool { return f.Tag.Get("secret") == "true" }

// holdsSecrets reports whether a struct type has a secret field: a scalar
// written where it is expected may be that secret.
func holdsSecrets(t reflect.Type) bool {
	for i := range t.NumField() {
		if isSecret(t.Field(i)) {
			return true
		}
	}
	return false
}

// decodeVar reads `[var, op, value]` or `["!", var, op, value]`. Only the
// shape is checked here; names, operators and operands are validated with
// the route they belong to.
func (d *decoder) decodeVar(in any, v reflect.Value) {
	list, ok := in.([]any)
	if !ok {
		d.wrongType(`a list [var, op, value] or ["!", var, op, value]`, in)
		return
	}
	var out Var
	if len(list) > 0 && list[0] == "!" {
		out.Negate = true
		list = list[1:]
	}
	if len(list) != 3 {
		d.fail(`expected [var, op, value] or ["!", var, op, value], got %s`, describe(in))
		return
	}
	name, ok1 := list[0].(string)
	op, ok2 := list[1].(string)
	if !ok1 {
		d.fail("variable name must be a string, got %s", describe(list[0]))
	}
	if !ok2 {
		d.fail("operator must be a string, got %s", describe(list[1]))
	}
	if !ok1 || !ok2 {
		return
	}
	out.Name, out.Op = name, op
	if op == "in" || op == "ipmatch" {
		items, ok := list[2].([]any)
		if !ok {
			d.fail("operator %q needs a list value, got %s", op, describe(list[2]))
			return
		}
		out.Values = make([]string, 0, len(items))
		for _, item := range items {
			s, ok := scalarString(item)
			if !ok {
				d.fail("%s values must be strings or numbers, got %s", op, describe(item))
				return
			}
			out.Values = append(out.Values, s)
		}
	} else {
		s, ok := scalarString(list[2])
		if !ok {
			d.fail("operator %q needs a string or number value, got %s", op, describe(list[2]))
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

// describe names a value in an error message; strings and numbers are
// clipped to maxQuoted bytes.
func describe(in any) string {
	switch x := in.(type) {
	case string:
		return quote(x)
	case json.Number:
		return clip(string(x))
	case bool:
		return strconv.FormatBool(x)
	}
	return kind(in)
}

// kind names the type of a value without showing it.
func kind(in any) string {
	switch in.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", in)
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
