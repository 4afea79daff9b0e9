package config

import (
	"strings"
	"unicode/utf8"
)

// The fast YAML path (issue 20). yaml.v3 builds a node per value, with
// comments and positions, before yamlBuilder turns the nodes into the
// tree: two thirds of loading a 10,000-route file. fastYAML reads the
// subset of YAML that config files are written in straight into the same
// tree, and declines anything else, for parseYAML to read as before:
//
//   - block mappings and block sequences (also a sequence at its key's
//     indentation, and `- key: value` items), indented with spaces;
//   - flow mappings and sequences that close on the line they open on;
//   - plain, 'single-quoted' and "double-quoted" scalars on one line,
//     resolved as scalarValue resolves them;
//   - comments, blank lines, and a `---` line before the document.
//
// Lines end in "\n" or "\r\n". It declines anchors, aliases, tags, block
// scalars (| and >), scalars or flow collections over several lines,
// complex keys (?), merge keys (<<), duplicate keys, null keys, tabs, a
// carriage return that does not end a line, other control characters, a
// byte-order mark, directives, a second document, a bare scalar or flow
// collection on its own line, nesting past MaxDepth, and everything it
// does not recognise. What it accepts, yaml.v3 reads to a deep-equal tree
// (FuzzFastYAML); a file that has any error is loaded again through
// yaml.v3 (Parse), so errors and their lines are yaml.v3's.
//
// Strings of the tree are substrings of one copy of the file.

// fastYAML returns data's tree, or false when the fast path declines.
func fastYAML(data []byte) (any, bool) { return fastYAMLCached(data, nil) }

// fastYAMLCached is fastYAML reusing the trees of a Loader's unchanged
// sequence items (incremental.go); c may be nil.
func fastYAMLCached(data []byte, c *itemCache) (any, bool) {
	if !fastYAMLChars(data) {
		return nil, false
	}
	p := fastParser{src: string(data), cache: c}
	p.next(0)
	if !p.eof && p.ind == 0 && strings.HasPrefix(p.src[p.pos:], "---") {
		// A `---` line alone starts the document.
		if p.eol != p.pos+3 {
			return nil, false
		}
		p.marker = true // a marker after this one declines
		p.next(p.nextLine)
	}
	p.marker = true // from the second line on
	if p.bad || p.eof {
		return nil, false
	}
	root := p.node(p.ind, 0)
	if p.bad || !p.eof {
		return nil, false
	}
	return root, true
}

// fastYAMLChars says whether data has only characters the fast path
// handles: printable ASCII, newlines, and the non-ASCII characters YAML
// allows that are not line breaks or a byte-order mark.
func fastYAMLChars(data []byte) bool {
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && !(c == '\r' && i+1 < len(data) && data[i+1] == '\n') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if size == 1 || !(r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000 && r <= 0x10ffff) ||
			r == 0x2028 || r == 0x2029 || r == 0xfeff {
			return false
		}
		i += size
	}
	return true
}

// fastParser reads src line by line. The current line's content starts at
// pos (its indentation is ind) and ends at eol.
type fastParser struct {
	src       string
	lineStart int
	pos       int
	eol       int // before "\n" or "\r\n"
	nextLine  int
	ind       int
	eof       bool
	bad       bool       // declined
	marker    bool       // a line starting with --- or ... declines
	cache     *itemCache // a Loader's; nil for Parse
	topKey    string     // the top-level key being read (for cache)
	itemKey   string     // the key being read in a top-level list's item (for cache)
}

// maxFastKey bounds a key's bytes: YAML allows an implicit key of at most
// 1024 characters.
const maxFastKey = 512

// next moves to the first line at or after from that has content.
func (p *fastParser) next(from int) {
	for from < len(p.src) {
		end := strings.IndexByte(p.src[from:], '\n')
		nextLine := len(p.src)
		if end < 0 {
			end = len(p.src)
		} else {
			end += from
			nextLine = end + 1
			if end > from && p.src[end-1] == '\r' {
				end-- // CRLF
			}
		}
		i := from
		for i < end && p.src[i] == ' ' {
			i++
		}
		if i == end || p.src[i] == '#' {
			from = nextLine
			continue
		}
		if p.marker && i == from && (strings.HasPrefix(p.src[i:end], "---") || strings.HasPrefix(p.src[i:end], "...")) {
			p.bad = true // a document marker, or a scalar that looks like one
		}
		p.lineStart, p.pos, p.eol, p.nextLine, p.ind = from, i, end, nextLine, i-from
		return
	}
	p.eof, p.ind, p.lineStart, p.pos, p.eol, p.nextLine = true, -1, len(p.src), len(p.src), len(p.src), len(p.src)
}

// endLine accepts the rest of the line from pos (spaces, a comment) and
// moves to the next line with content.
func (p *fastParser) endLine() {
	i := p.pos
	for i < p.eol && p.src[i] == ' ' {
		i++
	}
	if i < p.eol && !(p.src[i] == '#' && p.src[i-1] == ' ') {
		p.bad = true
		return
	}
	p.next(p.nextLine)
}

// dash says whether a block sequence entry starts at i.
func (p *fastParser) dash(i int) bool {
	return p.src[i] == '-' && (i+1 == p.eol || p.src[i+1] == ' ')
}

// node reads the block collection whose first line's content is at pos,
// at column col.
func (p *fastParser) node(col, depth int) any {
	if p.dash(p.pos) {
		return p.seq(col, depth)
	}
	if _, _, ok := p.key(p.pos); ok {
		return p.mapping(col, depth)
	}
	p.bad = true // a scalar or a flow collection on a line of its own
	return nil
}

// mapping reads a block mapping at column col; pos is at its first key.
func (p *fastParser) mapping(col, depth int) any {
	if depth >= MaxDepth {
		p.bad = true
		return nil
	}
	m := make(map[string]any)
	for {
		key, after, ok := p.key(p.pos)
		if !ok || key == "<<" {
			p.bad = true
			return nil
		}
		if _, dup := m[key]; dup {
			p.bad = true
			return nil
		}
		switch depth {
		case 0:
			p.topKey = key
		case 2:
			p.itemKey = key
		}
		j := after
		for j < p.eol && p.src[j] == ' ' {
			j++
		}
		var v any
		if j == p.eol || p.src[j] == '#' {
			// The value is on the lines below, or null.
			p.next(p.nextLine)
			switch {
			case p.bad:
			case p.eof || p.ind < col:
			case p.ind == col:
				if p.dash(p.pos) {
					v = p.seq(col, depth+1)
				}
			default:
				v = p.node(p.ind, depth+1)
			}
		} else {
			p.pos = j
			v = p.lineValue(col, depth+1)
		}
		if p.bad {
			return nil
		}
		m[key] = v
		if p.eof || p.ind < col {
			return m
		}
		if p.ind > col {
			p.bad = true
			return nil
		}
	}
}

// lineValue reads the value at pos that ends its line, in a block
// collection at column col, and moves to the next line.
func (p *fastParser) lineValue(col, depth int) any {
	v := p.value(depth, false)
	if !p.bad {
		p.endLine()
	}
	if !p.eof && p.ind > col {
		p.bad = true // a scalar going on to the next line
	}
	return v
}

// seq reads a block sequence at column col; pos is at its first dash.
func (p *fastParser) seq(col, depth int) any {
	if depth >= MaxDepth {
		p.bad = true
		return nil
	}
	list := []any{}
	for {
		var v any
		if p.cache != nil && (depth == 1 || depth == 3) && p.ind == col && p.pos == p.lineStart+col {
			v = p.cachedItem(col, depth) // incremental.go
		} else {
			v = p.item(col, depth)
		}
		if p.bad {
			return nil
		}
		list = append(list, v)
		if p.eof || p.ind < col {
			return list
		}
		if p.ind > col {
			p.bad = true
			return nil
		}
		if !p.dash(p.pos) {
			return list // the next key of the mapping this is the value of
		}
	}
}

// item reads the entry of the block sequence at column col whose dash is
// at pos.
func (p *fastParser) item(col, depth int) any {
	j := p.pos + 1
	for j < p.eol && p.src[j] == ' ' {
		j++
	}
	var v any
	if j == p.eol || p.src[j] == '#' {
		p.next(p.nextLine)
		if !p.bad && !p.eof && p.ind > col {
			v = p.node(p.ind, depth+1)
		}
	} else {
		p.pos = j
		c := j - p.lineStart
		if p.dash(j) {
			v = p.seq(c, depth+1)
		} else if _, _, ok := p.key(j); ok {
			v = p.mapping(c, depth+1)
		} else {
			v = p.lineValue(col, depth+1)
		}
	}
	return v
}

// key reads the block mapping key at i: a plain or quoted scalar followed
// by ':' and a space or the end of the line. It returns the key and the
// index after the ':'; ok is false if there is no key at i.
func (p *fastParser) key(i int) (string, int, bool) {
	switch p.src[i] {
	case '\'', '"':
		s, end, ok := p.quoted(i)
		if !ok || end-i > maxFastKey || end >= p.eol || p.src[end] != ':' || end+1 < p.eol && p.src[end+1] != ' ' {
			return "", 0, false
		}
		return s, end + 1, true
	}
	if !p.plainStart(i) {
		return "", 0, false
	}
	for j := i; j < p.eol; j++ {
		switch p.src[j] {
		case ':':
			if j+1 == p.eol || p.src[j+1] == ' ' {
				if p.src[j-1] == ' ' || j-i > maxFastKey {
					return "", 0, false
				}
				k, ok := plainKey(p.src[i:j])
				return k, j + 1, ok
			}
		case '#':
			if p.src[j-1] == ' ' {
				return "", 0, false
			}
		}
	}
	return "", 0, false
}

// plainKey is a plain scalar as a map key, as keyString makes it.
func plainKey(s string) (string, bool) {
	switch s[0] {
	case 'y', 'Y', 'n', 'N', 't', 'T', 'f', 'F', 'o', 'O', '~', '.', '+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		k, msg := keyText(resolvePlain(s))
		return k, msg == ""
	}
	return s, true
}

// plainStart says whether a plain scalar the fast path reads starts at i.
func (p *fastParser) plainStart(i int) bool {
	switch p.src[i] {
	case '-':
		if i+1 == p.eol {
			return false
		}
		c := p.src[i+1]
		return c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ':
		return false
	}
	return true
}

// value reads the value at pos that ends on its line: a scalar or a flow
// collection; in a flow collection (flow) when inFlow. pos is left after
// it.
func (p *fastParser) value(depth int, inFlow bool) any {
	i := p.pos
	if i == p.eol {
		p.bad = true
		return nil
	}
	switch p.src[i] {
	case '[', '{':
		return p.flow(depth)
	case '\'', '"':
		s, end, ok := p.quoted(i)
		if !ok {
			p.bad = true
			return nil
		}
		p.pos = end
		return s
	}
	if !p.plainStart(i) {
		p.bad = true
		return nil
	}
	j := i
	for ; j < p.eol && !(inFlow && flowStop(p.src[j])); j++ {
		c := p.src[j]
		if c == ':' && (inFlow || j+1 == p.eol || p.src[j+1] == ' ') {
			p.bad = true // a mapping where it is not allowed; or in a flow, any ':'
			return nil
		}
		if c == '#' && p.src[j-1] == ' ' {
			if inFlow {
				p.bad = true // a comment inside a flow collection
				return nil
			}
			break
		}
	}
	p.pos = j
	for j > i && p.src[j-1] == ' ' {
		j--
	}
	return plainValue(p.src[i:j])
}

// plainValue is a plain scalar as a tree value, as scalarValue makes it.
func plainValue(s string) any {
	switch s[0] {
	case 'y', 'Y', 'n', 'N', 't', 'T', 'f', 'F', 'o', 'O', '~', '.', '+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return treeValue(resolvePlain(s), s)
	}
	return s
}

// flow reads the flow collection at pos, which must close on its line.
func (p *fastParser) flow(depth int) any {
	if depth >= MaxDepth {
		p.bad = true
		return nil
	}
	open := p.src[p.pos]
	p.pos++
	p.spaces()
	if open == '[' {
		list := []any{}
		if p.pos < p.eol && p.src[p.pos] == ']' {
			p.pos++
			return list
		}
		for !p.bad {
			list = append(list, p.value(depth+1, true))
			if p.bad || !p.flowNext(']') {
				return nil
			}
			if p.src[p.pos-1] == ']' {
				return list
			}
		}
		return nil
	}
	m := make(map[string]any)
	if p.pos < p.eol && p.src[p.pos] == '}' {
		p.pos++
		return m
	}
	for !p.bad {
		key, ok := p.flowKey()
		if !ok {
			p.bad = true
			return nil
		}
		if _, dup := m[key]; dup || key == "<<" {
			p.bad = true
			return nil
		}
		m[key] = p.value(depth+1, true)
		if p.bad || !p.flowNext('}') {
			return nil
		}
		if p.src[p.pos-1] == '}' {
			return m
		}
	}
	return nil
}

func (p *fastParser) spaces() {
	for p.pos < p.eol && p.src[p.pos] == ' ' {
		p.pos++
	}
}

// flowNext reads what follows an entry: ", " and the next entry's start,
// or the closing bracket (left just before pos).
func (p *fastParser) flowNext(closing byte) bool {
	p.spaces()
	if p.pos == p.eol {
		p.bad = true
		return false
	}
	switch p.src[p.pos] {
	case closing:
		p.pos++
		return true
	case ',':
		p.pos++
		p.spaces()
		if p.pos == p.eol || p.src[p.pos] == ']' || p.src[p.pos] == '}' || p.src[p.pos] == ',' {
			p.bad = true
			return false
		}
		return true
	}
	p.bad = true
	return false
}

// flowKey reads a flow mapping's key and the ': ' after it.
func (p *fastParser) flowKey() (string, bool) {
	i := p.pos
	if i == p.eol {
		return "", false
	}
	var key string
	end := i
	switch p.src[i] {
	case '\'', '"':
		s, e, ok := p.quoted(i)
		if !ok {
			return "", false
		}
		key, end = s, e
	default:
		if !p.plainStart(i) {
			return "", false
		}
		for end < p.eol && !flowStop(p.src[end]) && p.src[end] != ':' && p.src[end] != '#' {
			end++
		}
		if end == i || p.src[end-1] == ' ' {
			return "", false
		}
		k, ok := plainKey(p.src[i:end])
		if !ok {
			return "", false
		}
		key = k
	}
	if end-i > maxFastKey || end+1 >= p.eol || p.src[end] != ':' || p.src[end+1] != ' ' {
		return "", false
	}
	p.pos = end + 2
	p.spaces()
	return key, true
}

func flowStop(c byte) bool {
	switch c {
	case ',', '[', ']', '{', '}', '?':
		return true
	}
	return false
}

// quoted reads the quoted scalar at i, which must close on its line, and
// returns its value and the index after the closing quote.
func (p *fastParser) quoted(i int) (string, int, bool) {
	q := p.src[i]
	line := p.src[i+1 : p.eol]
	if q == '\'' {
		end := strings.IndexByte(line, '\'')
		if end < 0 {
			return "", 0, false
		}
		if end+1 == len(line) || line[end+1] != '\'' {
			return line[:end], i + 1 + end + 1, true
		}
		// '' is a quote.
		var b strings.Builder
		for k := 0; k < len(line); k++ {
			if line[k] != '\'' {
				b.WriteByte(line[k])
				continue
			}
			if k+1 < len(line) && line[k+1] == '\'' {
				b.WriteByte('\'')
				k++
				continue
			}
			return b.String(), i + 1 + k + 1, true
		}
		return "", 0, false
	}
	end := strings.IndexAny(line, `"\`)
	if end < 0 {
		return "", 0, false
	}
	if line[end] == '"' {
		return line[:end], i + 1 + end + 1, true
	}
	b := make([]byte, 0, len(line))
	for k := 0; k < len(line); k++ {
		c := line[k]
		if c == '"' {
			return string(b), i + 1 + k + 1, true
		}
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if k+1 == len(line) {
			return "", 0, false // an escaped line break
		}
		k++
		n := 0
		switch e := line[k]; e {
		case 'x':
			n = 2
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			r, ok := yamlEscapes[e]
			if !ok {
				return "", 0, false
			}
			b = append(b, r...)
		}
		if n == 0 {
			continue
		}
		if k+n >= len(line) {
			return "", 0, false
		}
		r := 0
		for _, h := range []byte(line[k+1 : k+1+n]) {
			var d byte
			switch {
			case h >= '0' && h <= '9':
				d = h - '0'
			case h >= 'a' && h <= 'f':
				d = h - 'a' + 10
			case h >= 'A' && h <= 'F':
				d = h - 'A' + 10
			default:
				return "", 0, false
			}
			r = r<<4 | int(d)
		}
		if r >= 0xd800 && r <= 0xdfff || r > 0x10ffff {
			return "", 0, false
		}
		b = utf8.AppendRune(b, rune(r))
		k += n
	}
	return "", 0, false
}

// yamlEscapes are the escapes of double-quoted scalars that stand for a
// fixed text, as yaml.v3 reads them.
var yamlEscapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", 'n': "\n", 'v': "\v", 'f': "\f", 'r': "\r", 'e': "\x1b",
	' ': " ", '"': "\"", '\'': "'", '\\': "\\", 'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}
