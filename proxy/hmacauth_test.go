package proxy

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hmacSign signs a request as APISIX 3.x's hmac-auth documents it: the
// keyId, then per signed header "name: value" or, for @request-target,
// "METHOD uri", each line ending in a newline.
func hmacSign(keyID, secret, alg, method, uri string, signed []string, hdr map[string]string) string {
	lines := []string{keyID}
	for _, h := range signed {
		if h == "@request-target" {
			lines = append(lines, method+" "+uri)
		} else {
			lines = append(lines, h+": "+hdr[h])
		}
	}
	newHash := map[string]func() hash.Hash{"hmac-sha1": sha1.New, "hmac-sha256": sha256.New, "hmac-sha512": sha512.New}[alg]
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(strings.Join(lines, "\n") + "\n"))
	return `Signature keyId="` + keyID + `",algorithm="` + alg + `",headers="` + strings.Join(signed, " ") +
		`",signature="` + base64.StdEncoding.EncodeToString(m.Sum(nil)) + `"`
}

func TestHMACAuth(t *testing.T) {
	t.Setenv("GW_TEST_HMAC", "alice-secret")
	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    plugins: {hmac-auth: {}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: keep, paths: ["/keep"]}
      - {id: hide, paths: ["/hide"], plugins: {hmac-auth: {hide_credentials: true, clock_skew: 60}}}
      - {id: strict, paths: ["/strict"], plugins: {hmac-auth: {allowed_algorithms: [hmac-sha512], signed_headers: [x-custom, "@request-target"]}}}
consumers:
  - {username: alice, plugins: {hmac-auth: {key_id: alice-key, secret_key: $env://GW_TEST_HMAC}}}
  - {username: bob, credentials: [{name: app, plugins: {hmac-auth: {key_id: bob-key, secret_key: bob-secret}}}]}
`)
	now := time.Now().UTC()
	date := now.Format(http.TimeFormat) // HTTP date, GMT
	std := []string{"@request-target", "date"}
	req := func(uri, keyID, secret, alg string, signed []string, hdr map[string]string) map[string]string {
		if hdr == nil {
			hdr = map[string]string{}
		}
		if _, ok := hdr["date"]; !ok {
			hdr["date"] = date
		}
		out := map[string]string{"Authorization": hmacSign(keyID, secret, alg, "GET", uri, signed, hdr)}
		for k, v := range hdr {
			out[k] = v
		}
		return out
	}
	p := &authProbe{t: t, tg: tg, b: b}
	for _, alg := range []string{"hmac-sha1", "hmac-sha256", "hmac-sha512"} {
		up := p.pass("/keep?a=1", req("/keep?a=1", "alice-key", "alice-secret", alg, std, nil), "alice", "alice")
		require.NotEmpty(t, up.Header.Peek("Authorization"))
	}
	up := p.pass("/hide", req("/hide", "bob-key", "bob-secret", "hmac-sha256", std, nil), "bob", "app")
	require.Empty(t, up.Header.Peek("Authorization"), "hide_credentials")
	p.pass("/strict", req("/strict", "bob-key", "bob-secret", "hmac-sha512",
		[]string{"@request-target", "date", "x-custom"}, map[string]string{"x-custom": "v"}), "bob", "app")

	// A signature for another request: tampered path, method or header.
	tamperedPath := req("/keep?a=1", "alice-key", "alice-secret", "hmac-sha256", std, nil)
	signedCustom := req("/strict", "bob-key", "bob-secret", "hmac-sha512", []string{"@request-target", "date", "x-custom"}, map[string]string{"x-custom": "v"})
	signedCustom["x-custom"] = "changed"
	old := now.Add(-10 * time.Minute).Format(http.TimeFormat)
	future := now.Add(10 * time.Minute).Format(http.TimeFormat)
	for _, c := range []struct {
		name, uri string
		hdr       map[string]string
		code      string
	}{
		{"missing", "/keep", nil, "APIG.0303"},
		{"another scheme", "/keep", map[string]string{"Authorization": basic("a", "b")}, "APIG.0303"},
		{"wrong secret", "/keep", req("/keep", "alice-key", "guess", "hmac-sha256", std, nil), "APIG.0301"},
		{"the reference as the secret", "/keep", req("/keep", "alice-key", "$env://GW_TEST_HMAC", "hmac-sha256", std, nil), "APIG.0301"},
		{"unknown key id", "/keep", req("/keep", "nobody", "alice-secret", "hmac-sha256", std, nil), "APIG.0301"},
		{"tampered path", "/keep?a=2", tamperedPath, "APIG.0301"},
		{"tampered header", "/strict", signedCustom, "APIG.0301"},
		{"replayed outside the clock skew", "/keep", req("/keep", "alice-key", "alice-secret", "hmac-sha256", std, map[string]string{"date": old}), "APIG.0301"},
		{"dated in the future", "/keep", req("/keep", "alice-key", "alice-secret", "hmac-sha256", std, map[string]string{"date": future}), "APIG.0301"},
		{"date not signed", "/keep", req("/keep", "alice-key", "alice-secret", "hmac-sha256", []string{"@request-target"}, nil), "APIG.0301"},
		{"no date", "/keep", map[string]string{"Authorization": hmacSign("alice-key", "alice-secret", "hmac-sha256", "GET", "/keep", []string{"@request-target"}, nil)}, "APIG.0301"},
		{"algorithm not allowed", "/strict", req("/strict", "bob-key", "bob-secret", "hmac-sha256", []string{"@request-target", "date", "x-custom"}, map[string]string{"x-custom": "v"}), "APIG.0301"},
		{"required header not signed", "/strict", req("/strict", "bob-key", "bob-secret", "hmac-sha512", std, nil), "APIG.0301"},
		{"signed header absent", "/keep", func() map[string]string {
			h := req("/keep", "alice-key", "alice-secret", "hmac-sha256", []string{"@request-target", "date", "x-gone"}, map[string]string{"x-gone": "v"})
			delete(h, "x-gone")
			return h
		}(), "APIG.0301"},
		{"malformed", "/keep", map[string]string{"Authorization": `Signature keyId=alice-key`}, "APIG.0301"},
		{"huge signature", "/keep", map[string]string{"date": date, "Authorization": `Signature keyId="alice-key",algorithm="hmac-sha256",headers="date",signature="` + strings.Repeat("A", 400) + `"`}, "APIG.0301"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.refused(t, c.uri, c.hdr, c.code)
		})
	}
}

func TestHMACAuthConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, route, cred, want string }{
		{"body", `{validate_request_body: true}`, `{key_id: k, secret_key: s}`, "hmac-auth.validate_request_body: not supported"},
		{"algorithm", `{allowed_algorithms: [hmac-md5]}`, `{key_id: k, secret_key: s}`, "allowed_algorithms[0]"},
		{"skew", `{clock_skew: 0}`, `{key_id: k, secret_key: s}`, "hmac-auth.clock_skew"},
		{"no secret", `{}`, `{key_id: k}`, "hmac-auth.secret_key: required"},
		{"no key id", `{}`, `{secret_key: s}`, "hmac-auth.key_id: required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mustParseErr("services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/], plugins: {hmac-auth: " + c.route + "}}]}]\nconsumers: [{username: a, plugins: {hmac-auth: " + c.cred + "}}]\n")
			require.ErrorContains(t, err, c.want)
		})
	}
}
