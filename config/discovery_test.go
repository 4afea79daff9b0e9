package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiscoveryAccepted(t *testing.T) {
	// The API7 sample's keys, null or empty: nodes as before.
	cfg := mustParse(t, withUpstream(`{nodes: [{host: 10.0.0.1, port: 80}], service_name: null, discovery_type: null, discovery_args: null}`))
	u := cfg.Services[0].Upstream
	require.Empty(t, u.DiscoveryType)
	require.Equal(t, 0, *u.Retries)
	mustParse(t, withUpstream(`{nodes: [{host: 10.0.0.1, port: 80}], service_name: "", discovery_type: "", discovery_args: {}}`))

	cfg = mustParse(t, withUpstream(`{discovery_type: dns, service_name: "svc.example.com:8080", discovery_args: {}}`))
	u = cfg.Services[0].Upstream
	require.Equal(t, DiscoveryDNS, u.DiscoveryType)
	require.Empty(t, u.Nodes)
	require.Nil(t, u.Retries, "a discovered upstream's default retries follow its node set")

	cfg = mustParse(t, "gateway: {resolver: {nameservers: [\"127.0.0.1:5353\", \"::1\", \"10.0.0.53\"], timeout: 0.5}}\n"+
		"upstreams: [{id: u, discovery_type: dns, service_name: _http._tcp.svc.example.com}]\n"+minimal)
	require.Equal(t, []string{"127.0.0.1:5353", "::1", "10.0.0.53"}, cfg.Gateway.Resolver.Nameservers)
	require.Equal(t, Seconds(0.5), cfg.Gateway.Resolver.Timeout)
	require.Equal(t, Seconds(2), mustParse(t, minimal).Gateway.Resolver.Timeout)
}

// An unsupported discovery_type is one error, not also "nodes required".
func TestDiscoveryRefusedTypeOneError(t *testing.T) {
	errs := parseErrs(t, minimal+"upstreams: [{id: u, discovery_type: nacos, service_name: svc}]\n", "t.yaml")
	require.Len(t, errs, 1, errs.Error())
	requireFieldError(t, errs, "upstreams[0].discovery_type", `"nacos" is not supported`)
}

func TestDiscoveryErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"other discovery types", withUpstream(`{discovery_type: kubernetes, service_name: ns/svc:http}`),
			"services[0].upstream.discovery_type", []string{`"kubernetes" is not supported`, `only "dns"`}},
		{"consul", minimal + "upstreams: [{id: u, discovery_type: consul, service_name: svc}]\n",
			"upstreams[0].discovery_type", []string{`"consul" is not supported`}},
		{"discovery_args keys", withUpstream(`{discovery_type: dns, service_name: svc.test, discovery_args: {metadata: {idc: shanghai}}}`),
			"services[0].upstream.discovery_args.metadata", []string{"is not supported"}},
		{"discovery_args without discovery", withUpstream(`{nodes: [{host: a, port: 1}], discovery_args: {namespace_id: x}}`),
			"services[0].upstream.discovery_args.namespace_id", []string{"is not supported"}},
		{"nodes with dns", withUpstream(`{discovery_type: dns, service_name: svc.test, nodes: [{host: a, port: 1}]}`),
			"services[0].upstream.nodes", []string{`must be empty with discovery_type "dns"`}},
		{"service_name required", withUpstream(`{discovery_type: dns}`),
			"services[0].upstream.service_name", []string{"required"}},
		{"service_name without discovery_type", withUpstream(`{nodes: [{host: a, port: 1}], service_name: svc.test}`),
			"services[0].upstream.service_name", []string{`requires discovery_type "dns"`}},
		{"no nodes without discovery", withUpstream(`{discovery_type: null}`),
			"services[0].upstream.nodes", []string{"must have 1..1024 nodes"}},
		{"bad port", withUpstream(`{discovery_type: dns, service_name: "svc.test:99999"}`),
			"services[0].upstream.service_name", []string{"port 1..65535", `"svc.test:99999"`}},
		{"srv with port", withUpstream(`{discovery_type: dns, service_name: "_http._tcp.svc.test:80"}`),
			"services[0].upstream.service_name", []string{"SRV name", "takes no port"}},
		{"ip address", withUpstream(`{discovery_type: dns, service_name: "10.0.0.1:80"}`),
			"services[0].upstream.service_name", []string{"an IP address belongs in nodes"}},
		{"bad name", withUpstream(`{discovery_type: dns, service_name: "a b"}`),
			"services[0].upstream.service_name", []string{"must be a DNS name"}},
		{"nameserver", "gateway: {resolver: {nameservers: [dns.example.com]}}\n" + minimal,
			"gateway.resolver.nameservers[0]", []string{"IP address or ip:port", `"dns.example.com"`}},
		{"nameserver port", "gateway: {resolver: {nameservers: [\"127.0.0.1:0\"]}}\n" + minimal,
			"gateway.resolver.nameservers[0]", []string{"IP address or ip:port"}},
		{"resolver timeout", "gateway: {resolver: {timeout: 0}}\n" + minimal,
			"gateway.resolver.timeout", nil},
		{"resolver key", "gateway: {resolver: {search: [a]}}\n" + minimal,
			"gateway.resolver.search", []string{"unknown key"}},
	})
}
