package proxy

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/internal/testnet"
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

// TestHMACAuthValidatesTheBody: with validate_request_body, the body's
// SHA-256 must equal the signed Digest header. A buffered body that fails
// never reaches a node; a streamed one is cut before its last bytes, so
// the node sees an incomplete message.
func TestHMACAuthValidatesTheBody(t *testing.T) {
	b := testnet.StartRawBackend(t, "ok")
	tg := startGateway(t, `
services:
  - id: s
    plugins: {hmac-auth: {validate_request_body: true}}
    upstream: {nodes: [{host: 127.0.0.1, port: `+b.Port()+`}]}
    routes: [{paths: ["/*"]}]
consumers:
  - {username: alice, plugins: {hmac-auth: {key_id: k, secret_key: s3cret}}}
`)
	date := time.Now().UTC().Format(http.TimeFormat)
	digestOf := func(body string) string {
		sum := sha256.Sum256([]byte(body))
		return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	}
	// send writes a signed POST whose Digest is that of signedBody and
	// whose body is body (Content-Length or, when chunked, in 64 KiB chunks).
	send := func(id, signedBody, body string, chunked bool, signDigest bool) (testnet.RawReply, error) {
		hdr := map[string]string{"date": date, "digest": digestOf(signedBody)}
		signed := []string{"@request-target", "date", "digest"}
		if !signDigest {
			signed = signed[:2]
		}
		auth := hmacSign("k", "s3cret", "hmac-sha256", "POST", "/up", signed, hdr)
		head := "POST /up HTTP/1.1\r\nHost: t\r\nX-Id: " + id + "\r\nDate: " + date + "\r\nDigest: " + hdr["digest"] + "\r\nAuthorization: " + auth + "\r\n"
		rc := testnet.DialRaw(t, tg.addr)
		if !chunked {
			rc.Send(head + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
		} else {
			rc.Send(head + "Transfer-Encoding: chunked\r\n\r\n")
			for rest := body; len(rest) > 0; {
				n := min(len(rest), 64<<10)
				rc.Send(strconv.FormatInt(int64(n), 16) + "\r\n" + rest[:n] + "\r\n")
				rest = rest[n:]
			}
			rc.Send("0\r\n\r\n")
		}
		return rc.ReadResponse(false)
	}

	small := `{"amount": 100}`
	r, err := send("good-small", small, small, false, true)
	require.NoError(t, err)
	require.Equal(t, 200, r.Status, r.Body)
	large := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB: streamed through
	r, err = send("good-large", large, large, true, true)
	require.NoError(t, err)
	require.Equal(t, 200, r.Status, r.Body)
	require.Equal(t, 1, b.Count("POST", "good-large"))

	// A tampered small body: 401, and no node hears of it.
	r, err = send("bad-small", small, `{"amount": 999}`, false, true)
	require.NoError(t, err)
	require.Equal(t, 401, r.Status)
	require.Contains(t, r.Body, "Invalid digest")
	require.Zero(t, b.Count("POST", "bad-small"))

	// A tampered streamed body: 401, and the node never sees it whole.
	tampered := large[:len(large)-1] + "X"
	r, err = send("bad-large", large, tampered, true, true)
	require.NoError(t, err)
	require.Equal(t, 401, r.Status)
	time.Sleep(100 * time.Millisecond)
	for _, got := range b.Received() {
		if got.ID == "bad-large" {
			require.False(t, got.Complete, "the node must not receive the tampered body as a complete message")
		}
	}

	// A digest that is not signed proves nothing.
	r, err = send("unsigned", small, small, false, false)
	require.NoError(t, err)
	require.Equal(t, 401, r.Status)
	require.Zero(t, b.Count("POST", "unsigned"))
}
