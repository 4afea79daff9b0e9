package config

// Defaults, exactly as the tables of config.md, upstreams.md and
// throttling.md give them. Each setDefaults also fills the struct-valued
// fields it holds by value, since the decoder only calls setDefaults on the
// types that have one and merges a present object into what is there.
// Lists are built fresh on every call: the decoder replaces them, but
// nothing else may share them between configs either.

func (c *Config) setDefaults() {
	c.Gateway.setDefaults()
	c.Metrics.setDefaults()
}

func (g *Gateway) setDefaults() {
	g.Listen = "0.0.0.0:9080"
	// Set before decoding so that an explicit "" (disabled) stays "".
	g.ControlListen = "127.0.0.1:9091"
	g.MaxRequestBodySize = 12 << 20
	g.MaxHeaderSize = 16384
	g.MaxResponseHeaderSize = 64 << 10
	g.ClientReadTimeout = 60
	g.ClientIdleTimeout = 60
	g.ClientHeaderTimeout = 10
	g.ClientWriteTimeout = 60
	g.MaxConnections = 10000
	g.MaxHeaderCount = 100
	g.PathPolicy = "reject"
	g.RealIP.Recursive = true
	g.AccessLog.Enabled = true
	g.AccessLog.Path = "stdout"
	g.LogLevel = "info"
	g.ReloadDebounce = 0.2
	g.ShutdownTimeout = 30
	g.Websocket.IdleTimeout = 600
	g.Resolver.Timeout = 2
	g.Stream = GatewayStream{IdleTimeout: 600, MaxConnections: 10000}
	g.TLS.setDefaults()
}

func (s *Service) setDefaults() {
	s.Type = "http"
	s.PathPrefix = "/"
	s.StripPathPrefix = true
}

func (u *Upstream) setDefaults() {
	u.Name = "default"
	u.Scheme = SchemeHTTP
	u.Type = RoundRobin
	u.HashOn = HashOnVars
	u.Key = "remote_addr"
	u.Timeout = Timeout{Connect: 60, Send: 60, Read: 60}
	u.KeepalivePool = KeepalivePool{Size: 320, IdleTimeout: 60, Requests: 1000}
	u.PassHost = PassHostPass
	u.TLS.Verify = true
}

func (n *Node) setDefaults() {
	n.Weight = 1
}

func (a *ActiveCheck) setDefaults() {
	a.Type = SchemeHTTP
	a.Timeout = 1
	a.Concurrency = 10
	a.HTTPPath = "/"
	a.HTTPSVerifyCertificate = true
	a.Healthy = ActiveHealthy{
		Interval:     1,
		HTTPStatuses: []int{200, 302},
		Successes:    2,
	}
	a.Unhealthy = ActiveUnhealthy{
		Interval:     1,
		HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505},
		HTTPFailures: 5,
		TCPFailures:  2,
		Timeouts:     3,
	}
}

func (p *PassiveCheck) setDefaults() {
	p.Type = SchemeHTTP
	p.Healthy = PassiveHealthy{
		HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
			300, 301, 302, 303, 304, 305, 306, 307, 308},
		Successes: 5,
	}
	p.Unhealthy = PassiveUnhealthy{
		HTTPStatuses: []int{429, 500, 503},
		HTTPFailures: 5,
		TCPFailures:  2,
		Timeouts:     7,
	}
}

func (p *ThrottlePolicy) setDefaults() {
	p.Type = 1
	p.Window = "fixed"
	p.ThrottleStrategy = "local"
	p.AllowDegradation = true
}

func (r *Redis) setDefaults() {
	r.TimeoutMS = 100
}

func (t *RedisTLS) setDefaults() {
	t.Verify = true
}
