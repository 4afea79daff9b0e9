package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// This file owns the small grammars inside config strings: variable names,
// $variable key templates and route path patterns. Each is parsed here and
// nowhere else; validation reports what these parsers refuse, and router,
// plugin and proxy consume the typed values they return (see DESIGN.md,
// "Who owns which grammar").

// VarKind names a request variable that route vars and keys can read.
type VarKind uint8

// Variables of routing.md ("vars").
const (
	VarNone VarKind = iota
	VarURI
	VarRequestURI
	VarHost
	VarMethod
	VarRemoteAddr
	VarScheme
	VarServerPort
	VarArg
	VarHTTP
	VarCookie
	VarPath
	VarConsumerName
	VarSSLClientCN     // ssl_client_s_dn_cn: the mTLS-verified client's subject CN
	VarSSLClientVerify // ssl_client_verify: SUCCESS after mTLS, else NONE
)

var varKindNames = [...]string{
	VarNone:         "",
	VarURI:          "uri",
	VarRequestURI:   "request_uri",
	VarHost:         "host",
	VarMethod:       "request_method",
	VarRemoteAddr:   "remote_addr",
	VarScheme:       "scheme",
	VarServerPort:   "server_port",
	VarArg:          "arg_",
	VarHTTP:         "http_",
	VarCookie:       "cookie_",
	VarPath:         "path_",
	VarConsumerName: "consumer_name",

	VarSSLClientCN:     "ssl_client_s_dn_cn",
	VarSSLClientVerify: "ssl_client_verify",
}

// plainVarKinds are the variables without an argument; prefixVarKinds take
// the rest of the name as theirs.
var (
	plainVarKinds  = [...]VarKind{VarURI, VarRequestURI, VarHost, VarMethod, VarRemoteAddr, VarScheme, VarServerPort, VarConsumerName, VarSSLClientCN, VarSSLClientVerify}
	prefixVarKinds = [...]VarKind{VarArg, VarHTTP, VarCookie, VarPath}
)

// String returns the variable's config name, or its prefix ("arg_") for the
// kinds that take an argument.
func (k VarKind) String() string {
	if int(k) < len(varKindNames) {
		return varKindNames[k]
	}
	return "VarKind(" + strconv.Itoa(int(k)) + ")"
}

// VarRef is a parsed variable name: "http_x_user" is {VarHTTP, "x-user"},
// "arg_id" is {VarArg, "id"}, "uri" is {VarURI, ""}.
type VarRef struct {
	Kind VarKind
	// Arg is the argument of VarArg, VarCookie and VarPath as written, and
	// of VarHTTP as a header name: lower case, '_' read as '-', as nginx's
	// $http_ variables are.
	Arg string
}

// ParseVar parses a variable name of routing.md. It fails for an unknown
// name or an empty argument ("arg_").
func ParseVar(name string) (VarRef, error) {
	for _, k := range plainVarKinds {
		if name == varKindNames[k] {
			return VarRef{Kind: k}, nil
		}
	}
	for _, k := range prefixVarKinds {
		arg, ok := strings.CutPrefix(name, varKindNames[k])
		if !ok || arg == "" {
			continue
		}
		if k == VarHTTP {
			arg = strings.ReplaceAll(strings.ToLower(arg), "_", "-")
		}
		return VarRef{Kind: k, Arg: arg}, nil
	}
	return VarRef{}, fmt.Errorf("unknown variable %q", clipped(name))
}

// KeyTemplate is a parsed key: literals and variables, rendered per request
// into a chash key or a limit-count key. The zero value has no parts.
type KeyTemplate struct {
	Parts []KeyPart
}

// KeyPart is a literal (IsVar false) or a variable of a KeyTemplate.
type KeyPart struct {
	IsVar bool
	Lit   string
	Var   VarRef
	// Capture is a regex capture ($1..$9) of a value template
	// (ParseValueTemplate); 0 otherwise.
	Capture int
}

// VarKey is the template of one variable.
func VarKey(r VarRef) KeyTemplate { return KeyTemplate{Parts: []KeyPart{{IsVar: true, Var: r}}} }

// LiteralKey is the template that renders s for every request.
func LiteralKey(s string) KeyTemplate { return KeyTemplate{Parts: []KeyPart{{Lit: s}}} }

// ParseKeyTemplate parses a `$var` template such as
// `$remote_addr$http_user_agent`: every `$name` (the longest run of
// letters, digits and '_') must be a known variable and there must be at
// least one. Text between variables is kept literally.
func ParseKeyTemplate(t string) (KeyTemplate, error) {
	var k KeyTemplate
	for len(t) > 0 {
		i := strings.IndexByte(t, '$')
		if i != 0 {
			if i < 0 {
				i = len(t)
			}
			k.Parts = append(k.Parts, KeyPart{Lit: t[:i]})
			t = t[i:]
			continue
		}
		j := 1
		for j < len(t) && isWordByte(t[j]) {
			j++
		}
		r, err := ParseVar(t[1:j])
		if err != nil {
			return KeyTemplate{}, fmt.Errorf("unknown variable %q", t[:j])
		}
		k.Parts = append(k.Parts, KeyPart{IsVar: true, Var: r})
		t = t[j:]
	}
	if !slices.ContainsFunc(k.Parts, func(p KeyPart) bool { return p.IsVar }) {
		return KeyTemplate{}, errors.New("must contain at least one $variable")
	}
	return k, nil
}

// ParseValueTemplate parses a rewritten value (proxy-rewrite's uri, a
// regex_uri replacement, a header value): literal text, `$name` variables
// of routing.md, `{name}` path parameters (read as $path_name) and, when
// captures > 0, `$1`..`$9` regex captures up to captures. A '$' not
// followed by a letter, digit or '_' is literal; unlike a key, a value
// needs no variable.
func ParseValueTemplate(t string, captures int) (KeyTemplate, error) {
	var k KeyTemplate
	lit := func(s string) {
		if n := len(k.Parts); n > 0 && !k.Parts[n-1].IsVar && k.Parts[n-1].Capture == 0 {
			k.Parts[n-1].Lit += s
			return
		}
		k.Parts = append(k.Parts, KeyPart{Lit: s})
	}
	for len(t) > 0 {
		i := strings.IndexAny(t, "${")
		if i < 0 {
			lit(t)
			break
		}
		if i > 0 {
			lit(t[:i])
			t = t[i:]
		}
		if t[0] == '{' {
			j := strings.IndexByte(t, '}')
			if j < 0 || !validParamName(t[1:j]) {
				return KeyTemplate{}, errors.New("a '{' must start a {parameter} (letters, digits and '_')")
			}
			k.Parts = append(k.Parts, KeyPart{IsVar: true, Var: VarRef{Kind: VarPath, Arg: t[1:j]}})
			t = t[j+1:]
			continue
		}
		if len(t) > 1 && t[1] >= '0' && t[1] <= '9' {
			n := int(t[1] - '0')
			if n == 0 || n > captures {
				return KeyTemplate{}, fmt.Errorf("$%d is not a capture of regex_uri (it has %d)", n, captures)
			}
			k.Parts = append(k.Parts, KeyPart{Capture: n})
			t = t[2:]
			continue
		}
		j := 1
		for j < len(t) && isWordByte(t[j]) {
			j++
		}
		if j == 1 {
			lit("$")
			t = t[1:]
			continue
		}
		r, err := ParseVar(t[1:j])
		if err != nil {
			return KeyTemplate{}, fmt.Errorf("unknown variable %q", t[:j])
		}
		k.Parts = append(k.Parts, KeyPart{IsVar: true, Var: r})
		t = t[j:]
	}
	return k, nil
}

// ParseHashKey parses an upstream's chash key as hash_on says to read it
// (upstreams.md): a variable name, a header or cookie name, a template
// (vars_combinations), or the consumer. An empty key hashes on remote_addr.
func ParseHashKey(hashOn HashOn, key string) (KeyTemplate, error) {
	if key == "" && hashOn != HashOnConsumer {
		return VarKey(VarRef{Kind: VarRemoteAddr}), nil
	}
	switch hashOn {
	case HashOnHeader:
		if !validHeaderName(key) {
			return KeyTemplate{}, fmt.Errorf("invalid header name %q", clipped(key))
		}
		return VarKey(VarRef{Kind: VarHTTP, Arg: key}), nil
	case HashOnCookie:
		return VarKey(VarRef{Kind: VarCookie, Arg: key}), nil
	case HashOnConsumer:
		return VarKey(VarRef{Kind: VarConsumerName}), nil
	case HashOnVarsCombinations:
		return ParseKeyTemplate(key)
	}
	r, err := ParseVar(key)
	if err != nil {
		return KeyTemplate{}, err
	}
	return VarKey(r), nil
}

// PathParam reads one segment of a route path: a parameter is `{name}` or
// `:name` as a whole segment, name being letters, digits and '_'. It returns
// the parameter's name, or ok false for a literal segment, or an error for
// a segment that is neither.
func PathParam(seg string) (name string, ok bool, err error) {
	switch {
	case strings.HasPrefix(seg, "{"):
		if !strings.HasSuffix(seg, "}") {
			return "", false, errors.New("a {parameter} must be a whole segment")
		}
		name = seg[1 : len(seg)-1]
	case strings.HasPrefix(seg, ":"):
		name = seg[1:]
	case strings.ContainsAny(seg, "{}"):
		return "", false, errors.New("a {parameter} must be a whole segment")
	default:
		return "", false, nil
	}
	if !validParamName(name) {
		return "", false, fmt.Errorf("invalid parameter name %q (letters, digits and '_')", name)
	}
	return name, true, nil
}

// PathPattern is a parsed route path.
type PathPattern struct {
	// Canon is the path with parameter names erased, so that `/u/{id}` and
	// `/u/:x` compare equal.
	Canon  string
	Params []string // parameter names in order
	Wild   bool     // ends with '*'
}

// ParsePathPattern parses a route path (routing.md): '/'-separated
// segments, parameters as PathParam reads them, and a '*' that may only be
// the last character.
func ParsePathPattern(p string) (PathPattern, error) {
	if msg := checkPathChars(p); msg != "" {
		return PathPattern{}, errors.New(msg)
	}
	var pp PathPattern
	if i := strings.IndexByte(p, '*'); i >= 0 {
		if i != len(p)-1 {
			return PathPattern{}, errors.New("'*' may only be the last character")
		}
		pp.Wild = true
	}
	if !strings.ContainsAny(p, "{}:") {
		// No segment is a parameter: the path is its own canonical form
		// (most routes; validation parses every path of a reload twice).
		pp.Canon = p
		return pp, nil
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(p[1:], "/") {
		b.WriteByte('/')
		name, ok, err := PathParam(seg)
		if err != nil {
			return PathPattern{}, err
		}
		if !ok {
			b.WriteString(seg)
			continue
		}
		if slices.Contains(pp.Params, name) {
			return PathPattern{}, fmt.Errorf("duplicate parameter %q", name)
		}
		pp.Params = append(pp.Params, name)
		b.WriteString("{}")
	}
	pp.Canon = b.String()
	return pp, nil
}

// checkPathChars holds the rules route paths and path prefixes share. Request
// paths are normalised before matching (routing.md), so a pattern with an
// empty, "." or ".." segment could never match and is refused.
func checkPathChars(p string) string {
	switch {
	case p == "" || p[0] != '/':
		return "must start with '/'"
	case len(p) > maxPathLen:
		return fmt.Sprintf("must have at most %d characters", maxPathLen)
	case strings.ContainsAny(p, "?# \t"):
		return "must not contain '?', '#' or spaces"
	case strings.Contains(p, "//"):
		return "must not contain an empty segment"
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f {
			return "must not contain control characters"
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return `must not contain "." or ".." segments`
		}
	}
	return ""
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) {
			return false
		}
	}
	return true
}
