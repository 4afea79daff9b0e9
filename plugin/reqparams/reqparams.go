// Package reqparams checks a route's Huawei request parameters
// (req_params, a route key, not under plugins): a missing required
// parameter or an invalid one is a 400 REQUEST_PARAMETERS_FAILURE naming
// it.
package reqparams

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
	"gateway/router"
)

// Priority: after authentication and consumer-restriction (2400), before
// throttling (1010), so that an unauthenticated caller learns nothing of
// the API's parameters.
const Priority = 1500

func init() {
	// No Route or Consumer config: it is not a plugins entry.
	plugin.Register(config.PluginDef{Name: plugin.ReqParamsPlugin, Priority: Priority}, compile)
}

const (
	locPath byte = iota
	locQuery
	locHeader
)

type param struct {
	loc              byte
	name             []byte
	required         bool
	validate         bool
	number           bool
	enums            [][]byte
	minNum, maxNum   *int64
	minSize, maxSize *int64
	re               *regexp.Regexp // regular, anchored
	dflt             []byte         // default_value, forwarded when absent
	drop             bool           // pass_through 2
	msgMissing       []byte
	msgInvalid       []byte
}

type step struct {
	plugin.Stateless // no long-lived state: a reload may keep it (issue 20)
	params           []param
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	ps := conf.([]config.ReqParam)
	// A header a backend parameter sets replaces the client's anyway:
	// removing it (pass_through 2) would remove the backend's value.
	backendHeaders := map[string]bool{}
	if env.Route != nil && env.Route.Config != nil {
		for _, bp := range env.Route.Config.BackendParams {
			if bp.Location == "HEADER" {
				backendHeaders[strings.ToLower(bp.Name)] = true
			}
		}
	}
	rawURI := false
	if env.Route != nil {
		if eff, err := plugin.Effective(env.Config, env.Route); err == nil {
			if pr, ok := eff["proxy-rewrite"].(interface{ RawRequestURI() bool }); ok {
				rawURI = pr.RawRequestURI()
			}
		}
	}
	s := &step{}
	for i := range ps {
		p := &ps[i]
		q := param{
			name: []byte(p.Name), required: p.IsRequired(), validate: p.Validated(), number: p.Type == "NUMBER",
			minNum: p.MinNum, maxNum: p.MaxNum, minSize: p.MinSize, maxSize: p.MaxSize,
			msgMissing: []byte("parameter " + p.Name + " (" + p.Location + ") is required"),
			msgInvalid: []byte("parameter " + p.Name + " (" + p.Location + ") is invalid"),
		}
		switch p.Location {
		case "QUERY":
			q.loc = locQuery
		case "HEADER":
			q.loc = locHeader
		}
		for _, e := range p.EnumValues() {
			q.enums = append(q.enums, []byte(e))
		}
		if p.Regular != nil {
			re, err := regexp.Compile(p.RegularExpr())
			if err != nil {
				return nil, fmt.Errorf("req_params[%d].regular: %v", i, err)
			}
			q.re = re
		}
		q.drop = p.PassThrough == 2 && !(q.loc == locHeader && backendHeaders[strings.ToLower(p.Name)])
		if rawURI && q.loc == locQuery && q.drop {
			return nil, fmt.Errorf("req_params[%d].pass_through: 2 cannot remove a query argument that proxy-rewrite's use_real_request_uri_unsafe sends as received", i)
		}
		if p.DefaultValue != nil {
			q.dflt = []byte(*p.DefaultValue)
			if q.validate && !q.valid(q.dflt) {
				return nil, fmt.Errorf("req_params[%d].default_value: %q fails the parameter's own validation", i, *p.DefaultValue)
			}
		}
		s.params = append(s.params, q)
	}
	return s, nil
}

// OnRequest checks every parameter, forwards the default of an absent
// optional one, and marks those with pass_through 2 for removal.
func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	for i := range s.params {
		p := &s.params[i]
		v := lookup(r, p.loc, p.name)
		if len(v) == 0 {
			if p.required {
				r.Message = p.msgMissing
				return config.RespBadRequest
			}
			if p.drop {
				p.markDrop(r) // an empty one
			} else if p.dflt != nil {
				if p.loc == locQuery && r.Ctx.QueryArgs().HasBytes(p.name) {
					p.markDrop(r) // an empty one: the default replaces it
				}
				if p.loc == locHeader {
					r.Ctx.Request.Header.DelBytes(p.name) // an empty line
					r.Ctx.Request.Header.SetBytesKV(p.name, p.dflt)
				} else {
					if len(r.ExtraQuery) > 0 {
						r.ExtraQuery = append(r.ExtraQuery, '&')
					}
					r.ExtraQuery = fasthttp.AppendQuotedArg(r.ExtraQuery, p.name)
					r.ExtraQuery = append(r.ExtraQuery, '=')
					r.ExtraQuery = fasthttp.AppendQuotedArg(r.ExtraQuery, p.dflt)
				}
			}
			continue
		}
		if p.validate && !p.valid(v) {
			r.Message = p.msgInvalid
			return config.RespBadRequest
		}
		if p.drop {
			p.markDrop(r)
		}
	}
	return config.RespNone
}

// markDrop has the proxy remove the parameter from the forwarded request.
func (p *param) markDrop(r *plugin.Request) {
	if p.loc == locHeader {
		r.DropHeaders = append(r.DropHeaders, p.name)
	} else {
		r.DropQuery = append(r.DropQuery, p.name)
	}
}

// lookup reads a request parameter where it is.
func lookup(r *plugin.Request, loc byte, name []byte) []byte {
	switch loc {
	case locPath:
		return r.Vars.Var(router.VarPath, name)
	case locQuery:
		return r.Ctx.QueryArgs().PeekBytes(name)
	}
	return r.Ctx.Request.Header.PeekBytes(name)
}

func (p *param) valid(v []byte) bool {
	if len(p.enums) > 0 {
		found := false
		for _, e := range p.enums {
			if bytes.Equal(e, v) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if p.re != nil && !p.re.Match(v) {
		return false
	}
	if p.number {
		n, ok := config.ParseNumber(v)
		return ok && (p.minNum == nil || n >= *p.minNum) && (p.maxNum == nil || n <= *p.maxNum)
	}
	return (p.minSize == nil || int64(len(v)) >= *p.minSize) && (p.maxSize == nil || int64(len(v)) <= *p.maxSize)
}
