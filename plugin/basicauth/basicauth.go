// Package basicauth is APISIX's basic-auth plugin: `Authorization: Basic
// base64(username:password)` identifies the consumer (and the credential,
// or app).
package basicauth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "basic-auth"

// Priority: APISIX's (before jwt-auth and key-auth).
const Priority = 2520

func init() {
	plugin.Register(config.PluginDef{
		Name:     Name,
		Priority: Priority,
		Route:    func() any { return &Config{} },
		Consumer: func() any { return &Credential{} },
	}, compile)
}

// Config is the plugin on a route, a service or global_plugins.
type Config struct {
	HideCredentials bool `json:"hide_credentials"`
}

// Credential is the plugin on a consumer or a consumer credential.
type Credential struct {
	Username string `json:"username"`
	// Password is the password itself or its bcrypt hash ($2a$, $2b$,
	// $2y$).
	Password string `json:"password" secret:"true"`
}

// Validate implements config.Validating.
func (c *Credential) Validate(ch *config.Check) {
	switch {
	case c.Username == "":
		ch.Field("username").Errorf("required on a consumer or credential")
	case strings.IndexByte(c.Username, ':') >= 0:
		ch.Field("username").Errorf("must not contain ':' (it separates username and password), got %q", c.Username)
	}
	if c.Password == "" {
		ch.Field("password").Errorf("required on a consumer or credential")
	} else if isBcrypt(c.Password) {
		if _, err := bcrypt.Cost([]byte(c.Password)); err != nil {
			// The hash is not shown: it is a secret too.
			ch.Field("password").Errorf("looks like a bcrypt hash ($2a$, $2b$, $2y$) but is not a valid one")
		}
	}
}

// Credential implements config.UniqueCredential: no two usernames are
// equal.
func (c *Credential) Credential() (string, string) { return "username", c.Username }

func isBcrypt(p string) bool {
	return strings.HasPrefix(p, "$2a$") || strings.HasPrefix(p, "$2b$") || strings.HasPrefix(p, "$2y$")
}

// cacheSlots is how many verified passwords one bcrypt credential
// remembers: a few clients of one account with the same password use one
// slot; a bounded number of slots bounds the memory an attacker can make
// the cache use (only verified passwords are stored).
const cacheSlots = 4

// credential is one username of a consumer.
type credential struct {
	id       plugin.Identity
	password []byte // plain, or nil when hash is set
	hash     []byte // bcrypt
	// verified holds SHA-256 digests of passwords bcrypt accepted, so that
	// a hit costs one SHA-256 and no bcrypt.
	verified [cacheSlots]atomic.Pointer[[sha256.Size]byte]
	next     atomic.Uint32
}

// users finds credentials by username.
type users map[string]*credential

func compileUsers(consumers []config.Consumer) users {
	u := users{}
	plugin.EachCredential(consumers, Name, func(cr *Credential, id plugin.Identity) {
		c := &credential{id: id}
		if isBcrypt(cr.Password) {
			c.hash = []byte(cr.Password)
		} else {
			c.password = []byte(cr.Password)
		}
		u[cr.Username] = c
	})
	return u
}

// check reports whether password is c's. A plain password is compared in
// constant time; a bcrypt hash is checked through the cache of verified
// passwords first.
func (c *credential) check(password []byte) bool {
	if c.hash == nil {
		return subtle.ConstantTimeCompare(c.password, password) == 1
	}
	sum := sha256.Sum256(password)
	for i := range c.verified {
		if v := c.verified[i].Load(); v != nil && subtle.ConstantTimeCompare(v[:], sum[:]) == 1 {
			return true
		}
	}
	if bcrypt.CompareHashAndPassword(c.hash, password) != nil {
		return false
	}
	// A copy, so that sum itself stays on the stack on a hit.
	stored := new([sha256.Size]byte)
	*stored = sum
	c.verified[c.next.Add(1)%cacheSlots].Store(stored)
	return true
}

var (
	hdrAuthorization = []byte("Authorization")
	basicPrefix      = []byte("basic ")
	challenge        = []byte(`Basic realm="gateway"`)
	msgMissing       = []byte("Missing authorization in request")
	msgInvalid       = []byte("Invalid authorization in request")
	msgFailure       = []byte("Invalid user authorization")
)

type step struct {
	hide  bool
	users users
	// dummy is compared against when the username is unknown, so that
	// an unknown user costs what a wrong password does (plain passwords).
	dummy credential
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	u := plugin.Credentials(env, Name, compileUsers)
	return &step{hide: c.HideCredentials, users: u, dummy: credential{password: []byte("\x00")}}, nil
}

// HasCredential implements plugin.Authenticator: an Authorization header
// of the Basic scheme.
func (s *step) HasCredential(r *plugin.Request) bool {
	v := r.Ctx.Request.Header.PeekBytes(hdrAuthorization)
	return len(v) > len(basicPrefix) && bytes.EqualFold(v[:len(basicPrefix)], basicPrefix)
}

// Challenge implements plugin.Challenger.
func (s *step) Challenge() []byte { return challenge }

// maxDecoded bounds the decoded credentials (and so the scratch buffer).
const maxDecoded = 1024

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	v := r.Ctx.Request.Header.PeekBytes(hdrAuthorization)
	r.Challenge = challenge
	if len(v) == 0 {
		r.Message = msgMissing
		return config.RespAuthMissing
	}
	if !s.HasCredential(r) {
		r.Message = msgInvalid
		return config.RespAuthFailure
	}
	enc := bytes.TrimSpace(v[len(basicPrefix):])
	n := base64.StdEncoding.DecodedLen(len(enc))
	if n > maxDecoded {
		r.Message = msgInvalid
		return config.RespAuthFailure
	}
	if cap(r.Scratch) < n {
		r.Scratch = make([]byte, 0, maxDecoded)
	}
	buf := r.Scratch[:n]
	n, err := base64.StdEncoding.Decode(buf, enc)
	if err != nil {
		clear(buf)
		r.Message = msgInvalid
		return config.RespAuthFailure
	}
	t := s.authenticate(r, buf[:n])
	clear(buf) // the password does not outlive the request in the pooled buffer
	return t
}

// authenticate checks decoded `username:password` credentials.
func (s *step) authenticate(r *plugin.Request, decoded []byte) config.ResponseType {
	user, pass, ok := bytes.Cut(decoded, []byte{':'})
	if !ok {
		r.Message = msgInvalid
		return config.RespAuthFailure
	}
	c := s.users[string(user)]
	if c == nil {
		s.dummy.check(pass)
		r.Message = msgFailure
		return config.RespAuthFailure
	}
	if !c.check(pass) {
		r.Message = msgFailure
		return config.RespAuthFailure
	}
	r.Challenge = nil
	c.id.Set(r)
	if s.hide {
		r.HideHeader = hdrAuthorization
	}
	return config.RespNone
}

// Reuse keeps the step across a reload (plugin.Reusable) only while the
// new snapshot's credential index is the one the step holds: the consumers
// did not change, and no older index is kept alive by kept chains.
func (s *step) Reuse(env *plugin.Env) bool {
	return plugin.SameIndex(plugin.Credentials(env, Name, compileUsers), s.users)
}
