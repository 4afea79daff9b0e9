package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

func newStep(creds keys) *step {
	return &step{
		header: []byte("authorization"), query: []byte("jwt"), cookie: []byte("jwt"), claim: "key",
		keys: creds, cache: &cache{},
		parser: jwt.NewParser(jwt.WithValidMethods(algorithms), jwt.WithoutClaimsValidation()),
	}
}

func request(tok string, now time.Time) *plugin.Request {
	var req fasthttp.Request
	req.Header.Set("Authorization", "Bearer "+tok)
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	return &plugin.Request{Ctx: ctx, Now: now}
}

func TestCacheHitAllocatesNothingAndRespectsExp(t *testing.T) {
	cred := &credential{id: plugin.Identity{Username: []byte("alice"), App: []byte("alice")}, alg: "HS256", key: []byte("s"), grace: 5}
	s := newStep(keys{"k": cred})
	now := time.Unix(1_000_000, 0)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "k", "exp": now.Unix() + 10}).SignedString([]byte("s"))
	require.NoError(t, err)

	r := request(tok, now)
	require.Equal(t, config.RespNone, s.OnRequest(r))
	sum := sha256.Sum256([]byte(tok))
	require.Same(t, cred, s.cache.get(&sum, now.Unix()), "verified and cached")
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if s.OnRequest(r) != config.RespNone {
			t.Fatal("refused")
		}
	}), "a cache hit allocates nothing")

	// The cache keeps the token only while exp (plus the grace period)
	// allows: past it, the token is verified again, and refused.
	require.NotNil(t, s.cache.get(&sum, now.Unix()+14))
	require.Nil(t, s.cache.get(&sum, now.Unix()+15))
	r.Now = now.Add(15 * time.Second)
	require.Equal(t, config.RespAuthFailure, s.OnRequest(r))
	require.Equal(t, msgExpired, r.Message)
}

func TestCacheIsBoundedAndKeyedByTheWholeToken(t *testing.T) {
	cred := &credential{alg: "HS256", key: []byte("s")}
	s := newStep(keys{"k": cred})
	now := time.Unix(1_000_000, 0)
	for i := range 3 * cacheSize {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "k", "i": i}).SignedString([]byte("s"))
		require.NoError(t, err)
		require.Equal(t, config.RespNone, s.OnRequest(request(tok, now)))
	}
	// A fixed array of cacheSize slots holds at most cacheSize tokens.
	n := 0
	for i := range s.cache {
		if s.cache[i].Load() != nil {
			n++
		}
	}
	require.LessOrEqual(t, n, cacheSize)
	require.Greater(t, n, cacheSize/2, "tokens spread over the slots")

	// A token that differs from a cached one in its signature only is
	// not a hit.
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "k"}).SignedString([]byte("s"))
	require.NoError(t, err)
	require.Equal(t, config.RespNone, s.OnRequest(request(tok, now)))
	bad := tok[:len(tok)-2] + "AA"
	if bad == tok {
		bad = tok[:len(tok)-2] + "BB"
	}
	require.Equal(t, config.RespAuthFailure, s.OnRequest(request(bad, now)))
}

// BenchmarkJWTVerifyMiss reports what one token costs to verify when the
// cache does not know it, per algorithm; BenchmarkJWTCacheHit what it
// costs after.
func BenchmarkJWTVerifyMiss(b *testing.B) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		alg    string
		method jwt.SigningMethod
		sign   any
		verify any
	}{
		{"HS256", jwt.SigningMethodHS256, []byte("secret"), []byte("secret")},
		{"RS256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"ES256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, edPub},
	} {
		b.Run(c.alg, func(b *testing.B) {
			s := newStep(keys{"k": {id: plugin.Identity{Username: []byte("u")}, alg: c.alg, key: c.verify}})
			now := time.Now()
			tok, err := jwt.NewWithClaims(c.method, jwt.MapClaims{"key": "k", "exp": now.Unix() + 3600}).SignedString(c.sign)
			require.NoError(b, err)
			tb := []byte(tok)
			sum := sha256.Sum256(tb)
			b.ReportAllocs()
			for b.Loop() {
				if cr, _ := s.verify(tb, &sum, now.Unix()); cr == nil {
					b.Fatal("refused")
				}
			}
		})
	}
}

func BenchmarkJWTCacheHit(b *testing.B) {
	s := newStep(keys{"k": {id: plugin.Identity{Username: []byte("u")}, alg: "HS256", key: []byte("secret")}})
	now := time.Now()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"key": "k", "exp": now.Unix() + 3600}).SignedString([]byte("secret"))
	r := request(tok, now)
	b.ReportAllocs()
	for b.Loop() {
		if s.OnRequest(r) != config.RespNone {
			b.Fatal("refused")
		}
	}
}
