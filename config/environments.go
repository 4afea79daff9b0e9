package config

import (
	"fmt"
	"strings"
)

// Environment is a Huawei API Gateway environment: the variables of the
// one gateway.environment names replace `#name#` in route paths, service
// path prefixes, node hosts, upstream_host and proxy-rewrite values, at
// load.
type Environment struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Variables map[string]string `json:"variables"`
}

// substituteEnvironment replaces `#name#` in the places environment
// variables may be used, in the parsed tree before it is decoded, so that
// validation sees the values. A variable that the selected environment
// does not define is an error naming both.
func substituteEnvironment(root any) Errors { return substituteEnvironmentCached(root, nil) }

// substituteEnvironmentCached is substituteEnvironment leaving out the
// items a Loader kept, which have nothing to substitute (incremental.go).
func substituteEnvironmentCached(root any, c *itemCache) Errors {
	top, ok := root.(map[string]any)
	if !ok {
		return nil
	}
	var errs Errors
	selected := ""
	if gw, ok := top["gateway"].(map[string]any); ok {
		selected, _ = gw["environment"].(string)
	}
	var vars map[string]any
	found := false
	envs, _ := top["environments"].([]any)
	names := map[string]bool{}
	for i, e := range envs {
		m, ok := e.(map[string]any)
		if !ok {
			continue // the decoder reports the type
		}
		path := indexPath("environments", i)
		name, _ := m["name"].(string)
		if !validAPIEnvName(name) {
			errs = append(errs, FieldError{Path: field(path, "name"), Msg: fmt.Sprintf("must be 3 to 64 letters, digits and '_', starting with a letter, got %q", clipped(name))})
		}
		if names[name] {
			errs = append(errs, FieldError{Path: field(path, "name"), Msg: fmt.Sprintf("duplicate environment %q", clipped(name))})
		}
		names[name] = true
		vs, _ := m["variables"].(map[string]any)
		for k := range vs {
			if !validVarName(k) {
				errs = append(errs, FieldError{Path: field(field(path, "variables"), k), Msg: "a variable name is 3 to 32 letters, digits, '_' and '-', starting with a letter"})
			}
		}
		if name == selected && selected != "" {
			vars, found = vs, true
		}
	}
	if selected != "" && !found {
		errs = append(errs, FieldError{Path: "gateway.environment", Msg: fmt.Sprintf("environment %q is not defined in environments", clipped(selected))})
	}
	s := envSubst{selected: selected, vars: vars, errs: errs, found: found, cache: c}
	s.walk(top, false)
	return s.errs
}

type envSubst struct {
	selected string
	found    bool
	vars     map[string]any
	errs     Errors
	path     pathStack // made a string only where a value is substituted
	cache    *itemCache
}

// walk substitutes in strings below v when on is set, and decides on for
// the keys below: path_prefix, paths, upstream_host, a node's host, and
// everything under proxy-rewrite.
func (s *envSubst) walk(v any, on bool) {
	switch t := v.(type) {
	case map[string]any:
		if s.cache != nil && s.cache.entryOf(t) != nil {
			return // a kept item has no '#'
		}
		for k, child := range t {
			childOn := on
			switch k {
			case "path_prefix", "paths", "upstream_host", "proxy-rewrite":
				childOn = true
			case "host":
				childOn = on || s.inNodes()
			}
			s.path.pushKey(k)
			if str, ok := s.subst(child, childOn); ok {
				t[k] = str
			} else {
				s.walk(child, childOn)
			}
			s.path.pop()
		}
	case []any:
		for i, child := range t {
			s.path.pushIndex(i)
			if str, ok := s.subst(child, on); ok {
				t[i] = str
			} else {
				s.walk(child, on)
			}
			s.path.pop()
		}
	}
}

// subst returns v with its variables replaced if v is a string that may
// have any and on is set; ok is false for every other value, which is
// left as it is (storing each value back cost a tenth of a large load).
func (s *envSubst) subst(v any, on bool) (string, bool) {
	str, ok := v.(string)
	if !ok || !on || !strings.Contains(str, "#") {
		return "", false
	}
	return s.replace(str, s.path.String()), true
}

// inNodes reports whether the walk is in a list of nodes (`nodes` or
// `nodes[i]`, at any depth).
func (s *envSubst) inNodes() bool {
	p := s.path
	if n := len(p); n > 0 && p[n-1].index >= 0 {
		p = p[:n-1]
	}
	n := len(p)
	return n > 0 && p[n-1].index < 0 && p[n-1].key == "nodes"
}

func (s *envSubst) replace(v, path string) string {
	var b strings.Builder
	rest := v
	for {
		i := strings.IndexByte(rest, '#')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '#')
		if j < 0 || !validVarName(rest[i+1:i+1+j]) {
			b.WriteString(rest[:i+1])
			rest = rest[i+1:]
			continue
		}
		name := rest[i+1 : i+1+j]
		b.WriteString(rest[:i])
		rest = rest[i+j+2:]
		switch val, ok := s.vars[name].(string); {
		case !s.found:
			s.errs = append(s.errs, FieldError{Path: path, Msg: fmt.Sprintf("#%s# needs an environment: gateway.environment selects none", name)})
		case !ok:
			s.errs = append(s.errs, FieldError{Path: path, Msg: fmt.Sprintf("variable %q is not defined in environment %q", name, clipped(s.selected))})
		default:
			b.WriteString(val)
		}
	}
	b.WriteString(rest)
	return b.String()
}

func validAPIEnvName(s string) bool {
	return len(s) >= 3 && len(s) <= 64 && isLetter(s[0]) && strings.IndexFunc(s, func(r rune) bool {
		return !(r < 0x80 && (isLetter(byte(r)) || isDigit(byte(r)) || r == '_'))
	}) < 0
}

func validVarName(s string) bool {
	return len(s) >= 3 && len(s) <= 32 && isLetter(s[0]) && strings.IndexFunc(s, func(r rune) bool {
		return !(r < 0x80 && (isLetter(byte(r)) || isDigit(byte(r)) || r == '_' || r == '-'))
	}) < 0
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
