package proxy

// Issue 21: every sample object of the seed documents loads and serves.
// The samples are config/testdata/seeds (README there names the document
// and section of each). A test changes a sample only where the document
// writes a placeholder ("string", port 1, an empty credential) or where
// the test must point it at its own backend; every change is a
// testseed.Set or Delete call with a comment saying why.

import (
	"crypto/tls"
	"maps"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testcert"
	"gateway/internal/testseed"
)

// seedConfig is a config document of the given top-level keys, with the
// access log off (JSON is YAML, so startGateway takes it as it is).
func seedConfig(keys map[string]any) string {
	doc := map[string]any{"gateway": map[string]any{"access_log": map[string]any{"enabled": false}}}
	maps.Copy(doc, keys)
	return testseed.JSON(doc)
}

// seedPath is a testseed path below at ("" is the document itself).
func seedPath(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func seedPort(t *testing.T, b *backend) int {
	p, err := strconv.Atoi(b.port())
	require.NoError(t, err)
	return p
}

// seedNodes is the test's backend as an upstream's nodes.
func seedNodes(t *testing.T, b *backend) []any {
	return []any{map[string]any{"host": "127.0.0.1", "port": seedPort(t, b), "weight": 1}}
}

// seedUpstreamEdits makes the API7 sample upstream (the one inside the
// published-service sample) serve the test's backend. at is the
// upstream's path in the document.
func seedUpstreamEdits(t *testing.T, doc any, at string, b *backend) {
	// The sample's node is {host: "string", port: 1}: the test's backend.
	testseed.Set(doc, seedPath(at, "nodes"), seedNodes(t, b))
	// Probes go to the backend too (the sample's checks.active.port is 1).
	testseed.Set(doc, seedPath(at, "checks.active.port"), seedPort(t, b))
	// "string" is the document's placeholder for a "Name: value" line.
	testseed.Set(doc, seedPath(at, "checks.active.req_headers"), []any{"User-Agent: seed-probe"})
	// tls.client_cert/client_key are the placeholder "string", not PEM;
	// the sample's scheme is http, which uses no client certificate.
	testseed.Delete(doc, seedPath(at, "tls"))
	// The sample asks for discovery_type "kubernetes" (service_name
	// "string"), which is refused as not supported
	// (TestSeedAPI7DiscoveryRefused); null is the Admin API's "no
	// discovery", which loads.
	testseed.Set(doc, seedPath(at, "service_name"), nil)
	testseed.Set(doc, seedPath(at, "discovery_type"), nil)
	testseed.Set(doc, seedPath(at, "discovery_args"), nil)
}

// TestSeedAPI7DiscoveryRefused: the sample upstream as it is, with its
// kubernetes discovery, is refused by name rather than loaded and ignored.
func TestSeedAPI7DiscoveryRefused(t *testing.T) {
	up := testseed.Load("api7-upstream.json")
	testseed.Set(up, "id", "seed-upstream")
	doc := map[string]any{"upstreams": []any{up},
		"services": []any{map[string]any{"id": "s", "upstream_id": "seed-upstream", "routes": []any{map[string]any{"paths": []any{"/*"}}}}}}
	_, err := config.Parse([]byte(testseed.JSON(doc)), "seed.json")
	require.Error(t, err)
	require.Contains(t, err.Error(), `upstreams[0].discovery_type: "kubernetes" is not supported`)
}

// seedRouteEdits fills the API7 route sample's placeholders.
func seedRouteEdits(doc any, at, path string) {
	// paths: ["string"] is a placeholder (API7 requires ^/).
	testseed.Set(doc, seedPath(at, "paths"), []any{path})
	// vars: [null] is how the document renders [[var, op, val], ...]
	// without an example; it is no condition.
	testseed.Delete(doc, seedPath(at, "vars"))
}

// API7 "Get a published service" (value-wrapped) and "List all published
// services" (a list page), each with the "Get a route" sample as its route.
func TestSeedAPI7PublishedService(t *testing.T) {
	for _, c := range []struct{ file, at string }{
		{"api7-published-service.json", "value"},
		{"api7-published-service-list.json", "list.0"},
	} {
		t.Run(c.file, func(t *testing.T) {
			b := startBackend(t, "b", nil)
			svc := testseed.Load(c.file)
			// path_prefix "string" is a placeholder (API7 requires ^/).
			testseed.Set(svc, seedPath(c.at, "path_prefix"), "/seed")
			seedUpstreamEdits(t, svc, seedPath(c.at, "upstream"), b)
			route := testseed.Load("api7-route.json")
			seedRouteEdits(route, "value", "/items/{id}")
			// API7 routes are objects of their own, tied by service_id
			// ("string", the service sample's id): here, the service's.
			testseed.Set(svc, seedPath(c.at, "routes"), []any{route})
			var services any = []any{svc}
			if c.at != "value" {
				services = svc // the list page itself
			}
			tg := startGateway(t, seedConfig(map[string]any{"services": services}))

			// hosts: ["string"] is a valid host name: the sample's own.
			resp := tg.do(t, "GET", "/seed/items/7", map[string]string{"Host": "string"}, "")
			require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
			require.Equal(t, "b GET /items/7", string(resp.Body()), "strip_path_prefix: true")
			require.Equal(t, 405, tg.do(t, "POST", "/seed/items/7", map[string]string{"Host": "string"}, "").StatusCode(), "the route sample's methods: [GET]")
			require.Equal(t, 404, tg.do(t, "GET", "/seed/items/7", map[string]string{"Host": "other"}, "").StatusCode())
		})
	}
}

// API7 "List all routes in a published service" (a list page) under a
// plain service.
func TestSeedAPI7Route(t *testing.T) {
	b := startBackend(t, "b", nil)
	routes := testseed.Load("api7-route-list.json")
	seedRouteEdits(routes, "list.0", "/orders/*")
	tg := startGateway(t, seedConfig(map[string]any{"services": []any{map[string]any{
		"id": "string", "upstream": map[string]any{"nodes": seedNodes(t, b)}, "routes": routes,
	}}}))
	resp := tg.get(t, "/orders/1/lines")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "b GET /orders/1/lines", string(resp.Body()))
	require.Equal(t, 405, tg.do(t, "DELETE", "/orders/1", nil, "").StatusCode())
}

// The published-service sample's upstream as a top-level upstream (API7
// 3.4.1 has no upstream endpoint: the upstream is the service's object).
func TestSeedAPI7Upstream(t *testing.T) {
	b := startBackend(t, "b", nil)
	up := testseed.Load("api7-upstream.json")
	seedUpstreamEdits(t, up, "", b)
	// A top-level upstream needs an id; the embedded sample has none.
	testseed.Set(up, "id", "seed-upstream")
	tg := startGateway(t, seedConfig(map[string]any{
		"upstreams": []any{up},
		"services": []any{map[string]any{"id": "s", "upstream_id": "seed-upstream",
			"routes": []any{map[string]any{"paths": []any{"/*"}}}}},
	}))
	resp := tg.get(t, "/a")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "b GET /a", string(resp.Body()))
	require.Contains(t, scrape(t, tg.g), `gateway_upstream_node_healthy{node="`+b.addr+`",upstream="seed-upstream"} 1`)
}

// seedAuthService is a service in front of b whose routes take every
// auth plugin the API7 credential sample names.
func seedAuthService(t *testing.T, b *backend) map[string]any {
	return map[string]any{"id": "s", "upstream": map[string]any{"nodes": seedNodes(t, b)},
		"plugins": map[string]any{"key-auth": map[string]any{}, "basic-auth": map[string]any{}},
		"routes":  []any{map[string]any{"paths": []any{"/*"}}}}
}

// API7 "Get a consumer": its plugins object ({} in the sample) given a
// key-auth key, since a consumer without a credential cannot call.
func TestSeedAPI7Consumer(t *testing.T) {
	b := startBackend(t, "b", nil)
	c := testseed.Load("api7-consumer.json")
	testseed.Set(c, "value.plugins", map[string]any{"key-auth": map[string]any{"key": "seed-consumer-key"}})
	tg := startGateway(t, seedConfig(map[string]any{
		"consumers": []any{c}, "services": []any{seedAuthService(t, b)},
	}))
	resp := tg.do(t, "GET", "/x", map[string]string{"apikey": "seed-consumer-key"}, "")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "string", string(b.lastRequest().Header.Peek("X-Consumer-Username")), "the sample's username")
	require.Equal(t, 401, tg.do(t, "GET", "/x", map[string]string{"apikey": "other"}, "").StatusCode())
}

// API7 "Get a consumer credential" on the consumer sample: the sample's
// four plugins are empty objects (placeholders) and get their credentials.
func TestSeedAPI7Credential(t *testing.T) {
	b := startBackend(t, "b", nil)
	cr := testseed.Load("api7-credential.json")
	testseed.Set(cr, "value.plugins.key-auth", map[string]any{"key": "seed-credential-key"})
	testseed.Set(cr, "value.plugins.basic-auth", map[string]any{"username": "seed-user", "password": "seed-password"})
	testseed.Set(cr, "value.plugins.hmac-auth", map[string]any{"key_id": "seed-hmac", "secret_key": "seed-hmac-secret"})
	testseed.Set(cr, "value.plugins.jwt-auth", map[string]any{"key": "seed-jwt", "secret": "seed-jwt-secret-of-32-bytes-long!"})
	c := testseed.Load("api7-consumer.json")
	testseed.Set(c, "value.credentials", []any{cr})
	tg := startGateway(t, seedConfig(map[string]any{
		"consumers": []any{c}, "services": []any{seedAuthService(t, b)},
	}))
	resp := tg.do(t, "GET", "/x", map[string]string{"apikey": "seed-credential-key"}, "")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	seen := b.lastRequest()
	require.Equal(t, "string", string(seen.Header.Peek("X-Consumer-Username")))
	require.Equal(t, "string", string(seen.Header.Peek("X-Credential-Identifier")), "the credential sample's name")
	req, err := http.NewRequest("GET", "http://x/", nil)
	require.NoError(t, err)
	req.SetBasicAuth("seed-user", "seed-password")
	resp = tg.do(t, "GET", "/y", map[string]string{"Authorization": req.Header.Get("Authorization")}, "")
	require.Equal(t, 200, resp.StatusCode(), "basic-auth of the same credential")
	require.Equal(t, 401, tg.get(t, "/x").StatusCode())
}

// seedTLS serves the certificate, CA certificate and SNI samples in front
// of b, with certificates made now: the samples' cert is the placeholder
// "string", and a certificate read back from the Admin API has no key.
// The SNI sample names both by their id, "string"; mtls sets its
// mtls.enabled (false in the sample).
func seedTLS(t *testing.T, b *backend, mtls bool) (tg *tlsGateway, srv, clients *testcert.Pair) {
	srv = testcert.Issue(nil, testcert.Options{}, "string") // the SNI sample's domain
	clients = testcert.NewCA("seed-clients")
	cert := testseed.Load("api7-certificate.json")
	testseed.Set(cert, "value.cert", string(srv.CertPEM))
	testseed.Set(cert, "value.key", string(srv.KeyPEM))
	ca := testseed.Load("api7-ca-certificate.json")
	testseed.Set(ca, "value.cert", string(clients.CertPEM))
	sni := testseed.Load("api7-sni.json")
	if mtls {
		testseed.Set(sni, "value.mtls.enabled", true)
	}
	doc := seedConfig(map[string]any{
		"gateway":         map[string]any{"access_log": map[string]any{"enabled": false}, "tls_listen": "127.0.0.1:0"},
		"certificates":    []any{cert},
		"ca_certificates": []any{ca},
		"snis":            []any{sni},
		"services": []any{map[string]any{"id": "s", "upstream": map[string]any{"nodes": seedNodes(t, b)},
			"routes": []any{map[string]any{"paths": []any{"/*"}}}}},
	})
	return startTLSGateway(t, doc), srv, clients
}

// API7 "Get a certificate" and "Get a sni": the SNI's certificate serves
// its domain.
func TestSeedAPI7CertificateAndSNI(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg, srv, _ := seedTLS(t, b, false)
	c := httpsClient(t, tg.tlsAddr, "string", srv, nil)
	resp, body := httpsGet(t, c, "string", "/tls")
	require.Equal(t, 200, resp.StatusCode, body)
	require.Equal(t, "b GET /tls", body)
	require.Equal(t, srv.Cert.Raw, resp.TLS.PeerCertificates[0].Raw, "the certificate sample's certificate")
	require.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version, "ssl_protocols [TLSv1.2, TLSv1.3] of the sample")
}

// API7 "Get a CA certificate", trusted for client certificates by the SNI
// sample with mtls.enabled.
func TestSeedAPI7CACertificate(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg, srv, clients := seedTLS(t, b, true)
	alice := testcert.Issue(clients, testcert.Options{Client: true, CN: "alice"})
	resp, body := httpsGet(t, httpsClient(t, tg.tlsAddr, "string", srv, alice), "string", "/m")
	require.Equal(t, 200, resp.StatusCode, body)
	require.Equal(t, "alice", string(b.lastRequest().Header.Peek("X-Client-Cert-CN")))
	_, err := httpsClient(t, tg.tlsAddr, "string", srv, nil).Get("https://string/m")
	require.Error(t, err, "no client certificate: the handshake fails")
	stranger := testcert.Issue(testcert.NewCA("other"), testcert.Options{Client: true, CN: "eve"})
	_, err = httpsClient(t, tg.tlsAddr, "string", srv, stranger).Get("https://string/m")
	require.Error(t, err, "a client certificate of another CA")
}

// API7 "Get a global rule" and "List all global rules": the sample's
// plugins ({}) get one plugin whose effect shows.
func TestSeedAPI7GlobalRule(t *testing.T) {
	for _, c := range []struct{ file, at string }{
		{"api7-global-rule.json", "value"},
		{"api7-global-rule-list.json", "list.0"},
	} {
		t.Run(c.file, func(t *testing.T) {
			b := startBackend(t, "b", nil)
			rule := testseed.Load(c.file)
			testseed.Set(rule, seedPath(c.at, "plugins"), map[string]any{
				"response-rewrite": map[string]any{"headers": map[string]any{"set": map[string]any{"X-Seed-Rule": "$uri"}}}})
			var rules any = []any{rule}
			if c.at != "value" {
				rules = rule
			}
			tg := startGateway(t, seedConfig(map[string]any{
				"global_rules": rules,
				"services": []any{map[string]any{"id": "s", "upstream": map[string]any{"nodes": seedNodes(t, b)},
					"routes": []any{map[string]any{"paths": []any{"/*"}}}}},
			}))
			resp := tg.get(t, "/g")
			require.Equal(t, 200, resp.StatusCode())
			require.Equal(t, "/g", string(resp.Header.Peek("X-Seed-Rule")))
		})
	}
}

// seedService is a service in front of b with one catch-all route; extra
// keys are added to the service.
func seedService(t *testing.T, b *backend, extra map[string]any) map[string]any {
	s := map[string]any{"id": "s", "upstream": map[string]any{"nodes": seedNodes(t, b)},
		"routes": []any{map[string]any{"paths": []any{"/*"}, "methods": []any{"GET"}}}}
	maps.Copy(s, extra)
	return s
}

// Huawei "Creating a Request Throttling Policy" (the 201 response), bound
// to a service as it is.
func TestSeedHuaweiThrottlePolicy(t *testing.T) {
	b := startBackend(t, "b", nil)
	p := testseed.Load("huawei-throttle-policy.json")
	tg := startGateway(t, seedConfig(map[string]any{
		"throttle_policies": []any{p},
		"services":          []any{seedService(t, b, map[string]any{"throttle_policy": "3437448ad06f4e0c91a224183116e965"})},
	}))
	resp := tg.get(t, "/t")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	// ip_call_limits 600 is the most constrained counter that applies
	// (user and app limits need a consumer; the API's is 800).
	require.Equal(t, "600", string(resp.Header.Peek("X-RateLimit-Limit")))
	require.Equal(t, "599", string(resp.Header.Peek("X-RateLimit-Remaining")))
}

// Huawei "Creating a Group Response" (the 201 response): its responses
// map is gateway_responses as it is, Huawei's types the gateway never
// produces (custom and third-party authorizers, orchestration) included
// since they are Huawei's untouched defaults (default: true).
func TestSeedHuaweiGatewayResponse(t *testing.T) {
	b := startBackend(t, "b", nil)
	gr := testseed.Load("huawei-gateway-response.json")
	tg := startGateway(t, seedConfig(map[string]any{
		"gateway_responses": testseed.Get(gr, "responses"),
		"services": []any{seedService(t, b, map[string]any{"plugins": map[string]any{
			"key-auth":             map[string]any{},
			"consumer-restriction": map[string]any{"whitelist": []any{"bob"}}}})},
		"consumers": []any{map[string]any{"username": "alice", "plugins": map[string]any{"key-auth": map[string]any{"key": "alice-key"}}}},
	}))
	resp := tg.do(t, "GET", "/x", map[string]string{"apikey": "alice-key"}, "")
	// The sample's UNAUTHORIZED is Huawei's 401 (the gateway's own is 403).
	require.Equal(t, 401, resp.StatusCode())
	require.Contains(t, string(resp.Body()), `"error_code":"APIG.0302"`)
	resp = tg.do(t, "GET", "/x", nil, "")
	require.Equal(t, 401, resp.StatusCode())
	require.Contains(t, string(resp.Body()), `"error_code":"APIG.0303"`)
}

// Huawei ResponseInfo with headers as [{key, value}] (Table 3-1083 and
// 3-1084 of "Creating a Group Response"; the document has no sample with
// headers), and the DEFAULT_4XX / DEFAULT_5XX catch-alls.
func TestSeedHuaweiGatewayResponseHeaders(t *testing.T) {
	b := startBackend(t, "b", nil)
	// A port nobody listens on: the node refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadPort := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	deadNodes := []any{map[string]any{"host": "127.0.0.1", "port": deadPort, "weight": 1}}
	tg := startGateway(t, seedConfig(map[string]any{
		"gateway_responses": testseed.Load("huawei-gateway-response-headers.json"),
		"services": []any{
			seedService(t, b, map[string]any{"path_prefix": "/up"}),
			map[string]any{"id": "down", "path_prefix": "/down", "upstream": map[string]any{"nodes": deadNodes},
				"routes": []any{map[string]any{"paths": []any{"/*"}}}},
		},
	}))
	resp := tg.do(t, "POST", "/up/x", nil, "")
	require.Equal(t, 405, resp.StatusCode(), "DEFAULT_4XX keeps the type's status when it sets none")
	require.Equal(t, "default-4xx", string(resp.Header.Peek("X-Seed-Response")))
	require.Contains(t, string(resp.Body()), `"code":"APIG.0102"`)
	require.Contains(t, string(resp.Body()), `"class":"4xx"`)

	resp = tg.get(t, "/nowhere")
	require.Equal(t, 404, resp.StatusCode())
	require.Equal(t, "not-found", string(resp.Header.Peek("X-Seed-Response")), "a type's own entry beats DEFAULT_4XX")
	require.Contains(t, string(resp.Body()), `"error_code":"APIG.0101"`, "NOT_FOUND sets no body: the default one")

	resp = tg.get(t, "/down/x")
	require.Equal(t, 503, resp.StatusCode(), "DEFAULT_5XX's status replaces BACKEND_UNAVAILABLE's 502")
	require.Equal(t, "default-5xx", string(resp.Header.Peek("X-Seed-Response")))
	require.Equal(t, "30", string(resp.Header.Peek("Retry-After")))
	require.Equal(t, `{"code":"APIG.0202","class":"5xx"}`, string(resp.Body()))

	require.Equal(t, 200, tg.get(t, "/up/x").StatusCode())
}

// Huawei "Creating a VPC Channel" (server type) written as an upstream by
// the README's mapping, http_code "200" kept in its string form.
func TestSeedHuaweiVPCChannel(t *testing.T) {
	b := startBackend(t, "b", nil)
	ch := testseed.Load("huawei-vpc-channel.json")
	// The members 192.168.0.5:22 and 192.168.1.124:22: the test's backend.
	testseed.Set(ch, "nodes", seedNodes(t, b))
	testseed.Set(ch, "checks.active.port", seedPort(t, b))
	tg := startGateway(t, seedConfig(map[string]any{
		"upstreams": []any{ch},
		"services":  []any{seedService(t, b, map[string]any{"upstream": nil, "upstream_id": "105c6902457144a4820dff8b1ad63331"})},
	}))
	resp := tg.get(t, "/vpc")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "b GET /vpc", string(resp.Body()))
}

// Huawei "Creating an API" (web backend) written as a service and route by
// the README's mapping: req_params, backend_params and remark as they are.
func TestSeedHuaweiAPI(t *testing.T) {
	b := startBackend(t, "b", nil)
	api := testseed.Load("huawei-api.json")
	// backend_api.url_domain 192.168.189.156:12346: the test's backend.
	testseed.Set(api, "upstream.nodes", seedNodes(t, b))
	tg := startGateway(t, seedConfig(map[string]any{"services": []any{api}}))

	resp := tg.get(t, "/test/http")
	require.Equal(t, 400, resp.StatusCode(), "query_demo is required")
	require.Contains(t, string(resp.Body()), "query_demo")
	resp = tg.do(t, "GET", "/test/http?query_demo=1", map[string]string{"header-demo": "hv"}, "")
	require.Equal(t, 200, resp.StatusCode(), string(resp.Body()))
	require.Equal(t, "b GET /test/benchmark?query_demo=1", string(resp.Body()))
	require.Equal(t, "hv", string(b.lastRequest().Header.Peek("backHeader")))
}
