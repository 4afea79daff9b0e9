// Package respheaders holds the plugins that edit the response headers the
// client gets: Huawei's set_resp_headers and APISIX's response-rewrite
// (status_code and headers). Both run on every answer of their route, the
// node's or a gateway error.
package respheaders

import (
	"encoding/base64"
	"strings"

	"gateway/config"
	"gateway/plugin"
	"gateway/router"
)

// Names and priorities (response-rewrite's is APISIX's 899).
const (
	SetRespHeaders          = "set_resp_headers"
	SetRespHeadersPriority  = 898
	ResponseRewrite         = "response-rewrite"
	ResponseRewritePriority = 899
)

func init() {
	plugin.Register(config.PluginDef{Name: SetRespHeaders, Priority: SetRespHeadersPriority, Route: func() any { return &SetConfig{} }}, compileSet)
	plugin.Register(config.PluginDef{Name: ResponseRewrite, Priority: ResponseRewritePriority, Route: func() any { return &RewriteConfig{} }}, compileRewrite)
}

// Huawei's actions.
const (
	ActOverride = "override" // replace every value (add when absent)
	ActAppend   = "append"   // add ",value" to the present value (add when absent)
	ActDelete   = "delete"
	ActSkip     = "skip" // keep a present value, add when absent
	ActAdd      = "add"  // one more line, present or not
)

// SetConfig is set_resp_headers' plugin content.
type SetConfig struct {
	ResponseHeaders []RespHeader `json:"response_headers"`
}

// RespHeader is one header action of set_resp_headers.
type RespHeader struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Action string `json:"action"` // default override
}

// Validate implements config.Validating.
func (c *SetConfig) Validate(ch *config.Check) {
	if len(c.ResponseHeaders) == 0 {
		ch.Field("response_headers").Errorf("at least one header is required")
	}
	seen := map[string]bool{}
	for i, h := range c.ResponseHeaders {
		f := ch.Field("response_headers").Index(i)
		checkName(f.Field("name"), h.Name)
		if seen[strings.ToLower(h.Name)] {
			f.Field("name").Errorf("duplicate header %q", h.Name)
		}
		seen[strings.ToLower(h.Name)] = true
		if h.Action != "" {
			f.Field("action").OneOf(h.Action, ActOverride, ActAppend, ActDelete, ActSkip, ActAdd)
		}
		if h.Action != ActDelete {
			plugin.CheckHeaderValue(f.Field("value"), h.Value)
		}
	}
}

// RewriteConfig is APISIX response-rewrite.
type RewriteConfig struct {
	StatusCode int                   `json:"status_code"`
	Headers    *plugin.HeaderActions `json:"headers"`
	Body       *string               `json:"body"`
	BodyBase64 bool                  `json:"body_base64"`
	Filters    []Filter              `json:"filters"`
	Vars       []config.Var          `json:"vars"`
	varKinds   []respVar             // by Validate
}

// Validate implements config.Validating.
func (c *RewriteConfig) Validate(ch *config.Check) {
	if c.StatusCode != 0 {
		ch.Field("status_code").IntRange(int64(c.StatusCode), 200, 598)
	}
	if c.StatusCode == 0 && c.Headers == nil && c.Body == nil && len(c.Filters) == 0 {
		ch.Errorf("status_code, headers, body or filters is required")
	}
	if c.Headers != nil {
		c.Headers.Check(ch.Field("headers"), 0, checkName)
	}
	if c.Body != nil && len(c.Filters) > 0 {
		ch.Errorf("at most one of body and filters")
	}
	if c.BodyBase64 {
		if c.Body == nil {
			ch.Field("body_base64").Errorf("needs body")
		} else if _, err := base64.StdEncoding.DecodeString(*c.Body); err != nil {
			ch.Field("body").Errorf("is not base64 (body_base64 is true): %v", err)
		}
	}
	for i := range c.Filters {
		c.Filters[i].validate(ch.Field("filters").Index(i))
	}
	c.varKinds = checkVars(ch.Field("vars"), c.Vars)
	if len(c.Vars) > 0 {
		known := true
		for i := range c.Vars {
			known = known && c.Vars[i].Ref.Kind != config.VarNone
		}
		if _, err := router.CompileConds(c.Vars); known && err != nil {
			ch.Field("vars").Errorf("%v", err)
		}
	}
}

// framing are the headers that describe the message itself: the proxy
// owns them.
var framing = []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer"}

func checkName(ch *config.Check, name string) {
	ch.HeaderName(name)
	for _, f := range framing {
		if strings.EqualFold(name, f) {
			ch.Errorf("%s cannot be changed: the gateway sets it", f)
		}
	}
}

type action uint8

const (
	override action = iota
	appendTo
	deleteH
	skip
	addH
)

var actions = map[string]action{"": override, ActOverride: override, ActAppend: appendTo, ActDelete: deleteH, ActSkip: skip, ActAdd: addH}

type op struct {
	act   action
	name  []byte
	value plugin.Template
}

type step struct {
	status int
	ops    []op
	body   *bodyRewrite // response-rewrite

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

var comma = []byte(",")

func compileSet(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*SetConfig)
	s := &step{}
	for _, h := range c.ResponseHeaders {
		s.ops = append(s.ops, op{act: actions[h.Action], name: []byte(h.Name), value: plugin.NewTemplate(config.KeyTemplate{Parts: []config.KeyPart{{Lit: h.Value}}})})
	}
	return s, nil
}

func compileRewrite(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*RewriteConfig)
	s := &step{status: c.StatusCode}
	b, err := compileBody(c)
	if err != nil {
		return nil, err
	}
	s.body = b
	if h := c.Headers; h != nil {
		set, add, err := h.Compile(0)
		if err != nil {
			return nil, err
		}
		for _, a := range add {
			s.ops = append(s.ops, op{act: addH, name: a.Name, value: a.Value})
		}
		for _, name := range h.Remove {
			s.ops = append(s.ops, op{act: deleteH, name: []byte(name)})
		}
		for _, a := range set {
			s.ops = append(s.ops, op{act: override, name: a.Name, value: a.Value})
		}
	}
	return s, nil
}

// OnResponse applies the status and the header actions in order, then
// response-rewrite's body; response-rewrite does nothing unless its vars
// hold.
func (s *step) OnResponse(r *plugin.Request) {
	if s.body != nil {
		if !s.body.match(r) {
			return
		}
		defer s.body.rewrite(r)
	}
	resp := &r.Ctx.Response
	if s.status != 0 {
		resp.SetStatusCode(s.status)
	}
	h := &resp.Header
	for i := range s.ops {
		o := &s.ops[i]
		switch o.act {
		case deleteH:
			h.DelBytes(o.name)
			continue
		case skip:
			if h.PeekBytes(o.name) != nil {
				continue
			}
		}
		buf := r.Scratch[:0]
		if o.act == appendTo {
			if prior := h.PeekBytes(o.name); len(prior) > 0 {
				buf = append(append(buf, prior...), comma...)
			}
		}
		buf = o.value.Append(buf, r.Vars, nil, nil, plugin.EscapeHeader)
		r.Scratch = buf
		if o.act == addH {
			h.AddBytesKV(o.name, buf)
			continue
		}
		h.DelBytes(o.name) // Set alone replaces only the first of several lines
		h.SetBytesKV(o.name, buf)
	}
}
