// Package reqparams checks a route's Huawei request parameters
// (req_params, a route key, not under plugins): a missing required
// parameter or an invalid one is a 400 REQUEST_PARAMETERS_FAILURE naming
// it.
package reqparams

import (
	"bytes"

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
	msgMissing       []byte
	msgInvalid       []byte
}

type step struct {
	plugin.Stateless // no long-lived state: a reload may keep it (issue 20)
	params           []param
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	ps := conf.([]config.ReqParam)
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
		s.params = append(s.params, q)
	}
	return s, nil
}

// OnRequest checks every parameter.
func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	for i := range s.params {
		p := &s.params[i]
		v := lookup(r, p.loc, p.name)
		if len(v) == 0 {
			if p.required {
				r.Message = p.msgMissing
				return config.RespBadRequest
			}
			continue
		}
		if p.validate && !p.valid(v) {
			r.Message = p.msgInvalid
			return config.RespBadRequest
		}
	}
	return config.RespNone
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
	if p.number {
		n, ok := config.ParseNumber(v)
		return ok && (p.minNum == nil || n >= *p.minNum) && (p.maxNum == nil || n <= *p.maxNum)
	}
	return (p.minSize == nil || int64(len(v)) >= *p.minSize) && (p.maxSize == nil || int64(len(v)) <= *p.maxSize)
}
