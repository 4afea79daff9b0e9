package config

import (
	"regexp"
	"slices"
	"strings"
)

// ReqParam is a Huawei API frontend request parameter (ReqParamBase): a
// route's req_params are checked before the request is forwarded.
type ReqParam struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Type         string `json:"type"`     // STRING or NUMBER
	Location     string `json:"location"` // PATH, QUERY or HEADER
	Required     int    `json:"required"` // 1: yes; 2: no (default; PATH is always required)
	ValidEnable  int    `json:"valid_enable"`
	Enumerations string `json:"enumerations"` // comma-separated allowed values
	MinNum       *int64 `json:"min_num"`
	MaxNum       *int64 `json:"max_num"`
	MinSize      *int64 `json:"min_size"`
	MaxSize      *int64 `json:"max_size"`
	SampleValue  string `json:"sample_value"`
	Remark       string `json:"remark"`

	DefaultValue *string `json:"default_value"` // forwarded when an optional parameter is absent
	PassThrough  int     `json:"pass_through"`  // 1: forwarded (default); 2: removed before forwarding
	Regular      *string `json:"regular"`       // with valid_enable 1: the whole value must match
	// Not supported yet: refused at load.
	JSONSchema *string `json:"json_schema"`
}

// RegularExpr is the regex that regular compiles to: the whole value must
// match.
func (p *ReqParam) RegularExpr() string { return `^(?:` + *p.Regular + `)$` }

// IsRequired reports whether a request must carry the parameter.
func (p *ReqParam) IsRequired() bool { return p.Required == 1 || p.Location == "PATH" }

// Validated reports whether the parameter's value is checked.
func (p *ReqParam) Validated() bool { return p.ValidEnable == 1 }

// EnumValues are the allowed values, none when any value is.
func (p *ReqParam) EnumValues() []string {
	var out []string
	for _, e := range strings.Split(p.Enumerations, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func validParamNameHuawei(s string) bool {
	return len(s) >= 1 && len(s) <= 32 && isLetter(s[0]) && strings.IndexFunc(s, func(r rune) bool {
		return !(r < 0x80 && (isLetter(byte(r)) || isDigit(byte(r)) || r == '_' || r == '-' || r == '.'))
	}) < 0
}

func (v *validator) reqParams(path string, ps []ReqParam, pathParams []string) {
	seen := map[string]bool{}
	for i := range ps {
		p := &ps[i]
		pp := indexPath(path, i)
		if !validParamNameHuawei(p.Name) {
			v.add(field(pp, "name"), "must be 1 to 32 letters, digits, '-', '_' and '.', starting with a letter, got %q", p.Name)
		}
		key := p.Location + " " + strings.ToLower(p.Name)
		if seen[key] {
			v.add(field(pp, "name"), "duplicate parameter %q in %s", p.Name, p.Location)
		}
		seen[key] = true
		v.oneOf(field(pp, "type"), p.Type, "STRING", "NUMBER")
		v.oneOf(field(pp, "location"), p.Location, "PATH", "QUERY", "HEADER")
		if p.Location == "PATH" && !slices.Contains(pathParams, p.Name) {
			v.add(field(pp, "name"), "PATH parameter %q is not a parameter of the route's paths", p.Name)
		}
		if p.Location == "HEADER" && !validHeaderName(p.Name) {
			v.add(field(pp, "name"), "invalid header name %q", p.Name)
		}
		if p.Required != 0 {
			v.intRange(field(pp, "required"), int64(p.Required), 1, 2)
		}
		if p.ValidEnable != 0 {
			v.intRange(field(pp, "valid_enable"), int64(p.ValidEnable), 1, 2)
		}
		for _, ns := range []struct {
			key string
			set bool
			typ string
		}{{"min_num", p.MinNum != nil, "NUMBER"}, {"max_num", p.MaxNum != nil, "NUMBER"}, {"min_size", p.MinSize != nil, "STRING"}, {"max_size", p.MaxSize != nil, "STRING"}} {
			if ns.set && p.Type != ns.typ {
				v.add(field(pp, ns.key), "applies to type %s only", ns.typ)
			}
		}
		if p.MinSize != nil && *p.MinSize < 0 || p.MaxSize != nil && *p.MaxSize < 0 {
			v.add(pp, "min_size and max_size must not be negative")
		}
		if p.Type == "NUMBER" {
			for _, e := range p.EnumValues() {
				if _, ok := ParseNumber([]byte(e)); !ok {
					v.add(field(pp, "enumerations"), "%q is not a NUMBER", e)
				}
			}
		}
		if p.JSONSchema != nil {
			v.add(field(pp, "json_schema"), "not supported yet")
		}
		if p.DefaultValue != nil {
			switch {
			case p.IsRequired():
				v.add(field(pp, "default_value"), "is only used by an optional parameter (required: 2, not PATH)")
			case *p.DefaultValue == "":
				v.add(field(pp, "default_value"), "must not be empty (an empty value counts as missing)")
			case strings.ContainsFunc(*p.DefaultValue, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				v.add(field(pp, "default_value"), "must not contain control characters")
			}
		}
		if p.Regular != nil {
			if _, err := regexp.Compile(p.RegularExpr()); err != nil {
				v.add(field(pp, "regular"), "invalid regex: %v", err)
			} else if !p.Validated() {
				v.add(field(pp, "regular"), "is checked only with valid_enable: 1")
			}
		}
		if p.PassThrough == 2 && p.Location == "PATH" {
			v.add(field(pp, "pass_through"), "2 (remove) cannot apply to a PATH parameter: the path is the path")
		}
		if p.PassThrough != 0 && p.PassThrough != 2 {
			v.intRange(field(pp, "pass_through"), int64(p.PassThrough), 1, 2)
		}
	}
}

// ParseNumber reads a NUMBER parameter: an optional sign and decimal
// digits (at most 18), without allocating.
func ParseNumber(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// BackendParam is a Huawei API backend parameter: a value added to the
// forwarded request, from a request parameter (REQUEST: value names one
// of the route's req_params), a constant, or the gateway (SYSTEM: value
// is one of SystemParams).
type BackendParam struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Location   string  `json:"location"` // QUERY, HEADER or PATH ({name} in proxy-rewrite's uri)
	Origin     string  `json:"origin"`   // REQUEST, CONSTANT or SYSTEM
	Value      string  `json:"value"`
	Remark     string  `json:"remark"`
	ReqParamID Ignored `json:"req_param_id"`
}

// SystemParams are the SYSTEM values of backend parameters.
var SystemParams = []string{"$context.requestId", "$context.sourceIp", "$context.apiName", "$context.appId", "$context.appName", "$context.requestTime"}

func (v *validator) backendParams(path string, bps []BackendParam, reqs []ReqParam) {
	for i := range bps {
		p := &bps[i]
		pp := indexPath(path, i)
		if !validParamNameHuawei(p.Name) {
			v.add(field(pp, "name"), "must be 1 to 32 letters, digits, '-', '_' and '.', starting with a letter, got %q", p.Name)
		}
		switch p.Location {
		case "PATH":
			if !validParamName(p.Name) {
				v.add(field(pp, "name"), "a PATH parameter is {name} in proxy-rewrite's uri: letters, digits and '_', got %q", p.Name)
			}
		case "HEADER":
			if !validHeaderName(p.Name) {
				v.add(field(pp, "name"), "invalid header name %q", p.Name)
			}
		default:
			v.oneOf(field(pp, "location"), p.Location, "QUERY", "HEADER", "PATH")
		}
		switch p.Origin {
		case "REQUEST":
			if !slices.ContainsFunc(reqs, func(r ReqParam) bool { return r.Name == p.Value }) {
				v.add(field(pp, "value"), "REQUEST origin names a parameter of req_params, %q is not one", p.Value)
			}
		case "SYSTEM":
			v.oneOf(field(pp, "value"), p.Value, SystemParams...)
		case "CONSTANT":
			for _, c := range []byte(p.Value) {
				if (c < 0x20 && c != '\t') || c == 0x7f {
					v.add(field(pp, "value"), "must not contain control characters")
					break
				}
			}
		default:
			v.oneOf(field(pp, "origin"), p.Origin, "REQUEST", "CONSTANT", "SYSTEM")
		}
	}
}
