package reqparams

import (
	"fmt"
	"strings"
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
	path     bool // location PATH: {name} in proxy-rewrite's uri
	name     []byte
	from     int
	constant []byte // CONSTANT, the API name, a REQUEST parameter's default_value
	reqLoc   byte
	reqName  []byte
	fromPath bool // REQUEST from a PATH req_param: already encoded
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
	var uri string
	if eff, err := plugin.Effective(env.Config, env.Route); err == nil {
		if pr, ok := eff["proxy-rewrite"].(interface{ URITemplate() string }); ok {
			uri = pr.URITemplate()
		}
	}
	for _, p := range rc.BackendParams {
		b := bparam{header: p.Location == "HEADER", path: p.Location == "PATH", name: []byte(p.Name)}
		if b.path && !strings.Contains(uri, "{"+p.Name+"}") {
			return nil, fmt.Errorf("backend parameter %q (location PATH) is not in the backend path: the route's proxy-rewrite uri must hold {%s}", p.Name, p.Name)
		}
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
					if rp.DefaultValue != nil {
						// A query default is only in the upstream query:
						// read it from here.
						b.constant = []byte(*rp.DefaultValue)
					}
					b.fromPath = rp.Location == "PATH"
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
				if v = p.constant; v == nil {
					continue // an optional parameter the client did not send
				}
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
		if p.path {
			start := len(r.PathBuf)
			r.PathBuf = plugin.AppendURIEscaped(r.PathBuf, v, p.fromPath)
			r.PathParams = append(r.PathParams, plugin.PathParam{Name: p.name, Start: start, End: len(r.PathBuf)})
			continue
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
