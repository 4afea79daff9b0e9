package proxy

import (
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/internal/dnstest"
)

// startBackendsOnOnePort starts one backend per loopback IP, all on the
// same port, as the A records of one service name need. The names are the
// IPs.
func startBackendsOnOnePort(t *testing.T, ips ...string) (int, map[string]*backend) {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", ips[0]+":0")
		require.NoError(t, err)
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < len(ips) {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		out := map[string]*backend{}
		for i, ip := range ips {
			out[ip] = serveBackendOn(t, ip, lns[i])
		}
		return port, out
	}
	t.Fatal("no port free on every loopback IP")
	return 0, nil
}

// serveBackendOn serves an echo backend (X-Backend: name) on ln.
func serveBackendOn(t *testing.T, name string, ln net.Listener) *backend {
	b := &backend{name: name, addr: ln.Addr().String(), ln: ln}
	b.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		b.hits.Add(1)
		ctx.Response.Header.Set("X-Backend", name)
		ctx.SetBodyString(name)
	}, CloseOnShutdown: true}
	done := make(chan struct{})
	go func() { _ = b.srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = b.srv.Shutdown(); <-done })
	return b
}

func dnsConfig(nameserver, serviceName, extra string) string {
	return `
gateway: {access_log: {enabled: false}, resolver: {nameservers: ["` + nameserver + `"], timeout: 2}}
upstreams:
  - {id: u, discovery_type: dns, service_name: "` + serviceName + `"` + extra + `}
services:
  - id: s
    upstream_id: u
    routes: [{paths: ["/"]}]
`
}

// backendsHit sends n requests and returns the X-Backend of each answer
// ("" for an answer that is not a 200).
func backendsHit(t *testing.T, tg *testGateway, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		resp := tg.get(t, "/")
		if resp.StatusCode() != 200 {
			out[""]++
			continue
		}
		out[string(resp.Header.Peek("X-Backend"))]++
	}
	return out
}

// eventually polls cond until it holds, failing the test after a deadline
// far beyond any TTL the tests use.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// discoveryGoroutines counts the running discovery watcher goroutines.
func discoveryGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "gateway/discovery.(*Watcher).run(")
}

// Issue 21: two A records -> traffic to both; a changed record moves the
// traffic within about one TTL; NXDOMAIN keeps the last nodes and logs.
func TestDNSDiscoveryFollowsTheRecord(t *testing.T) {
	port, be := startBackendsOnOnePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	ns := dnstest.Start(t)
	ns.SetA("svc.test", 1, "127.0.0.2", "127.0.0.3")
	checks := `, checks: {active: {type: http, http_path: /, healthy: {interval: 60}, unhealthy: {interval: 60}}}`
	tg, logs := startLoggedGateway(t, dnsConfig(ns.Addr, "svc.test:"+strconv.Itoa(port), checks))
	addr := func(ip string) string { return ip + ":" + strconv.Itoa(port) }

	// Apply returns after the first resolution: traffic flows at once.
	require.Equal(t, map[string]int{"127.0.0.2": 2, "127.0.0.3": 2}, backendsHit(t, tg, 4))
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 2`)
	kept := tg.g.health.Node("u", addr("127.0.0.3"))
	require.NotNil(t, kept)

	ns.SetA("svc.test", 1, "127.0.0.3", "127.0.0.4")
	eventually(t, "traffic to the new address", func() bool { return backendsHit(t, tg, 1)["127.0.0.4"] == 1 })
	require.Equal(t, map[string]int{"127.0.0.3": 3, "127.0.0.4": 3}, backendsHit(t, tg, 6), "only the new set once it changed")
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 2`)
	require.Contains(t, logs.String(), `"msg":"dns discovery: node set changed","upstream":"u","service_name":"svc.test","nodes":["127.0.0.3:`+strconv.Itoa(port)+`","127.0.0.4:`+strconv.Itoa(port)+`"],"was":2}`)
	require.Same(t, kept, tg.g.health.Node("u", addr("127.0.0.3")), "health state is kept by address")
	require.NotNil(t, tg.g.health.Node("u", addr("127.0.0.4")), "a new address is checked")
	require.Nil(t, tg.g.health.Node("u", addr("127.0.0.2")), "a removed address is not")

	for _, rcode := range []int{dns.RcodeNameError, dns.RcodeServerFailure} {
		ns.SetRcode("svc.test", rcode)
		asked := ns.Queries("svc.test", dns.TypeA)
		eventually(t, "two failed resolutions", func() bool { return ns.Queries("svc.test", dns.TypeA) >= asked+2 })
		require.Equal(t, map[string]int{"127.0.0.3": 2, "127.0.0.4": 2}, backendsHit(t, tg, 4), "%s keeps the last nodes", dns.RcodeToString[rcode])
		require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 2`)
		require.Contains(t, logs.String(), `"service_name":"svc.test"`)
		require.Contains(t, logs.String(), "resolution failed; keeping the last node set")
		require.Contains(t, logs.String(), dns.RcodeToString[rcode])
	}

	ns.SetA("svc.test", 1, "127.0.0.2")
	eventually(t, "recovery", func() bool { return backendsHit(t, tg, 1)["127.0.0.2"] == 1 })
	require.Contains(t, logs.String(), "resolution works again")
	require.Equal(t, map[string]int{"127.0.0.2": 3}, backendsHit(t, tg, 3))
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 1`)
	require.Positive(t, be["127.0.0.3"].hits.Load())
}

// A name starting with '_' is resolved by SRV: the records give the ports,
// the lowest SRV priority is preferred, every node has the same weight.
func TestDNSDiscoverySRV(t *testing.T) {
	a, b, backup := startBackend(t, "a", nil), startBackend(t, "b", nil), startBackend(t, "backup", nil)
	ns := dnstest.Start(t)
	port := func(be *backend) uint16 { p, _ := strconv.Atoi(be.port()); return uint16(p) }
	ns.SetSRV("_http._tcp.svc.test", 300,
		dnstest.SRV{Priority: 1, Weight: 90, Port: port(a), Target: "a.svc.test"},
		dnstest.SRV{Priority: 1, Weight: 10, Port: port(b), Target: "b.svc.test"},
		dnstest.SRV{Priority: 2, Weight: 10, Port: port(backup), Target: "backup.svc.test"})
	for _, n := range []string{"a", "b", "backup"} {
		ns.SetA(n+".svc.test", 300, "127.0.0.1")
	}
	tg, _ := startLoggedGateway(t, dnsConfig(ns.Addr, "_http._tcp.svc.test", ""))
	require.Equal(t, map[string]int{"a": 3, "b": 3}, backendsHit(t, tg, 6))
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 3`)

	// The preferred nodes down: the backup priority takes the traffic.
	require.NoError(t, a.srv.Shutdown())
	require.NoError(t, b.srv.Shutdown())
	require.Equal(t, map[string]int{"backup": 2}, backendsHit(t, tg, 2))
}

// Without a first good resolution the upstream has no node (502); the
// record's appearance brings the traffic.
func TestDNSDiscoveryStartsWithoutRecord(t *testing.T) {
	port, _ := startBackendsOnOnePort(t, "127.0.0.2")
	ns := dnstest.Start(t)
	tg, logs := startLoggedGateway(t, dnsConfig(ns.Addr, "late.test:"+strconv.Itoa(port), ""))
	require.Equal(t, 502, tg.get(t, "/").StatusCode())
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream="u"} 0`)
	require.Contains(t, logs.String(), "NXDOMAIN")
	ns.SetA("late.test", 1, "127.0.0.2")
	// The failed resolution is retried after 1 s.
	eventually(t, "the record", func() bool { return backendsHit(t, tg, 1)["127.0.0.2"] == 1 })
}

// A reload keeps the watcher (no new query before the TTL) and the node
// health; removing the upstream stops it; Close leaves no goroutine.
func TestDNSDiscoveryReloadAndShutdown(t *testing.T) {
	port, _ := startBackendsOnOnePort(t, "127.0.0.2", "127.0.0.3")
	ns := dnsServerWith(t, "svc.test", 300, "127.0.0.2", "127.0.0.3")
	checks := `, checks: {active: {type: http, http_path: /, healthy: {interval: 60}, unhealthy: {interval: 60}}}`
	yaml := dnsConfig(ns.Addr, "svc.test:"+strconv.Itoa(port), checks)
	before := discoveryGoroutines()
	g := New(Options{})
	require.NoError(t, g.Apply(mustParse(t, yaml)))
	tg := &testGateway{g: g}
	ln := serveOn(t, g)
	tg.addr = ln

	addr := "127.0.0.2:" + strconv.Itoa(port)
	h := g.health.Node("u", addr)
	require.NotNil(t, h, "the discovered node is health checked")
	require.Equal(t, before+1, discoveryGoroutines())
	asked := ns.Queries("svc.test", dns.TypeA)

	require.NoError(t, g.Apply(mustParse(t, strings.Replace(yaml, `paths: ["/"]`, `paths: ["/", "/x"]`, 1))))
	require.Equal(t, asked, ns.Queries("svc.test", dns.TypeA), "the reload kept the watcher: no new query")
	require.Same(t, h, g.health.Node("u", addr), "and the node's health state")
	require.Equal(t, before+1, discoveryGoroutines())
	require.Equal(t, 2, len(backendsHit(t, tg, 4)))

	// The upstream's service name changes: a new watcher replaces the old.
	ns.SetA("other.test", 300, "127.0.0.3")
	require.NoError(t, g.Apply(mustParse(t, dnsConfig(ns.Addr, "other.test:"+strconv.Itoa(port), checks))))
	require.Equal(t, map[string]int{"127.0.0.3": 3}, backendsHit(t, tg, 3))
	require.Equal(t, before+1, discoveryGoroutines())

	// Without the upstream, no watcher.
	require.NoError(t, g.Apply(mustParse(t, `
gateway: {access_log: {enabled: false}}
services: [{id: s, upstream: {nodes: [{host: 127.0.0.3, port: `+strconv.Itoa(port)+`}]}, routes: [{paths: ["/"]}]}]
`)))
	require.Equal(t, before, discoveryGoroutines())
	require.NotContains(t, scrape(t, g), "gateway_discovery_nodes{")

	require.NoError(t, g.Apply(mustParse(t, yaml)))
	require.Equal(t, before+1, discoveryGoroutines())
	require.NoError(t, g.Shutdown(t.Context()))
	g.Close()
	require.Equal(t, before, discoveryGoroutines(), "Close stops the watchers")
}

func dnsServerWith(t *testing.T, name string, ttl uint32, ips ...string) *dnstest.Server {
	ns := dnstest.Start(t)
	ns.SetA(name, ttl, ips...)
	return ns
}

// serveOn serves g on an ephemeral port until the test ends; the test
// may shut it down and close it itself.
func serveOn(t *testing.T, g *Gateway) string {
	tg := serveGateway(t, g)
	return tg.addr
}

// A discovered upstream's request path reads its node set with one atomic
// load: no allocation.
func TestZeroAllocationsDiscoveredUpstream(t *testing.T) {
	b := leanBackend(t)
	ns := dnsServerWith(t, "lean.test", 300, "127.0.0.1")
	g := allocGateway(t, `
gateway: {access_log: {enabled: false}, resolver: {nameservers: ["`+ns.Addr+`"]}}
services:
  - id: s
    upstream: {keepalive_pool: {requests: 100000000}, discovery_type: dns, service_name: "lean.test:`+b.port()+`"}
    routes: [{paths: ["/*"]}]
`)
	perReq := proxiedMallocs(t, g, 10000, func(r *fasthttp.Request) {
		r.Header.SetMethod("GET")
		r.SetRequestURI("/x")
		r.Header.SetHost("api.example.com")
	})
	t.Logf("mallocs per proxied request: %.3f", perReq)
	require.Less(t, perReq, 0.01, "the request path must not allocate in steady state")
}

// `gateway validate` compiles without side effects: no resolution, no
// goroutine, whatever the nameserver.
func TestDNSDiscoveryDryRun(t *testing.T) {
	before := discoveryGoroutines()
	g := New(Options{DryRun: true})
	defer g.Close()
	ns := dnstest.Start(t)
	require.NoError(t, g.Apply(mustParse(t, dnsConfig(ns.Addr, "svc.test:80", ""))))
	require.Equal(t, before, discoveryGoroutines())
	require.Zero(t, ns.Queries("svc.test", dns.TypeA))
}

func TestNodeHostHeader(t *testing.T) {
	for _, c := range []struct {
		scheme config.Scheme
		host   string
		port   int
		want   string
	}{
		{config.SchemeHTTP, "10.0.0.1", 80, "10.0.0.1"},
		{config.SchemeHTTP, "10.0.0.1", 8080, "10.0.0.1:8080"},
		{config.SchemeHTTPS, "a.test", 443, "a.test"},
		{config.SchemeHTTPS, "a.test", 80, "a.test:80"},
		{config.SchemeHTTP, "::1", 80, "[::1]"}, // a discovered AAAA record
		{config.SchemeHTTP, "::1", 8080, "[::1]:8080"},
	} {
		require.Equal(t, c.want, string(nodeHostHeader(c.scheme, &config.Node{Host: c.host, Port: c.port})))
	}
}

// traffic-split's inline upstream may be discovered too: it is wired like
// any upstream of the plan.
func TestDNSDiscoveryTrafficSplitUpstream(t *testing.T) {
	main := startBackend(t, "main", nil)
	port, _ := startBackendsOnOnePort(t, "127.0.0.2")
	ns := dnsServerWith(t, "canary.test", 300, "127.0.0.2")
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, resolver: {nameservers: ["`+ns.Addr+`"]}}
services:
  - id: s
    upstream: `+upstreamYAML(main)+`
    routes:
      - id: r
        paths: ["/*"]
        plugins:
          traffic-split:
            rules:
              - weighted_upstreams: [{upstream: {discovery_type: dns, service_name: "canary.test:`+strconv.Itoa(port)+`"}, weight: 1}, {weight: 1}]
`)
	require.Equal(t, map[string]int{"127.0.0.2": 2, "main": 2}, backendsHit(t, tg, 4))
	require.Contains(t, scrape(t, tg.g), `gateway_discovery_nodes{upstream=`)
}

// An address that leaves the record stops being exported in the per-node
// families at once (gateway_upstream_attempts_total and
// gateway_upstream_request_duration_seconds, as
// gateway_upstream_node_healthy), not at the next reload.
func TestDNSDiscoveryLeavingAddressDropsNodeSeries(t *testing.T) {
	port, _ := startBackendsOnOnePort(t, "127.0.0.2", "127.0.0.3")
	ns := dnstest.Start(t)
	ns.SetA("svc.test", 1, "127.0.0.2", "127.0.0.3")
	tg := startGateway(t, dnsConfig(ns.Addr, "svc.test:"+strconv.Itoa(port), ""))
	require.Equal(t, map[string]int{"127.0.0.2": 2, "127.0.0.3": 2}, backendsHit(t, tg, 4))
	node := func(ip string) string { return `node="` + ip + ":" + strconv.Itoa(port) + `"` }
	text := scrape(t, tg.g)
	require.Equal(t, 2.0, sampleValue(t, text, `gateway_upstream_attempts_total{`+node("127.0.0.2")+`,result="ok",upstream="u"}`))
	require.Contains(t, text, `gateway_upstream_request_duration_seconds_count{`+node("127.0.0.2")+`,upstream="u"} 2`)

	ns.SetA("svc.test", 1, "127.0.0.3")
	eventually(t, "the address leaves", func() bool {
		return tg.g.metrics.flat.nodes.slots() != nil && len(tg.g.metrics.flat.nodes.slots()) == 1
	})
	text = scrape(t, tg.g)
	require.NotContains(t, text, node("127.0.0.2"))
	require.Contains(t, text, `gateway_upstream_attempts_total{`+node("127.0.0.3")+`,result="ok",upstream="u"} 2`)

	// Back within the quarantine: its counters come back with it.
	ns.SetA("svc.test", 1, "127.0.0.2", "127.0.0.3")
	eventually(t, "the address is back", func() bool { return len(tg.g.metrics.flat.nodes.slots()) == 2 })
	require.Contains(t, scrape(t, tg.g), `gateway_upstream_attempts_total{`+node("127.0.0.2")+`,result="ok",upstream="u"} 2`)
}
