package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gateway/balancer"
	"gateway/config"
	"gateway/discovery"
	"gateway/healthcheck"
	"gateway/plugin"
	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
	"gateway/router"
	"gateway/stream"
	"gateway/transport"
)

// snapshot is everything compiled from one config. It is immutable once
// published; long-lived state (pools, health, in-flight counts, counters)
// is referenced from it, never owned by it.
type snapshot struct {
	cfg       *config.Config
	rt        *router.Router
	routes    []*routeState // indexed by router.Route.Seq
	noRoute   routeMetrics  // requests that match no route
	responses *errResponses
	realIP    realIPRule
	edge      edgeRules
	maxBody   int64
	// maxRespHeader is gateway.max_response_header_size.
	maxRespHeader int
	loadedAt      time.Time
	upstreams     map[string]*upstreamState
	// maskQuery are the query argument names that carry credentials
	// (key-auth's query on any route), masked in the access log.
	maskQuery [][]byte
	// stream is the stream routes' table, built by commit (stream.go).
	stream *stream.Table
	// chains are the routes' plugin chains by service id, with what they
	// were compiled from, for the next reload to reuse (reuse.go); built
	// counts the chains this compile built rather than reused, indexed
	// the services whose routes it had to look up by id.
	chains  map[string]*serviceChains
	built   int
	indexed int
}

// addMaskedQuery adds a credential's query argument name to the names the
// access log masks.
func (s *snapshot) addMaskedQuery(name string) {
	if name == "" {
		return
	}
	for _, n := range s.maskQuery {
		if string(n) == name {
			return
		}
	}
	s.maskQuery = append(s.maskQuery, []byte(name))
}

// routeState is what the handler needs for one matched route.
type routeState struct {
	r       *router.Route
	service string
	id      string
	scope   uint64 // plugin.RouteScopeOf(id)
	up      *upstreamState
	to      transport.Timeouts
	chain   *plugin.Chain // the route's plugin steps
	// httpsRedirect is the service's https_redirect, copied here so that
	// the request path reads it from the route it already holds.
	httpsRedirect bool
	m             routeMetrics
	ws            *wsRoute // nil unless enable_websocket (upgrade.go)
}

// Host header modes (pass_host).
const (
	passHostPass = iota
	passHostNode
	passHostRewrite
)

// upstreamState is one upstream as compiled for a snapshot.
type upstreamState struct {
	id           string
	bal          balancer.Balancer
	nodes        []*nodeState
	chash        bool
	key          plugin.Key
	retries      int
	retryTimeout time.Duration
	retryOn      []int // retry_on_statuses
	to           transport.Timeouts
	passHost     int
	upstreamHost []byte
	long         *upstreamLong
	// allUnhealthy is resolved here so a fail-open pick does no label lookup.
	allUnhealthy prometheus.Counter

	// discovered: the nodes come from DNS (discovery.go); bal and nodes
	// are then unused and live holds the current set.
	discovered bool
	want       discovery.Want
	live       atomic.Pointer[nodeSet]
}

// upstreamLong is per-upstream state that outlives snapshots.
type upstreamLong struct {
	failingOpen atomic.Bool // logged once per transition
}

// nodeState is one node of one upstream as compiled for a snapshot. What
// must survive a reload (pool, in-flight count, metric children, health)
// is referenced, not owned.
type nodeState struct {
	upstream string
	addr     string
	hostPort []byte // Host header for pass_host: node
	pool     *transport.Pool
	long     *nodeLong
	health   *healthcheck.Node
}

// nodeLong is per-(upstream id, host:port) state that outlives snapshots.
type nodeLong struct {
	inflight atomic.Int64
	m        nodeMetrics
	mref     slotRef // m's generation: an attempt outliving the slot drops its counts
	// Failed attempts are logged at most once per attemptLogInterval per
	// node; the lines in between are counted and reported with the next.
	lastFailLog  atomic.Int64 // unix nanoseconds
	suppressedFL atomic.Int64
}

// withRouteTimeout is an upstream's timeouts with those a route sets.
func withRouteTimeout(to transport.Timeouts, t *config.RouteTimeout) transport.Timeouts {
	if t == nil {
		return to
	}
	if t.Connect > 0 {
		to.Connect = t.Connect.Duration()
	}
	if t.Send > 0 {
		to.Send = t.Send.Duration()
	}
	if t.Read > 0 {
		to.Read = t.Read.Duration()
	}
	return to
}

func toTimeouts(t config.Timeout) transport.Timeouts {
	return transport.Timeouts{Connect: t.Connect.Duration(), Send: t.Send.Duration(), Read: t.Read.Duration()}
}

// Reloads are two steps (docs/DESIGN.md "Compile, then commit"):
//
//   - compile turns a config into a snapshot and a plan. It has no side
//     effects: it reads the gateway's long-lived state, to reuse pools and
//     throttle counters, but creates, starts, registers or retires nothing,
//     so a config it rejects leaves the gateway exactly as it was and needs
//     no rollback.
//   - commit, only for a snapshot that compiled whole, carries the plan
//     out: it syncs the health checkers, registers new pools, node state
//     and throttle counters, wires them into the snapshot, publishes it
//     with one atomic store and retires what the new snapshot no longer
//     uses. It cannot fail.

// plan is what a compiled snapshot needs of the gateway's long-lived state,
// keyed by identity.
type plan struct {
	// pools is every pool the snapshot uses, by transport.PoolKey: the
	// gateway's own where it has one for the key, else a new one that
	// nothing references until commit registers it (a Pool holds no
	// connection or goroutine until it is used).
	pools map[string]*transport.Pool
	// checked are the upstreams with active checks, for health.Sync.
	checked []healthcheck.Upstream
	// upstreams are the snapshot's upstreams with their configs: their
	// node state, health and balancer are wired by commit.
	upstreams []plannedUpstream
	// limits is the throttle counter store staged for the plugins'
	// compile steps: the gateway's counters, plus new ones only it holds.
	limits *ratelimit.Store
	redis  *redisstore.Clients // staged like limits
	// long is the plugins' long-lived state, staged likewise.
	long *plugin.LongStage
}

type plannedUpstream struct {
	us   *upstreamState
	conf *config.Upstream
}

// compile builds a snapshot of cfg and the plan commit needs to publish it,
// without side effects. The error is config.Errors, each with its key path.
func (g *Gateway) compile(cfg *config.Config) (*snapshot, *plan, error) {
	var errs config.Errors
	rt, err := router.Compile(cfg)
	if err != nil {
		var rerrs config.Errors
		if !errors.As(err, &rerrs) {
			return nil, nil, config.Errors{{Msg: err.Error()}}
		}
		errs = append(errs, rerrs...)
	}
	s := &snapshot{
		cfg:           cfg,
		rt:            rt,
		responses:     compileErrResponses(cfg.GatewayResponses),
		realIP:        compileRealIP(cfg.Gateway.RealIP),
		edge:          compileEdge(&cfg.Gateway),
		maxBody:       cfg.Gateway.MaxRequestBodySize,
		maxRespHeader: cfg.Gateway.MaxResponseHeaderSize,
		loadedAt:      time.Now(),
		upstreams:     map[string]*upstreamState{},
	}
	p := &plan{pools: map[string]*transport.Pool{}, checked: checkedUpstreams(cfg), limits: g.limits.Stage(), long: g.long.Stage(),
		redis: g.redis.Stage()}

	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		// An upstream that does not compile is kept as nil: its services
		// then report nothing more about it.
		s.upstreams[u.ID] = g.compileUpstream(p, "upstreams["+strconv.Itoa(i)+"]", u.ID, u, &errs)
	}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if svc.Upstream != nil {
			s.upstreams[svc.ID] = g.compileUpstream(p, "services["+strconv.Itoa(i)+"].upstream", svc.ID, svc.Upstream, &errs)
		}
	}
	g.compileStreamUpstreams(p, s, cfg, &errs) // stream.go
	if rt == nil {
		// The routes did not compile: report their problems and the
		// upstreams'; plugins are compiled once the routes are.
		return nil, nil, errs
	}

	env := plugin.NewEnv(cfg, p.limits, g.metrics.throttled)
	env.Redis = p.redis
	env.Long = p.long
	env.AddUpstream = func(id string, u *config.Upstream) error {
		if _, done := s.upstreams[id]; done {
			return nil
		}
		var uerrs config.Errors
		us := g.compileUpstream(p, id, id, u, &uerrs)
		if len(uerrs) > 0 {
			return uerrs
		}
		s.upstreams[id] = us
		if u.Checks != nil && u.Checks.Active != nil {
			p.checked = append(p.checked, healthcheck.Upstream{ID: id, Config: u})
		}
		return nil
	}
	s.routes = make([]*routeState, rt.NumRoutes())
	reuse := newChainReuse(cfg, g.snap.Load())
	s.chains = reuse.next
	states := make([]routeState, len(s.routes)) // one allocation for all
	seq := 0
	for si := range cfg.Services {
		svc := &cfg.Services[si]
		upID := svc.UpstreamID
		if upID == "" {
			upID = svc.ID
		}
		up, known := s.upstreams[upID]
		// Without upstream and upstream_id every route is mocked
		// (validation): the routes have no upstream.
		if !known && len(svc.Routes) > 0 && (svc.Upstream != nil || svc.UpstreamID != "") {
			errs = append(errs, config.FieldError{
				Path: "services[" + strconv.Itoa(si) + "].upstream_id",
				Msg:  fmt.Sprintf("unknown upstream %q", upID),
			})
		}
		reuse.service(si, svc.ID, len(svc.Routes))
		for ri := range svc.Routes {
			r := rt.Route(seq)
			rs := &states[seq]
			seq++
			*rs = routeState{r: r, service: svc.ID, id: r.ID, scope: plugin.RouteScopeOf(r.ID), up: up, httpsRedirect: svc.HTTPSRedirect}
			if up != nil {
				rs.to = up.to
			}
			rs.to = withRouteTimeout(rs.to, r.Config.Timeout)
			prev := reuse.prevChain(ri, r.ID)
			var chain *plugin.Chain
			var err error
			if prev != nil && prev.Reuse(env, r) {
				chain = prev
			} else {
				s.built++
				chain, err = plugin.Build(env, r)
			}
			if err != nil {
				errs = append(errs, config.FieldError{
					Path: "services[" + strconv.Itoa(si) + "].routes[" + strconv.Itoa(ri) + "]",
					Msg:  err.Error(),
				})
			} else {
				for _, q := range chain.CredentialQueries() {
					s.addMaskedQuery(q)
				}
			}
			rs.chain = chain
			if chain != nil {
				reuse.keep(ri, r.ID, chain)
			}
			rs.ws = g.compileWebsocket(&cfg.Gateway, svc.ID, r.Config)
			s.routes[r.Seq] = rs
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	s.indexed = reuse.indexed
	return s, p, nil
}

// compileUpstream compiles the upstream at key path path; its problems go
// to errs, and then it returns nil.
func (g *Gateway) compileUpstream(p *plan, path, id string, u *config.Upstream, errs *config.Errors) *upstreamState {
	us := &upstreamState{
		id:           id,
		chash:        u.Type == config.CHash,
		retryTimeout: u.RetryTimeout.Duration(),
		retryOn:      u.RetryOnStatuses,
		to:           toTimeouts(u.Timeout),
		upstreamHost: []byte(u.UpstreamHost),
	}
	if u.Retries != nil {
		us.retries = *u.Retries
	} else {
		us.retries = len(u.Nodes) - 1 // -1 for a discovered upstream: per node set
	}
	if u.DiscoveryType == config.DiscoveryDNS {
		us.discovered, us.want = true, discoveryWant(id, u)
	}
	switch u.PassHost {
	case config.PassHostNode:
		us.passHost = passHostNode
	case config.PassHostRewrite:
		us.passHost = passHostRewrite
	}
	if us.chash {
		us.key = plugin.NewKey(u.HashKey)
	}
	us.nodes = make([]*nodeState, len(u.Nodes))
	for i := range u.Nodes {
		n := &u.Nodes[i]
		pool, err := g.planPool(p, u, n)
		if err != nil {
			// Every node of the upstream shares the pool settings: one
			// error says it for all.
			*errs = append(*errs, config.FieldError{Path: path + ".nodes[" + strconv.Itoa(i) + "]", Msg: err.Error()})
			return nil
		}
		addr := n.Addr()
		us.nodes[i] = &nodeState{upstream: id, addr: addr, hostPort: nodeHostHeader(u.Scheme, n), pool: pool}
	}
	p.upstreams = append(p.upstreams, plannedUpstream{us: us, conf: u})
	return us
}

// nodeHostHeader is the Host header that names node n (pass_host: node):
// host:port, or the host alone on the scheme's default port; an IPv6
// address in brackets either way.
func nodeHostHeader(scheme config.Scheme, n *config.Node) []byte {
	if n.Port == 80 && scheme == config.SchemeHTTP || n.Port == 443 && scheme == config.SchemeHTTPS {
		if strings.IndexByte(n.Host, ':') >= 0 {
			return []byte("[" + n.Host + "]")
		}
		return []byte(n.Host)
	}
	return []byte(n.Addr())
}

// planPool returns the pool for node n of u: the gateway's, or a new one
// that only the plan knows of.
func (g *Gateway) planPool(p *plan, u *config.Upstream, n *config.Node) (*transport.Pool, error) {
	pk := transport.PoolKey(u, n)
	if pool := p.pools[pk]; pool != nil {
		return pool, nil
	}
	g.stateMu.Lock()
	pool := g.pools[pk]
	g.stateMu.Unlock()
	if pool == nil {
		var err error
		if pool, err = transport.NewPool(u, n); err != nil {
			return nil, err
		}
	}
	p.pools[pk] = pool
	return pool, nil
}

// wireNode points ns at its long-lived state (made if new) and health, and
// returns its balancer reference and its key in g.nodes. The caller holds
// stateMu.
func (g *Gateway) wireNode(upstream string, ns *nodeState) (balancer.NodeRef, string) {
	key := upstream + "|" + ns.addr
	ns.long = g.nodes[key]
	// Marks the node's metric slot used: callers are inside a sweep of the
	// node table (commit) or an add bracket (a discovery callback).
	nm := g.metrics.flat.node(upstream, ns.addr)
	if ns.long == nil {
		ns.long = &nodeLong{m: nm, mref: refOf(nm.generation())}
		g.nodes[key] = ns.long
	}
	ref := balancer.NodeRef{InFlight: &ns.long.inflight}
	if ns.health = g.health.Node(upstream, ns.addr); ns.health != nil {
		ref.Down = ns.health.Down()
		v := 1.0
		if ns.health.Down().Load() {
			v = 0
		}
		g.metrics.nodeHealthy.WithLabelValues(upstream, ns.addr).Set(v)
	}
	return ref, key
}

// forgetNode drops the long-lived state of a node no upstream has any
// more (key as wireNode makes it) and its health series, which would
// otherwise be exported forever (DNS discovery churns addresses). The
// caller holds stateMu.
func (g *Gateway) forgetNode(key string) {
	delete(g.nodes, key)
	if upstream, addr, ok := strings.Cut(key, "|"); ok {
		g.metrics.nodeHealthy.DeleteLabelValues(upstream, addr)
		// Its attempt and duration series too, between reloads (a discovered
		// address left); a reload's sweep retires the nodes it did not use.
		g.metrics.flat.nodes.retire(nodeKey(upstream, addr), time.Now())
	}
}

// commit publishes a compiled snapshot: it carries out p, swaps s in and
// retires the long-lived state s no longer uses. It returns the snapshot it
// replaced (nil on the first commit). Requests still running on that one
// keep working: a retired pool dials when asked and closes connections
// handed back to it.
func (g *Gateway) commit(s *snapshot, p *plan) *snapshot {
	// Discovery watchers first, so that the health checkers know the
	// discovered nodes.
	watchers := g.syncDiscovery(s.cfg, p)
	// Health checkers next, so that the nodes can point at their state.
	if !g.dryRun {
		g.health.Sync(p.checked)
	}

	g.stateMu.Lock()
	for pk, pool := range p.pools {
		g.pools[pk] = pool
	}
	nodesUsed := map[string]struct{}{}
	g.metrics.flat.nodes.begin()
	for _, pu := range p.upstreams {
		us := pu.us
		us.long = g.upstreamsLong[us.id]
		if us.long == nil {
			us.long = &upstreamLong{}
			g.upstreamsLong[us.id] = us.long
		}
		us.allUnhealthy = g.metrics.allUnhealthy.WithLabelValues(us.id)
		refs := make([]balancer.NodeRef, len(us.nodes))
		for i, ns := range us.nodes {
			var key string
			refs[i], key = g.wireNode(us.id, ns)
			nodesUsed[key] = struct{}{}
		}
		us.bal = balancer.New(pu.conf, refs)
	}
	discRetired := g.commitDiscovered(p, watchers, nodesUsed)
	var retired []*transport.Pool
	for pk, pool := range g.pools {
		if _, ok := p.pools[pk]; !ok {
			retired = append(retired, pool)
			delete(g.pools, pk)
		}
	}
	for key := range g.nodes {
		if _, ok := nodesUsed[key]; !ok {
			g.forgetNode(key)
		}
	}
	g.metrics.flat.nodes.end(time.Now())
	g.stateMu.Unlock()

	p.long.Commit()
	p.limits.Commit() // Apply sweeps the counters no longer asked for after the swap
	p.redis.Commit()

	s.stream = g.buildStreamTable(s, p)
	sweep := g.metrics.flat.beginRoutes(s.cfg.Metrics.RouteHistograms)
	s.noRoute = sweep.route("", "")
	for _, rs := range s.routes {
		rs.m = sweep.route(rs.service, rs.id)
	}
	sweep.end()

	old := g.snap.Swap(s)
	retired = append(retired, discRetired...)
	for _, pool := range retired {
		pool.Close()
	}
	return old
}
