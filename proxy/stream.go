package proxy

import (
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"gateway/config"
	"gateway/plugin/iprestriction"
	"gateway/stream"
)

// TCP stream routes (README "TCP stream routes"): the stream package owns
// the listeners, matching and splicing; the Gateway compiles its Table
// from the snapshot's upstream state (the same balancers, health state
// and in-flight counts as the HTTP routes'), opens the listeners a reload
// adds before the commit and hands the table over after it.

// compileStreamUpstreams compiles the stream routes' inline upstreams
// (known by the route's id) into the snapshot's upstreams.
func (g *Gateway) compileStreamUpstreams(p *plan, s *snapshot, cfg *config.Config, errs *config.Errors) {
	for i := range cfg.StreamRoutes {
		r := &cfg.StreamRoutes[i]
		if r.Upstream != nil {
			s.upstreams[r.ID] = g.compileUpstream(p, "stream_routes["+strconv.Itoa(i)+"].upstream", r.ID, r.Upstream, errs)
		}
	}
}

// buildStreamTable makes the stream routes' table once commit has wired
// the upstreams' balancers and health state.
func (g *Gateway) buildStreamTable(s *snapshot, p *plan) *stream.Table {
	cfg := s.cfg
	confs := make(map[string]*config.Upstream, len(p.upstreams))
	for _, pu := range p.upstreams {
		confs[pu.us.id] = pu.conf
	}
	ups := map[string]*stream.Upstream{}
	routes := make([]*stream.Route, 0, len(cfg.StreamRoutes))
	for i := range cfg.StreamRoutes {
		r := &cfg.StreamRoutes[i]
		id, _ := cfg.StreamUpstream(r)
		up := ups[id]
		if up == nil {
			up = g.streamUpstream(s.upstreams[id], confs[id])
			ups[id] = up
		}
		idle := cfg.Gateway.Stream.IdleTimeout.Duration()
		if r.IdleTimeout > 0 {
			idle = r.IdleTimeout.Duration()
		}
		sr := &stream.Route{ID: r.ID, Port: r.ServerPort, Server: r.Server, Remote: r.Remote, Up: up, Idle: idle}
		if c, ok := r.Plugins[iprestriction.Name].(*iprestriction.Config); ok {
			sr.Allow = iprestriction.Allow(c)
		}
		routes = append(routes, sr)
	}
	return stream.NewTable(routes, cfg.Gateway.Stream.MaxConnections)
}

// streamUpstream is us as the stream proxy uses it: its picks feed fail
// open (gateway_upstream_all_unhealthy_total) and its connect attempts the
// node's gateway_upstream_attempts_total and
// gateway_upstream_request_duration_seconds, as HTTP attempts do.
func (g *Gateway) streamUpstream(us *upstreamState, conf *config.Upstream) *stream.Upstream {
	up := &stream.Upstream{
		ID:      us.id,
		Bal:     us.bal,
		Nodes:   make([]stream.Node, len(us.nodes)),
		Retries: us.retries,
		Connect: us.to.Connect,
		Chash:   us.chash,
		Picked:  func(failOpen bool) { g.noteFailOpen(us, failOpen) },
	}
	if us.chash && conf != nil {
		up.Hash = conf.HashKey.Parts
	}
	for i, ns := range us.nodes {
		up.Nodes[i] = stream.Node{Addr: ns.addr, Dial: ns.pool.DialStream, Health: ns.health, InFlight: &ns.long.inflight,
			Attempted: streamAttempted(ns.long)}
	}
	return up
}

// streamAttempted counts a stream connect attempt in the node's attempts.
// Its duration is left out of gateway_upstream_request_duration_seconds,
// which times whole HTTP attempts: a connect time there would mix two
// quantities in one node's series.
func streamAttempted(l *nodeLong) func(ok, timeout bool, d time.Duration) {
	return func(ok, timeout bool, d time.Duration) {
		if !l.mref.current() {
			return
		}
		r := resultOK
		switch {
		case ok:
		case timeout:
			r = resultTimeout
		default:
			r = resultConnectError
		}
		l.m.attempts[r].Add(1)
	}
}

// streamListenError is a stream listener that could not be opened, as a
// config error on its key.
func streamListenError(err error) error {
	var le *stream.ListenError
	if errors.As(err, &le) {
		return config.Errors{{Path: "gateway.stream_listen[" + strconv.Itoa(le.Index) + "]", Msg: le.Err.Error()}}
	}
	return config.Errors{{Path: "gateway.stream_listen", Msg: err.Error()}}
}

// logger returns the access log's logger, nil when it is off (the stream
// proxy writes a line per connection).
func (a *accessLog) logger() *zap.Logger {
	if s := a.sink.Load(); s != nil {
		return s.log
	}
	return nil
}
