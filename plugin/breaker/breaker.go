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
	BreakerCondition    Condition        `json:"breaker_condition"`
	DowngradeDefault    *Downgrade       `json:"downgrade_default"`
	DowngradeParameters []config.Ignored `json:"downgrade_parameters"`
	DowngradeRules      []config.Ignored `json:"downgrade_rules"`
	Scope               string           `json:"scope"`
	parsed              condition        // unhealthy_condition, by Validate
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

// Downgrade is downgrade_default: what an open breaker answers.
type Downgrade struct {
	Type          string            `json:"type"`
	StatusCode    int               `json:"status_code"`
	ResultContent string            `json:"result_content"`
	Headers       []plugin.HeaderKV `json:"headers"`
}

// SetDefaults implements config.Defaulter: Huawei's sample values.
func (c *Config) SetDefaults() {
	c.Scope = "basic"
	c.BreakerCondition = Condition{
		BreakerMode: "counter", UnhealthyThreshold: 30, MinCallThreshold: 20,
		UnhealthyPercentage: 51, TimeWindow: 15, OpenBreakerTime: 15,
	}
}

// MaxTimeWindow bounds time_window and open_breaker_time (seconds).
const MaxTimeWindow = 3600

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	bc := &c.BreakerCondition
	cc := ch.Field("breaker_condition")
	cc.Field("breaker_type").OneOf(bc.BreakerType, "timeout", "condition")
	cc.Field("breaker_mode").OneOf(bc.BreakerMode, "counter", "percentage")
	if bc.BreakerType == "condition" {
		cond, err := parseCondition(bc.UnhealthyCondition)
		if err != nil {
			cc.Field("unhealthy_condition").Errorf("%v", err)
		}
		c.parsed = cond
	} else if bc.UnhealthyCondition != "" {
		cc.Field("unhealthy_condition").Errorf(`is only used with breaker_type "condition"`)
	}
	cc.Field("unhealthy_threshold").IntRange(int64(bc.UnhealthyThreshold), 1, 1<<31-1)
	cc.Field("min_call_threshold").IntRange(int64(bc.MinCallThreshold), 1, 1<<31-1)
	cc.Field("unhealthy_percentage").IntRange(int64(bc.UnhealthyPercentage), 1, 100)
	cc.Field("time_window").IntRange(int64(bc.TimeWindow), 1, MaxTimeWindow)
	cc.Field("open_breaker_time").IntRange(int64(bc.OpenBreakerTime), 1, MaxTimeWindow)
	if d := c.DowngradeDefault; d != nil {
		dc := ch.Field("downgrade_default")
		dc.Field("type").OneOf(d.Type, "mock", "passthrough", "none")
		if d.Type == "mock" {
			dc.Field("status_code").IntRange(int64(d.StatusCode), 100, 599)
			for i, h := range d.Headers {
				dc.Field("headers").Index(i).Field("key").HeaderName(h.Key)
			}
		} else if d.StatusCode != 0 || d.ResultContent != "" || len(d.Headers) > 0 {
			dc.Errorf(`status_code, result_content and headers are only used with type "mock"`)
		}
	}
	if len(c.DowngradeParameters) > 0 {
		ch.Field("downgrade_parameters").Errorf("is not supported yet")
	}
	if len(c.DowngradeRules) > 0 {
		ch.Field("downgrade_rules").Errorf("is not supported yet")
	}
	ch.Field("scope").OneOf(c.Scope, "basic", "share")
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

type step struct {
	e       *engine
	timeout bool // breaker_type timeout; else condition
	cond    condition
	kind    downgrade
	answer  *plugin.Answer
}

var msgOpen = []byte("circuit breaker is open")

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	if env.Long == nil {
		return nil, fmt.Errorf("no long-lived state store")
	}
	bc := &c.BreakerCondition
	fp, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	label := env.RouteID
	if c.Scope == "share" {
		label = owner(conf, env)
	}
	p := params{
		percentage: bc.BreakerMode == "percentage",
		threshold:  int64(bc.UnhealthyThreshold),
		minCalls:   int64(bc.MinCallThreshold),
		percent:    int64(bc.UnhealthyPercentage),
		window:     bc.TimeWindow,
		openFor:    int64(bc.OpenBreakerTime) * 1e9,
	}
	stateVec, transVec := families(env)
	e := env.Long.Get("breaker|"+c.Scope+"|"+label+"|"+string(fp), func() any {
		return newEngine(p, label, env.Long.Log(), stateVec, transVec)
	}).(*engine)
	s := &step{e: e, timeout: bc.BreakerType == "timeout", cond: c.parsed}
	if d := c.DowngradeDefault; d != nil {
		switch d.Type {
		case "mock":
			s.kind = downgradeMock
			s.answer = &plugin.Answer{Status: d.StatusCode, Body: []byte(d.ResultContent)}
			s.answer.AddHeaders(d.Headers)
		case "passthrough":
			s.kind = downgradePass
		}
	}
	return s, nil
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	switch s.e.admit(r.Now.UnixNano()) {
	case admitPass:
		return config.RespNone
	case admitProbe:
		r.Probe = true
		return config.RespNone
	}
	switch s.kind {
	case downgradeMock:
		r.Answer = s.answer
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
	a := admitPass
	if r.Probe {
		a = admitProbe
	} else if s.e.state.Load() != closed {
		a = admitReject
	}
	if !r.Forwarded {
		if r.Probe {
			s.e.cancelProbe()
		}
		return
	}
	var failed bool
	if s.timeout {
		failed = r.UpstreamFailure == config.RespBackendTimeout
	} else {
		failed = s.cond.match(int64(r.Ctx.Response.StatusCode()), r.UpstreamLatency.Milliseconds())
	}
	s.e.record(a, failed, r.Now.UnixNano()+int64(r.UpstreamLatency))
}
