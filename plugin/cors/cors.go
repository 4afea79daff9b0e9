// Package cors is the cors plugin in two shapes: APISIX's (`allow_origins`,
// `allow_origins_by_regex`, `allow_credential`) and the content of Huawei's
// cors plugin (`allow_origin`, `allow_credentials`). Preflights are answered
// by the gateway (204, the upstream is not called); other requests with an
// Origin get the Access-Control-* headers on their response, including
// gateway-made errors.
package cors

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "cors"

// Priority: before everything else, so a preflight (which carries no
// credentials) is answered before authentication refuses it (APISIX 4000).
const Priority = 4000

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Defaults, as APISIX's.
const (
	defaultOrigins = "*"
	defaultMethods = "*"
	defaultHeaders = "*"
	defaultMaxAge  = 5
)

// allMethods is what `**` (and `*` where `*` cannot be sent) allows.
const allMethods = "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE"

// Config is the plugin's config: either shape, not both.
type Config struct {
	// APISIX.
	AllowOrigins        string   `json:"allow_origins"`
	AllowOriginsByRegex []string `json:"allow_origins_by_regex"`
	AllowCredential     *bool    `json:"allow_credential"`
	// Huawei.
	AllowOrigin      *string `json:"allow_origin"`
	AllowCredentials *bool   `json:"allow_credentials"`
	// Both.
	AllowMethods  string `json:"allow_methods"`
	AllowHeaders  string `json:"allow_headers"`
	ExposeHeaders string `json:"expose_headers"`
	MaxAge        *int64 `json:"max_age"`
}

func (c *Config) huawei() bool { return c.AllowOrigin != nil || c.AllowCredentials != nil }

func (c *Config) credentials() bool {
	if c.huawei() {
		return c.AllowCredentials != nil && *c.AllowCredentials
	}
	return c.AllowCredential != nil && *c.AllowCredential
}

func (c *Config) origins() string {
	o := c.AllowOrigins
	if c.AllowOrigin != nil {
		o = *c.AllowOrigin
	}
	if strings.TrimSpace(o) == "" {
		return defaultOrigins
	}
	return o
}

func orDefault(s, d string) string {
	if strings.TrimSpace(s) == "" {
		return d
	}
	return s
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	if c.huawei() && (c.AllowOrigins != "" || c.AllowOriginsByRegex != nil || c.AllowCredential != nil) {
		ch.Errorf("allow_origin/allow_credentials (Huawei) and allow_origins/allow_origins_by_regex/allow_credential (APISIX) cannot be mixed")
		return
	}
	if c.MaxAge != nil {
		ch.Field("max_age").IntRange(*c.MaxAge, -1, 1<<31-1)
	}
	for i, o := range splitList(c.origins()) {
		if o == "*" || o == "**" {
			continue
		}
		if !validOrigin(o) {
			key := "allow_origins"
			if c.huawei() {
				key = "allow_origin"
			}
			ch.Field(key).Index(i).Errorf("not an origin (scheme://host[:port]), got %q", o)
		}
	}
	for i, h := range splitList(c.AllowHeaders) {
		if h != "*" && h != "**" {
			ch.Field("allow_headers").Index(i).HeaderName(h)
		}
	}
	for i, h := range splitList(c.ExposeHeaders) {
		if h != "*" {
			ch.Field("expose_headers").Index(i).HeaderName(h)
		}
	}
	for i, m := range splitList(c.AllowMethods) {
		if m != "*" && m != "**" && !isToken(m) {
			ch.Field("allow_methods").Index(i).Errorf("not a method, got %q", m)
		}
	}
	for i, p := range c.AllowOriginsByRegex {
		if _, err := regexp.Compile(p); err != nil {
			ch.Field("allow_origins_by_regex").Index(i).Errorf("%v", err)
		}
	}
	if !c.credentials() {
		return
	}
	if c.huawei() {
		// Huawei's own sample: `*` with credentials. The Fetch standard
		// forbids sending `*` then, so the request's Origin is reflected.
		if hasStar(c.origins()) {
			ch.Field("allow_origin").Warnf("\"*\" with allow_credentials reflects any request's Origin: every site can make credentialed calls to this API")
		}
		return
	}
	for _, f := range []struct{ key, v string }{
		{"allow_origins", c.origins()}, {"allow_methods", orDefault(c.AllowMethods, defaultMethods)},
		{"allow_headers", orDefault(c.AllowHeaders, defaultHeaders)}, {"expose_headers", c.ExposeHeaders},
	} {
		if hasStar(f.v) {
			ch.Field(f.key).Errorf("\"*\" cannot be used with allow_credential (the Fetch standard forbids it); use \"**\" to allow any value explicitly")
		}
	}
}

func hasStar(list string) bool {
	for _, v := range splitList(list) {
		if v == "*" {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func validOrigin(o string) bool {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(rest, "/?# ") {
		return false
	}
	return isToken(scheme)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

var (
	hdrOrigin        = []byte("Origin")
	hdrReqMethod     = []byte("Access-Control-Request-Method")
	hdrReqHeaders    = []byte("Access-Control-Request-Headers")
	hdrAllowOrigin   = []byte("Access-Control-Allow-Origin")
	hdrAllowMethods  = []byte("Access-Control-Allow-Methods")
	hdrAllowHeaders  = []byte("Access-Control-Allow-Headers")
	hdrExposeHeaders = []byte("Access-Control-Expose-Headers")
	hdrMaxAge        = []byte("Access-Control-Max-Age")
	hdrAllowCreds    = []byte("Access-Control-Allow-Credentials")
	hdrVary          = []byte("Vary")
	strOrigin        = []byte("Origin")
	strTrue          = []byte("true")
	strStar          = []byte("*")
)

type step struct {
	anyOrigin     bool // send `*`
	reflectAll    bool // send the request's Origin, whatever it is
	origins       [][]byte
	regexes       []*regexp.Regexp
	methods       []byte
	headers       []byte // nil with reflectHeaders
	reflectHeads  bool   // send the preflight's Access-Control-Request-Headers
	expose        []byte
	maxAge        []byte // nil: not sent
	credentials   bool
	dependsOnOrig bool // the answer depends on Origin: Vary: Origin

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	s := &step{credentials: c.credentials()}
	for _, p := range c.AllowOriginsByRegex {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		s.regexes = append(s.regexes, re)
	}
	for _, o := range splitList(c.origins()) {
		switch o {
		case "*":
			if s.credentials {
				s.reflectAll = true // Huawei shape only: APISIX's refused it
			} else {
				s.anyOrigin = true
			}
		case "**":
			s.reflectAll = true
		default:
			s.origins = append(s.origins, []byte(o))
		}
	}
	if s.anyOrigin {
		s.reflectAll, s.origins, s.regexes = false, nil, nil
	}
	s.dependsOnOrig = !s.anyOrigin
	methods := orDefault(c.AllowMethods, defaultMethods)
	if m := strings.TrimSpace(methods); m == "**" || (m == "*" && s.credentials) {
		methods = allMethods
	}
	s.methods = []byte(methods)
	headers := strings.TrimSpace(orDefault(c.AllowHeaders, defaultHeaders))
	if headers == "**" || (headers == "*" && s.credentials) {
		s.reflectHeads = true
	} else {
		s.headers = []byte(headers)
	}
	if e := strings.TrimSpace(c.ExposeHeaders); e != "" {
		s.expose = []byte(e)
	}
	maxAge := int64(defaultMaxAge)
	if c.MaxAge != nil {
		maxAge = *c.MaxAge
	}
	if maxAge >= 0 {
		s.maxAge = strconv.AppendInt(nil, maxAge, 10)
	}
	return s, nil
}

// allowedOrigin is the Access-Control-Allow-Origin value for origin, nil
// when it is not allowed.
func (s *step) allowedOrigin(origin []byte) []byte {
	switch {
	case s.anyOrigin:
		return strStar
	case s.reflectAll:
		return origin
	}
	for _, o := range s.origins {
		if bytes.Equal(o, origin) {
			return origin
		}
	}
	for _, re := range s.regexes {
		if re.Match(origin) {
			return origin
		}
	}
	return nil
}

// OnRequest answers a preflight: OPTIONS with Origin and
// Access-Control-Request-Method.
func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	req := &r.Ctx.Request
	if !req.Header.IsOptions() {
		return config.RespNone
	}
	origin := req.Header.PeekBytes(hdrOrigin)
	if len(origin) == 0 || len(req.Header.PeekBytes(hdrReqMethod)) == 0 {
		return config.RespNone
	}
	resp := &r.Ctx.Response
	resp.SetStatusCode(fasthttp.StatusNoContent)
	resp.SkipBody = true
	if req.Header.ContentLength() != 0 {
		r.Ctx.SetConnectionClose() // the body is not read
	}
	if s.dependsOnOrig {
		resp.Header.AddBytesKV(hdrVary, strOrigin)
	}
	r.Answered = true
	ao := s.allowedOrigin(origin)
	if ao == nil {
		return config.RespNone // no ACAO: the browser refuses the call
	}
	h := &resp.Header
	h.SetBytesKV(hdrAllowOrigin, ao)
	h.SetBytesKV(hdrAllowMethods, s.methods)
	if s.reflectHeads {
		if rh := req.Header.PeekBytes(hdrReqHeaders); len(rh) > 0 {
			h.SetBytesKV(hdrAllowHeaders, rh)
		}
	} else {
		h.SetBytesKV(hdrAllowHeaders, s.headers)
	}
	if s.maxAge != nil {
		h.SetBytesKV(hdrMaxAge, s.maxAge)
	}
	if s.credentials {
		h.SetBytesKV(hdrAllowCreds, strTrue)
	}
	return config.RespNone
}

// OnResponse adds the CORS headers to the answer of a request with an
// allowed Origin.
func (s *step) OnResponse(r *plugin.Request) {
	origin := r.Ctx.Request.Header.PeekBytes(hdrOrigin)
	if len(origin) == 0 {
		return
	}
	h := &r.Ctx.Response.Header
	if s.dependsOnOrig {
		h.AddBytesKV(hdrVary, strOrigin)
	}
	ao := s.allowedOrigin(origin)
	if ao == nil {
		return
	}
	h.SetBytesKV(hdrAllowOrigin, ao)
	if s.expose != nil {
		h.SetBytesKV(hdrExposeHeaders, s.expose)
	}
	if s.credentials {
		h.SetBytesKV(hdrAllowCreds, strTrue)
	}
}
