package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// upstreamU is a top-level upstream "u" for services that use upstream_id.
const upstreamU = "upstreams: [{id: u, nodes: [{host: 10.0.0.1, port: 80}]}]\n"

func TestValidateIDs(t *testing.T) {
	long := strings.Repeat("a", 257)
	runErrCases(t, []errCase{
		{"service id charset", "services: [{id: a b, upstream_id: u, routes: [{paths: [/]}]}]\n" + upstreamU,
			"services[0].id", []string{`got "a b"`, "^[a-zA-Z0-9-_.]+$"}},
		{"service id length", "services: [{id: " + long + ", upstream_id: u, routes: [{paths: [/]}]}]\n" + upstreamU,
			"services[0].id", []string{"1..256", `"` + long[:64] + `..." (257 bytes)`}},
		{"service id required", "services: [{upstream_id: u, routes: [{paths: [/]}]}]\n" + upstreamU,
			"services[0].id", []string{"required"}},
		{"service id unique", minimal + "  - {id: s, hosts: [b.com], upstream_id: u, routes: [{paths: [/]}]}\n" + upstreamU,
			"services[1].id", []string{`duplicate id "s"`, "services[0].id"}},
		{"route id charset", withRoute("{id: r/1, paths: [/]}"), "services[0].routes[0].id", []string{`got "r/1"`}},
		{"route id unique across services", withRoute("{id: r, paths: [/]}") +
			"  - {id: t, hosts: [t.com], upstream_id: u, routes: [{id: r, paths: [/t]}]}\n" + upstreamU,
			"services[1].routes[0].id", []string{`duplicate id "r"`, "services[0].routes[0].id"}},
		{"derived route id collides", svc(`
upstream: {nodes: [{host: a, port: 1}]}
routes: [{id: s.1, paths: [/a]}, {paths: [/b]}]`),
			"services[0].routes[1].id", []string{`duplicate id "s.1"`}},
		{"upstream id required", minimal + "upstreams: [{nodes: [{host: a, port: 1}]}]\n", "upstreams[0].id", []string{"required"}},
		{"upstream id charset", minimal + "upstreams: [{id: \"u:1\", nodes: [{host: a, port: 1}]}]\n", "upstreams[0].id", []string{`got "u:1"`}},
		{"upstream id unique", minimal + "upstreams: [{id: u, nodes: [{host: a, port: 1}]}, {id: u, nodes: [{host: a, port: 1}]}]\n",
			"upstreams[1].id", []string{`duplicate id "u"`}},
		{"inline upstream shares a top-level id", minimal + "upstreams: [{id: s, nodes: [{host: a, port: 1}]}]\n",
			"services[0].id", []string{`"s" is also the id of a top-level upstream`}},
		{"policy id unique", minimal + `throttle_policies:
  - {id: p, api_call_limits: 1, time_interval: 1, time_unit: SECOND}
  - {id: p, api_call_limits: 1, time_interval: 1, time_unit: SECOND}
`, "throttle_policies[1].id", []string{`duplicate id "p"`}},
		{"policy id required", minimal + "throttle_policies: [{api_call_limits: 1, time_interval: 1, time_unit: SECOND}]\n",
			"throttle_policies[0].id", []string{"required"}},
		{"username charset", minimal + "consumers: [{username: al.ice}]\n", "consumers[0].username", []string{`got "al.ice"`, "^[a-zA-Z0-9_-]+$"}},
		{"username length", minimal + "consumers: [{username: " + strings.Repeat("u", 513) + "}]\n", "consumers[0].username", []string{"1..512"}},
		{"username required", minimal + "consumers: [{desc: nobody}]\n", "consumers[0].username", []string{`got ""`}},
		{"username unique", minimal + "consumers: [{username: alice}, {username: alice}]\n", "consumers[1].username",
			[]string{`duplicate username "alice"`, "consumers[0].username"}},
		{"credential name unique", minimal + "consumers: [{username: alice, credentials: [{name: app}, {name: app}]}]\n",
			"consumers[0].credentials[1].name", []string{`duplicate credential name "app"`}},
		{"credential name required", minimal + "consumers: [{username: alice, credentials: [{id: c1}]}]\n",
			"consumers[0].credentials[0].name", []string{"required"}},
		{"credential name slash", minimal + "consumers: [{username: alice, credentials: [{name: a/b}]}]\n",
			"consumers[0].credentials[0].name", []string{`got "a/b"`}},
		{"credential name clashes with APISIX shape", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: k1}}, credentials: [{name: alice}]}]\n",
			"consumers[0].credentials[0].name", []string{`duplicate credential name "alice"`}},
	})
}

func TestValidateService(t *testing.T) {
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("h%d.example.com", i)
	}
	runErrCases(t, []errCase{
		{"stream", svc("type: stream\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU, "services[0].routes", []string{`a service of type "stream" has no HTTP routes`}},
		{"other type", svc("type: grpc\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU, "services[0].type", []string{`got "grpc"`}},
		{"name length", svc("name: "+strings.Repeat("n", 65537)+"\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].name", []string{"65536", "got 65537"}},
		{"too many hosts", svc("hosts: ["+strings.Join(many, ", ")+"]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts", []string{"at most 32", "got 33"}},
		{"duplicate host", svc("hosts: [a.com, A.COM]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts[1]", []string{`duplicate host "a.com"`}},
		{"invalid host", svc("hosts: [\"a b.com\"]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts[0]", []string{`got "a b.com"`}},
		{"two wildcards", svc("hosts: [\"*.*.com\"]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts[0]", []string{`got "*.*.com"`}},
		{"trailing wildcard", svc("hosts: [\"api.*\"]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts[0]", []string{`got "api.*"`}},
		{"bare wildcard", svc("hosts: [\"*\"]\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].hosts[0]", []string{`got "*"`}},
		{"path_prefix slash", svc("path_prefix: users\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].path_prefix", []string{"must start with '/'", `got "users"`}},
		{"path_prefix empty", svc("path_prefix: \"\"\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].path_prefix", []string{`got ""`}},
		{"path_prefix length", svc("path_prefix: /"+strings.Repeat("p", 4096)+"\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].path_prefix", []string{"4096"}},
		{"path_prefix parameter", svc("path_prefix: \"/{tenant}\"\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].path_prefix", []string{`got "/{tenant}"`}},
		{"path_prefix dot segment", svc("path_prefix: /a/../b\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].path_prefix", []string{`".."`, `got "/a/../b"`}},
		{"both upstreams", svc("upstream_id: u\nupstream: {nodes: [{host: a, port: 1}]}\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].upstream_id", []string{"exactly one of upstream and upstream_id", "got both"}},
		{"no upstream", svc("routes: [{paths: [/]}]"), "services[0]", []string{"exactly one of upstream and upstream_id", "got neither"}},
		{"dangling upstream_id", svc("upstream_id: nope\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].upstream_id", []string{`unknown upstream "nope"`}},
		{"dangling service policy", svc("throttle_policy: gold\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].throttle_policy", []string{`unknown throttle policy "gold"`}},
		{"no routes", svc("upstream_id: u") + upstreamU, "services[0].routes", []string{"at least one route"}},
		{"empty routes", svc("upstream_id: u\nroutes: []") + upstreamU, "services[0].routes", []string{"at least one route"}},
	})
}

func TestValidateRoute(t *testing.T) {
	tooMany := make([]string, 65)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("/p%d", i)
	}
	r := "services[0].routes[0]"
	runErrCases(t, []errCase{
		{"no paths", withRoute("{methods: [GET]}"), r + ".paths", []string{"1..64", "got 0"}},
		{"too many paths", withRoute("{paths: [" + strings.Join(tooMany, ", ") + "]}"), r + ".paths", []string{"1..64", "got 65"}},
		{"relative path", withRoute("{paths: [users]}"), r + ".paths[0]", []string{"must start with '/'", `got "users"`}},
		{"long path", withRoute("{paths: [/" + strings.Repeat("x", 4096) + "]}"), r + ".paths[0]", []string{"4096"}},
		{"star in the middle", withRoute(`{paths: ["/a*/b"]}`), r + ".paths[0]", []string{"'*' may only be the last character", `got "/a*/b"`}},
		{"partial parameter", withRoute(`{paths: ["/a{id}"]}`), r + ".paths[0]", []string{"whole segment", `got "/a{id}"`}},
		{"unclosed parameter", withRoute(`{paths: ["/{id"]}`), r + ".paths[0]", []string{"whole segment", `got "/{id"`}},
		{"empty parameter", withRoute(`{paths: ["/{}"]}`), r + ".paths[0]", []string{"invalid parameter name", `got "/{}"`}},
		{"empty colon parameter", withRoute(`{paths: ["/a/:"]}`), r + ".paths[0]", []string{"invalid parameter name", `got "/a/:"`}},
		{"bad parameter name", withRoute(`{paths: ["/{a-b}"]}`), r + ".paths[0]", []string{`"a-b"`}},
		{"duplicate parameter", withRoute(`{paths: ["/{id}/:id"]}`), r + ".paths[0]", []string{`duplicate parameter "id"`}},
		{"empty segment", withRoute(`{paths: ["/a//b"]}`), r + ".paths[0]", []string{"empty segment", `got "/a//b"`}},
		{"dot segment", withRoute(`{paths: ["/a/./b"]}`), r + ".paths[0]", []string{`"."`, `got "/a/./b"`}},
		{"query in path", withRoute(`{paths: ["/a?b=1"]}`), r + ".paths[0]", []string{"'?'", `got "/a?b=1"`}},
		{"duplicate path", withRoute(`{paths: ["/{a}", "/:b"]}`), r + ".paths[1]", []string{`duplicate path "/:b"`}},
		{"unknown method", withRoute("{paths: [/], methods: [GET, get]}"), r + ".methods[1]", []string{`got "get"`, "GET, POST"}},
		{"duplicate method", withRoute("{paths: [/], methods: [GET, POST, GET]}"), r + ".methods[2]", []string{`duplicate method "GET"`}},
		{"too many methods", withRoute("{paths: [/], methods: [GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE, CONNECT, GET]}"),
			r + ".methods", []string{"at most 9", "got 10"}},
		{"route timeout", withRoute("{paths: [/], timeout: {connect: 1, read: -2}}"), r + ".timeout.read", []string{"must be 0 or 0.001..86400 seconds", "got -2"}},
		{"service_id", withRoute("{paths: [/], service_id: other}"), r + ".service_id", []string{`"s"`, `got "other"`}},
		{"dangling route policy", withRoute("{paths: [/], throttle_policy: gold}"), r + ".throttle_policy", []string{`unknown throttle policy "gold"`}},
		{"route plugin", withRoute("{paths: [/], plugins: {limit-count: {count: 0, time_window: 1}}}"), r + ".plugins.limit-count.count", []string{"got 0"}},
		// Paths that gateway.path_policy keeps from ever reaching matching.
		{"escaped slash", withRoute(`{paths: ["/files/a%2Fb"]}`), r + ".paths[0]", []string{"can never match", `path_policy "reject"`, `"%2f"`}},
		{"escaped slash decode", "gateway: {path_policy: decode}\n" + withRoute(`{paths: ["/a%5cb"]}`), r + ".paths[0]", []string{`path_policy "decode"`, `"%5c"`}},
		{"backslash", withRoute(`{paths: ["/a\\b"]}`), r + ".paths[0]", []string{"can never match"}},
		{"nul", withRoute(`{paths: ["/a%00"]}`), r + ".paths[0]", []string{"can never match", `"%00"`}},
		{"dot segment with params", withRoute(`{paths: ["/a/..;x/b"]}`), r + ".paths[0]", []string{"dot segments with parameters"}},
		{"params with reject_path_params", "gateway: {reject_path_params: true}\n" + withRoute(`{paths: ["/a;v=1"]}`), r + ".paths[0]", []string{"reject_path_params"}},
		{"prefix escaped slash", svc("path_prefix: /a%2fb\nupstream: {nodes: [{host: 10.0.0.1, port: 80}]}\nroutes: [{paths: [/]}]"), "services[0].path_prefix", []string{"can never match"}},
	})
	// keep lets them through, and parameters pass unless refused.
	mustParse(t, "gateway: {path_policy: keep}\n"+withRoute(`{paths: ["/files/a%2Fb", "/a\\b", "/a/..;x/b"]}`))
	mustParse(t, withRoute(`{paths: ["/a;v=1"]}`))
}

func TestValidateVars(t *testing.T) {
	v := "services[0].routes[0].vars[0]"
	route := func(vars string) string { return withRoute(`{paths: ["/{id}"], vars: [` + vars + `]}`) }
	runErrCases(t, []errCase{
		{"unknown variable", route(`[user, "==", x]`), v, []string{`unknown variable "user"`}},
		{"empty prefix name", route(`[arg_, "==", x]`), v, []string{`unknown variable "arg_"`}},
		{"empty header name", route(`[http_, "==", x]`), v, []string{`unknown variable "http_"`}},
		{"path param not in paths", route(`[path_name, "==", x]`), v, []string{`"path_name" names no parameter`}},
		{"unknown operator", route(`[uri, "=~", x]`), v, []string{`unknown operator "=~"`}},
		{"non-numeric operand", route(`[arg_n, ">=", abc]`), v, []string{`">=" needs a number`, `got "abc"`}},
		{"bad regex", route(`[uri, "~~", "^/(a"]`), v, []string{`invalid regex "^/(a"`}},
		{"bad case-insensitive regex", route(`[uri, "~*", "[z-a]"]`), v, []string{`invalid regex "[z-a]"`}},
		{"empty in", route(`[arg_a, in, []]`), v, []string{`"in" needs a non-empty list`}},
		{"bad ipmatch", route(`[remote_addr, ipmatch, [10.0.0.1, 10.0.0.0/33]]`), v, []string{`got "10.0.0.0/33"`}},
		{"consumer_name", route(`[consumer_name, "==", alice]`), v, []string{"consumer_name cannot be used in route vars", "consumer-restriction"}},
		{"later var", route(`[uri, "==", /a], ["!", cookie_, has, x]`), "services[0].routes[0].vars[1]", []string{`unknown variable "cookie_"`}},
	})

	// Every variable and operator of routing.md loads.
	mustParse(t, route(`[uri, "==", /a], [request_uri, "~=", /b], [host, "~*", "^API\\."],
      [request_method, in, [GET, POST]], [remote_addr, ipmatch, [10.0.0.0/8, "2001:db8::/32", 127.0.0.1]],
      [scheme, "==", https], [server_port, ">", 1000], [server_port, ">=", 1], [server_port, "<", 9e9],
      [server_port, "<=", 65535.5], [arg_page, "~~", "^[0-9]+$"],
      [http_x_user, "==", bob], [cookie_session, "~=", ""], ["!", path_id, "==", "0"]`))
}

func TestValidateUpstream(t *testing.T) {
	u := "services[0].upstream"
	node := "nodes: [{host: 10.0.0.1, port: 80}]"
	many := make([]string, 1025)
	for i := range many {
		many[i] = fmt.Sprintf("{host: h%d, port: 80}", i)
	}
	runErrCases(t, []errCase{
		{"scheme", withUpstream("{scheme: ftp, " + node + "}"), u + ".scheme", []string{`got "ftp"`}},
		{"type", withUpstream("{type: random, " + node + "}"), u + ".type", []string{`got "random"`, "roundrobin, chash, least_conn"}},
		{"hash_on", withUpstream("{type: chash, hash_on: body, " + node + "}"), u + ".hash_on", []string{`got "body"`}},
		{"hash_on without chash", withUpstream("{hash_on: body, " + node + "}"), u + ".hash_on", []string{`got "body"`}},
		{"chash var key", withUpstream("{type: chash, key: user_id, " + node + "}"), u + ".key", []string{`unknown variable "user_id"`}},
		{"chash header key", withUpstream("{type: chash, hash_on: header, key: \"X User\", " + node + "}"), u + ".key", []string{`"X User"`}},
		{"chash template key", withUpstream("{type: chash, hash_on: vars_combinations, key: \"$remote_addr$nope\", " + node + "}"),
			u + ".key", []string{`unknown variable "$nope"`}},
		{"chash template without vars", withUpstream("{type: chash, hash_on: vars_combinations, key: plain, " + node + "}"),
			u + ".key", []string{`got "plain"`}},
		{"no nodes", withUpstream("{nodes: []}"), u + ".nodes", []string{"1..1024", "got 0"}},
		{"nodes absent", withUpstream("{type: roundrobin}"), u + ".nodes", []string{"1..1024", "got 0"}},
		{"too many nodes", withUpstream("{nodes: [" + strings.Join(many, ", ") + "]}"), u + ".nodes", []string{"got 1025"}},
		{"node host required", withUpstream("{nodes: [{port: 80}]}"), u + ".nodes[0].host", []string{"required"}},
		{"node host invalid", withUpstream("{nodes: [{host: \"http://a\", port: 80}]}"), u + ".nodes[0].host", []string{`got "http://a"`}},
		{"node port zero", withUpstream("{nodes: [{host: a, port: 0}]}"), u + ".nodes[0].port", []string{"must be 1..65535, got 0"}},
		{"node port absent", withUpstream("{nodes: [{host: a}]}"), u + ".nodes[0].port", []string{"must be 1..65535, got 0"}},
		{"node port high", withUpstream("{nodes: [{host: a, port: 65536}]}"), u + ".nodes[0].port", []string{"got 65536"}},
		{"node weight", withUpstream("{nodes: [{host: a, port: 1, weight: 65536}]}"), u + ".nodes[0].weight", []string{"0..65535", "got 65536"}},
		{"node weight negative", withUpstream("{nodes: [{host: a, port: 1, weight: -1}]}"), u + ".nodes[0].weight", []string{"got -1"}},
		{"duplicate node", withUpstream("{nodes: [{host: a, port: 1}, {host: a, port: 1}]}"), u + ".nodes[1]", []string{"duplicate node a:1", u + ".nodes[0]"}},
		{"connect timeout", withUpstream("{timeout: {connect: 0}, " + node + "}"), u + ".timeout.connect", []string{"must be 0.001..86400 seconds", "got 0"}},
		{"read timeout", withUpstream("{timeout: {read: -1}, " + node + "}"), u + ".timeout.read", []string{"got -1"}},
		{"retries high", withUpstream("{retries: 65536, " + node + "}"), u + ".retries", []string{"0..65535", "got 65536"}},
		{"retries negative", withUpstream("{retries: -1, " + node + "}"), u + ".retries", []string{"got -1"}},
		{"retry_timeout", withUpstream("{retry_timeout: -0.5, " + node + "}"), u + ".retry_timeout", []string{"must be 0 or 0.001..86400 seconds", "got -0.5"}},
		{"keepalive size", withUpstream("{keepalive_pool: {size: -1}, " + node + "}"), u + ".keepalive_pool.size", []string{"got -1"}},
		{"keepalive idle", withUpstream("{keepalive_pool: {idle_timeout: 0}, " + node + "}"), u + ".keepalive_pool.idle_timeout", []string{"got 0"}},
		{"keepalive requests", withUpstream("{keepalive_pool: {requests: 0}, " + node + "}"), u + ".keepalive_pool.requests", []string{">= 1", "got 0"}},
		{"pass_host", withUpstream("{pass_host: keep, " + node + "}"), u + ".pass_host", []string{`got "keep"`}},
		{"rewrite without host", withUpstream("{pass_host: rewrite, " + node + "}"), u + ".upstream_host", []string{"required", `"rewrite"`}},
		{"cert without key", withUpstream("{tls: {client_cert: x}, " + node + "}"), u + ".tls.client_key", []string{"required with client_cert"}},
		{"key without cert", withUpstream("{tls: {client_key: x}, " + node + "}"), u + ".tls.client_cert", []string{"required with client_key"}},
		{"bad cert", withUpstream("{tls: {client_cert: x, client_key: z}, " + node + "}"), u + ".tls.client_cert", []string{"invalid certificate and key"}},
		{"top-level upstream", minimal + "upstreams: [{id: u, nodes: [{host: a, port: 99999}]}]\n", "upstreams[0].nodes[0].port", []string{"got 99999"}},
	})
}

func TestUpstreamClientCertificate(t *testing.T) {
	cert, key := selfSigned(t)
	doc := withUpstream(fmt.Sprintf("{scheme: https, tls: {client_cert: %q, client_key: %q}, nodes: [{host: a, port: 443}]}", cert, key))
	cfg := mustParse(t, doc)
	require.Equal(t, cert, cfg.Services[0].Upstream.TLS.ClientCert)

	_, otherKey := selfSigned(t)
	doc = withUpstream(fmt.Sprintf("{scheme: https, tls: {client_cert: %q, client_key: %q}, nodes: [{host: a, port: 443}]}", cert, otherKey))
	requireFieldError(t, parseErrs(t, doc, "c.yaml"), "services[0].upstream.tls.client_cert", "invalid certificate and key")
}

func selfSigned(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gateway"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

func TestValidateChecks(t *testing.T) {
	c := "services[0].upstream.checks"
	checks := func(body string) string {
		return withUpstream("{nodes: [{host: a, port: 1}], checks: " + body + "}")
	}
	runErrCases(t, []errCase{
		{"passive without active", checks("{passive: {}}"), c + ".passive", []string{"requires checks.active"}},
		{"active type", checks("{active: {type: udp}}"), c + ".active.type", []string{`got "udp"`}},
		{"passive type", checks("{active: {}, passive: {type: grpc}}"), c + ".passive.type", []string{`got "grpc"`}},
		{"timeout", checks("{active: {timeout: 0}}"), c + ".active.timeout", []string{"must be 0.001..86400 seconds", "got 0"}},
		{"concurrency", checks("{active: {concurrency: 0}}"), c + ".active.concurrency", []string{">= 1", "got 0"}},
		{"probe port", checks("{active: {port: 70000}}"), c + ".active.port", []string{"got 70000"}},
		{"probe host", checks("{active: {host: \"a b\"}}"), c + ".active.host", []string{`got "a b"`}},
		{"http_path", checks("{active: {http_path: healthz}}"), c + ".active.http_path", []string{`got "healthz"`}},
		{"req_headers", checks("{active: {req_headers: [\"Host: a\", NoColon]}}"), c + ".active.req_headers[1]", []string{`"Name: value"`, "not shown"}},
		{"req_headers not echoed", checks("{active: {req_headers: [\"Authorization Bearer s3cr3t\"]}}"), c + ".active.req_headers[0]", []string{`"Name: value"`, "not shown"}},
		{"healthy interval", checks("{active: {healthy: {interval: -1}}}"), c + ".active.healthy.interval", []string{"must be 0 or 0.001..86400 seconds", "got -1"}},
		{"unhealthy interval", checks("{active: {unhealthy: {interval: -2}}}"), c + ".active.unhealthy.interval", []string{"got -2"}},
		{"successes zero", checks("{active: {healthy: {successes: 0}}}"), c + ".active.healthy.successes", []string{"1..254", "got 0"}},
		{"successes high", checks("{active: {healthy: {successes: 255}}}"), c + ".active.healthy.successes", []string{"1..254", "got 255"}},
		{"http_failures", checks("{active: {unhealthy: {http_failures: 255}}}"), c + ".active.unhealthy.http_failures", []string{"0..254", "got 255"}},
		{"tcp_failures", checks("{active: {unhealthy: {tcp_failures: -1}}}"), c + ".active.unhealthy.tcp_failures", []string{"got -1"}},
		{"timeouts", checks("{active: {unhealthy: {timeouts: 300}}}"), c + ".active.unhealthy.timeouts", []string{"got 300"}},
		{"status low", checks("{active: {healthy: {http_statuses: [200, 199]}}}"), c + ".active.healthy.http_statuses[1]", []string{"200..599", "got 199"}},
		{"status high", checks("{active: {unhealthy: {http_statuses: [600]}}}"), c + ".active.unhealthy.http_statuses[0]", []string{"got 600"}},
		{"passive status", checks("{active: {}, passive: {unhealthy: {http_statuses: [99]}}}"), c + ".passive.unhealthy.http_statuses[0]", []string{"got 99"}},
		{"passive successes", checks("{active: {}, passive: {healthy: {successes: 255}}}"), c + ".passive.healthy.successes", []string{"got 255"}},
		{"passive failures", checks("{active: {}, passive: {unhealthy: {http_failures: -3}}}"), c + ".passive.unhealthy.http_failures", []string{"got -3"}},
	})

	// A threshold of 0 disables its counter; 0 interval stops probing
	// healthy nodes.
	mustParse(t, checks(`{active: {healthy: {interval: 0}, unhealthy: {http_failures: 0, tcp_failures: 0, timeouts: 0}},
      passive: {healthy: {successes: 0}, unhealthy: {http_failures: 0, tcp_failures: 0, timeouts: 0}}}`))
}

func TestValidateGateway(t *testing.T) {
	gw := func(body string) string { return "gateway: " + body + "\n" + minimal }
	runErrCases(t, []errCase{
		{"listen", gw("{listen: \"9080\"}"), "gateway.listen", []string{"host:port", `got "9080"`}},
		{"listen port", gw("{listen: \"0.0.0.0:http\"}"), "gateway.listen", []string{`got "0.0.0.0:http"`}},
		{"control_listen", gw("{control_listen: \"localhost:99999\"}"), "gateway.control_listen", []string{`got "localhost:99999"`}},
		{"body size negative", gw("{max_request_body_size: -1}"), "gateway.max_request_body_size", []string{"0..1073741824", "got -1"}},
		{"body size huge", gw("{max_request_body_size: 1073741825}"), "gateway.max_request_body_size", []string{"got 1073741825"}},
		{"header size", gw("{max_header_size: 512}"), "gateway.max_header_size", []string{"1024..1048576", "got 512"}},
		{"read timeout", gw("{client_read_timeout: 0}"), "gateway.client_read_timeout", []string{"must be 0.001..86400 seconds", "got 0"}},
		{"idle timeout", gw("{client_idle_timeout: -1}"), "gateway.client_idle_timeout", []string{"got -1"}},
		{"max_connections", gw("{max_connections: -5}"), "gateway.max_connections", []string{"got -5"}},
		{"trusted address", gw("{real_ip: {trusted_addresses: [10.0.0.0/8, 10.0.0.0/33]}}"), "gateway.real_ip.trusted_addresses[1]", []string{`got "10.0.0.0/33"`}},
		{"trusted hostname", gw("{real_ip: {trusted_addresses: [lb.internal]}}"), "gateway.real_ip.trusted_addresses[0]", []string{`got "lb.internal"`}},
		{"real_ip header", gw("{real_ip: {header: \"X Forwarded For\"}}"), "gateway.real_ip.header", []string{`"X Forwarded For"`}},
		{"log_level", gw("{log_level: verbose}"), "gateway.log_level", []string{`got "verbose"`, "debug, info, warn, error"}},
		{"access_log path", gw("{access_log: {path: \"\"}}"), "gateway.access_log.path", []string{"must not be empty"}},
		{"reload_debounce", gw("{reload_debounce: -0.1}"), "gateway.reload_debounce", []string{"got -0.1"}},
		{"shutdown_timeout", gw("{shutdown_timeout: 0}"), "gateway.shutdown_timeout", []string{"got 0"}},
		{"client_header_timeout", gw("{client_header_timeout: 0}"), "gateway.client_header_timeout", []string{"0.001..86400", "got 0"}},
		{"client_write_timeout", gw("{client_write_timeout: -1}"), "gateway.client_write_timeout", []string{"got -1"}},
		{"max_header_count", gw("{max_header_count: 0}"), "gateway.max_header_count", []string{"1..10000", "got 0"}},
		{"path_policy", gw("{path_policy: strict}"), "gateway.path_policy", []string{"reject, decode, keep", `got "strict"`}},
	})
	mustParse(t, gw(`{listen: ":0", control_listen: "[::1]:9091", max_request_body_size: 0, max_connections: 0,
    real_ip: {header: X-Forwarded-For, trusted_addresses: [10.0.0.0/8, 192.168.1.1, "::1", "fd00::/8"]},
    access_log: {path: stderr}, log_level: debug, reload_debounce: 0,
    client_header_timeout: 5, client_write_timeout: 30, max_header_count: 50, underscores_in_headers: true,
    path_policy: decode, reject_path_params: true}`))
}

func TestValidateThrottlePolicies(t *testing.T) {
	consumers := `consumers:
  - username: alice
    credentials: [{name: mobile-app, plugins: {key-auth: {key: k1}}}, {name: web, plugins: {key-auth: {key: k2}}}]
  - username: bob
    plugins: {key-auth: {key: k3}}
    credentials: [{name: web, plugins: {key-auth: {key: k4}}}]
`
	policy := func(body string) string {
		return minimal + consumers + "throttle_policies:\n  - {id: p, time_unit: MINUTE, time_interval: 1, " + body + "}\n"
	}
	p := "throttle_policies[0]"
	runErrCases(t, []errCase{
		{"api limit required", policy("user_call_limits: 0"), p + ".api_call_limits", []string{"1..2147483647", "got 0"}},
		{"api limit high", policy("api_call_limits: 2147483648"), p + ".api_call_limits", []string{"got 2147483648"}},
		{"interval required", minimal + "throttle_policies: [{id: p, api_call_limits: 1, time_unit: DAY}]\n", p + ".time_interval", []string{"1..2147483647", "got 0"}},
		{"interval high", minimal + "throttle_policies: [{id: p, api_call_limits: 1, time_unit: DAY, time_interval: 2147483648}]\n", p + ".time_interval", []string{"got 2147483648"}},
		{"time unit", minimal + "throttle_policies: [{id: p, api_call_limits: 1, time_unit: WEEK, time_interval: 1}]\n", p + ".time_unit", []string{`got "WEEK"`, "SECOND, MINUTE, HOUR, DAY"}},
		{"time unit required", minimal + "throttle_policies: [{id: p, api_call_limits: 1, time_interval: 1}]\n", p + ".time_unit", []string{`got ""`}},
		{"type", policy("api_call_limits: 1, type: 3"), p + ".type", []string{"got 3"}},
		{"window", policy("api_call_limits: 1, window: rolling"), p + ".window", []string{`got "rolling"`}},
		{"negative user limit", policy("api_call_limits: 10, user_call_limits: -1"), p + ".user_call_limits", []string{"got -1"}},
		{"user over api", policy("api_call_limits: 10, user_call_limits: 11"), p + ".user_call_limits", []string{"<= api_call_limits (10)", "got 11"}},
		{"app over user", policy("api_call_limits: 10, user_call_limits: 5, app_call_limits: 6"), p + ".app_call_limits", []string{"<= user_call_limits (5)", "got 6"}},
		{"app over api", policy("api_call_limits: 10, app_call_limits: 11"), p + ".app_call_limits", []string{"<= api_call_limits (10)", "got 11"}},
		{"ip over api", policy("api_call_limits: 10, ip_call_limits: 20"), p + ".ip_call_limits", []string{"<= api_call_limits (10)", "got 20"}},
		{"special type", policy("api_call_limits: 10, specials: [{object_type: GROUP, object_id: x, call_limits: 1}]"),
			p + ".specials[0].object_type", []string{`got "GROUP"`}},
		{"special id", policy("api_call_limits: 10, specials: [{object_type: APP, call_limits: 1}]"),
			p + ".specials[0].object_id", []string{"required"}},
		{"special limit", policy("api_call_limits: 10, specials: [{object_type: USER, object_id: alice, call_limits: 0}]"),
			p + ".specials[0].call_limits", []string{"got 0"}},
		{"unknown app", policy("api_call_limits: 10, specials: [{object_type: APP, object_id: tv-app, call_limits: 1}]"),
			p + ".specials[0].object_id", []string{`unknown app "tv-app"`}},
		{"unknown qualified app", policy("api_call_limits: 10, specials: [{object_type: APP, object_id: bob/mobile-app, call_limits: 1}]"),
			p + ".specials[0].object_id", []string{`unknown app "bob/mobile-app"`}},
		{"ambiguous app", policy("api_call_limits: 10, specials: [{object_type: APP, object_id: web, call_limits: 1}]"),
			p + ".specials[0].object_id", []string{`app "web" is ambiguous`, "alice, bob"}},
		{"unknown user", policy("api_call_limits: 10, specials: [{object_type: USER, object_id: carol, call_limits: 1}]"),
			p + ".specials[0].object_id", []string{`unknown user "carol"`}},
		{"duplicate special", policy("api_call_limits: 10, specials: [{object_type: USER, object_id: bob, call_limits: 1}, {object_type: USER, object_id: bob, call_limits: 2}]"),
			p + ".specials[1].object_id", []string{`duplicate special for USER "bob"`}},
	})

	// References that resolve: a unique name, username/name, an APISIX-shape
	// consumer's username, a user; app <= api when user is unset.
	cfg := mustParse(t, policy(`api_call_limits: 10, user_call_limits: 10, app_call_limits: 10, ip_call_limits: 10, type: 2, window: sliding,
      specials: [{object_type: APP, object_id: mobile-app, call_limits: 5}, {object_type: APP, object_id: alice/web, call_limits: 5},
                 {object_type: APP, object_id: bob, call_limits: 5}, {object_type: USER, object_id: bob, call_limits: 5}]`))
	require.Len(t, cfg.ThrottlePolicies[0].Specials, 4)
	mustParse(t, policy("api_call_limits: 10, app_call_limits: 10"))
}

func TestValidateConsumersAndKeyAuth(t *testing.T) {
	runErrCases(t, []errCase{
		{"consumer key required", minimal + "consumers: [{username: alice, plugins: {key-auth: {}}}]\n",
			"consumers[0].plugins.key-auth.key", []string{"required"}},
		{"credential key required", minimal + "consumers: [{username: alice, credentials: [{name: app, plugins: {key-auth: {key: \"\"}}}]}]\n",
			"consumers[0].credentials[0].plugins.key-auth.key", []string{"required"}},
		{"consumer header", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: k, header: X-Key}}}]\n",
			"consumers[0].plugins.key-auth.header", []string{"not allowed on a consumer", `got "X-Key"`}},
		{"credential query", minimal + "consumers: [{username: alice, credentials: [{name: a, plugins: {key-auth: {key: k, query: token}}}]}]\n",
			"consumers[0].credentials[0].plugins.key-auth.query", []string{`got "token"`}},
		{"consumer hide_credentials", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: k, hide_credentials: true}}}]\n",
			"consumers[0].plugins.key-auth.hide_credentials", []string{"got true"}},
		{"consumer limit-count", minimal + "consumers: [{username: alice, plugins: {limit-count: {count: 1, time_window: 1}}}]\n",
			"consumers[0].plugins.limit-count", []string{"not supported on a consumer"}},
		{"key on a service", svc("plugins: {key-auth: {key: secret}}\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].plugins.key-auth.key", []string{"not allowed here"}},
		{"key on global plugins", minimal + "global_plugins: {key-auth: {key: secret}}\n",
			"global_plugins.key-auth.key", []string{"not allowed here"}},
		{"route key-auth header", withRoute("{paths: [/], plugins: {key-auth: {header: \"\"}}}"),
			"services[0].routes[0].plugins.key-auth.header", []string{`invalid header name ""`}},
		{"duplicate key", minimal + `consumers:
  - {username: alice, plugins: {key-auth: {key: shared-secret}}}
  - {username: bob, credentials: [{name: app, plugins: {key-auth: {key: shared-secret}}}]}
`, "consumers[1].credentials[0].plugins.key-auth.key", []string{"duplicate key", "consumers[0].plugins.key-auth.key"}},
		{"duplicate key in one consumer", minimal + `consumers:
  - {username: alice, credentials: [{name: a, plugins: {key-auth: {key: k}}}, {name: b, plugins: {key-auth: {key: k}}}]}
`, "consumers[0].credentials[1].plugins.key-auth.key", []string{"consumers[0].credentials[0].plugins.key-auth.key"}},
	})

	// The key itself is a secret and never appears in an error.
	errs := parseErrs(t, minimal+"consumers: [{username: a, plugins: {key-auth: {key: s3cr3t}}}, {username: b, plugins: {key-auth: {key: s3cr3t}}}]\n", "c.yaml")
	require.NotContains(t, errs.Error(), "s3cr3t")
	errs = parseErrs(t, withRoute("{paths: [/], plugins: {key-auth: {key: s3cr3t}}}"), "c.yaml")
	require.NotContains(t, errs.Error(), "s3cr3t")
}

func TestValidatePlugins(t *testing.T) {
	lc := "global_plugins.limit-count"
	ir := "global_plugins.ip-restriction"
	runErrCases(t, []errCase{
		{"count", minimal + "global_plugins: {limit-count: {time_window: 1}}\n", lc + ".count", []string{"got 0"}},
		{"time_window", minimal + "global_plugins: {limit-count: {count: 1, time_window: 0}}\n", lc + ".time_window", []string{"got 0"}},
		{"key_type", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, key_type: header}}\n", lc + ".key_type", []string{`got "header"`}},
		{"key var", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, key: client}}\n", lc + ".key", []string{`unknown variable "client"`}},
		{"key combination", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, key_type: var_combination, key: \"$who\"}}\n",
			lc + ".key", []string{`unknown variable "$who"`}},
		{"rejected_code", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, rejected_code: 600}}\n", lc + ".rejected_code", []string{"200..599", "got 600"}},
		{"window_type", minimal + "global_plugins: {limit-count: {count: 1, time_window: 1, window_type: leaky}}\n", lc + ".window_type", []string{`got "leaky"`}},
		{"both lists", minimal + "global_plugins: {ip-restriction: {whitelist: [10.0.0.1], blacklist: [10.0.0.2]}}\n", ir, []string{"got both"}},
		{"no list", minimal + "global_plugins: {ip-restriction: {message: go away}}\n", ir, []string{"got neither"}},
		{"empty list", minimal + "global_plugins: {ip-restriction: {whitelist: []}}\n", ir, []string{"got neither"}},
		{"bad ip", minimal + "global_plugins: {ip-restriction: {blacklist: [10.0.0.1, 10.0.0.256]}}\n", ir + ".blacklist[1]", []string{`got "10.0.0.256"`}},
		{"service plugin", svc("plugins: {ip-restriction: {whitelist: [nope]}}\nupstream_id: u\nroutes: [{paths: [/]}]") + upstreamU,
			"services[0].plugins.ip-restriction.whitelist[0]", []string{`got "nope"`}},
	})
	mustParse(t, minimal+`global_plugins:
  ip-restriction: {whitelist: [10.0.0.0/8, "::1"], message: denied}
  limit-count: {count: 5, time_window: 1, key_type: var_combination, key: "$remote_addr $http_user_agent", rejected_code: 429, window_type: sliding, group: g}
  key-auth: {header: X-API-Key, query: key, hide_credentials: true}
`)
	mustParse(t, minimal+"global_plugins: {limit-count: {count: 5, time_window: 1, key_type: constant, key: anything goes}}\n")
}

func TestValidateGatewayResponses(t *testing.T) {
	runErrCases(t, []errCase{
		{"unknown type", minimal + "gateway_responses: {TOO_SLOW: {status: 504}}\n", "gateway_responses.TOO_SLOW", []string{`unknown response type "TOO_SLOW"`}},
		{"lower case type", minimal + "gateway_responses: {throttled: {status: 429}}\n", "gateway_responses.throttled", []string{`"throttled"`}},
		{"status low", minimal + "gateway_responses: {THROTTLED: {status: 99}}\n", "gateway_responses.THROTTLED.status", []string{"100..599", "got 99"}},
		{"status high", minimal + "gateway_responses: {NOT_FOUND: {status: 600}}\n", "gateway_responses.NOT_FOUND.status", []string{"got 600"}},
		{"header name", minimal + "gateway_responses: {NOT_FOUND: {headers: {\"Bad Header\": x}}}\n", `gateway_responses.NOT_FOUND.headers["Bad Header"]`, []string{`"Bad Header"`}},
	})
	var all []string
	for _, typ := range responseTypes {
		if typ != "THROTTLED" {
			all = append(all, typ+": {body: x}")
		}
	}
	cfg := mustParse(t, minimal+"gateway_responses: {"+strings.Join(all, ", ")+", THROTTLED: {status: 429, body: '{\"msg\":\"slow down\"}', headers: {X-Why: quota}}}\n")
	require.Len(t, cfg.GatewayResponses, len(responseTypes))
	require.Equal(t, GatewayResponse{Status: 429, Body: `{"msg":"slow down"}`, Headers: map[string]string{"X-Why": "quota"}}, cfg.GatewayResponses["THROTTLED"])
	require.Equal(t, 0, cfg.GatewayResponses["NOT_FOUND"].Status, "0 keeps the type's status")
}

func TestRouteConflicts(t *testing.T) {
	const up = "upstream: {nodes: [{host: a, port: 1}]}\n"
	conflict := func(t *testing.T, doc, path string, parts ...string) {
		t.Helper()
		requireFieldError(t, parseErrs(t, doc, "c.yaml"), path, append([]string{"conflicts with"}, parts...)...)
	}
	t.Run("same route twice", func(t *testing.T) {
		conflict(t, svc(up+"routes: [{id: a, paths: [/x]}, {id: b, paths: [/x]}]"),
			"services[0].routes[1]", `services[0].routes[0] (id "a")`, `"/x"`)
	})
	t.Run("parameter names are ignored", func(t *testing.T) {
		conflict(t, svc(up+`routes: [{paths: ["/u/{id}"], methods: [GET]}, {paths: ["/u/:x"], methods: [GET, POST]}]`),
			"services[0].routes[1]", `services[0].routes[0] (id "s.0")`, `"/u/{}"`)
	})
	t.Run("empty methods are all methods", func(t *testing.T) {
		conflict(t, svc(up+"routes: [{paths: [/x], methods: [DELETE]}, {paths: [/x]}]"), "services[0].routes[1]")
	})
	t.Run("across services with the root prefix", func(t *testing.T) {
		conflict(t, svc(up+"path_prefix: /users\nroutes: [{paths: [\"/{id}\"]}]")+
			"  - {id: t, path_prefix: /, "+strings.TrimSpace(up)+", routes: [{paths: [\"/users/{uid}\"]}]}\n",
			"services[1].routes[0]", `services[0].routes[0] (id "s.0")`, `"/users/{}"`)
	})
	t.Run("prefix trailing slash is ignored", func(t *testing.T) {
		conflict(t, svc(up+"path_prefix: /api/\nroutes: [{paths: [/v1]}]")+
			"  - {id: t, path_prefix: /api, "+strings.TrimSpace(up)+", routes: [{paths: [/v1]}]}\n",
			"services[1].routes[0]", "services[0].routes[0]")
	})
	t.Run("route root under a prefix", func(t *testing.T) {
		conflict(t, svc(up+"path_prefix: /api\nroutes: [{paths: [/]}]")+
			"  - {id: t, "+strings.TrimSpace(up)+", routes: [{paths: [/api/]}]}\n",
			"services[1].routes[0]", `"/api/"`)
	})
	t.Run("host sets compare without order and case", func(t *testing.T) {
		conflict(t, svc(up+"hosts: [B.example.com, a.example.com]\nroutes: [{paths: [/]}]")+
			"  - {id: t, hosts: [a.example.com, b.example.com], "+strings.TrimSpace(up)+", routes: [{paths: [/]}]}\n",
			"services[1].routes[0]", "services[0].routes[0]")
	})
	t.Run("one of several paths", func(t *testing.T) {
		conflict(t, svc(up+"routes: [{paths: [/a, /b]}, {paths: [/c, /b]}]"), "services[0].routes[1]", `"/b"`)
	})
	t.Run("each pair once", func(t *testing.T) {
		errs := parseErrs(t, svc(up+"routes: [{paths: [/a, /b]}, {paths: [/a, /b]}]"), "c.yaml")
		require.Len(t, errs, 1, errs.Error())
	})

	for name, routes := range map[string]string{
		"different methods":    "routes: [{paths: [/x], methods: [GET]}, {paths: [/x], methods: [POST]}]",
		"vars on one":          "routes: [{paths: [/x]}, {paths: [/x], vars: [[arg_v, \"==\", \"2\"]]}]",
		"different priority":   "routes: [{paths: [/x]}, {paths: [/x], priority: 1}]",
		"different pattern":    "routes: [{paths: [/x]}, {paths: [/x/]}, {paths: [\"/x/*\"]}, {paths: [\"/{p}\"]}]",
		"root and prefix root": "routes: [{paths: [/]}, {paths: [\"/*\"]}]",
	} {
		t.Run("no conflict: "+name, func(t *testing.T) { mustParse(t, svc(up+routes)) })
	}
	t.Run("no conflict: different hosts", func(t *testing.T) {
		mustParse(t, svc(up+"hosts: [a.com]\nroutes: [{paths: [/]}]")+"  - {id: t, "+strings.TrimSpace(up)+", routes: [{paths: [/]}]}\n")
	})
	t.Run("no conflict: prefix root and root", func(t *testing.T) {
		mustParse(t, svc(up+"path_prefix: /users\nroutes: [{paths: [/]}]")+"  - {id: t, "+strings.TrimSpace(up)+", routes: [{paths: [/]}]}\n")
	})
}

func TestManyErrorsAllReported(t *testing.T) {
	doc := `
gateway:
  listen: nowhere
  log_level: loud
services:
  - id: s
    hosts: ["bad host"]
    upstream:
      nodes: [{host: a, port: 0}]
    routes:
      - {paths: [nope], methods: [FETCH]}
  - id: t
    upstream_id: missing
    routes: [{paths: [/], vars: [[uri, "~~", "("]]}]
throttle_policies:
  - {id: p, api_call_limits: 10, ip_call_limits: 11, time_interval: 1, time_unit: YEAR}
consumers:
  - {username: "bad name"}
gateway_responses: {OOPS: {}}
unknown: 1
`
	errs := parseErrs(t, doc, "c.yaml")
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	require.Equal(t, []string{
		"gateway.listen",
		"gateway.log_level",
		"services[0].hosts[0]",
		"services[0].upstream.nodes[0].port",
		"services[0].routes[0].paths[0]",
		"services[0].routes[0].methods[0]",
		"services[1].upstream_id",
		"services[1].routes[0].vars[0]",
		"throttle_policies[0].ip_call_limits",
		"throttle_policies[0].time_unit",
		"consumers[0].username",
		"gateway_responses.OOPS",
		"unknown",
	}, paths, errs.Error())
	require.Len(t, strings.Split(errs.Error(), "\n"), len(paths))
}

func TestNotEqualIsAnotherSpellingOfTildeEqual(t *testing.T) {
	cfg, err := Parse([]byte(`
services:
  - id: s
    upstream: {nodes: [{host: 127.0.0.1, port: 80}]}
    routes: [{paths: ["/"], vars: [["arg_debug", "!=", "1"]]}]
`), "t.yaml")
	require.NoError(t, err)
	require.Equal(t, "!=", cfg.Services[0].Routes[0].Vars[0].Op)
}

// derivedID tells the id a route without one gets (service.index) from
// any other, without building it.
func TestDerivedID(t *testing.T) {
	for _, tt := range []struct {
		id, svc string
		i       int
		want    bool
	}{
		{"s.0", "s", 0, true}, {"s.12", "s", 12, true}, {"s.1", "s", 0, false}, {"s.01", "s", 1, false},
		{"s.+1", "s", 1, false}, {"s.-1", "s", -1, false}, {"s.", "s", 0, false}, {"s1", "s", 1, false},
		{"t.0", "s", 0, false}, {"s.x.0", "s.x", 0, true}, {"s.x.0", "s", 0, false}, {"", "s", 0, false},
	} {
		require.Equal(t, tt.want, derivedID(tt.id, tt.svc, tt.i), "%q of %q at %d", tt.id, tt.svc, tt.i)
	}
}
