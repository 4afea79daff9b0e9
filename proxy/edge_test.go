package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawHeaderLines returns the header lines (lower case) of the backend's
// last request that are named name, as received.
func rawHeaderLines(b *backend, name string) []string {
	var out []string
	for _, line := range strings.Split(string(b.lastRequest().Header.RawHeaders()), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// Issue 12.1: all X-Forwarded-For lines form one list. A trusted proxy
// (HAProxy's option forwardfor) appends its own line; reading only the
// first line believed the client's forged one.
func TestRealIPReadsEveryForwardedForLine(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, trusted_addresses: [127.0.0.1]}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, plugins: {ip-restriction: {whitelist: [10.0.0.0/8]}}, routes: [{paths: ["/*"]}]}
`)
	forged := "GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.6.6.6\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"
	require.Equal(t, 403, tg.rawStatus(t, forged), "the proxy's line names the client: 203.0.113.7")
	require.Zero(t, b.hits.Load())

	real := "GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.6.6.6\r\n\r\n"
	require.Equal(t, 200, tg.rawStatus(t, real))
	require.Equal(t, []string{"10.6.6.6"}, rawHeaderLines(b, "X-Real-IP"))
	require.Equal(t, []string{"203.0.113.7, 10.6.6.6, 127.0.0.1"}, rawHeaderLines(b, "X-Forwarded-For"))
}

func TestRealIPRecursiveAcrossLines(t *testing.T) {
	b := startBackend(t, "b", nil)
	for _, tc := range []struct {
		recursive string
		want      string
	}{{"true", "203.0.113.7"}, {"false", "10.1.1.1"}} {
		tg := startGateway(t, `
gateway: {access_log: {enabled: false}, real_ip: {header: X-Forwarded-For, recursive: `+tc.recursive+`, trusted_addresses: [127.0.0.1, 10.0.0.0/8]}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
		// Trusted addresses are skipped from the right, across lines.
		require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-For: 10.1.1.1\r\n\r\n"))
		require.Equal(t, []string{tc.want}, rawHeaderLines(b, "X-Real-IP"), "recursive: %s", tc.recursive)
	}
}

// Issue 12.2: the client's copies of the headers the gateway sets never
// reach the backend, however many lines they come on.
func TestClientCopiesOfGatewayHeadersRemoved(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: api.test\r\n"+
		"X-Real-IP: 6.6.6.6\r\nX-Real-IP: 7.7.7.7\r\n"+
		"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"+
		"X-Forwarded-Host: evil.test\r\nX-Forwarded-Host: evil2.test\r\n"+
		"X-Forwarded-Proto: https\r\nX-Forwarded-Proto: https\r\n"+
		"X-Request-Id: r1\r\nX-Request-Id: r2\r\n"+
		"X-Consumer-Username: admin\r\nX-Consumer-Username: root\r\n"+
		"X_Consumer_Username: admin\r\nX_Real_IP: 6.6.6.6\r\nX_Custom: 1\r\n\r\n"))
	require.Equal(t, []string{"127.0.0.1"}, rawHeaderLines(b, "X-Real-IP"))
	// The client's lines are kept in order; the right-most entry is the peer.
	require.Equal(t, []string{"1.1.1.1, 2.2.2.2, 127.0.0.1"}, rawHeaderLines(b, "X-Forwarded-For"))
	require.Equal(t, []string{"api.test"}, rawHeaderLines(b, "X-Forwarded-Host"))
	require.Equal(t, []string{"http"}, rawHeaderLines(b, "X-Forwarded-Proto"))
	require.Equal(t, []string{"r1"}, rawHeaderLines(b, "X-Request-Id"))
	require.Empty(t, rawHeaderLines(b, "X-Consumer-Username"))
	// underscores_in_headers: false (the default) drops every name with '_'.
	require.Empty(t, rawHeaderLines(b, "X_Consumer_Username"))
	require.Empty(t, rawHeaderLines(b, "X_Real_IP"))
	require.Empty(t, rawHeaderLines(b, "X_Custom"))
}

func TestUnderscoreHeadersAllowed(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, underscores_in_headers: true, real_ip: {header: X-Client-IP}}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: api.test\r\n"+
		"X_Consumer_Username: admin\r\nx_real_ip: 6.6.6.6\r\nX_Forwarded_For: 1.1.1.1\r\nX_Client_IP: 1.1.1.1\r\nX_Custom: 1\r\n\r\n"))
	// Names that read as a header the gateway sets or trusts are dropped
	// even so; others pass.
	require.Empty(t, rawHeaderLines(b, "X_Consumer_Username"))
	require.Empty(t, rawHeaderLines(b, "X_Real_IP"))
	require.Empty(t, rawHeaderLines(b, "X_Forwarded_For"))
	require.Empty(t, rawHeaderLines(b, "X_Client_IP"))
	require.Equal(t, []string{"1"}, rawHeaderLines(b, "X_Custom"))
}

// Issue 12.3: an absolute-form target's authority replaces Host (RFC 9112
// 3.2.2), and a Host that is not host[:port] is a 400.
func TestAbsoluteFormAuthorityReplacesHost(t *testing.T) {
	pub := startBackend(t, "public", nil)
	internal := startBackend(t, "internal", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}}
services:
  - {id: public, hosts: [public.test], upstream: `+upstreamYAML(pub)+`, routes: [{paths: ["/*"]}]}
  - {id: internal, hosts: [internal.test], upstream: `+upstreamYAML(internal)+`, plugins: {ip-restriction: {whitelist: [10.0.0.0/8]}}, routes: [{paths: ["/*"]}]}
  - {id: any, upstream: `+upstreamYAML(pub)+`, routes: [{paths: ["/ok"]}]}
`)
	require.Equal(t, 200, tg.rawStatus(t, "GET http://public.test/a HTTP/1.1\r\nHost: internal.test\r\n\r\n"))
	require.Equal(t, "public.test", string(pub.lastRequest().Header.Host()))
	require.Equal(t, []string{"public.test"}, rawHeaderLines(pub, "X-Forwarded-Host"))

	require.Equal(t, 200, tg.rawStatus(t, "GET HTTP://Public.Test:80/b?x=1 HTTP/1.1\r\nHost: internal.test\r\n\r\n"))
	require.Equal(t, "Public.Test:80", string(pub.lastRequest().Header.Host()))
	require.Equal(t, "/b?x=1", string(pub.lastRequest().Header.RequestURI()))

	hits := pub.hits.Load()
	for _, req := range []string{
		"GET /a HTTP/1.1\r\nHost: internal.test@public.test\r\n\r\n",
		"GET http://internal.test@public.test/a HTTP/1.1\r\nHost: public.test\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: public.test/../x\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: public.test:80:80\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: public.test:http\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: [::1%25eth0]\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: public.test,internal.test\r\n\r\n",
		"GET ftp://public.test/a HTTP/1.1\r\nHost: public.test\r\n\r\n",
	} {
		require.Equal(t, 400, tg.rawStatus(t, req), "%q", req)
	}
	require.Equal(t, hits, pub.hits.Load())
	require.Zero(t, internal.hits.Load())

	for _, host := range []string{"public.test:8080", "PUBLIC.test.", "127.0.0.1:80", "[::1]:80", "[2001:db8::1]"} {
		require.Equal(t, 200, tg.rawStatus(t, "GET /ok HTTP/1.1\r\nHost: "+host+"\r\n\r\n"), host)
	}
}

// Issue 12.7: header count and Connection tokens are capped.
func TestHeaderCountCapped(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
gateway: {access_log: {enabled: false}, max_header_count: 20}
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	var hdrs strings.Builder
	for i := range 19 {
		hdrs.WriteString("X-H" + itoa(i) + ": v\r\n")
	}
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\n"+hdrs.String()+"\r\n"), "20 lines with Host")
	require.Equal(t, 431, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\n"+hdrs.String()+"X-One-More: v\r\n\r\n"))
}

func TestConnectionTokensCapped(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)

	tokens := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = "x" + itoa(i)
		}
		return strings.Join(s, ", ")
	}
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: "+tokens(32)+"\r\n\r\n"))
	require.Equal(t, 400, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: "+tokens(33)+"\r\n\r\n"))
	require.Equal(t, 400, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: "+tokens(16)+"\r\nConnection: "+tokens(17)+"\r\n\r\n"), "tokens are counted over every line")
	hits := b.hits.Load()
	require.Equal(t, 400, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: "+tokens(1200)+"\r\n\r\n"))
	require.Equal(t, hits, b.hits.Load())
}

func TestDefaultHeaderCountIs100(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	var hdrs strings.Builder
	for i := range 99 {
		hdrs.WriteString("X-H" + itoa(i) + ": v\r\n")
	}
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\n"+hdrs.String()+"\r\n"))
	require.Equal(t, 431, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\n"+hdrs.String()+"X-Last: v\r\n\r\n"))
}

// Issue 12.8: framing leftovers that fasthttp accepts are refused with 400
// and never forwarded.
func TestFramingLeftoversRefused(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	for name, req := range map[string]string{
		"te identity": "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"name space":  "GET /a HTTP/1.1\r\nHost: a\r\nX Bad: 1\r\n\r\n",
		"non-ascii":   "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"non-ascii q": "GET /a?q=\xff HTTP/1.1\r\nHost: a\r\n\r\n",
		"HTTP/1.2":    "GET /a HTTP/1.2\r\nHost: a\r\n\r\n",
		"HTTP/2.0":    "GET /a HTTP/2.0\r\nHost: a\r\n\r\n",
		"HTTP/0.9":    "GET /a HTTP/0.9\r\nHost: a\r\n\r\n",
		"folded cl":   "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 5\r\n\r\nhello",
		"folded":      "GET /a HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp := tg.raw(t, req)
			require.True(t, strings.HasPrefix(resp, "HTTP/1.1 400 "), resp)
			require.Contains(t, resp, "APIG.0201")
			require.Zero(t, b.hits.Load())
		})
	}
}

// Issue 12.4: path forms that common backends reinterpret do not reach
// them through open routes.
func TestPathPolicyThroughGateway(t *testing.T) {
	b := startBackend(t, "b", nil)
	cfg := func(extra string) string {
		return `
gateway: {access_log: {enabled: false}` + extra + `}
services:
  - id: s
    upstream: ` + upstreamYAML(b) + `
    routes:
      - {id: admin, paths: ["/admin", "/admin/*"], plugins: {ip-restriction: {whitelist: [10.0.0.0/8]}}}
      - {id: open, paths: ["/*"]}
`
	}
	attacks := []string{
		"/public/..%2Fadmin/users", "/public/..%2fadmin/users", "/public/..%5Cadmin/users",
		"/public/..\\admin/users", "/public/..;/admin/users", "/public/.;x/../admin/users",
		"/admin%2Fusers", "/admin%00",
	}
	get := func(tg *testGateway, path string) int {
		return tg.rawStatus(t, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
	}

	// reject (the default): 400, nothing forwarded.
	tg := startGateway(t, cfg(""))
	for _, p := range attacks {
		require.Equal(t, 400, get(tg, p), p)
	}
	require.Zero(t, b.hits.Load())
	require.Equal(t, 200, get(tg, "/admin;x"), "path parameters pass unless reject_path_params")
	require.Equal(t, "/admin;x", string(b.lastRequest().Header.RequestURI()))

	tg = startGateway(t, cfg(", reject_path_params: true"))
	require.Equal(t, 400, get(tg, "/admin;x"))
	require.Equal(t, 400, get(tg, "/open;jsessionid=1"))

	// decode: the decoded path is matched (and refused by the admin
	// route's ip-restriction) and forwarded.
	tg = startGateway(t, cfg(", path_policy: decode"))
	for _, p := range []string{"/public/..%2Fadmin/users", "/public/..%5Cadmin/users", "/public/..\\admin/users", "/admin%2Fusers"} {
		require.Equal(t, 403, get(tg, p), p)
	}
	require.Equal(t, 400, get(tg, "/public/..;/admin/users"))
	require.Equal(t, 400, get(tg, "/admin%00"))
	require.Equal(t, 200, get(tg, "/a%2Fb%5Cc"))
	require.Equal(t, "/a/b/c", string(b.lastRequest().Header.RequestURI()))

	// keep: as before this policy existed.
	tg = startGateway(t, cfg(", path_policy: keep"))
	require.Equal(t, 200, get(tg, "/public/..%2Fadmin/users"))
	require.Equal(t, "/public/..%2Fadmin/users", string(b.lastRequest().Header.RequestURI()))
}

// Hop-by-hop: every Connection line's tokens are removed, not only the
// first line's.
func TestConnectionTokensOnEveryLineRemoved(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - {id: s, upstream: `+upstreamYAML(b)+`, routes: [{paths: ["/*"]}]}
`)
	require.Equal(t, 200, tg.rawStatus(t, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: X-Secret, X-Other\r\n"+
		"X-Secret: 1\r\nX-Other: 2\r\nX-Kept: 3\r\n\r\n"))
	require.Empty(t, rawHeaderLines(b, "X-Secret"))
	require.Empty(t, rawHeaderLines(b, "X-Other"))
	require.Empty(t, rawHeaderLines(b, "Connection"))
	require.Equal(t, []string{"3"}, rawHeaderLines(b, "X-Kept"))
}
