// Package keyauth is APISIX's key-auth plugin: a consumer's key in a header
// or a query argument identifies the consumer (and the credential, or app).
package keyauth

import (
	"crypto/subtle"

	"github.com/cespare/xxhash/v2"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "key-auth"

// Priority: after ip-restriction, before throttling (APISIX 2500).
const Priority = 2500

func init() {
	plugin.Register(config.PluginDef{
		Name:     Name,
		Priority: Priority,
		Route:    func() any { return &Config{} },
		Consumer: func() any { return &Credential{} },
	}, compile)
}

// Config is the plugin on a route, a service or global_plugins: where to
// find the key.
type Config struct {
	Header          string `json:"header"`
	Query           string `json:"query"`
	HideCredentials bool   `json:"hide_credentials"`
	// Key is refused here with a message that says where keys belong.
	Key string `json:"key,omitempty" secret:"true"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.Header, c.Query = "apikey", "apikey" }

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	if c.Key != "" {
		// The key itself is never echoed: it is a secret.
		ch.Field("key").Errorf("not allowed here: keys belong to consumers and credentials")
	}
	ch.Field("header").HeaderName(c.Header)
	if c.Query == "" {
		ch.Field("query").Errorf("must not be empty")
	}
}

// Credential is the plugin on a consumer or a consumer credential: its key.
type Credential struct {
	Key string `json:"key" secret:"true"`
	// Where to look for keys is a route's business: refused here with a
	// message that says so.
	Header          *string `json:"header,omitempty"`
	Query           *string `json:"query,omitempty"`
	HideCredentials *bool   `json:"hide_credentials,omitempty"`
}

// Validate implements config.Validating.
func (c *Credential) Validate(ch *config.Check) {
	if c.Key == "" {
		ch.Field("key").Errorf("required on a consumer or credential")
	}
	const onlyKey = "not allowed on a consumer or credential (only key), got %q"
	if c.Header != nil {
		ch.Field("header").Errorf(onlyKey, *c.Header)
	}
	if c.Query != nil {
		ch.Field("query").Errorf(onlyKey, *c.Query)
	}
	if c.HideCredentials != nil {
		ch.Field("hide_credentials").Errorf("not allowed on a consumer or credential (only key), got %t", *c.HideCredentials)
	}
}

// Credential implements config.UniqueCredential: no two keys are equal.
func (c *Credential) Credential() (string, string) { return "key", c.Key }

// credential is one key of a consumer: the consumer (user) and the app.
type credential struct {
	key []byte
	id  plugin.Identity
}

// keys finds credentials by key. Keys are looked up by their hash, then
// compared in constant time, so neither the map nor the comparison tells
// an attacker how much of a guessed key was right.
type keys map[uint64][]*credential

func compileKeys(consumers []config.Consumer) keys {
	k := keys{}
	plugin.EachCredential(consumers, Name, func(cr *Credential, id plugin.Identity) {
		if cr.Key == "" {
			return
		}
		c := &credential{key: []byte(cr.Key), id: id}
		h := xxhash.Sum64String(cr.Key)
		k[h] = append(k[h], c)
	})
	return k
}

func (k keys) lookup(key []byte) *credential {
	var found *credential
	for _, c := range k[xxhash.Sum64(key)] {
		if subtle.ConstantTimeCompare(c.key, key) == 1 {
			found = c
		}
	}
	return found
}

type step struct {
	header []byte
	query  []byte
	hide   bool
	keys   keys
	shared string // the Env.Shared key (plugin.SharedStep)
}

// compile returns one step per snapshot for each distinct config: the step
// holds nothing of its route, so the 10,000 routes of a service with
// key-auth share one rather than hold 10,000 copies of the header name.
func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	hide := "0"
	if c.HideCredentials {
		hide = "1"
	}
	key := Name + "\x00step\x00" + hide + c.Header + "\x00" + c.Query
	s, err := env.Shared(key, func() (any, error) {
		k := plugin.Credentials(env, Name, compileKeys)
		return &step{header: []byte(c.Header), query: []byte(c.Query), hide: c.HideCredentials, keys: k, shared: key}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.(*step), nil
}

// SharedKey implements plugin.SharedStep.
func (s *step) SharedKey() string { return s.shared }

// CredentialQuery is the query argument the key may come in; the access
// log masks its value.
func (s *step) CredentialQuery() string { return string(s.query) }

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	key := r.Ctx.Request.Header.PeekBytes(s.header)
	var hideHeader, hideQuery []byte
	if len(key) > 0 {
		hideHeader = s.header
	} else if key = r.Ctx.QueryArgs().PeekBytes(s.query); len(key) > 0 {
		hideQuery = s.query
	} else {
		return config.RespAuthMissing
	}
	c := s.keys.lookup(key)
	if c == nil {
		return config.RespAuthFailure
	}
	c.id.Set(r)
	if s.hide {
		r.HideHeader, r.HideQuery = hideHeader, hideQuery
	}
	return config.RespNone
}

// HasCredential implements plugin.Authenticator: a key in the header or
// the query argument.
func (s *step) HasCredential(r *plugin.Request) bool {
	return len(r.Ctx.Request.Header.PeekBytes(s.header)) > 0 || len(r.Ctx.QueryArgs().PeekBytes(s.query)) > 0
}

// Reuse keeps the step across a reload (plugin.Reusable) only while the
// new snapshot's credential index is the one the step holds: the consumers
// did not change, and no older index is kept alive by kept chains.
func (s *step) Reuse(env *plugin.Env) bool {
	return plugin.SameIndex(plugin.Credentials(env, Name, compileKeys), s.keys)
}
