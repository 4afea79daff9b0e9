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
// its route. What is cheap is rebuilt every time: the router (~4-7 ms of
// CPU at 10,000 routes, router.BenchmarkCompile10k), the upstreams and the
// route states.
//
// The serving snapshot's chains are found service by service (by id), then
// route by route at the same place in the service, which is where an
// unchanged route is unless routes were inserted or removed before it;
// only a service where that fails is indexed by route id. A reload thus
// does one map lookup per service and no hashing per route.
//
// Reusable steps hold no part of the config they were compiled from (they
// copy what they need), so kept chains do not keep older configs alive.

// serviceChains are the plugin chains of one service's routes as a
// snapshot compiled them, with what they were compiled from.
type serviceChains struct {
	global, own uint64
	hashes      []uint64        // the routes' digests, in file order
	ids         []string        // the routes' ids
	chains      []*plugin.Chain // nil for a route whose chain did not build
}

// chainReuse finds the chains of the serving snapshot that a compile may
// keep, and gathers the new snapshot's.
type chainReuse struct {
	digest *config.Digest
	prev   map[string]*serviceChains // the serving snapshot's, by service id
	next   map[string]*serviceChains // the snapshot being compiled's

	// The service being compiled: si, its chains in the serving snapshot
	// (nil if none may be kept), those by route id once a route was not
	// found at its place, and the new snapshot's (nil without a digest).
	si    int
	cur   *serviceChains
	byID  map[string]int
	chain *serviceChains
	// indexed counts the services that had to be indexed by route id
	// (tests).
	indexed int
}

func newChainReuse(cfg *config.Config, serving *snapshot) *chainReuse {
	r := &chainReuse{digest: cfg.Digest()}
	if serving != nil {
		r.prev = serving.chains
	}
	if r.digest != nil {
		r.next = make(map[string]*serviceChains, len(cfg.Services))
	}
	return r
}

// service starts service si, of id id with n routes.
func (r *chainReuse) service(si int, id string, n int) {
	r.si, r.cur, r.byID, r.chain = si, nil, nil, nil
	d := r.digest
	if d == nil || si >= len(d.Routes) || len(d.Routes[si]) != n {
		return // no digest for the service's routes (a config made in code)
	}
	if prev := r.prev[id]; prev != nil && prev.global == d.Global && prev.own == d.Own[si] {
		r.cur = prev
	}
	r.chain = &serviceChains{global: d.Global, own: d.Own[si], hashes: d.Routes[si],
		ids: make([]string, n), chains: make([]*plugin.Chain, n)}
	r.next[id] = r.chain
}

// prevChain returns the serving snapshot's chain for route ri of the
// current service, of id id, when what it was compiled from is unchanged.
func (r *chainReuse) prevChain(ri int, id string) *plugin.Chain {
	p := r.cur
	if p == nil {
		return nil
	}
	j := ri
	if j >= len(p.ids) || p.ids[j] != id {
		if r.byID == nil {
			r.indexed++
			r.byID = make(map[string]int, len(p.ids))
			for k, pid := range p.ids {
				r.byID[pid] = k
			}
		}
		var ok bool
		if j, ok = r.byID[id]; !ok {
			return nil
		}
	}
	if p.hashes[j] != r.digest.Routes[r.si][ri] {
		return nil
	}
	return p.chains[j]
}

// keep records route ri's chain in the new snapshot, for the next reload.
func (r *chainReuse) keep(ri int, id string, c *plugin.Chain) {
	if r.chain != nil {
		r.chain.ids[ri], r.chain.chains[ri] = id, c
	}
}
