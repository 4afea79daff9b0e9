// Package throttle is Huawei API Gateway's request throttling policy as a
// pipeline step: a service's or route's throttle_policy counts requests per
// API, user, app and client IP (policy.go), on ratelimit's counters.
package throttle

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
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

// step is one route's use of a policy. There is one per route (10,000
// in the bench's full config), so it holds only what is the route's own:
// the policy, its config and its Env.Shared key are the snapshot's, held
// once by Policy.
type step struct {
	policy  *Policy
	cluster *clusterPolicy // throttle_strategy cluster; nil: local
	scope   uint64         // the route's id: counters survive reloads that move it
	// throttled are the route's gateway_throttled_total children, by
	// Counter, each made on its first rejection.
	throttled [4]atomic.Pointer[prometheus.Counter]
	vec       *prometheus.CounterVec
	route     string
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	cp := conf.(*config.ThrottlePolicy)
	// One Policy per snapshot, shared by every route bound to it.
	p, err := env.Shared(policyKey(cp.ID), func() (any, error) { return NewPolicy(env.Limits, cp), nil })
	if err != nil {
		return nil, err
	}
	s := &step{policy: p.(*Policy), scope: xxhash.Sum64String(env.RouteID), vec: env.Throttled, route: env.RouteID}
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
}

// policyKey is the Env.Shared key of policy id.
func policyKey(id string) string { return "throttle-policy:" + id }

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

// rejected counts one rejection by counter c. The first of each counter
// makes the route's child (one label lookup); WithLabelValues returns the
// same child to concurrent callers and across reloads, so no count is lost.
// Creating every child up front cost 10,000 throttled routes 40,000
// zero-valued series.
func (s *step) rejected(c Counter) {
	ptr := &s.throttled[c]
	ctr := ptr.Load()
	if ctr == nil {
		child := s.vec.WithLabelValues(s.policy.id, s.route, c.String())
		ptr.CompareAndSwap(nil, &child)
		ctr = ptr.Load()
	}
	(*ctr).Inc()
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
		s.rejected(counter)
		r.Rate = plugin.RateState{Set: true, Limit: res.Limit, Remaining: res.Remaining, Reset: res.Reset, RetryAfter: true}
		return config.RespThrottled
	}
	r.Rate.Merge(res)
	return config.RespNone
}
