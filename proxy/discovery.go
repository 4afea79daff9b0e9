package proxy

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"gateway/balancer"
	"gateway/config"
	"gateway/discovery"
	"gateway/transport"
)

// DNS service discovery (issue 21, README "DNS discovery").
//
// A discovered upstream (discovery_type "dns") has no nodes in its config:
// package discovery keeps one watcher per (upstream id, service name) that
// resolves it at the records' TTL, outside snapshots. What the request path
// reads is the upstream's nodeSet, an immutable value (nodes, balancer)
// swapped with one atomic store: by commit for a new snapshot, and by
// onDiscovered when a watcher publishes a new address set between reloads.
// Both run under stateMu, and both build the set from the watcher's
// current addresses, so the newest committed upstream always ends with the
// newest addresses whichever runs last.
//
// Node state is keyed by (upstream id, host:port) as for static nodes, so
// health, in-flight counts and metrics carry over a re-resolution that
// keeps an address. A discovered upstream's pools are its own (by
// transport.PoolKey), reused across re-resolutions and reloads and closed
// when their address leaves the set.

// nodeSet is what the request path uses of a discovered upstream: the
// nodes and the balancer over them, built together.
type nodeSet struct {
	nodes   []*nodeState
	bal     balancer.Balancer
	retries int
}

// discUpstream is the live state of one discovered upstream id. Guarded by
// Gateway.stateMu.
type discUpstream struct {
	w     *discovery.Watcher
	us    *upstreamState // the newest committed one
	conf  *config.Upstream
	pools map[string]*transport.Pool // by PoolKey, of the current set
	keys  []string                   // Gateway.nodes keys of the current set
}

// emptyNodeSet is a discovered upstream's set before anything resolved:
// every request gets 502 as with all nodes failed.
var emptyNodeSet = &nodeSet{bal: balancer.New(&config.Upstream{}, nil)}

func newDiscoveryNodesGauge(reg *prometheus.Registry) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gateway_discovery_nodes",
		Help: "Nodes of a discovered upstream (discovery_type dns): the addresses of its last good resolution.",
	}, []string{"upstream"})
	reg.MustRegister(g)
	return g
}

// discoveryWant is what a discovered upstream asks the discovery manager.
// The config was validated, so the service name parses.
func discoveryWant(id string, u *config.Upstream) discovery.Want {
	name, port, _ := config.ParseServiceName(u.ServiceName)
	srv := len(name) > 0 && name[0] == '_'
	if port == 0 && !srv {
		port = 80
		if u.Scheme == config.SchemeHTTPS {
			port = 443
		}
	}
	return discovery.Want{Upstream: id, Name: name, Port: port, SRV: srv}
}

// syncDiscovery, at commit and before the health checkers sync, starts the
// watchers the plan's upstreams need (waiting for their first resolution)
// and stops the others; it gives the checked discovered upstreams their
// current addresses as nodes, so that health state carries over.
func (g *Gateway) syncDiscovery(cfg *config.Config, p *plan) map[discovery.Want]*discovery.Watcher {
	if g.dryRun {
		return nil
	}
	if !resolverEqual(g.resolverConf, cfg.Gateway.Resolver) {
		g.disc.SetResolver(discovery.NewResolver(cfg.Gateway.Resolver))
		g.resolverConf = cfg.Gateway.Resolver
		g.resolverConf.Nameservers = slices.Clone(cfg.Gateway.Resolver.Nameservers)
	}
	var wants []discovery.Want
	for _, pu := range p.upstreams {
		if pu.us.discovered {
			wants = append(wants, pu.us.want)
		}
	}
	watchers := g.disc.Sync(wants)
	byID := map[string]discovery.Want{}
	for _, pu := range p.upstreams {
		if pu.us.discovered {
			byID[pu.us.id] = pu.us.want
		}
	}
	for i, c := range p.checked {
		want, ok := byID[c.ID]
		if w := watchers[want]; ok && w != nil {
			conf := *c.Config
			conf.Nodes = w.Current().Nodes
			p.checked[i].Config = &conf
		}
	}
	return watchers
}

func resolverEqual(a, b config.Resolver) bool {
	return a.Timeout == b.Timeout && slices.Equal(a.Nameservers, b.Nameservers)
}

// commitDiscovered wires the plan's discovered upstreams to their watchers'
// current node sets and forgets the discovered upstreams the plan no longer
// has. The caller holds stateMu; nodesUsed gets the node keys in use. It
// returns the pools to close once the new snapshot is published.
func (g *Gateway) commitDiscovered(p *plan, watchers map[discovery.Want]*discovery.Watcher, nodesUsed map[string]struct{}) []*transport.Pool {
	var retired []*transport.Pool
	seen := map[string]bool{}
	for _, pu := range p.upstreams {
		us := pu.us
		if !us.discovered {
			continue
		}
		w := watchers[us.want]
		if w == nil { // dry run
			us.live.Store(emptyNodeSet)
			continue
		}
		seen[us.id] = true
		d := &discUpstream{w: w, us: us, conf: pu.conf}
		if old := g.discUps[us.id]; old != nil {
			d.pools, d.keys = old.pools, old.keys
		}
		g.discUps[us.id] = d
		retired = append(retired, g.applyNodeSet(d)...)
		for _, k := range d.keys {
			nodesUsed[k] = struct{}{}
		}
	}
	for id, d := range g.discUps {
		if !seen[id] {
			for _, pool := range d.pools {
				retired = append(retired, pool)
			}
			delete(g.discUps, id)
			g.metrics.discoveryNodes.DeleteLabelValues(id)
		}
	}
	return retired
}

// onDiscovered is the discovery manager's callback: a watcher published a
// new address set.
func (g *Gateway) onDiscovered(w *discovery.Watcher) {
	g.stateMu.Lock()
	d := g.discUps[w.Want().Upstream]
	if d == nil || d.w != w {
		// Not committed yet (the first resolution, which commit reads
		// itself) or replaced by a reload.
		g.stateMu.Unlock()
		return
	}
	g.metrics.flat.nodes.addBegin()
	retired := g.applyNodeSet(d)
	g.metrics.flat.nodes.addEnd()
	g.stateMu.Unlock()
	for _, pool := range retired {
		pool.Close()
	}
}

// applyNodeSet builds d's node set from its watcher's current addresses
// and publishes it to d.us. It returns the pools of addresses that left.
// The caller holds stateMu.
func (g *Gateway) applyNodeSet(d *discUpstream) []*transport.Pool {
	us := d.us
	conf := *d.conf
	conf.Nodes = d.w.Current().Nodes
	g.health.SetNodes(us.id, conf.Nodes)

	pools := make(map[string]*transport.Pool, len(conf.Nodes))
	kept := conf.Nodes[:0:0]
	var states []*nodeState
	for i := range conf.Nodes {
		n := &conf.Nodes[i]
		pk := transport.PoolKey(&conf, n)
		pool := pools[pk]
		if pool == nil {
			pool = d.pools[pk]
		}
		if pool == nil {
			var err error
			if pool, err = transport.NewPool(&conf, n); err != nil {
				g.log.Error("dns discovery: node left out", zap.String("upstream", us.id), zap.String("node", n.Addr()), zap.Error(err))
				continue
			}
		}
		pools[pk] = pool
		kept = append(kept, *n)
		states = append(states, &nodeState{upstream: us.id, addr: n.Addr(), hostPort: nodeHostHeader(conf.Scheme, n), pool: pool})
	}
	conf.Nodes = kept

	refs := make([]balancer.NodeRef, len(states))
	keys := make([]string, len(states))
	for i, ns := range states {
		refs[i], keys[i] = g.wireNode(us.id, ns)
	}
	set := &nodeSet{nodes: states, bal: balancer.New(&conf, refs), retries: us.retries}
	if set.retries < 0 {
		set.retries = max(len(states)-1, 0)
	}
	us.live.Store(set)
	g.metrics.discoveryNodes.WithLabelValues(us.id).Set(float64(len(states)))

	var retired []*transport.Pool
	for pk, pool := range d.pools {
		if pools[pk] != pool {
			retired = append(retired, pool)
		}
	}
	for _, k := range d.keys {
		if !slices.Contains(keys, k) {
			g.forgetNode(k)
		}
	}
	d.pools, d.keys = pools, keys
	return retired
}

// discoveredPools returns every pool of the discovered upstreams, for the
// janitor and Close. The caller holds stateMu.
func (g *Gateway) discoveredPools() []*transport.Pool {
	var out []*transport.Pool
	for _, d := range g.discUps {
		for _, pool := range d.pools {
			out = append(out, pool)
		}
	}
	return out
}
