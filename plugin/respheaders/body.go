package respheaders

import (
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
	"gateway/router"
)

// Filter is one of response-rewrite's filters: a regex substitution on the
// response body.
type Filter struct {
	Regex   string `json:"regex"`
	Scope   string `json:"scope"` // once (default) or global
	Replace string `json:"replace"`
	Options string `json:"options"` // APISIX's ngx.re options: i, m, s kept; j, o, u, d ignored
}

// SetDefaults implements config.Defaulter: APISIX's.
func (f *Filter) SetDefaults() { f.Scope, f.Options = "once", "jo" }

// regexFlags turns ngx.re options into RE2 flags.
func regexFlags(opts string) (string, bool) {
	var flags []byte
	for _, c := range []byte(opts) {
		switch c {
		case 'i', 'm', 's':
			flags = append(flags, c)
		case 'j', 'o', 'u', 'd':
		default:
			return "", false
		}
	}
	if len(flags) == 0 {
		return "", true
	}
	return "(?" + string(flags) + ")", true
}

// compileRegex compiles a filter's regex with its options.
func (f *Filter) compileRegex() (*regexp.Regexp, error) {
	flags, _ := regexFlags(f.Options)
	return regexp.Compile(flags + f.Regex)
}

func (f *Filter) validate(ch *config.Check) {
	if f.Regex == "" {
		ch.Field("regex").Errorf("is required")
	} else if _, ok := regexFlags(f.Options); !ok {
		ch.Field("options").Errorf("%q: supported are i, m, s (and j, o, u, d, which change nothing here)", f.Options)
	} else if _, err := f.compileRegex(); err != nil {
		ch.Field("regex").Errorf("invalid regex: %v", err)
	}
	ch.Field("scope").OneOf(f.Scope, "once", "global")
}

// Response variables of vars, beyond the request variables of
// routing.md.
type respVar uint8

const (
	varRequest        respVar = iota
	varStatus                 // status: the status the client gets
	varUpstreamStatus         // upstream_status: the node's, missing when it was not called
	varRespHeader             // sent_http_<name>, upstream_http_<name>
)

// checkVars parses vars: the response variables are read by the step;
// anything else is a request variable.
func checkVars(ch *config.Check, vars []config.Var) []respVar {
	kinds := make([]respVar, len(vars))
	for i := range vars {
		v := &vars[i]
		if v.Name == "" && v.Op == "" {
			continue // not decoded; the decoder has said why
		}
		switch {
		case v.Name == "status":
			kinds[i] = varStatus
		case v.Name == "upstream_status":
			kinds[i] = varUpstreamStatus
		case headerVar(v.Name) != "":
			kinds[i] = varRespHeader
		default:
			v.Ref = ch.Index(i).Var(v.Name) // a request variable
			continue
		}
		// A stand-in the router compiles the operator with; the step
		// reads the value itself.
		v.Ref = config.VarRef{Kind: config.VarHTTP, Arg: headerVar(v.Name)}
	}
	return kinds
}

// headerVar is the response header a sent_http_/upstream_http_ variable
// names ("" for another name).
func headerVar(name string) string {
	for _, p := range []string{"sent_http_", "upstream_http_"} {
		if arg, ok := strings.CutPrefix(name, p); ok && arg != "" {
			return strings.ReplaceAll(strings.ToLower(arg), "_", "-")
		}
	}
	return ""
}

type filter struct {
	re     *regexp.Regexp
	global bool
	repl   []byte
}

// bodyRewrite is response-rewrite's vars, body and filters, compiled.
type bodyRewrite struct {
	conds   *router.Conds
	kinds   []respVar
	names   [][]byte         // a response header / a request variable's argument
	vkinds  []config.VarKind // a request variable's kind
	body    []byte           // nil: the body is kept (filters may edit it)
	filters []filter
}

func compileBody(c *RewriteConfig) (*bodyRewrite, error) {
	b := &bodyRewrite{kinds: c.varKinds}
	if len(c.Vars) > 0 {
		conds, err := router.CompileConds(c.Vars)
		if err != nil {
			return nil, err
		}
		b.conds = conds
		for i := range c.Vars {
			b.names = append(b.names, []byte(c.Vars[i].Ref.Arg))
			b.vkinds = append(b.vkinds, c.Vars[i].Ref.Kind)
		}
	}
	if c.Body != nil {
		b.body = []byte(*c.Body)
		if c.BodyBase64 {
			d, err := base64.StdEncoding.DecodeString(*c.Body)
			if err != nil {
				return nil, err
			}
			b.body = d
		}
	}
	for i := range c.Filters {
		f := &c.Filters[i]
		re, err := f.compileRegex()
		if err != nil {
			return nil, err
		}
		b.filters = append(b.filters, filter{re: re, global: f.Scope == "global", repl: []byte(f.Replace)})
	}
	return b, nil
}

// match reports whether vars hold for this answer.
func (b *bodyRewrite) match(r *plugin.Request) bool {
	if b.conds == nil {
		return true
	}
	resp := &r.Ctx.Response
	for i := range b.kinds {
		var v []byte
		switch b.kinds[i] {
		case varStatus:
			r.Scratch = strconv.AppendInt(r.Scratch[:0], int64(resp.StatusCode()), 10)
			v = r.Scratch
		case varUpstreamStatus:
			if r.Forwarded && r.UpstreamFailure == config.RespNone {
				r.Scratch = strconv.AppendInt(r.Scratch[:0], int64(resp.StatusCode()), 10)
				v = r.Scratch
			}
		case varRespHeader:
			v = resp.Header.PeekBytes(b.names[i])
		default:
			v = r.Vars.Var(b.vkinds[i], b.names[i])
		}
		if !b.conds.Holds(i, v) {
			return false
		}
	}
	return true
}

var (
	hdrContentEncoding = []byte("Content-Encoding")
	hdrETag            = []byte("ETag")
	hdrLastModified    = []byte("Last-Modified")
)

// rewrite replaces or filters the body. The old body's validators and
// encoding no longer describe it (APISIX drops them too); Content-Length
// is set when the response is written.
func (b *bodyRewrite) rewrite(r *plugin.Request) {
	resp := &r.Ctx.Response
	switch sc := resp.StatusCode(); {
	case sc < 200, sc == 204, sc == 304:
		return // no body
	}
	if b.body != nil {
		resp.SetBodyRaw(b.body) // closes a streamed body (its connection is not reused)
		b.modified(resp)
		return
	}
	if len(b.filters) == 0 || resp.IsBodyStream() || len(resp.Header.PeekBytes(hdrContentEncoding)) > 0 {
		return // filters see buffered, uncompressed bodies only
	}
	body := resp.Body()
	changed := false
	for i := range b.filters {
		f := &b.filters[i]
		if f.global {
			if !f.re.Match(body) {
				continue
			}
			body = f.re.ReplaceAll(body, f.repl)
		} else {
			m := f.re.FindSubmatchIndex(body)
			if m == nil {
				continue
			}
			out := make([]byte, 0, len(body)+len(f.repl))
			out = append(out, body[:m[0]]...)
			out = f.re.Expand(out, f.repl, body, m)
			body = append(out, body[m[1]:]...)
		}
		changed = true
	}
	if changed {
		resp.SetBody(body)
		b.modified(resp)
	}
}

func (b *bodyRewrite) modified(resp *fasthttp.Response) {
	resp.Header.DelBytes(hdrContentEncoding)
	resp.Header.DelBytes(hdrETag)
	resp.Header.DelBytes(hdrLastModified)
}
