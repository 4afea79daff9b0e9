// Package proxyrewrite is APISIX's proxy-rewrite plugin: the upstream URI
// (a template, or the first matching regex_uri pattern's replacement),
// Host, method and request headers, applied to the path the route gives
// (after strip_path_prefix).
package proxyrewrite

import (
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "proxy-rewrite"

// Priority: after authentication and throttling, before the upstream
// call (APISIX 1008).
const Priority = 1008

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config.
type Config struct {
	URI                     string                `json:"uri"`
	RegexURI                []string              `json:"regex_uri"` // pattern, replacement, pattern, replacement...
	Host                    string                `json:"host"`
	Method                  string                `json:"method"`
	Headers                 *plugin.HeaderActions `json:"headers"`
	UseRealRequestURIUnsafe bool                  `json:"use_real_request_uri_unsafe"`
}

// URITemplate is uri as configured (backend_params of location PATH
// check that it holds their {name}).
func (c *Config) URITemplate() string { return c.URI }

// RawRequestURI reports use_real_request_uri_unsafe (the client's query is
// sent as received: req_params cannot edit it).
func (c *Config) RawRequestURI() bool { return c.UseRealRequestURIUnsafe }

// methods are APISIX's, but HEAD: a HEAD upstream would leave a GET
// client without the body its response head announces.
var methods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "LOCK", "UNLOCK", "PATCH", "TRACE"}

// captures is the largest number of groups of a regex_uri pattern.
func (c *Config) captures() int {
	n := 0
	for i := 0; i+1 < len(c.RegexURI); i += 2 {
		if re, err := regexp.Compile(c.RegexURI[i]); err == nil {
			n = max(n, re.NumSubexp())
		}
	}
	return min(n, 9)
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	if c.URI != "" {
		if _, err := config.ParseValueTemplate(c.URI, 0); err != nil {
			ch.Field("uri").Errorf("%v", err)
		} else if c.URI[0] != '/' && c.URI[0] != '$' && c.URI[0] != '{' {
			ch.Field("uri").Errorf("must start with '/' or a variable, got %q", c.URI)
		}
		checkValueChars(ch.Field("uri"), c.URI)
	}
	if len(c.RegexURI)%2 != 0 {
		ch.Field("regex_uri").Errorf("pattern and replacement pairs, got %d elements", len(c.RegexURI))
	}
	for i := 0; i+1 < len(c.RegexURI); i += 2 {
		re, err := regexp.Compile(c.RegexURI[i])
		if err != nil {
			ch.Field("regex_uri").Index(i).Errorf("%v", err)
			continue
		}
		if _, err := config.ParseValueTemplate(c.RegexURI[i+1], re.NumSubexp()); err != nil {
			ch.Field("regex_uri").Index(i+1).Errorf("%v", err)
		}
		checkValueChars(ch.Field("regex_uri").Index(i+1), c.RegexURI[i+1])
	}
	if c.UseRealRequestURIUnsafe && (c.URI != "" || len(c.RegexURI) > 0) {
		ch.Field("use_real_request_uri_unsafe").Errorf("cannot be used with uri or regex_uri")
	}
	if c.Host != "" && !validHost(c.Host) {
		ch.Field("host").Errorf("not a host[:port], got %q", c.Host)
	}
	if c.Method != "" {
		ch.Field("method").OneOf(c.Method, methods...)
	}
	if c.Headers != nil {
		c.Headers.Check(ch.Field("headers"), c.captures(), checkHeaderName)
	}
}

func checkHeaderName(ch *config.Check, name string) {
	ch.HeaderName(name)
	if strings.EqualFold(name, "Host") {
		ch.Errorf("Host is set with proxy-rewrite's host, not as a header")
	}
}

func checkValueChars(ch *config.Check, v string) {
	for _, c := range []byte(v) {
		if c < 0x20 || c == 0x7f || c == ' ' {
			ch.Errorf("must not contain spaces or control characters")
			return
		}
	}
}

func validHost(h string) bool {
	host := h
	if hp, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
		host = hp
	}
	if host == "" {
		return false
	}
	for _, c := range []byte(host) {
		if !(c == '-' || c == '.' || c == ':' || c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

type regexRule struct {
	re          *regexp.Regexp
	replacement plugin.Template
	noCaptures  bool // Match, not FindSubmatchIndex: no allocation
}

type step struct {
	uri        *plugin.Template
	regex      []regexRule
	rawURI     bool
	host       []byte
	method     []byte
	add, set   []plugin.HeaderAction
	remove     [][]byte
	capsNeeded bool // a header value reads a capture

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	s := &step{rawURI: c.UseRealRequestURIUnsafe}
	if c.URI != "" {
		t, err := config.ParseValueTemplate(c.URI, 0)
		if err != nil {
			return nil, err
		}
		tp := plugin.NewTemplate(t)
		s.uri = &tp
	}
	for i := 0; i+1 < len(c.RegexURI); i += 2 {
		re, err := regexp.Compile(c.RegexURI[i])
		if err != nil {
			return nil, err
		}
		t, err := config.ParseValueTemplate(c.RegexURI[i+1], re.NumSubexp())
		if err != nil {
			return nil, err
		}
		noCaps := true
		for _, p := range t.Parts {
			if p.Capture > 0 {
				noCaps = false
			}
		}
		s.regex = append(s.regex, regexRule{re: re, replacement: plugin.NewTemplate(t), noCaptures: noCaps})
	}
	if c.Host != "" {
		s.host = []byte(c.Host)
	}
	if c.Method != "" {
		s.method = []byte(c.Method)
	}
	if h := c.Headers; h != nil {
		var err error
		if s.set, s.add, err = h.Compile(c.captures()); err != nil {
			return nil, err
		}
		for _, a := range append(slices.Clone(s.set), s.add...) {
			s.capsNeeded = s.capsNeeded || a.Value.HasCaptures()
		}
		for _, name := range h.Remove {
			s.remove = append(s.remove, []byte(name))
		}
	}
	if s.capsNeeded {
		for i := range s.regex {
			s.regex[i].noCaptures = false
		}
	}
	return s, nil
}

// OnRequest sets the upstream URI, Host and method the proxy uses, and
// edits the request headers that are forwarded.
func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	var subject []byte
	var match []int
	switch {
	case s.rawURI:
		r.UpstreamURI, r.UpstreamURIRaw = r.Ctx.Request.Header.RequestURI(), true
	case s.uri != nil:
		r.URIBuf = s.uri.Append(append(r.URIBuf[:0], '/'), r.Vars, nil, nil, plugin.EscapeURI)
		r.UpstreamURI = absPath(r.URIBuf)
	case len(s.regex) > 0:
		subject = r.Path
		for i := range s.regex {
			rule := &s.regex[i]
			if rule.noCaptures {
				if !rule.re.Match(subject) {
					continue
				}
			} else if match = rule.re.FindSubmatchIndex(subject); match == nil {
				continue
			}
			r.URIBuf = rule.replacement.Append(append(r.URIBuf[:0], '/'), r.Vars, subject, match, plugin.EscapeURI)
			r.UpstreamURI = absPath(r.URIBuf)
			break
		}
	}
	if s.host != nil {
		r.UpstreamHost = s.host
	}
	if s.method != nil {
		r.UpstreamMethod = s.method
	}
	if s.add == nil && s.set == nil && s.remove == nil {
		return config.RespNone
	}
	h := &r.Ctx.Request.Header
	buf := r.Scratch
	for i := range s.add {
		hd := &s.add[i]
		buf = hd.Value.Append(buf[:0], r.Vars, subject, match, plugin.EscapeHeader)
		h.AddBytesKV(hd.Name, buf)
	}
	for _, name := range s.remove {
		h.DelBytes(name)
	}
	for i := range s.set {
		hd := &s.set[i]
		buf = hd.Value.Append(buf[:0], r.Vars, subject, match, plugin.EscapeHeader)
		h.DelBytes(hd.Name) // Set alone replaces only the first of several lines
		h.SetBytesKV(hd.Name, buf)
	}
	r.Scratch = buf
	return config.RespNone
}

// absPath is b, rendered after a '/' of its own, without that '/' when
// what was rendered already starts with one: a URI that renders empty or
// from a variable is still a path.
func absPath(b []byte) []byte {
	if len(b) > 1 && b[1] == '/' {
		return b[1:]
	}
	return b
}
