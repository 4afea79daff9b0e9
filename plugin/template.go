package plugin

import (
	"gateway/config"
	"gateway/router"
)

// Template is a config.ParseValueTemplate value made ready to render:
// literals, variables and regex captures. Variable values are escaped for
// where the result goes (Escape), literals are the config's own.
type Template struct {
	parts []tplPart
	// Static is the whole value when it has no variables (render it as is).
	Static []byte
}

type tplPart struct {
	lit     []byte
	isVar   bool
	kind    router.VarKind
	name    []byte
	capture int
}

// Escape says how a Template escapes what variables and captures render.
type Escape uint8

const (
	// EscapeHeader drops control characters (CR, LF, NUL...) but tab: a
	// header value cannot be split by a query argument's %0D%0A.
	EscapeHeader Escape = iota
	// EscapeURI percent-encodes: a variable keeps only unreserved
	// characters, and "." or ".." is encoded whole, so that a query
	// argument renders as one segment and cannot climb the path; a capture
	// or path parameter, taken from the request path that is already
	// normalised and encoded, also keeps '/', '%' and the characters a
	// path segment may hold.
	EscapeURI
)

// NewTemplate prebuilds a parsed value template.
func NewTemplate(t config.KeyTemplate) Template {
	var tp Template
	static := true
	for _, p := range t.Parts {
		switch {
		case p.Capture > 0:
			static = false
			tp.parts = append(tp.parts, tplPart{capture: p.Capture})
		case p.IsVar:
			static = false
			tp.parts = append(tp.parts, tplPart{isVar: true, kind: p.Var.Kind, name: []byte(p.Var.Arg)})
		default:
			tp.parts = append(tp.parts, tplPart{lit: []byte(p.Lit)})
		}
	}
	if static {
		tp.Static = []byte{}
		for _, p := range tp.parts {
			tp.Static = append(tp.Static, p.lit...)
		}
	}
	return tp
}

// HasCaptures reports whether the template reads regex captures.
func (t *Template) HasCaptures() bool {
	for i := range t.parts {
		if t.parts[i].capture > 0 {
			return true
		}
	}
	return false
}

// Append renders the template; variables come from src, captures from
// subject at the indices of match (regexp's FindSubmatchIndex; nil when
// nothing matched, and captures render empty).
func (t *Template) Append(dst []byte, src router.VarSource, subject []byte, match []int, esc Escape) []byte {
	if t.Static != nil {
		return append(dst, t.Static...)
	}
	for i := range t.parts {
		p := &t.parts[i]
		switch {
		case p.capture > 0:
			if 2*p.capture+1 < len(match) && match[2*p.capture] >= 0 {
				dst = appendEscaped(dst, subject[match[2*p.capture]:match[2*p.capture+1]], esc, true)
			}
		case p.isVar:
			dst = appendEscaped(dst, src.Var(p.kind, p.name), esc, p.kind == router.VarPath)
		default:
			dst = append(dst, p.lit...)
		}
	}
	return dst
}

const hexUpper = "0123456789ABCDEF"

func appendEscaped(dst, v []byte, esc Escape, fromPath bool) []byte {
	if esc == EscapeURI && !fromPath && (string(v) == "." || string(v) == "..") {
		for range v {
			dst = append(dst, "%2E"...)
		}
		return dst
	}
	for _, c := range v {
		if esc == EscapeHeader {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				continue
			}
			dst = append(dst, c)
			continue
		}
		if uriKeep(c, fromPath) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return dst
}

func uriKeep(c byte, fromPath bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~':
		return true
	case '/', '%', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return fromPath
	}
	return false
}

// AppendURIEscaped appends v encoded as EscapeURI renders a variable
// (fromPath false: only unreserved characters kept, "."/".." encoded
// whole) or a path parameter (fromPath true: already encoded).
func AppendURIEscaped(dst, v []byte, fromPath bool) []byte {
	return appendEscaped(dst, v, EscapeURI, fromPath)
}
