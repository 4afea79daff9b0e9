// Package consumerrestriction is APISIX's consumer-restriction plugin (and
// Huawei's binding of an API to a set of apps): after authentication, the
// consumer (or the credential, the app) must be allowed, else 403
// UNAUTHORIZED.
package consumerrestriction

import (
	"bytes"
	"strings"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "consumer-restriction"

// Priority: APISIX's, after every authentication plugin.
const Priority = 2400

func init() {
	plugin.Register(config.PluginDef{
		Name:     Name,
		Priority: Priority,
		Route:    func() any { return &Config{} },
	}, compile)
}

// The kinds of name a rule lists.
const (
	TypeConsumerName   = "consumer_name"
	TypeCredentialName = "credential_name"
)

// Config is the plugin on a route, a service or global_plugins.
type Config struct {
	Type             string          `json:"type"`
	Whitelist        []string        `json:"whitelist"`
	Blacklist        []string        `json:"blacklist"`
	AllowedByMethods []MethodsOfUser `json:"allowed_by_methods"`
	RejectedCode     int             `json:"rejected_code"`
	RejectedMsg      string          `json:"rejected_msg"`
}

// MethodsOfUser limits one consumer (or credential) to some methods.
type MethodsOfUser struct {
	User    string   `json:"user"`
	Methods []string `json:"methods"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.Type, c.RejectedCode = TypeConsumerName, 403 }

var methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	switch c.Type {
	case TypeConsumerName, TypeCredentialName:
	case "consumer_group_id", "service_id", "route_id":
		ch.Field("type").Errorf("%q is not supported (the gateway has no consumer groups, and services and routes are chosen by routing): use consumer_name or credential_name", c.Type)
	default:
		ch.Field("type").OneOf(c.Type, TypeConsumerName, TypeCredentialName)
	}
	if len(c.Whitelist) == 0 && len(c.Blacklist) == 0 && len(c.AllowedByMethods) == 0 {
		ch.Errorf("one of whitelist, blacklist or allowed_by_methods is required")
	}
	if len(c.Whitelist) > 0 && len(c.Blacklist) > 0 {
		ch.Errorf("whitelist and blacklist cannot both be set")
	}
	for i, u := range c.AllowedByMethods {
		uc := ch.Field("allowed_by_methods").Index(i)
		if u.User == "" {
			uc.Field("user").Errorf("required")
		}
		if len(u.Methods) == 0 {
			uc.Field("methods").Errorf("must list at least one method")
		}
		for j, m := range u.Methods {
			uc.Field("methods").Index(j).OneOf(m, methods...)
		}
	}
	ch.Field("rejected_code").IntRange(int64(c.RejectedCode), 200, 599)
}

type set map[string]struct{}

func newSet(names []string) set {
	s := set{}
	for _, n := range names {
		s[n] = struct{}{}
	}
	return s
}

func (s set) has(name []byte) bool {
	_, ok := s[string(name)]
	return ok
}

type step struct {
	byApp     bool
	whitelist set // nil: not set
	blacklist set
	methods   map[string][][]byte
	status    int    // 0: UNAUTHORIZED's own
	msg       []byte // nil: UNAUTHORIZED's own

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	s := &step{byApp: c.Type == TypeCredentialName}
	if len(c.Whitelist) > 0 {
		s.whitelist = newSet(c.Whitelist)
	}
	if len(c.Blacklist) > 0 {
		s.blacklist = newSet(c.Blacklist)
	}
	if len(c.AllowedByMethods) > 0 {
		s.methods = map[string][][]byte{}
		for _, u := range c.AllowedByMethods {
			for _, m := range u.Methods {
				s.methods[u.User] = append(s.methods[u.User], []byte(strings.ToUpper(m)))
			}
		}
	}
	if c.RejectedCode != 403 {
		s.status = c.RejectedCode
	}
	if c.RejectedMsg != "" {
		s.msg = []byte(c.RejectedMsg)
	}
	return s, nil
}

var msgNoConsumer = []byte("Missing authentication or identity verification")

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	if r.Consumer == nil {
		// No authentication plugin identified anyone (none on the route,
		// or a route without one): nobody to allow.
		r.Message = msgNoConsumer
		return config.RespAuthMissing
	}
	name := r.Consumer
	if s.byApp {
		name = r.App
	}
	allowed := (s.blacklist == nil || !s.blacklist.has(name)) && (s.whitelist == nil || s.whitelist.has(name))
	if allowed && s.methods != nil {
		if ms, listed := s.methods[string(name)]; listed {
			allowed = false
			for _, m := range ms {
				allowed = allowed || bytes.Equal(m, r.Ctx.Method())
			}
		}
	}
	if allowed {
		return config.RespNone
	}
	r.Status, r.Message = s.status, s.msg
	return config.RespUnauthorized
}
