package proxy

import (
	"gateway/config"
	"gateway/plugin"
)

// Incremental compile (issue 20). A reload compiles a route's plugin chain
// again only when something it was compiled from changed: the chain of a
// route whose text, whose service's text without the routes
// (config.Digest.Routes, .Own) and whose surroundings (the whole config
// outside the services, Digest.Global: consumers, policies, global
// plugins, upstreams, the gateway section) hash as in the serving snapshot
// is kept, each step asking the new snapshot for the long-lived state it
// holds (plugin.Reusable). A step that cannot be kept (circuit breakers,
// limit-count, traffic-split, cluster throttling) is compiled again with
// its route. What is cheap is rebuilt every time: the router (~7 ms at
// 10,000 routes), the upstreams and the route states.
//
// Reusable steps hold no part of the config they were compiled from (they
// copy what they need), so kept chains do not keep older configs alive.

// routeKey is what a route's chain was compiled from.
type routeKey struct {
	global, service, route uint64
	serviceID, routeID     string
}

// chainReuse finds the chains of the serving snapshot that a compile may
// keep.
type chainReuse struct {
	digest *config.Digest
	prev   map[routeKey]*plugin.Chain
}

func newChainReuse(cfg *config.Config, serving *snapshot) chainReuse {
	r := chainReuse{digest: cfg.Digest()}
	if serving != nil {
		r.prev = serving.chains
	}
	return r
}

// route returns the key of route ri of service si, and the serving
// snapshot's chain for it when it has one under that key. ok is false when
// the config has no digest for the route (a config made in code).
func (r chainReuse) route(si, ri int, serviceID, routeID string) (key routeKey, prev *plugin.Chain, ok bool) {
	d := r.digest
	if d == nil || si >= len(d.Routes) || ri >= len(d.Routes[si]) {
		return routeKey{}, nil, false
	}
	key = routeKey{global: d.Global, service: d.Own[si], route: d.Routes[si][ri], serviceID: serviceID, routeID: routeID}
	return key, r.prev[key], true
}
