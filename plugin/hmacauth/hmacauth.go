// Package hmacauth is APISIX 3.x's hmac-auth plugin: the client signs the
// request with a consumer's secret key and sends
//
//	Authorization: Signature keyId="...",algorithm="hmac-sha256",headers="@request-target date",signature="..."
//
// The signing string is the keyId, then for each name in headers either
// "METHOD request-uri" (@request-target) or "name: value", each followed
// by a newline; the signature is its base64 HMAC. A Date header within
// clock_skew of the gateway's clock, and signed, bounds replays.
package hmacauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" // hmac-sha1 is one of APISIX's; allowed_algorithms can refuse it
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "hmac-auth"

// Priority: APISIX's (before basic-auth).
const Priority = 2530

func init() {
	plugin.Register(config.PluginDef{
		Name:     Name,
		Priority: Priority,
		Route:    func() any { return &Config{} },
		Consumer: func() any { return &Credential{} },
	}, compile)
}

// The algorithms, in APISIX's names.
const (
	algSHA1   = "hmac-sha1"
	algSHA256 = "hmac-sha256"
	algSHA512 = "hmac-sha512"
)

var algorithms = []string{algSHA1, algSHA256, algSHA512}

// Config is the plugin on a route, a service or global_plugins.
type Config struct {
	AllowedAlgorithms []string `json:"allowed_algorithms"`
	// ClockSkew is how far (seconds) the request's Date may be from the
	// gateway's clock.
	ClockSkew     int64    `json:"clock_skew"`
	SignedHeaders []string `json:"signed_headers"`
	// ValidateRequestBody: the body's SHA-256 must equal the signed
	// Digest header (`Digest: SHA-256=<base64>`).
	ValidateRequestBody bool `json:"validate_request_body"`
	HideCredentials     bool `json:"hide_credentials"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() {
	c.AllowedAlgorithms = append([]string(nil), algorithms...)
	c.ClockSkew = 300
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	if len(c.AllowedAlgorithms) == 0 {
		ch.Field("allowed_algorithms").Errorf("must list at least one of %s", strings.Join(algorithms, ", "))
	}
	for i, a := range c.AllowedAlgorithms {
		ch.Field("allowed_algorithms").Index(i).OneOf(a, algorithms...)
	}
	ch.Field("clock_skew").IntRange(c.ClockSkew, 1, 86400)
	for i, h := range c.SignedHeaders {
		if h != "@request-target" {
			ch.Field("signed_headers").Index(i).HeaderName(h)
		}
	}
}

// Credential is the plugin on a consumer or a consumer credential.
type Credential struct {
	KeyID     string `json:"key_id"`
	SecretKey string `json:"secret_key" secret:"true"`
}

// Validate implements config.Validating.
func (c *Credential) Validate(ch *config.Check) {
	if c.KeyID == "" {
		ch.Field("key_id").Errorf("required on a consumer or credential")
	}
	if c.SecretKey == "" {
		ch.Field("secret_key").Errorf("required on a consumer or credential")
	}
}

// Credential implements config.UniqueCredential: no two key ids are equal.
func (c *Credential) Credential() (string, string) { return "key_id", c.KeyID }

// credential is one key id: who it is, and a pool of HMACs keyed with its
// secret per algorithm, so that a request allocates none.
type credential struct {
	id    plugin.Identity
	pools [3]sync.Pool // by algorithm index
}

func newCredential(secret []byte, id plugin.Identity) *credential {
	c := &credential{id: id}
	for i, h := range []func() hash.Hash{sha1.New, sha256.New, sha512.New} {
		c.pools[i].New = func() any { return hmac.New(h, secret) }
	}
	return c
}

type keys map[string]*credential

func compileKeys(consumers []config.Consumer) keys {
	k := keys{}
	plugin.EachCredential(consumers, Name, func(cr *Credential, id plugin.Identity) {
		k[cr.KeyID] = newCredential([]byte(cr.SecretKey), id)
	})
	return k
}

type step struct {
	allowed [3]bool // by algorithm index
	skew    int64
	signed  [][]byte // lower case
	hide    bool
	keys    keys
	digest  bool // validate_request_body

}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	s := &step{skew: c.ClockSkew, hide: c.HideCredentials, keys: plugin.Credentials(env, Name, compileKeys), digest: c.ValidateRequestBody}
	for _, a := range c.AllowedAlgorithms {
		s.allowed[algIndex([]byte(a))] = true
	}
	for _, h := range c.SignedHeaders {
		s.signed = append(s.signed, []byte(strings.ToLower(h)))
	}
	return s, nil
}

func algIndex(a []byte) int {
	switch string(a) {
	case algSHA1:
		return 0
	case algSHA256:
		return 1
	case algSHA512:
		return 2
	}
	return -1
}

var (
	hdrAuthorization = []byte("Authorization")
	hdrDate          = []byte("Date")
	schemePrefix     = []byte("signature ")
	requestTarget    = []byte("@request-target")
	nameDate         = []byte("date")
	msgMissing       = []byte("Missing HMAC signature in request")
	msgInvalid       = []byte("Invalid HMAC signature header")
	msgBadKey        = []byte("Invalid key_id")
	msgAlgorithm     = []byte("Algorithm not allowed")
	msgHeaders       = []byte("Signed headers missing a required header")
	msgDate          = []byte("Date header missing, invalid or not signed")
	msgSkew          = []byte("Clock skew exceeded")
	msgSignature     = []byte("Invalid signature")
	msgDigest        = []byte("Invalid digest")
	hdrDigest        = []byte("Digest")
	nameDigest       = []byte("digest")
	digestPrefix     = []byte("sha-256=")
)

// HasCredential implements plugin.Authenticator: an Authorization
// header of the Signature scheme.
func (s *step) HasCredential(r *plugin.Request) bool {
	v := r.Ctx.Request.Header.PeekBytes(hdrAuthorization)
	return len(v) > len(schemePrefix) && bytes.EqualFold(v[:len(schemePrefix)], schemePrefix)
}

// params are the parts of the Authorization header, slices of it.
type params struct {
	keyID, algorithm, headers, signature []byte
}

// parseParams reads `k="v",k="v"` without allocating.
func parseParams(v []byte) (p params, ok bool) {
	for len(v) > 0 {
		v = bytes.TrimLeft(v, " ,")
		if len(v) == 0 {
			break
		}
		eq := bytes.IndexByte(v, '=')
		if eq < 0 || eq+1 >= len(v) || v[eq+1] != '"' {
			return p, false
		}
		key := bytes.TrimSpace(v[:eq])
		rest := v[eq+2:]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return p, false
		}
		val := rest[:end]
		v = rest[end+1:]
		switch string(key) {
		case "keyId":
			p.keyID = val
		case "algorithm":
			p.algorithm = val
		case "headers":
			p.headers = val
		case "signature":
			p.signature = val
		}
	}
	return p, p.keyID != nil && p.algorithm != nil && p.signature != nil
}

// nextName splits the first name off a space-separated list.
func nextName(list []byte) (name, rest []byte) {
	list = bytes.TrimLeft(list, " ")
	if i := bytes.IndexByte(list, ' '); i >= 0 {
		return list[:i], list[i+1:]
	}
	return list, nil
}

// hasName reports whether the space-separated list names holds name.
func hasName(names, name []byte) bool {
	for n, rest := nextName(names); len(n) > 0; n, rest = nextName(rest) {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func (s *step) fail(r *plugin.Request, msg []byte) config.ResponseType {
	r.Message = msg
	return config.RespAuthFailure
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	if !s.HasCredential(r) {
		r.Message = msgMissing
		return config.RespAuthMissing
	}
	h := &r.Ctx.Request.Header
	p, ok := parseParams(h.PeekBytes(hdrAuthorization)[len(schemePrefix):])
	if !ok {
		return s.fail(r, msgInvalid)
	}
	c := s.keys[string(p.keyID)]
	if c == nil {
		return s.fail(r, msgBadKey)
	}
	alg := algIndex(p.algorithm)
	if alg < 0 || !s.allowed[alg] {
		return s.fail(r, msgAlgorithm)
	}
	for _, name := range s.signed {
		if !hasName(p.headers, name) {
			return s.fail(r, msgHeaders)
		}
	}
	// Replays: the Date must be signed and near the gateway's clock.
	date, err := fasthttp.ParseHTTPDate(h.PeekBytes(hdrDate))
	if err != nil || !hasName(p.headers, nameDate) {
		return s.fail(r, msgDate)
	}
	if d := r.Now.Unix() - date.Unix(); d > s.skew || d < -s.skew {
		return s.fail(r, msgSkew)
	}

	// The signing string, in the scratch buffer.
	buf := append(r.Scratch[:0], p.keyID...)
	buf = append(buf, '\n')
	for name, rest := nextName(p.headers); len(name) > 0; name, rest = nextName(rest) {
		if bytes.EqualFold(name, requestTarget) {
			buf = append(buf, r.Ctx.Method()...)
			buf = append(buf, ' ')
			buf = append(buf, r.Ctx.RequestURI()...)
		} else {
			v := h.PeekBytes(name)
			if v == nil {
				r.Scratch = buf
				return s.fail(r, msgHeaders) // a signed header that is not there
			}
			buf = append(buf, name...)
			buf = append(buf, ':', ' ')
			buf = append(buf, v...)
		}
		buf = append(buf, '\n')
	}
	signed := len(buf)
	mac := c.pools[alg].Get().(hash.Hash)
	mac.Reset()
	mac.Write(buf[:signed])
	buf = mac.Sum(buf)
	c.pools[alg].Put(mac)
	want := buf[signed:]
	r.Scratch = buf
	var got [sha512.Size + 3]byte // room for base64's rounding up
	if base64.StdEncoding.DecodedLen(len(p.signature)) > len(got) {
		return s.fail(r, msgSignature)
	}
	n, err := base64.StdEncoding.Decode(got[:], p.signature)
	if err != nil || !hmac.Equal(got[:n], want) {
		return s.fail(r, msgSignature)
	}
	if s.digest {
		// The Digest must be signed, or anyone could replace the body
		// and its digest together.
		d := h.PeekBytes(hdrDigest)
		if !hasName(p.headers, nameDigest) || len(d) <= len(digestPrefix) || !bytes.EqualFold(d[:len(digestPrefix)], digestPrefix) {
			return s.fail(r, msgDigest)
		}
		n, err := base64.StdEncoding.Decode(got[:], d[len(digestPrefix):])
		if err != nil || n != sha256.Size {
			return s.fail(r, msgDigest)
		}
		dc := digestPool.Get().(*digestCheck)
		copy(dc.want[:], got[:n])
		dc.h.Reset()
		r.BodyCheck = dc
	}
	c.id.Set(r)
	if s.hide {
		r.HideHeader = hdrAuthorization
	}
	return config.RespNone
}

// digestCheck is hmac-auth's plugin.BodyCheck: the body's SHA-256 against
// the Digest header's. Pooled: a request takes one and the proxy gives it
// back when the request is over.
type digestCheck struct {
	h    hash.Hash
	want [sha256.Size]byte
	sum  [sha256.Size]byte
}

var digestPool = sync.Pool{New: func() any { return &digestCheck{h: sha256.New()} }}

func (d *digestCheck) Write(p []byte) { d.h.Write(p) }

func (d *digestCheck) Verify() bool {
	return hmac.Equal(d.h.Sum(d.sum[:0]), d.want[:])
}

func (d *digestCheck) Release() { digestPool.Put(d) }

func (d *digestCheck) Refusal() (config.ResponseType, []byte) {
	return config.RespAuthFailure, msgDigest
}

// Reuse keeps the step across a reload (plugin.Reusable) only while the
// new snapshot's credential index is the one the step holds: the consumers
// did not change, and no older index is kept alive by kept chains.
func (s *step) Reuse(env *plugin.Env) bool {
	return plugin.SameIndex(plugin.Credentials(env, Name, compileKeys), s.keys)
}
