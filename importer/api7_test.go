package importer

import (
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// The API7 samples (testdata/api7/README.md): list responses of every
// object type, one file each, imported from the directory.
func TestAPI7SamplesRoundTrip(t *testing.T) {
	key, err := os.ReadFile("testdata/api7/cert-key.pem")
	require.NoError(t, err)
	t.Setenv("GATEWAY_CERT_KEY_CERT_SHOP", string(key))

	r, err := API7([]string{"testdata/api7"})
	require.NoError(t, err)
	cfg := load(t, r)

	require.Len(t, cfg.Services, 3) // two HTTP, one stream
	s := service(t, cfg, "7a8b2c")
	require.Equal(t, "orders", s.Name)
	require.Equal(t, "/orders", s.PathPrefix)
	require.Len(t, s.Upstream.Nodes, 2)
	require.NotNil(t, s.Upstream.Checks.Passive)
	require.Contains(t, s.Plugins, "cors")
	require.Len(t, s.Routes, 2)
	require.Equal(t, "r-list", s.Routes[0].ID)
	require.Equal(t, []string{"/{id}"}, s.Routes[1].Paths)
	require.Contains(t, s.Routes[1].Plugins, "key-auth")
	require.NotContains(t, s.Routes[1].Plugins, "prometheus")

	inv := service(t, cfg, "inv-1")
	require.Equal(t, "inventory.internal", inv.Upstream.Nodes[0].Host)

	require.Len(t, cfg.Consumers, 1)
	require.Equal(t, "alice", cfg.Consumers[0].Username)
	require.Equal(t, "mobile-app", cfg.Consumers[0].Credentials[0].Name)

	require.Len(t, cfg.Certificates, 1)
	require.Equal(t, string(key), cfg.Certificates[0].Key) // read from $env://GATEWAY_CERT_KEY_CERT_SHOP
	require.Contains(t, string(r.YAML), `key: "$env://GATEWAY_CERT_KEY_CERT_SHOP"`)
	require.Len(t, cfg.SNIs, 1)
	require.Equal(t, []string{"cert-shop"}, cfg.SNIs[0].Certificates)
	require.Contains(t, cfg.GlobalPlugins, "ip-restriction")

	requireWarned(t, r, "routes.json: list[1].plugins.prometheus", "not supported by this gateway")
	// The stream service and its stream route, with a listener on the
	// route's server_port.
	require.Equal(t, []string{":3306"}, cfg.Gateway.StreamListen)
	require.Len(t, cfg.StreamRoutes, 1)
	require.Equal(t, config.StreamRoute{ID: "sr-1", Name: "mysql", Desc: "db", Labels: map[string]string{}, ServiceID: "db-1",
		ServerAddr: "127.0.0.1", ServerPort: 3306, RemoteAddr: "127.0.0.1"}, withoutParsed(cfg.StreamRoutes[0]))
	// kubernetes discovery is not built: one warning, the static nodes kept.
	requireWarned(t, r, "services.json: list[1].upstream.discovery_type", `"kubernetes" is not supported (only dns)`)
	require.Empty(t, service(t, cfg, "inv-1").Upstream.DiscoveryType)
	requireWarned(t, r, "certificates.json: list[0]", "GATEWAY_CERT_KEY_CERT_SHOP")
	yaml := string(r.YAML)
	require.Contains(t, yaml, `# api7 service 7a8b2c "orders" (testdata/api7/services.json: list[0])`)
	require.Contains(t, yaml, `# api7 route r-get "get-order" (testdata/api7/routes.json: list[1])`)
	require.Contains(t, yaml, `# api7 credential cred-1 "mobile-app" (testdata/api7/credentials-alice.json: list[0])`)
	require.NotContains(t, yaml, "created_at")
	require.NotContains(t, yaml, "        service_id") // routes nest in their service (a stream route keeps its own)
}

// Get responses ({value}) and bare objects, their type from their fields.
func TestAPI7GetResponsesAndInference(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.json": `{"value": {"id": "svc", "name": "s", "path_prefix": "/s", "upstream": {"nodes": [{"host": "127.0.0.1", "port": 80, "weight": 1}]}, "created_at": 1}}`,
		"b.json": `{"value": {"id": "r1", "paths": ["/x"], "service_id": "svc", "methods": ["GET"], "unknown_key": 1}}`,
		"c.json": `{"username": "bob", "plugins": {"key-auth": {"key": "k-bob"}}}`,
		"d.json": `{"value": {"id": "g", "plugins": {"cors": {}}}}`,
		"e.json": `{"value": {"id": "orphan", "paths": ["/y"], "service_id": "nope"}}`,
	})
	r, err := API7([]string{dir})
	require.NoError(t, err)
	cfg := load(t, r)
	s := service(t, cfg, "svc")
	require.Len(t, s.Routes, 1)
	require.Equal(t, []string{"GET"}, s.Routes[0].Methods)
	require.Equal(t, "bob", cfg.Consumers[0].Username)
	require.Contains(t, cfg.GlobalPlugins, "cors")
	requireWarned(t, r, "b.json: value.unknown_key: not supported, not imported")
	requireWarned(t, r, "e.json: value", `service "nope"`)
}

// APISIX-style list items ({key, value}) are unwrapped.
func TestAPI7WrappedListItems(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"consumers.json": `{"total": 1, "list": [{"key": "/apisix/consumers/jack", "value": {"username": "jack", "plugins": {"key-auth": {"key": "k-jack"}}}, "createdIndex": 1, "modifiedIndex": 1}]}`,
	})
	r, err := API7([]string{dir})
	require.NoError(t, err)
	cfg := load(t, r)
	require.Equal(t, "jack", cfg.Consumers[0].Username)
	require.Contains(t, string(r.YAML), "consumers.json: list[0].value)")
}

// withoutParsed clears what validation derives from a stream route.
func withoutParsed(r config.StreamRoute) config.StreamRoute {
	r.Server, r.Remote, r.Plugins = netip.Addr{}, netip.Prefix{}, nil
	return r
}
