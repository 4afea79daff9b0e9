package plugin

import (
	"reflect"
	"strconv"

	"gateway/config"
)

// Authenticator is the request step of an authentication plugin (key-auth,
// basic-auth, jwt-auth, ...). A route may enable several: the request is
// then authenticated by the first of them, in priority order, that finds
// its credential in the request, and only by that one.
type Authenticator interface {
	RequestStep
	// HasCredential reports whether the request carries the credential
	// this step reads (its header, query argument or cookie is present),
	// whatever its value.
	HasCredential(r *Request) bool
}

// Challenger is implemented by an Authenticator whose 401 carries a
// WWW-Authenticate challenge (basic-auth).
type Challenger interface {
	Challenge() []byte
}

// authGroup is the one request step that stands for several
// authenticators of one route.
type authGroup struct {
	steps     []Authenticator
	challenge []byte // the first authenticator's that has one
}

var msgNoCredential = []byte("Missing authorization in request")

func (g *authGroup) OnRequest(r *Request) config.ResponseType {
	for _, a := range g.steps {
		if a.HasCredential(r) {
			return a.OnRequest(r)
		}
	}
	r.Message, r.Challenge = msgNoCredential, g.challenge
	return config.RespAuthMissing
}

// groupAuthenticators replaces two or more authenticators in steps (in
// priority order) by one authGroup at the place of the first.
func groupAuthenticators(steps []RequestStep) []RequestStep {
	var auths []Authenticator
	for _, s := range steps {
		if a, ok := s.(Authenticator); ok {
			auths = append(auths, a)
		}
	}
	if len(auths) < 2 {
		return steps
	}
	g := &authGroup{steps: auths}
	for _, a := range auths {
		if c, ok := a.(Challenger); ok && g.challenge == nil {
			g.challenge = c.Challenge()
		}
	}
	out := make([]RequestStep, 0, len(steps)-len(auths)+1)
	grouped := false
	for _, s := range steps {
		if _, ok := s.(Authenticator); !ok {
			out = append(out, s)
		} else if !grouped {
			out = append(out, g)
			grouped = true
		}
	}
	return out
}

// Identity is who a credential authenticates: the consumer's username,
// the app (credential) name and the consumer's labels.custom_id (nil
// when it has none), prebuilt for the request path.
type Identity struct {
	Username []byte
	App      []byte
	CustomID []byte
}

// Set records the identity on r, for the steps after and the upstream
// headers.
func (id *Identity) Set(r *Request) {
	r.Consumer, r.App, r.CustomID = id.Username, id.App, id.CustomID
}

// customIDLabel is the consumer label sent upstream as
// X-Consumer-Custom-Id (APISIX).
const customIDLabel = "custom_id"

// EachCredential calls fn with the config of plugin name on every consumer
// (APISIX shape: the app is the username) and every consumer credential
// (API7 shape: the app is the credential's name) that has one, and the
// identity it authenticates.
func EachCredential[T any](consumers []config.Consumer, name string, fn func(cr *T, id Identity)) {
	for i := range consumers {
		c := &consumers[i]
		id := Identity{Username: []byte(c.Username)}
		if v, ok := c.Labels[customIDLabel]; ok && v != "" {
			id.CustomID = []byte(v)
		}
		if cr := config.Plugin[T](c.Plugins, name); cr != nil {
			id.App = id.Username
			fn(cr, id)
		}
		for j := range c.Credentials {
			cred := &c.Credentials[j]
			if cr := config.Plugin[T](cred.Plugins, name); cr != nil {
				id.App = []byte(cred.Name)
				fn(cr, id)
			}
		}
	}
}

// Credentials returns what build makes of the consumers for plugin name
// (its index of credentials), shared by every route (ConsumersShared).
func Credentials[K any](env *Env, name string, build func([]config.Consumer) K) K {
	return ConsumersShared(env, name+":credentials", func() any { return build(env.Config.Consumers) }).(K)
}

// ConsumersShared returns the value cached under key that build makes from
// the consumers alone. It is shared by every route of the snapshot and,
// for a config Parse made, kept in env.Long for the snapshots after it
// while the consumers hash the same (config.Digest.Consumers): a chain a
// reload keeps (Reusable) and one compiled afresh then hold one value, and
// a value no compile asks for any more is dropped with the store's commit.
func ConsumersShared(env *Env, key string, build func() any) any {
	v, _ := env.Shared(key, func() (any, error) {
		if d := env.Config.Digest(); d != nil && env.Long != nil {
			return env.Long.Get(key+"|consumers:"+strconv.FormatUint(d.Consumers, 16), build), nil
		}
		return build(), nil
	})
	return v
}

// SameIndex reports whether a and b (maps or pointers) are the very same
// value: a kept authentication step's Reuse compares the index it holds
// with the one the new snapshot has.
func SameIndex[K any](a, b K) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
