// Package jwtauth is APISIX's jwt-auth plugin: a JSON Web Token in a
// header, a query argument or a cookie identifies the consumer by its
// `key` claim, and is verified with that credential's secret or public
// key. Verified tokens are cached (bounded, by token digest, until they
// expire), so a client that presents the same token again costs one
// SHA-256 and no allocation.
package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "jwt-auth"

// Priority: APISIX's (after basic-auth, before key-auth).
const Priority = 2510

func init() {
	plugin.Register(config.PluginDef{
		Name:     Name,
		Priority: Priority,
		Route:    func() any { return &Config{} },
		Consumer: func() any { return &Credential{} },
	}, compile)
}

// Config is the plugin on a route, a service or global_plugins: where to
// find the token, looked for in this order.
type Config struct {
	Header          string `json:"header"`
	Query           string `json:"query"`
	Cookie          string `json:"cookie"`
	HideCredentials bool   `json:"hide_credentials"`
	// KeyClaimName is the claim that names the credential (APISIX 3.x).
	KeyClaimName string `json:"key_claim_name"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.Header, c.Query, c.Cookie, c.KeyClaimName = "authorization", "jwt", "jwt", "key"
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	ch.Field("header").HeaderName(c.Header)
	if c.Query == "" {
		ch.Field("query").Errorf("must not be empty")
	}
	if c.Cookie == "" || strings.ContainsAny(c.Cookie, "=; \t\r\n\",") {
		ch.Field("cookie").Errorf("must be a cookie name, got %q", c.Cookie)
	}
	if c.KeyClaimName == "" {
		ch.Field("key_claim_name").Errorf("must not be empty")
	}
}

// The algorithms a credential may use.
var algorithms = []string{"HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"}

// Credential is the plugin on a consumer or a consumer credential.
type Credential struct {
	Key string `json:"key"`
	// Secret is the HMAC key of HS256/384/512.
	Secret string `json:"secret" secret:"true"`
	// PublicKey is the PEM public key of RS256, ES256 and EdDSA. It is
	// not secret, but marked so to allow $env:// references.
	PublicKey           string `json:"public_key" secret:"true"`
	Algorithm           string `json:"algorithm"`
	Base64Secret        bool   `json:"base64_secret"`
	LifetimeGracePeriod int64  `json:"lifetime_grace_period"`
	// Exp is the lifetime of tokens APISIX signs itself; the gateway signs
	// none, so it is refused rather than silently ignored.
	Exp *int64 `json:"exp,omitempty"`
}

// SetDefaults implements config.Defaulter.
func (c *Credential) SetDefaults() { c.Algorithm = "HS256" }

// Validate implements config.Validating.
func (c *Credential) Validate(ch *config.Check) {
	if c.Key == "" {
		ch.Field("key").Errorf("required on a consumer or credential")
	}
	ch.Field("algorithm").OneOf(c.Algorithm, algorithms...)
	ch.Field("lifetime_grace_period").IntRange(c.LifetimeGracePeriod, 0, 86400*365)
	if c.Exp != nil {
		ch.Field("exp").Errorf("not supported: it is the lifetime of tokens APISIX signs itself, and the gateway signs none (the token's own exp claim is checked)")
	}
	if _, err := c.verifyKey(); err != nil {
		ch.Field(err.field).Errorf("%s", err.msg)
	}
}

// Credential implements config.UniqueCredential: no two keys are equal.
func (c *Credential) Credential() (string, string) { return "key", c.Key }

type keyError struct{ field, msg string }

// verifyKey returns the key that verifies the credential's tokens: the
// secret's bytes, or the parsed public key. Messages never show either.
func (c *Credential) verifyKey() (any, *keyError) {
	if strings.HasPrefix(c.Algorithm, "HS") {
		if c.Secret == "" {
			return nil, &keyError{"secret", "required with algorithm " + c.Algorithm}
		}
		if !c.Base64Secret {
			return []byte(c.Secret), nil
		}
		b, err := base64.StdEncoding.DecodeString(c.Secret)
		if err != nil {
			return nil, &keyError{"secret", "is not valid base64 (base64_secret is true); the value is not shown because it is a secret"}
		}
		return b, nil
	}
	if c.PublicKey == "" {
		return nil, &keyError{"public_key", "required with algorithm " + c.Algorithm}
	}
	var (
		key any
		err error
	)
	switch c.Algorithm {
	case "RS256":
		key, err = jwt.ParseRSAPublicKeyFromPEM([]byte(c.PublicKey))
	case "ES256":
		var ec *ecdsa.PublicKey
		if ec, err = jwt.ParseECPublicKeyFromPEM([]byte(c.PublicKey)); err == nil && ec.Curve != elliptic.P256() {
			return nil, &keyError{"public_key", "ES256 needs a P-256 key"}
		}
		key = ec
	case "EdDSA":
		key, err = jwt.ParseEdPublicKeyFromPEM([]byte(c.PublicKey))
	default:
		return nil, nil // reported by the algorithm check
	}
	if err != nil {
		return nil, &keyError{"public_key", "is not a PEM " + c.Algorithm + " public key"}
	}
	return key, nil
}

// credential is one key of a consumer.
type credential struct {
	id    plugin.Identity
	alg   string
	key   any
	grace int64 // seconds
}

type keys map[string]*credential

func compileKeys(consumers []config.Consumer) keys {
	k := keys{}
	plugin.EachCredential(consumers, Name, func(cr *Credential, id plugin.Identity) {
		key, err := cr.verifyKey()
		if err != nil || key == nil {
			return // refused at load
		}
		k[cr.Key] = &credential{id: id, alg: cr.Algorithm, key: key, grace: cr.LifetimeGracePeriod}
	})
	return k
}

// cacheSize is how many verified tokens one cache holds: a direct-mapped
// table indexed by the token's digest, so memory is bounded and a newer
// token simply replaces an older one in its slot.
const cacheSize = 4096

// verified is one cached token: its digest, whose it is and when it is
// valid (unix seconds, grace included; 0 and MaxInt64 when unbounded).
type verified struct {
	sum       [sha256.Size]byte
	cred      *credential
	notBefore int64
	expires   int64
}

type cache [cacheSize]atomic.Pointer[verified]

func (c *cache) get(sum *[sha256.Size]byte, now int64) *credential {
	slot := uint64(sum[0]) | uint64(sum[1])<<8 | uint64(sum[2])<<16 | uint64(sum[3])<<24
	v := c[slot%cacheSize].Load()
	if v == nil || v.sum != *sum || now < v.notBefore || now >= v.expires {
		return nil
	}
	return v.cred
}

func (c *cache) put(v *verified) {
	slot := uint64(v.sum[0]) | uint64(v.sum[1])<<8 | uint64(v.sum[2])<<16 | uint64(v.sum[3])<<24
	c[slot%cacheSize].Store(v)
}

type step struct {
	header, query, cookie []byte
	hide                  bool
	claim                 string
	keys                  keys
	cache                 *cache
	parser                *jwt.Parser
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	k := plugin.Credentials(env, Name, compileKeys)
	// One cache per key claim: the claim decides whose a token is.
	return &step{
		header: []byte(c.Header), query: []byte(c.Query), cookie: []byte(c.Cookie),
		hide: c.HideCredentials, claim: c.KeyClaimName, keys: k, cache: verifyCache(env, c.KeyClaimName),
		// Times are checked here with each credential's grace period.
		parser: jwt.NewParser(jwt.WithValidMethods(algorithms), jwt.WithoutClaimsValidation()),
	}, nil
}

var (
	bearer     = []byte("bearer ")
	msgMissing = []byte("Missing JWT token in request")
	msgInvalid = []byte("JWT token invalid")
	msgExpired = []byte("JWT token expired or not yet valid")
	msgNoKey   = []byte("Missing user key in JWT token")
	msgBadKey  = []byte("Invalid user key in JWT token")
	msgBadSig  = []byte("Failed to verify JWT token")
)

// maxToken bounds a token's length; a longer one is refused unparsed.
const maxToken = 8192

// fromHeader returns the token of an Authorization-style header: the
// value after "Bearer ", or the value itself when it has no scheme.
func fromHeader(v []byte) []byte {
	if len(v) > len(bearer) && bytes.EqualFold(v[:len(bearer)], bearer) {
		return bytes.TrimSpace(v[len(bearer):])
	}
	if bytes.IndexByte(v, ' ') >= 0 {
		return nil // another scheme: not a JWT
	}
	return v
}

// where says where a token was found, for hide_credentials.
type where uint8

const (
	nowhere where = iota
	inHeader
	inQuery
	inCookie
)

func (s *step) find(r *plugin.Request) ([]byte, where) {
	if t := fromHeader(r.Ctx.Request.Header.PeekBytes(s.header)); len(t) > 0 {
		return t, inHeader
	}
	if t := r.Ctx.QueryArgs().PeekBytes(s.query); len(t) > 0 {
		return t, inQuery
	}
	if t := r.Ctx.Request.Header.CookieBytes(s.cookie); len(t) > 0 {
		return t, inCookie
	}
	return nil, nowhere
}

// CredentialQuery implements plugin.QueryCredential: the access log masks
// the token's query argument.
func (s *step) CredentialQuery() string { return string(s.query) }

// HasCredential implements plugin.Authenticator.
func (s *step) HasCredential(r *plugin.Request) bool {
	_, w := s.find(r)
	return w != nowhere
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	tok, w := s.find(r)
	if w == nowhere {
		r.Message = msgMissing
		return config.RespAuthMissing
	}
	if len(tok) > maxToken {
		r.Message = msgInvalid
		return config.RespAuthFailure
	}
	now := r.Now.Unix()
	sum := sha256.Sum256(tok)
	c := s.cache.get(&sum, now)
	if c == nil {
		var msg []byte
		if c, msg = s.verify(tok, &sum, now); c == nil {
			r.Message = msg
			return config.RespAuthFailure
		}
	}
	c.id.Set(r)
	if s.hide {
		switch w {
		case inHeader:
			r.HideHeader = s.header
		case inQuery:
			r.HideQuery = s.query
		case inCookie:
			r.Ctx.Request.Header.DelCookieBytes(s.cookie)
		}
	}
	return config.RespNone
}

var errAlgorithm = errors.New("the token's algorithm is not its credential's")

// verify checks a token the cache does not know and caches it when good.
// It allocates (parsing, the claims, the signature check): it is the miss.
func (s *step) verify(tok []byte, sum *[sha256.Size]byte, now int64) (*credential, []byte) {
	var (
		cred   *credential
		keyMsg []byte
	)
	claims := jwt.MapClaims{}
	_, err := s.parser.ParseWithClaims(string(tok), claims, func(t *jwt.Token) (any, error) {
		name, ok := claims[s.claim].(string)
		if !ok || name == "" {
			keyMsg = msgNoKey
			return nil, errors.New("no key claim")
		}
		if cred = s.keys[name]; cred == nil {
			keyMsg = msgBadKey
			return nil, errors.New("unknown key")
		}
		// The credential decides the algorithm, never the token: an
		// RS256 public key is never used as an HS256 secret.
		if t.Method.Alg() != cred.alg {
			return nil, errAlgorithm
		}
		return cred.key, nil
	})
	if err != nil {
		if keyMsg != nil {
			return nil, keyMsg
		}
		if errors.Is(err, jwt.ErrTokenMalformed) {
			return nil, msgInvalid
		}
		return nil, msgBadSig
	}
	v := &verified{sum: *sum, cred: cred, notBefore: math.MinInt64, expires: math.MaxInt64}
	exp, err1 := claims.GetExpirationTime()
	nbf, err2 := claims.GetNotBefore()
	if err1 != nil || err2 != nil {
		return nil, msgInvalid
	}
	if exp != nil {
		v.expires = exp.Unix() + cred.grace
	}
	if nbf != nil {
		v.notBefore = nbf.Unix() - cred.grace
	}
	if now < v.notBefore || now >= v.expires {
		return nil, msgExpired
	}
	s.cache.put(v)
	return cred, nil
}

// verifyCache is the cache of verified tokens of key claim claim. It holds
// credentials of the index, so it is kept with the index (the consumers).
func verifyCache(env *plugin.Env, claim string) *cache {
	return plugin.ConsumersShared(env, "jwt-auth:cache:"+claim, func() any { return &cache{} }).(*cache)
}

// Reuse keeps the step across a reload (plugin.Reusable) only while the
// new snapshot's credential index and verify cache are the ones the step
// holds: the consumers did not change, and kept chains neither keep older
// indexes alive nor split the cache.
func (s *step) Reuse(env *plugin.Env) bool {
	return plugin.SameIndex(plugin.Credentials(env, Name, compileKeys), s.keys) && verifyCache(env, s.claim) == s.cache
}
