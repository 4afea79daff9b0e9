package reqparams

import (
	"time"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

// BackendPriority: after req_params has checked what backend parameters
// read, after authentication (appId/appName), before throttling.
const BackendPriority = 1490

func init() {
	plugin.Register(config.PluginDef{Name: plugin.BackendParamsPlugin, Priority: BackendPriority}, compileBackend)
}

const (
	fromConstant = iota
	fromRequest
	fromRequestID
	fromSourceIP
	fromAPIName
	fromConsumer
	fromRequestTime
)

var systemOrigins = map[string]int{
	"$context.requestId": fromRequestID, "$context.sourceIp": fromSourceIP, "$context.apiName": fromAPIName,
	"$context.appId": fromConsumer, "$context.appName": fromConsumer, "$context.requestTime": fromRequestTime,
}

type bparam struct {
	header   bool
	name     []byte
	from     int
	constant []byte // CONSTANT, and the API name
	reqLoc   byte
	reqName  []byte
}

type backendStep struct {
	plugin.Stateless // no long-lived state: a reload may keep it (issue 20)
	params           []bparam
}

func compileBackend(conf any, env *plugin.Env) (plugin.Step, error) {
	rc := conf.(*config.Route)
	apiName := rc.Name
	if apiName == "" {
		apiName = env.RouteID
	}
	s := &backendStep{}
	for _, p := range rc.BackendParams {
		b := bparam{header: p.Location == "HEADER", name: []byte(p.Name)}
		switch p.Origin {
		case "CONSTANT":
			b.constant = []byte(p.Value)
		case "SYSTEM":
			b.from = systemOrigins[p.Value]
			if b.from == fromAPIName {
				b.constant = []byte(apiName)
			}
		case "REQUEST":
			b.from = fromRequest
			for _, rp := range rc.ReqParams {
				if rp.Name == p.Value {
					b.reqName = []byte(rp.Name)
					switch rp.Location {
					case "QUERY":
						b.reqLoc = locQuery
					case "HEADER":
						b.reqLoc = locHeader
					}
				}
			}
		}
		s.params = append(s.params, b)
	}
	return s, nil
}

// OnRequest adds each parameter to the forwarded request: a header is
// set (replacing the client's), a query argument is appended.
func (s *backendStep) OnRequest(r *plugin.Request) config.ResponseType {
	for i := range s.params {
		p := &s.params[i]
		var v []byte
		switch p.from {
		case fromConstant, fromAPIName:
			v = p.constant
		case fromRequest:
			if v = lookup(r, p.reqLoc, p.reqName); len(v) == 0 {
				continue // an optional parameter the client did not send
			}
		case fromRequestID:
			v = r.RequestID
		case fromSourceIP:
			v = r.ClientIPB
		case fromConsumer:
			v = r.Consumer
		case fromRequestTime:
			r.Scratch = r.Now.UTC().AppendFormat(r.Scratch[:0], time.RFC3339)
			v = r.Scratch
		}
		if p.header {
			if p.from == fromRequest { // the others hold no control characters
				r.Scratch = appendHeaderSafe(r.Scratch[:0], v)
				v = r.Scratch
			}
			r.Ctx.Request.Header.DelBytes(p.name)
			r.Ctx.Request.Header.SetBytesKV(p.name, v)
			continue
		}
		if len(r.ExtraQuery) > 0 {
			r.ExtraQuery = append(r.ExtraQuery, '&')
		}
		r.ExtraQuery = fasthttp.AppendQuotedArg(r.ExtraQuery, p.name)
		r.ExtraQuery = append(r.ExtraQuery, '=')
		r.ExtraQuery = fasthttp.AppendQuotedArg(r.ExtraQuery, v)
	}
	return config.RespNone
}

// appendHeaderSafe appends v without control characters (a decoded query
// argument's %0D%0A), tab kept.
func appendHeaderSafe(dst, v []byte) []byte {
	for _, c := range v {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
