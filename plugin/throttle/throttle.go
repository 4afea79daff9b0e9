// Package throttle is Huawei API Gateway's request throttling policy as a
// pipeline step: a service's or route's throttle_policy counts requests per
// API, user, app and client IP (policy.go), on ratelimit's counters.
package throttle

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/config"
	"gateway/plugin"
	"gateway/ratelimit"
)

// Priority: after authentication (the user and app counters need the
// consumer), before limit-count (throttling.md's order).
const Priority = 1010

func init() {
	// Not a plugins entry: routes and services name a policy with
	// throttle_policy, and plugin.Effective passes it under this name.
	plugin.Register(config.PluginDef{Name: plugin.ThrottlePolicyPlugin, Priority: Priority}, compile)
}

// step is a policy as the routes bound to it use it: one per policy and
// snapshot, shared by every route (plugin.SharedStep), so that 10,000
// routes of a service have one chain. The route comes with the request:
// its id is the API counter's scope and the throttled counter's label.
type step struct {
	policy  *Policy
	cluster *clusterPolicy // throttle_strategy cluster; nil: local
	shared  string         // the Env.Shared key of the step
	vec     *prometheus.CounterVec

	// throttled holds, by route id, the route's gateway_throttled_total
	// children by Counter, each made on its first rejection: creating them
	// up front cost 10,000 throttled routes 40,000 zero-valued series.
	mu        sync.RWMutex
	throttled map[string]*[4]prometheus.Counter
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	cp := conf.(*config.ThrottlePolicy)
	key := "throttle-step:" + cp.ID
	s, err := env.Shared(key, func() (any, error) {
		// One Policy per snapshot (Reuse asks for it under the same key).
		p, err := env.Shared(policyKey(cp.ID), func() (any, error) { return NewPolicy(env.Limits, cp), nil })
		if err != nil {
			return nil, err
		}
		s := &step{policy: p.(*Policy), shared: key, vec: env.Throttled, throttled: map[string]*[4]prometheus.Counter{}}
		if cp.ThrottleStrategy == "cluster" {
			cl, err := env.Shared("throttle-policy-cluster:"+cp.ID, func() (any, error) {
				return newClusterPolicy(env.Config, env.Redis, s.policy, cp)
			})
			if err != nil {
				return nil, err
			}
			s.cluster = cl.(*clusterPolicy)
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return s.(*step), nil
}

// policyKey is the Env.Shared key of policy id.
func policyKey(id string) string { return "throttle-policy:" + id }

// SharedKey implements plugin.SharedStep.
func (s *step) SharedKey() string { return s.shared }

// Reuse keeps a local policy's step across a reload that changed neither
// the policy nor the route (plugin.Reusable): the new snapshot's Policy is
// asked for, as compile does, so that the counters stay in the store, and
// the step is kept only if that Policy counts on the very same limiters.
// A cluster policy is compiled again.
func (s *step) Reuse(env *plugin.Env) bool {
	if s.cluster != nil {
		return false
	}
	p, err := env.Shared(s.policy.key, func() (any, error) { return NewPolicy(env.Limits, s.policy.conf), nil })
	return err == nil && p.(*Policy).sameCounters(s.policy)
}

// rejected counts one rejection of route by counter c. The first of each
// (route, counter) makes its child (one label lookup); WithLabelValues
// returns the same child to concurrent callers and across reloads, so no
// count is lost. Only rejections come here.
func (s *step) rejected(route string, c Counter) {
	s.mu.RLock()
	var ctr prometheus.Counter
	if byCounter := s.throttled[route]; byCounter != nil {
		ctr = byCounter[c]
	}
	s.mu.RUnlock()
	if ctr == nil {
		s.mu.Lock()
		byCounter := s.throttled[route]
		if byCounter == nil {
			byCounter = new([4]prometheus.Counter)
			s.throttled[route] = byCounter
		}
		if byCounter[c] == nil {
			byCounter[c] = s.vec.WithLabelValues(s.policy.id, route, c.String())
		}
		ctr = byCounter[c]
		s.mu.Unlock()
	}
	ctr.Inc()
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	scope := r.RouteScope
	var ok bool
	var counter Counter
	var res ratelimit.Result
	if s.cluster != nil {
		var unavailable bool
		ok, counter, res, unavailable = s.cluster.Admit(r.Now, scope, r.Consumer, r.App, r.ClientIPB)
		if unavailable {
			return config.RespThrottleStoreUnavailable
		}
	} else {
		ok, counter, res = s.policy.Admit(r.Now, scope, r.Consumer, r.App, r.ClientIPB, nil)
	}
	if !ok {
		s.rejected(r.RouteID, counter)
		r.Rate = plugin.RateState{Set: true, Limit: res.Limit, Remaining: res.Remaining, Reset: res.Reset, RetryAfter: true}
		return config.RespThrottled
	}
	r.Rate.Merge(res)
	return config.RespNone
}
