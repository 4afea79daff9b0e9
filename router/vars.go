package router

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"gateway/config"
)

// VarKind names a request variable that route vars and keys can read. The
// grammar of variable names is config's (config.ParseVar); the router
// resolves VarURI, VarHost, VarMethod and VarPath itself and asks
// Request.Vars for the others.
type VarKind = config.VarKind

// Variables of routing.md, as config parses them.
const (
	VarURI          = config.VarURI
	VarRequestURI   = config.VarRequestURI
	VarHost         = config.VarHost
	VarMethod       = config.VarMethod
	VarRemoteAddr   = config.VarRemoteAddr
	VarScheme       = config.VarScheme
	VarServerPort   = config.VarServerPort
	VarArg          = config.VarArg
	VarHTTP         = config.VarHTTP
	VarCookie       = config.VarCookie
	VarPath         = config.VarPath
	VarConsumerName = config.VarConsumerName

	VarSSLClientCN     = config.VarSSLClientCN
	VarSSLClientVerify = config.VarSSLClientVerify
)

// VarSource reads the request variables the router cannot see in Request.
type VarSource interface {
	// Var returns the value of a variable, nil when missing. For VarArg,
	// VarHTTP, VarCookie name is the argument/header/cookie name (for
	// headers already converted from `http_x_user` to `x-user`, lower case).
	Var(kind VarKind, name []byte) []byte
}

// op is a vars operator.
type op uint8

const (
	opEq op = iota
	opNe
	opGt
	opGe
	opLt
	opLe
	opRegex
	opIRegex
	opIn
	opHas
	opIPMatch
)

var opNames = map[string]op{
	"==": opEq, "~=": opNe, "!=": opNe, ">": opGt, ">=": opGe, "<": opLt, "<=": opLe,
	"~~": opRegex, "~*": opIRegex, "in": opIn, "has": opHas, "ipmatch": opIPMatch,
}

// cond is one compiled `[var, op, value]`: everything a request needs to
// test it is parsed here once.
type cond struct {
	kind   VarKind
	op     op
	negate bool
	arg    []byte // VarArg, VarHTTP, VarCookie: the name given to VarSource
	pname  string // VarPath: the parameter name
	param  int    // VarPath: index of the parameter in the pattern, -1 if it has none of that name

	value    string
	num      float64
	re       *regexp.Regexp
	list     []string
	set      map[string]struct{} // opIn with many values
	prefixes []netip.Prefix
}

// inSetMin is the length from which `in` looks values up in a map instead of
// comparing them one by one.
const inSetMin = 8

// compileVars compiles a route's vars. Parameter indices are resolved later,
// per path, by bindParams.
func compileVars(vars []config.Var) ([]cond, error) {
	conds := make([]cond, 0, len(vars))
	for i, v := range vars {
		c, err := compileCond(v)
		if err != nil {
			return nil, &indexError{"vars", i, err}
		}
		conds = append(conds, c)
	}
	return conds, nil
}

func compileCond(v config.Var) (cond, error) {
	c := cond{negate: v.Negate, value: v.Value, param: -1}
	// config parsed the name at load (Var.Ref); a condition it could not
	// parse has no kind.
	ref := v.Ref
	if ref.Kind == config.VarNone {
		return c, fmt.Errorf("unknown variable %q", v.Name)
	}
	c.kind = ref.Kind
	switch ref.Kind {
	case VarArg, VarHTTP, VarCookie:
		c.arg = []byte(ref.Arg)
	case VarPath:
		c.pname = ref.Arg
	}
	var ok bool
	if c.op, ok = opNames[v.Op]; !ok {
		return c, fmt.Errorf("unknown operator %q", v.Op)
	}
	values := v.Values
	if len(values) == 0 && v.Value != "" {
		// A single value where a list is expected: ["remote_addr", "ipmatch", "10.0.0.0/8"].
		values = []string{v.Value}
	}
	var err error
	switch c.op {
	case opGt, opGe, opLt, opLe:
		if c.num, err = strconv.ParseFloat(v.Value, 64); err != nil {
			return c, fmt.Errorf("operator %s: %q is not a number", v.Op, v.Value)
		}
	case opRegex:
		if c.re, err = regexp.Compile(v.Value); err != nil {
			return c, fmt.Errorf("operator ~~: %w", err)
		}
	case opIRegex:
		if c.re, err = regexp.Compile("(?i)" + v.Value); err != nil {
			return c, fmt.Errorf("operator ~*: %w", err)
		}
	case opIn:
		c.list = values
		if len(values) >= inSetMin {
			c.set = make(map[string]struct{}, len(values))
			for _, s := range values {
				c.set[s] = struct{}{}
			}
		}
	case opIPMatch:
		for _, s := range values {
			p, err := parsePrefix(s)
			if err != nil {
				return c, fmt.Errorf("operator ipmatch: %q is not an IP or CIDR", s)
			}
			c.prefixes = append(c.prefixes, p)
		}
	}
	return c, nil
}

// parsePrefix parses an IP (as a one-address prefix) or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// bindParams resolves the path_<name> conditions of conds against the
// parameter names of one pattern; conds is copied only when it has any.
func bindParams(conds []cond, names []string) []cond {
	out := conds
	copied := false
	for i := range conds {
		if conds[i].kind != VarPath {
			continue
		}
		if !copied {
			out, copied = slices.Clone(conds), true
		}
		out[i].param = slices.Index(names, out[i].pname)
	}
	return out
}

// holds reports whether c holds for value v; missing is a variable that the
// request does not have.
func (c *cond) holds(v []byte, missing bool) bool {
	return c.test(v, missing) != c.negate
}

func (c *cond) test(v []byte, missing bool) bool {
	if missing {
		// A missing variable is the empty string that fails every
		// operator but "not equal" (routing.md).
		return c.op == opNe
	}
	switch c.op {
	case opEq:
		return string(v) == c.value
	case opNe:
		return string(v) != c.value
	case opGt, opGe, opLt, opLe:
		f, ok := parseNumber(v)
		if !ok {
			return false
		}
		switch c.op {
		case opGt:
			return f > c.num
		case opGe:
			return f >= c.num
		case opLt:
			return f < c.num
		}
		return f <= c.num
	case opRegex, opIRegex:
		return c.re.Match(v)
	case opIn:
		if c.set != nil {
			_, ok := c.set[string(v)]
			return ok
		}
		for _, s := range c.list {
			if string(v) == s {
				return true
			}
		}
		return false
	case opHas:
		for len(v) > 0 {
			item := v
			if j := bytes.IndexByte(v, ','); j >= 0 {
				item, v = v[:j], v[j+1:]
			} else {
				v = nil
			}
			if string(trimSpace(item)) == c.value {
				return true
			}
		}
		return false
	case opIPMatch:
		a, ok := parseAddr(v)
		if !ok {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return false
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// maxNumberLen bounds what parseNumber accepts, so that no accepted input can
// overflow or underflow a float64 (|exponent| <= 64+99 digits): ParseFloat
// then never fails, and its error, which is allocated, never happens.
const maxNumberLen = 64

// parseNumber parses a decimal number, [+-]digits[.digits][e[+-]d[d]],
// without allocating. Anything else (hex, inf, nan, junk) is not a number.
func parseNumber(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > maxNumberLen {
		return 0, false
	}
	i := 0
	if b[0] == '+' || b[0] == '-' {
		i++
	}
	digits := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && isDigit(b[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		n := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			n++
		}
		if n == 0 || n > 2 {
			return 0, false
		}
	}
	if i != len(b) {
		return 0, false
	}
	// The string view of b lives only for the call; ParseFloat keeps no
	// reference to it. A string(b) conversion would allocate per request.
	f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
	return f, err == nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseAddr parses an IPv4 or IPv6 address without allocating: IPv4 by
// hand, IPv6 through netip.ParseAddr on a string view of b. Zones are
// refused (netip would allocate them and a client address has none).
// IPv4-mapped IPv6 addresses are unmapped so that 10.0.0.0/8 matches
// ::ffff:10.1.2.3.
func parseAddr(b []byte) (netip.Addr, bool) {
	if a, ok := parseIPv4(b); ok {
		return a, true
	}
	if len(b) < 2 || len(b) > 45 || bytes.IndexByte(b, ':') < 0 {
		return netip.Addr{}, false
	}
	for _, c := range b {
		if unhex(c) > 15 && c != ':' && c != '.' {
			return netip.Addr{}, false
		}
	}
	// The string view does not outlive the call: netip.Addr holds no
	// reference to its input. Only a malformed IPv6 address that passed the
	// check above allocates, for its error.
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseIPv4 parses a dotted quad with no leading zeros, as netip does.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var ip [4]byte
	n := 0
	for i := 0; i < 4; i++ {
		if i > 0 {
			if n >= len(b) || b[n] != '.' {
				return netip.Addr{}, false
			}
			n++
		}
		start, v := n, 0
		for n < len(b) && isDigit(b[n]) && n-start < 3 {
			v = v*10 + int(b[n]-'0')
			n++
		}
		if n == start || v > 255 || (n-start > 1 && b[start] == '0') {
			return netip.Addr{}, false
		}
		ip[i] = byte(v)
	}
	if n != len(b) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}
