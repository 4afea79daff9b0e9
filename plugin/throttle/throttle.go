// Package throttle is Huawei API Gateway's request throttling policy as a
// pipeline step: a service's or route's throttle_policy counts requests per
// API, user, app and client IP (policy.go), on ratelimit's counters.
package throttle

import (
	"github.com/cespare/xxhash/v2"

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

type step struct {
	conf      *config.ThrottlePolicy
	shared    string // the Env.Shared key of the policy
	policy    *Policy
	cluster   *clusterPolicy // throttle_strategy cluster; nil: local
	scope     uint64         // the route's id: counters survive reloads that move it
	throttled [4]*plugin.LazyCounter
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	cp := conf.(*config.ThrottlePolicy)
	// One Policy per snapshot, shared by every route bound to it.
	shared := "throttle-policy:" + cp.ID
	p, err := env.Shared(shared, func() (any, error) { return NewPolicy(env.Limits, cp), nil })
	if err != nil {
		return nil, err
	}
	cpCopy := *cp // a copy: a kept step must not keep the config it came from
	s := &step{conf: &cpCopy, shared: shared, policy: p.(*Policy), scope: xxhash.Sum64String(env.RouteID)}
	if cp.ThrottleStrategy == "cluster" {
		cl, err := env.Shared("throttle-policy-cluster:"+cp.ID, func() (any, error) {
			return newClusterPolicy(env.Config, env.Redis, s.policy, cp)
		})
		if err != nil {
			return nil, err
		}
		s.cluster = cl.(*clusterPolicy)
	}
	for _, c := range []Counter{CounterAPI, CounterUser, CounterApp, CounterIP} {
		s.throttled[c] = plugin.NewLazyCounter(env.Throttled, cp.ID, env.RouteID, c.String())
	}
	return s, nil
}

// Reuse keeps a local policy's step across a reload that changed neither
// the policy nor the route (plugin.Reusable): the new snapshot's Policy is
// asked for, as compile does, so that the counters stay in the store, and
// the step is kept only if that Policy counts on the very same limiters.
// A cluster policy is compiled again.
func (s *step) Reuse(env *plugin.Env) bool {
	if s.cluster != nil {
		return false
	}
	p, err := env.Shared(s.shared, func() (any, error) { return NewPolicy(env.Limits, s.conf), nil })
	return err == nil && p.(*Policy).sameCounters(s.policy)
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	var ok bool
	var counter Counter
	var res ratelimit.Result
	if s.cluster != nil {
		var unavailable bool
		ok, counter, res, unavailable = s.cluster.Admit(r.Now, s.scope, r.Consumer, r.App, r.ClientIPB)
		if unavailable {
			return config.RespThrottleStoreUnavailable
		}
	} else {
		ok, counter, res = s.policy.Admit(r.Now, s.scope, r.Consumer, r.App, r.ClientIPB, nil)
	}
	if !ok {
		s.throttled[counter].Inc()
		r.Rate = plugin.RateState{Set: true, Limit: res.Limit, Remaining: res.Remaining, Reset: res.Reset, RetryAfter: true}
		return config.RespThrottled
	}
	r.Rate.Merge(res)
	return config.RespNone
}
