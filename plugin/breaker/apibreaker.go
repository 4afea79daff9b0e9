package breaker

import (
	"encoding/json"
	"slices"

	"gateway/config"
	"gateway/plugin"
)

// APIName is APISIX's api-breaker, run by the same engine as breaker.
const APIName = "api-breaker"

// APIPriority is APISIX's (1005).
const APIPriority = 1005

func init() {
	plugin.Register(config.PluginDef{Name: APIName, Priority: APIPriority, Route: func() any { return &APIConfig{} }}, compileAPI)
}

// APIConfig is api-breaker's config.
type APIConfig struct {
	BreakResponseCode    int               `json:"break_response_code"`
	BreakResponseBody    string            `json:"break_response_body"`
	BreakResponseHeaders []plugin.HeaderKV `json:"break_response_headers"`
	MaxBreakerSec        int               `json:"max_breaker_sec"`
	Unhealthy            struct {
		HTTPStatuses []int `json:"http_statuses"`
		Failures     int   `json:"failures"`
	} `json:"unhealthy"`
	Healthy struct {
		HTTPStatuses []int `json:"http_statuses"`
		Successes    int   `json:"successes"`
	} `json:"healthy"`
}

// SetDefaults implements config.Defaulter: APISIX's defaults.
func (c *APIConfig) SetDefaults() {
	c.MaxBreakerSec = 300
	c.Unhealthy.HTTPStatuses, c.Unhealthy.Failures = []int{500}, 3
	c.Healthy.HTTPStatuses, c.Healthy.Successes = []int{200}, 3
}

// Validate implements config.Validating.
func (c *APIConfig) Validate(ch *config.Check) {
	ch.Field("break_response_code").IntRange(int64(c.BreakResponseCode), 200, 599)
	for i, h := range c.BreakResponseHeaders {
		ch.Field("break_response_headers").Index(i).Field("key").HeaderName(h.Key)
	}
	ch.Field("max_breaker_sec").IntRange(int64(c.MaxBreakerSec), 3, MaxTimeWindow)
	statuses := func(cc *config.Check, list []int) {
		if len(list) == 0 {
			cc.Errorf("at least one status is required")
		}
		for i, s := range list {
			cc.Index(i).IntRange(int64(s), 200, 599)
		}
	}
	statuses(ch.Field("unhealthy").Field("http_statuses"), c.Unhealthy.HTTPStatuses)
	statuses(ch.Field("healthy").Field("http_statuses"), c.Healthy.HTTPStatuses)
	ch.Field("unhealthy").Field("failures").IntRange(int64(c.Unhealthy.Failures), 1, 1<<31-1)
	ch.Field("healthy").Field("successes").IntRange(int64(c.Healthy.Successes), 1, 1<<31-1)
}

type apiStep struct {
	e                  *engine
	unhealthy, healthy []int
	answer             *plugin.Answer
}

func compileAPI(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*APIConfig)
	fp, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	p := params{
		apisix:    true,
		threshold: int64(c.Unhealthy.Failures),
		successes: int64(c.Healthy.Successes),
		openFor:   int64(c.MaxBreakerSec) * 1e9,
		window:    1,
	}
	stateVec, transVec := families(env)
	e := env.Long.Get(APIName+"|"+env.RouteID+"|"+string(fp), func() any {
		return newEngine(p, env.RouteID, env.Long.Log(), stateVec, transVec)
	}).(*engine)
	s := &apiStep{e: e, unhealthy: c.Unhealthy.HTTPStatuses, healthy: c.Healthy.HTTPStatuses,
		answer: &plugin.Answer{Status: c.BreakResponseCode, Body: []byte(c.BreakResponseBody)}}
	s.answer.AddHeaders(c.BreakResponseHeaders)
	return s, nil
}

func (s *apiStep) OnRequest(r *plugin.Request) config.ResponseType {
	if s.e.admit(r.Now.UnixNano()) == admitReject {
		r.Answer = s.answer
	}
	return config.RespNone
}

// OnResponse counts the status the client gets from a forwarded request
// (a gateway 502/504 included, as APISIX's upstream status).
func (s *apiStep) OnResponse(r *plugin.Request) {
	if !r.Forwarded {
		return
	}
	status := r.Ctx.Response.StatusCode()
	o := outcomeNeutral
	switch {
	case slices.Contains(s.unhealthy, status):
		o = outcomeFail
	case slices.Contains(s.healthy, status):
		o = outcomeOK
	}
	s.e.recordAPISIX(o, r.Now.UnixNano()+int64(r.UpstreamLatency))
}
