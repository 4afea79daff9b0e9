package config

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const streamBase = `
gateway: {stream_listen: [":3306", "127.0.0.1:3307"]}
upstreams: [{id: db, nodes: [{host: 10.0.0.1, port: 3306}]}]
services:
  - {id: h, upstream_id: db, routes: [{paths: [/]}]}
  - {id: st, type: stream, upstream: {nodes: [{host: 10.0.0.2, port: 3306}]}}
`

func TestStreamRoutesLoad(t *testing.T) {
	cfg := mustParse(t, streamBase+`
stream_routes:
  - {id: a, service_id: st, server_port: 3306, remote_addr: 10.0.0.0/8}
  - {id: b, upstream_id: db, server_port: 3306, server_addr: 127.0.0.1, idle_timeout: 5}
  - {id: c, upstream: {type: chash, nodes: [{host: 10.0.0.3, port: 1}, {host: 10.0.0.4, port: 1}]},
     plugins: {ip-restriction: {whitelist: [127.0.0.1]}}}
`)
	require.Equal(t, []string{":3306", "127.0.0.1:3307"}, cfg.Gateway.StreamListen)
	require.Equal(t, GatewayStream{IdleTimeout: 600, MaxConnections: 10000}, cfg.Gateway.Stream)
	rs := cfg.StreamRoutes
	require.Len(t, rs, 3)
	require.Equal(t, netip.MustParsePrefix("10.0.0.0/8"), rs[0].Remote)
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), rs[1].Server)
	id, u := cfg.StreamUpstream(&rs[0])
	require.Equal(t, "st", id)
	require.Equal(t, "10.0.0.2", u.Nodes[0].Host)
	id, u = cfg.StreamUpstream(&rs[1])
	require.Equal(t, "db", id)
	require.Equal(t, "10.0.0.1", u.Nodes[0].Host)
	id, u = cfg.StreamUpstream(&rs[2])
	require.Equal(t, "c", id)
	require.Equal(t, "c", u.ID)
	require.Equal(t, 1, *u.Retries)
}

func TestStreamRoutesErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"no listener", withRoute("{paths: [/]}") + "stream_routes: [{id: r1, upstream_id: x}]\n",
			"gateway.stream_listen", []string{"required"}},
		{"no upstream", streamBase + "stream_routes: [{id: r1, server_port: 3306}]\n",
			"stream_routes[0]", []string{"exactly one of service_id, upstream_id and upstream"}},
		{"http service", streamBase + "stream_routes: [{id: r1, service_id: h}]\n",
			"stream_routes[0].service_id", []string{`type "http"`}},
		{"unknown upstream", streamBase + "stream_routes: [{id: r1, upstream_id: nope}]\n",
			"stream_routes[0].upstream_id", []string{`unknown upstream "nope"`}},
		{"port without listener", streamBase + "stream_routes: [{id: r1, upstream_id: db, server_port: 9999}]\n",
			"stream_routes[0].server_port", []string{"no gateway.stream_listen address has port 9999"}},
		{"bad remote", streamBase + "stream_routes: [{id: r1, upstream_id: db, remote_addr: nope}]\n",
			"stream_routes[0].remote_addr", []string{`"nope"`}},
		{"bad server addr", streamBase + "stream_routes: [{id: r1, upstream_id: db, server_addr: mysql}]\n",
			"stream_routes[0].server_addr", []string{"must be an IP address"}},
		{"conflict", streamBase + "stream_routes: [{id: r1, upstream_id: db, server_port: 3306}, {id: r2, service_id: st, server_port: 3306}]\n",
			"stream_routes[1]", []string{"matches the same connections as stream_routes[0]"}},
		{"duplicate id", streamBase + "stream_routes: [{id: r1, upstream_id: db, server_port: 3306}, {id: r1, service_id: st}]\n",
			"stream_routes[1].id", []string{"duplicate id"}},
		{"http plugin", streamBase + "stream_routes: [{id: r1, upstream_id: db, plugins: {key-auth: {}}}]\n",
			"stream_routes[0].plugins.key-auth", []string{"not supported on a stream route"}},
		{"inline id clash", streamBase + "stream_routes: [{id: db, upstream: {nodes: [{host: 10.0.0.1, port: 1}]}}]\n",
			"stream_routes[0].id", []string{"also the id of an upstream"}},
		{"https upstream", streamBase + "stream_routes: [{id: r1, upstream: {scheme: https, nodes: [{host: 10.0.0.1, port: 1}]}}]\n",
			"stream_routes[0].upstream", []string{"TLS to the nodes of a stream route is not supported yet"}},
		{"ip-restriction on a stream service", strings.Replace(streamBase, "type: stream,", "type: stream, plugins: {ip-restriction: {blacklist: [10.0.0.0/8]}},", 1) + "stream_routes: [{id: r1, service_id: st}]\n",
			"services[1].plugins", []string{"not supported on a service of type stream", "put ip-restriction on its stream routes"}},
		{"discovered upstream", streamBase + "stream_routes: [{id: r1, upstream: {discovery_type: dns, service_name: \"db.example.com:5432\"}}]\n",
			"stream_routes[0].upstream", []string{`discovery_type "dns"`, "not supported yet"}},
		{"chash on header", streamBase + "stream_routes: [{id: r1, upstream: {type: chash, hash_on: header, key: x-user, nodes: [{host: 10.0.0.1, port: 1}]}}]\n",
			"stream_routes[0].upstream", []string{"can hash only on vars remote_addr and server_port"}},
		{"stream service with routes", "services: [{id: s, type: stream, upstream: {nodes: [{host: 10.0.0.1, port: 1}]}, routes: [{paths: [/]}]}]\n",
			"services[0].routes", []string{"has no HTTP routes"}},
		{"stream service without upstream", "services: [{id: s, type: stream}]\n",
			"services[0]", []string{"exactly one of upstream and upstream_id is required"}},
		{"duplicate listen", "gateway: {stream_listen: [':1', ':1']}\n" + withRoute("{paths: [/]}"),
			"gateway.stream_listen[1]", []string{"duplicate address"}},
		{"max_connections", "gateway: {stream: {max_connections: -1}}\n" + withRoute("{paths: [/]}"),
			"gateway.stream.max_connections", []string{"must be >= 0"}},
	})
}

// A stream route as the API7 Admin API returns it (its response sample,
// with an IP server_addr) loads unchanged.
func TestStreamRouteAPI7ObjectLoads(t *testing.T) {
	cfg, err := Parse([]byte(`{
  "gateway": {"stream_listen": [":3306"]},
  "services": [{"id": "mysql-svc", "name": "mysql", "type": "stream",
    "upstream": {"nodes": [{"host": "10.0.0.5", "port": 3306, "weight": 100}]}}],
  "stream_routes": [{
    "name": "string", "labels": {"keyA": "valueA", "keyB": "valueB"}, "desc": "string",
    "plugins": {}, "remote_addr": "127.0.0.1", "server_addr": "127.0.0.1", "server_port": 3306,
    "id": "string", "service_id": "mysql-svc", "created_at": 0, "updated_at": 0}]
}`), "api7.json")
	require.NoError(t, err)
	r := cfg.StreamRoutes[0]
	require.Equal(t, netip.MustParsePrefix("127.0.0.1/32"), r.Remote)
	require.Equal(t, 3306, r.ServerPort)
	id, u := cfg.StreamUpstream(&r)
	require.Equal(t, "mysql-svc", id)
	require.Equal(t, 100, u.Nodes[0].Weight)
}
