package proxy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"sync/atomic"
	"time"

	"gateway/balancer"
	"gateway/config"
	"gateway/healthcheck"
	"gateway/plugin"
	"gateway/router"
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
}

// routeState is what the handler needs for one matched route.
type routeState struct {
	r       *router.Route
	service string
	id      string
	up      *upstreamState
	to      transport.Timeouts
	chain   *plugin.Chain // the route's plugin steps
	m       routeMetrics
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
	to           transport.Timeouts
	passHost     int
	upstreamHost []byte
	long         *upstreamLong
	// allUnhealthy is resolved here so a fail-open pick does no label lookup.
	allUnhealthy prometheus.Counter
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
	// Failed attempts are logged at most once per attemptLogInterval per
	// node; the lines in between are counted and reported with the next.
	lastFailLog  atomic.Int64 // unix nanoseconds
	suppressedFL atomic.Int64
}

func toTimeouts(t config.Timeout) transport.Timeouts {
	return transport.Timeouts{Connect: t.Connect.Duration(), Send: t.Send.Duration(), Read: t.Read.Duration()}
}

// compile builds a snapshot of cfg. It may create long-lived state (pools,
// node state) in g; Apply publishes the snapshot and retires what the new
// config no longer uses.
func (g *Gateway) compile(cfg *config.Config) (*snapshot, error) {
	rt, err := router.Compile(cfg)
	if err != nil {
		return nil, err
	}
	s := &snapshot{
		cfg:           cfg,
		rt:            rt,
		noRoute:       g.metrics.forRoute("", ""),
		responses:     compileErrResponses(cfg.GatewayResponses),
		realIP:        compileRealIP(cfg.Gateway.RealIP),
		edge:          compileEdge(&cfg.Gateway),
		maxBody:       cfg.Gateway.MaxRequestBodySize,
		maxRespHeader: cfg.Gateway.MaxResponseHeaderSize,
		loadedAt:      time.Now(),
		upstreams:     map[string]*upstreamState{},
	}

	// Health checkers first, so that node state below can point at them.
	if !g.dryRun {
		g.health.Sync(checkedUpstreams(cfg))
	}

	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		us, err := g.compileUpstream(u.ID, u)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		s.upstreams[u.ID] = us
	}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if svc.Upstream != nil {
			us, err := g.compileUpstream(svc.ID, svc.Upstream)
			if err != nil {
				return nil, fmt.Errorf("services[%d].upstream: %w", i, err)
			}
			s.upstreams[svc.ID] = us
		}
	}

	env := plugin.NewEnv(cfg, g.limits, g.metrics.throttled)

	all := rt.Routes()
	s.routes = make([]*routeState, rt.NumRoutes())
	for _, r := range all {
		if s.routes[r.Seq] != nil {
			continue
		}
		svc := r.Service
		rs := &routeState{r: r, service: svc.ID, id: r.ID}
		upID := svc.UpstreamID
		if upID == "" {
			upID = svc.ID
		}
		rs.up = s.upstreams[upID]
		if rs.up == nil {
			return nil, fmt.Errorf("service %q: upstream %q not found", svc.ID, upID)
		}
		rs.to = rs.up.to
		if t := r.Config.Timeout; t != nil {
			if t.Connect > 0 {
				rs.to.Connect = t.Connect.Duration()
			}
			if t.Send > 0 {
				rs.to.Send = t.Send.Duration()
			}
			if t.Read > 0 {
				rs.to.Read = t.Read.Duration()
			}
		}
		chain, err := plugin.Build(env, r)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.ID, err)
		}
		rs.chain = chain
		rs.m = g.metrics.forRoute(svc.ID, r.ID)
		s.routes[r.Seq] = rs
	}
	return s, nil
}

func (g *Gateway) compileUpstream(id string, u *config.Upstream) (*upstreamState, error) {
	us := &upstreamState{
		id:           id,
		chash:        u.Type == config.CHash,
		retryTimeout: u.RetryTimeout.Duration(),
		to:           toTimeouts(u.Timeout),
		upstreamHost: []byte(u.UpstreamHost),
		long:         g.upstreamLong(id),
		allUnhealthy: g.metrics.allUnhealthy.WithLabelValues(id),
	}
	if u.Retries != nil {
		us.retries = *u.Retries
	} else {
		us.retries = len(u.Nodes) - 1
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
	refs := make([]balancer.NodeRef, len(u.Nodes))
	us.nodes = make([]*nodeState, len(u.Nodes))
	for i := range u.Nodes {
		n, err := g.node(id, u, &u.Nodes[i])
		if err != nil {
			return nil, fmt.Errorf("nodes[%d]: %w", i, err)
		}
		us.nodes[i] = n
		refs[i] = balancer.NodeRef{InFlight: &n.long.inflight}
		if n.health != nil {
			refs[i].Down = n.health.Down()
		}
	}
	us.bal = balancer.New(u, refs)
	return us, nil
}

// node compiles one node, creating its pool and long-lived state on first
// use and marking both as used by the snapshot being built.
func (g *Gateway) node(upstreamID string, u *config.Upstream, n *config.Node) (*nodeState, error) {
	addr := n.Addr()
	pk := transport.PoolKey(u, n)
	key := upstreamID + "|" + addr
	g.stateMu.Lock()
	defer g.stateMu.Unlock()
	pool := g.pools[pk]
	if pool == nil {
		var err error
		if pool, err = transport.NewPool(u, n); err != nil {
			return nil, err
		}
		g.pools[pk] = pool
	}
	g.poolsUsed[pk] = struct{}{}
	long := g.nodes[key]
	if long == nil {
		long = &nodeLong{m: g.metrics.forNode(upstreamID, addr)}
		g.nodes[key] = long
	}
	g.nodesUsed[key] = struct{}{}

	ns := &nodeState{upstream: upstreamID, addr: addr, hostPort: []byte(addr), pool: pool, long: long}
	if n.Port == 80 && u.Scheme == config.SchemeHTTP || n.Port == 443 && u.Scheme == config.SchemeHTTPS {
		ns.hostPort = []byte(n.Host)
	}
	ns.health = g.health.Node(upstreamID, addr)
	if ns.health != nil {
		v := 1.0
		if ns.health.Down().Load() {
			v = 0
		}
		g.metrics.nodeHealthy.WithLabelValues(upstreamID, addr).Set(v)
	}
	return ns, nil
}

func (g *Gateway) upstreamLong(id string) *upstreamLong {
	g.stateMu.Lock()
	defer g.stateMu.Unlock()
	l := g.upstreamsLong[id]
	if l == nil {
		l = &upstreamLong{}
		g.upstreamsLong[id] = l
	}
	return l
}
