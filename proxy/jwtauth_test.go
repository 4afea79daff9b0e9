package proxy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func pemPublic(t *testing.T, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// yamlBlock indents a multi-line value for a YAML literal block.
func yamlBlock(s, indent string) string {
	return "|\n" + indent + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+indent)
}

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestJWTAuth(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rsaPEM := pemPublic(t, &rsaKey.PublicKey)
	t.Setenv("GW_TEST_JWT_SECRET", "hs256-secret-from-env")

	b := startBackend(t, "b", nil)
	tg := startGateway(t, `
services:
  - id: s
    plugins: {jwt-auth: {}}
    upstream: `+upstreamYAML(b)+`
    routes:
      - {id: keep, paths: ["/keep"]}
      - {id: hide, paths: ["/hide"], plugins: {jwt-auth: {hide_credentials: true}}}
consumers:
  - username: alice
    plugins: {jwt-auth: {key: alice-key, secret: $env://GW_TEST_JWT_SECRET}}
  - username: bob
    credentials:
      - {name: hs384, plugins: {jwt-auth: {key: bob-384, secret: bob-384-secret, algorithm: HS384}}}
      - {name: hs512, plugins: {jwt-auth: {key: bob-512, secret: `+base64.StdEncoding.EncodeToString([]byte("raw\x00secret"))+`, base64_secret: true, algorithm: HS512}}}
      - name: rs
        plugins:
          jwt-auth:
            key: bob-rs
            algorithm: RS256
            public_key: `+yamlBlock(rsaPEM, "              ")+`
      - name: es
        plugins:
          jwt-auth:
            key: bob-es
            algorithm: ES256
            public_key: `+yamlBlock(pemPublic(t, &ecKey.PublicKey), "              ")+`
      - name: ed
        plugins:
          jwt-auth:
            key: bob-ed
            algorithm: EdDSA
            public_key: `+yamlBlock(pemPublic(t, edPub), "              ")+`
      - {name: graceful, plugins: {jwt-auth: {key: bob-grace, secret: g, lifetime_grace_period: 120}}}
`)
	now := time.Now().Unix()
	alice := sign(t, jwt.SigningMethodHS256, []byte("hs256-secret-from-env"), jwt.MapClaims{"key": "alice-key", "exp": now + 600})

	p := &authProbe{t: t, tg: tg, b: b}
	pass := p.pass
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	for range 2 { // a miss, then a cache hit
		up := pass("/keep", bearer(alice), "alice", "alice")
		require.Equal(t, "Bearer "+alice, string(up.Header.Peek("Authorization")))
	}
	pass("/keep", map[string]string{"Authorization": alice}, "alice", "alice")
	up := pass("/hide", bearer(alice), "alice", "alice")
	require.Empty(t, up.Header.Peek("Authorization"), "hide_credentials: header")
	pass("/hide?jwt="+alice+"&x=1", nil, "alice", "alice")
	require.Equal(t, "/hide?x=1", string(b.lastRequest().RequestURI()), "hide_credentials: query")
	up = pass("/hide", map[string]string{"Cookie": "a=1; jwt=" + alice + "; b=2"}, "alice", "alice")
	require.NotContains(t, string(up.Header.Peek("Cookie")), alice, "hide_credentials: cookie")
	require.Contains(t, string(up.Header.Peek("Cookie")), "a=1")
	up = pass("/keep", map[string]string{"Cookie": "jwt=" + alice}, "alice", "alice")
	require.Contains(t, string(up.Header.Peek("Cookie")), alice)

	pass("/keep", bearer(sign(t, jwt.SigningMethodHS384, []byte("bob-384-secret"), jwt.MapClaims{"key": "bob-384"})), "bob", "hs384")
	pass("/keep", bearer(sign(t, jwt.SigningMethodHS512, []byte("raw\x00secret"), jwt.MapClaims{"key": "bob-512"})), "bob", "hs512")
	pass("/keep", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"key": "bob-rs", "exp": now + 60})), "bob", "rs")
	pass("/keep", bearer(sign(t, jwt.SigningMethodES256, ecKey, jwt.MapClaims{"key": "bob-es"})), "bob", "es")
	pass("/keep", bearer(sign(t, jwt.SigningMethodEdDSA, edKey, jwt.MapClaims{"key": "bob-ed"})), "bob", "ed")
	pass("/keep", bearer(sign(t, jwt.SigningMethodHS256, []byte("g"), jwt.MapClaims{"key": "bob-grace", "exp": now - 30})), "bob", "graceful")
	pass("/keep", bearer(sign(t, jwt.SigningMethodHS256, []byte("g"), jwt.MapClaims{"key": "bob-grace", "nbf": now + 30})), "bob", "graceful")

	// alg none, written by hand: the library refuses to make one.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"key":"alice-key"}`)) + "."
	// Tampered: alice's signature over a payload that names bob's HS384 key.
	parts := strings.Split(alice, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"key":"bob-384","exp":`+itoa(int(now+600))+`}`)) + "." + parts[2]
	// Algorithm confusion: an HS256 token whose secret is the RS256
	// credential's public key.
	confused := sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), jwt.MapClaims{"key": "bob-rs"})

	for _, c := range []struct {
		name string
		hdr  map[string]string
		code string
	}{
		{"missing", nil, "APIG.0303"},
		{"another scheme", map[string]string{"Authorization": "Basic YTpi"}, "APIG.0303"},
		{"expired", bearer(sign(t, jwt.SigningMethodHS256, []byte("hs256-secret-from-env"), jwt.MapClaims{"key": "alice-key", "exp": now - 1})), "APIG.0301"},
		{"expired past the grace period", bearer(sign(t, jwt.SigningMethodHS256, []byte("g"), jwt.MapClaims{"key": "bob-grace", "exp": now - 300})), "APIG.0301"},
		{"not yet valid", bearer(sign(t, jwt.SigningMethodHS256, []byte("hs256-secret-from-env"), jwt.MapClaims{"key": "alice-key", "nbf": now + 300})), "APIG.0301"},
		{"wrong secret", bearer(sign(t, jwt.SigningMethodHS256, []byte("guess"), jwt.MapClaims{"key": "alice-key"})), "APIG.0301"},
		{"the reference as the secret", bearer(sign(t, jwt.SigningMethodHS256, []byte("$env://GW_TEST_JWT_SECRET"), jwt.MapClaims{"key": "alice-key"})), "APIG.0301"},
		{"tampered", bearer(tampered), "APIG.0301"},
		{"alg none", bearer(none), "APIG.0301"},
		{"algorithm confusion", bearer(confused), "APIG.0301"},
		{"wrong algorithm for the key", bearer(sign(t, jwt.SigningMethodHS512, []byte("hs256-secret-from-env"), jwt.MapClaims{"key": "alice-key"})), "APIG.0301"},
		{"unknown key", bearer(sign(t, jwt.SigningMethodHS256, []byte("x"), jwt.MapClaims{"key": "nobody"})), "APIG.0301"},
		{"no key claim", bearer(sign(t, jwt.SigningMethodHS256, []byte("hs256-secret-from-env"), jwt.MapClaims{"sub": "alice"})), "APIG.0301"},
		{"not a token", bearer("abc.def"), "APIG.0301"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.refused(t, "/keep", c.hdr, c.code)
		})
	}
}

func TestJWTAuthConfigErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for _, c := range []struct{ name, cred, want string }{
		{"no key", `{secret: s}`, "jwt-auth.key: required"},
		{"no secret", `{key: k}`, "jwt-auth.secret: required with algorithm HS256"},
		{"no public key", `{key: k, algorithm: RS256}`, "jwt-auth.public_key: required with algorithm RS256"},
		{"bad public key", `{key: k, algorithm: RS256, public_key: "not-a-pem-key"}`, "jwt-auth.public_key: is not a PEM RS256 public key"},
		{"P-384 for ES256", `{key: k, algorithm: ES256, public_key: "` + strings.ReplaceAll(pemPublic(t, &ecKey.PublicKey), "\n", `\n`) + `"}`, "ES256 needs a P-256 key"},
		{"unknown algorithm", `{key: k, secret: s, algorithm: none}`, "jwt-auth.algorithm"},
		{"bad base64 secret", `{key: k, secret: "not base64!", base64_secret: true}`, "jwt-auth.secret: is not valid base64"},
		{"exp", `{key: k, secret: s, exp: 86400}`, "jwt-auth.exp: not supported"},
		{"grace", `{key: k, secret: s, lifetime_grace_period: -1}`, "jwt-auth.lifetime_grace_period"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := mustParseErr("services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]\nconsumers: [{username: a, plugins: {jwt-auth: " + c.cred + "}}]\n")
			require.ErrorContains(t, err, c.want)
			require.NotContains(t, err.Error(), "not base64!")
			require.NotContains(t, err.Error(), "not-a-pem-key")
		})
	}
}
