// Package breaker is Huawei API Gateway's circuit breaker plugin
// (`breaker`): it counts backend timeouts or responses that match a
// condition, opens after a threshold within a time window, then answers
// with a downgrade response (or 503) without calling the backend, and after
// open_breaker_time lets one probe through (half-open).
package breaker

import (
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "breaker"

// Priority: after authentication and throttling (Huawei's breaker comes
// after them); 1006 is unique among the gateway's plugins.
const Priority = 1006

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config (Huawei BreakerContent).
type Config struct {
	BreakerCondition    Condition   `json:"breaker_condition"`
	DowngradeDefault    *Downgrade  `json:"downgrade_default"`
	DowngradeParameters []Parameter `json:"downgrade_parameters"`
	DowngradeRules      []Rule      `json:"downgrade_rules"`
	Scope               string      `json:"scope"`
	parsed              condition   // unhealthy_condition, by Validate
}

// Condition is breaker_condition.
type Condition struct {
	BreakerType         string `json:"breaker_type"`
	BreakerMode         string `json:"breaker_mode"`
	UnhealthyCondition  string `json:"unhealthy_condition"`
	UnhealthyThreshold  int    `json:"unhealthy_threshold"`
	MinCallThreshold    int    `json:"min_call_threshold"`
	UnhealthyPercentage int    `json:"unhealthy_percentage"`
	TimeWindow          int    `json:"time_window"`
	OpenBreakerTime     int    `json:"open_breaker_time"`
}

// Downgrade is downgrade_default or a rule's downgrade_backend
// (PluginBreakerDowngradeInfo): what an open breaker answers. A mock's
// fields are taken flat or, as Huawei's sample writes them, under
// mock_info.
type Downgrade struct {
	Type          string            `json:"type"`
	StatusCode    int               `json:"status_code"`
	ResultContent string            `json:"result_content"`
	Headers       []plugin.HeaderKV `json:"headers"`
	MockInfo      *MockInfo         `json:"mock_info"`
	// Huawei's other downgrade backends: null is accepted (its sample
	// writes them all), a value is refused.
	PassthroughInfos *config.Ignored `json:"passthrough_infos"`
	FuncInfo         *config.Ignored `json:"func_info"`
	HTTPInfo         *config.Ignored `json:"http_info"`
	HTTPVPCInfo      *config.Ignored `json:"http_vpc_info"`
}

// MockInfo is a mock downgrade's response.
type MockInfo struct {
	StatusCode    int               `json:"status_code"`
	ResultContent string            `json:"result_content"`
	Headers       []plugin.HeaderKV `json:"headers"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Scope = "basic"
	c.BreakerCondition.SetDefaults()
}

// SetDefaults implements config.Defaulter: Huawei's sample values.
func (bc *Condition) SetDefaults() {
	*bc = Condition{
		BreakerMode: "counter", UnhealthyThreshold: 30, MinCallThreshold: 20,
		UnhealthyPercentage: 51, TimeWindow: 15, OpenBreakerTime: 15,
	}
}

// MaxTimeWindow bounds time_window and open_breaker_time (seconds).
const MaxTimeWindow = 3600

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	c.parsed = validateCondition(ch.Field("breaker_condition"), &c.BreakerCondition)
	if d := c.DowngradeDefault; d != nil {
		validateDowngrade(ch.Field("downgrade_default"), d)
	}
	defined := map[string]param{}
	for name, p := range builtinParams {
		defined[name] = p
	}
	for i := range c.DowngradeParameters {
		p := &c.DowngradeParameters[i]
		pc := ch.Field("downgrade_parameters").Index(i)
		if p.Name == "" {
			pc.Field("name").Errorf("is required")
			continue
		}
		pp, err := parseParameter(p)
		if err != nil {
			pc.Errorf("%v", err)
			continue
		}
		defined[p.Name] = pp
	}
	names := map[string]bool{}
	for i := range c.DowngradeRules {
		r := &c.DowngradeRules[i]
		rc := ch.Field("downgrade_rules").Index(i)
		if r.RuleName == "" {
			rc.Field("rule_name").Errorf("is required")
		} else if names[r.RuleName] {
			rc.Field("rule_name").Errorf("%q is used by another rule", r.RuleName)
		}
		names[r.RuleName] = true
		usable := defined
		if len(r.Parameters) > 0 {
			usable = map[string]param{}
			for j, name := range r.Parameters {
				p, ok := defined[name]
				if !ok {
					rc.Field("parameters").Index(j).Errorf("%q is not in downgrade_parameters", name)
				}
				usable[name] = p
			}
		}
		if r.MatchRegex == "" {
			rc.Field("match_regex").Errorf("is required")
		} else if e, err := parseExpr(r.MatchRegex, usable); err != nil {
			rc.Field("match_regex").Errorf("%v", err)
		} else {
			r.expr = e
		}
		if r.BreakerCondition != nil {
			r.parsedCond = validateCondition(rc.Field("breaker_condition"), r.BreakerCondition)
		}
		if r.DowngradeBackend != nil {
			validateDowngrade(rc.Field("downgrade_backend"), r.DowngradeBackend)
		}
	}
	ch.Field("scope").OneOf(c.Scope, "basic", "share")
}

func validateCondition(cc *config.Check, bc *Condition) condition {
	var cond condition
	cc.Field("breaker_type").OneOf(bc.BreakerType, "timeout", "condition")
	cc.Field("breaker_mode").OneOf(bc.BreakerMode, "counter", "percentage")
	if bc.BreakerType == "condition" {
		var err error
		cond, err = parseCondition(bc.UnhealthyCondition)
		if err != nil {
			cc.Field("unhealthy_condition").Errorf("%v", err)
		}
	} else if bc.UnhealthyCondition != "" {
		cc.Field("unhealthy_condition").Errorf(`is only used with breaker_type "condition"`)
	}
	cc.Field("unhealthy_threshold").IntRange(int64(bc.UnhealthyThreshold), 1, 1<<31-1)
	cc.Field("min_call_threshold").IntRange(int64(bc.MinCallThreshold), 1, 1<<31-1)
	cc.Field("unhealthy_percentage").IntRange(int64(bc.UnhealthyPercentage), 1, 100)
	cc.Field("time_window").IntRange(int64(bc.TimeWindow), 1, MaxTimeWindow)
	cc.Field("open_breaker_time").IntRange(int64(bc.OpenBreakerTime), 1, MaxTimeWindow)
	return cond
}

func validateDowngrade(dc *config.Check, d *Downgrade) {
	dc.Field("type").OneOf(d.Type, "mock", "passthrough", "none")
	for _, o := range []struct {
		key string
		set bool
	}{{"passthrough_infos", d.PassthroughInfos != nil}, {"func_info", d.FuncInfo != nil},
		{"http_info", d.HTTPInfo != nil}, {"http_vpc_info", d.HTTPVPCInfo != nil}} {
		if o.set {
			dc.Field(o.key).Errorf("is not supported yet (only mock, passthrough and none downgrades)")
		}
	}
	if m := d.MockInfo; m != nil {
		if d.StatusCode != 0 || d.ResultContent != "" || len(d.Headers) > 0 {
			dc.Errorf("status_code, result_content and headers are given both flat and under mock_info")
		}
		d.StatusCode, d.ResultContent, d.Headers, d.MockInfo = m.StatusCode, m.ResultContent, m.Headers, nil
		if d.Type != "mock" {
			dc.Field("mock_info").Errorf(`is only used with type "mock"`)
			return
		}
	}
	if d.Type == "mock" {
		dc.Field("status_code").IntRange(int64(d.StatusCode), 100, 599)
		for i, h := range d.Headers {
			dc.Field("headers").Index(i).Field("key").HeaderName(h.Key)
		}
	} else if d.StatusCode != 0 || d.ResultContent != "" || len(d.Headers) > 0 {
		dc.Errorf(`status_code, result_content and headers are only used with type "mock"`)
	}
}

// Metric families, registered once per gateway.
func families(env *plugin.Env) (*prometheus.GaugeVec, *prometheus.CounterVec) {
	st := env.Long.Family("gateway_breaker_state", func() prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gateway_breaker_state", Help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
		}, []string{"route"})
	}).(*prometheus.GaugeVec)
	tr := env.Long.Family("gateway_breaker_transitions_total", func() prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_breaker_transitions_total", Help: "Circuit breaker state changes, by the state entered.",
		}, []string{"route", "to"})
	}).(*prometheus.CounterVec)
	return st, tr
}

// owner names where conf is defined for route env.Route: a shared breaker
// is one per plugin instance.
func owner(conf any, env *plugin.Env) string {
	r := env.Route
	switch {
	case r.Config.Plugins[Name] == conf:
		return r.ID
	case r.Service.Plugins[Name] == conf:
		return "service:" + r.Service.ID
	}
	return "global"
}

type downgrade uint8

const (
	downgrade503 downgrade = iota
	downgradeMock
	downgradePass
)

// target is what a request is judged by: a breaker (the default one, or
// a rule's own) and the downgrade answer while it is open.
type target struct {
	e       *engine
	timeout bool // breaker_type timeout; else condition
	cond    condition
	kind    downgrade
	answer  *plugin.Answer
}

type rule struct {
	expr node
	target
}

type step struct {
	dflt  target
	rules []rule // downgrade_rules, in order: the first that matches wins
}

var msgOpen = []byte("circuit breaker is open")

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	if env.Long == nil {
		return nil, fmt.Errorf("no long-lived state store")
	}
	fp, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	label := env.RouteID
	if c.Scope == "share" {
		label = owner(conf, env)
	}
	stateVec, transVec := families(env)
	newTarget := func(bc *Condition, cond condition, key, label string) target {
		p := params{
			percentage: bc.BreakerMode == "percentage",
			threshold:  int64(bc.UnhealthyThreshold),
			minCalls:   int64(bc.MinCallThreshold),
			percent:    int64(bc.UnhealthyPercentage),
			window:     bc.TimeWindow,
			openFor:    int64(bc.OpenBreakerTime) * 1e9,
		}
		e := env.Long.Get(key, func() any {
			return newEngine(p, label, env.Long.Log(), stateVec, transVec)
		}).(*engine)
		return target{e: e, timeout: bc.BreakerType == "timeout", cond: cond}
	}
	base := "breaker|" + c.Scope + "|" + label + "|" + string(fp)
	s := &step{dflt: newTarget(&c.BreakerCondition, c.parsed, base, label)}
	s.dflt.setDowngrade(c.DowngradeDefault)
	for i := range c.DowngradeRules {
		r := &c.DowngradeRules[i]
		t := s.dflt
		if r.BreakerCondition != nil {
			// The rule's own breaker: its own counts and state, reported
			// as <route>/<rule_name>.
			t = newTarget(r.BreakerCondition, r.parsedCond, base+"|rule|"+r.RuleName, label+"/"+r.RuleName)
			t.kind, t.answer = s.dflt.kind, s.dflt.answer
		}
		if r.DowngradeBackend != nil {
			t.kind, t.answer = downgrade503, nil
			t.setDowngrade(r.DowngradeBackend)
		}
		s.rules = append(s.rules, rule{expr: r.expr, target: t})
	}
	return s, nil
}

func (t *target) setDowngrade(d *Downgrade) {
	if d == nil {
		return
	}
	switch d.Type {
	case "mock":
		t.kind = downgradeMock
		t.answer = &plugin.Answer{Status: d.StatusCode, Body: []byte(d.ResultContent)}
		t.answer.AddHeaders(d.Headers)
	case "passthrough":
		t.kind = downgradePass
	}
}

// pick returns the target of the request: the first downgrade rule whose
// expression matches, else the default; r.BreakerRule remembers it for
// OnResponse.
func (s *step) pick(r *plugin.Request) *target {
	if r.BreakerRule > 0 && r.BreakerRule <= len(s.rules) {
		return &s.rules[r.BreakerRule-1].target
	}
	return &s.dflt
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	r.BreakerRule = 0
	for i := range s.rules {
		if s.rules[i].expr.eval(r) {
			r.BreakerRule = i + 1
			break
		}
	}
	t := s.pick(r)
	switch t.e.admit(r.Now.UnixNano()) {
	case admitPass:
		return config.RespNone
	case admitProbe:
		r.Probe = true
		return config.RespNone
	}
	switch t.kind {
	case downgradeMock:
		r.Answer = t.answer
		return config.RespNone
	case downgradePass:
		return config.RespNone
	}
	// 503 (BACKEND_UNAVAILABLE is 502 elsewhere): the gateway chose not to
	// call the backend.
	r.Status, r.Message = 503, msgOpen
	return config.RespBackendUnavailable
}

func (s *step) OnResponse(r *plugin.Request) {
	t := s.pick(r)
	a := admitPass
	if r.Probe {
		a = admitProbe
	} else if t.e.state.Load() != closed {
		a = admitReject
	}
	if !r.Forwarded {
		if r.Probe {
			t.e.cancelProbe()
		}
		return
	}
	var failed bool
	if t.timeout {
		failed = r.UpstreamFailure == config.RespBackendTimeout
	} else {
		failed = t.cond.match(int64(r.Ctx.Response.StatusCode()), r.UpstreamLatency.Milliseconds())
	}
	t.e.record(a, failed, r.Now.UnixNano()+int64(r.UpstreamLatency))
}
