// Package iprestriction is APISIX's ip-restriction plugin: a whitelist or a
// blacklist of addresses and CIDRs, checked against the client address
// after real_ip.
package iprestriction

import (
	"net/netip"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "ip-restriction"

// Priority: first of all (APISIX 3000).
const Priority = 3000

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config on a route, a service or global_plugins.
type Config struct {
	Whitelist []string `json:"whitelist"`
	Blacklist []string `json:"blacklist"`
	Message   string   `json:"message"` // error_msg of the 403 when set
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	switch {
	case len(c.Whitelist) > 0 && len(c.Blacklist) > 0:
		ch.Errorf("exactly one of whitelist and blacklist, got both")
	case len(c.Whitelist) == 0 && len(c.Blacklist) == 0:
		ch.Errorf("exactly one of whitelist and blacklist is required (non-empty), got neither")
	}
	for i, a := range c.Whitelist {
		ch.Field("whitelist").Index(i).IPOrCIDR(a)
	}
	for i, a := range c.Blacklist {
		ch.Field("blacklist").Index(i).IPOrCIDR(a)
	}
}

type step struct {
	prefixes []netip.Prefix
	allow    bool // whitelist: listed addresses are allowed; blacklist: denied
	message  []byte

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	return compileStep(conf.(*Config)), nil
}

func compileStep(c *Config) *step {
	s := &step{prefixes: config.ParsePrefixes(c.Blacklist)}
	if c.Message != "" {
		s.message = []byte(c.Message)
	}
	if len(c.Whitelist) > 0 {
		s.prefixes, s.allow = config.ParsePrefixes(c.Whitelist), true
	}
	return s
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	if s.permits(r.ClientIP) {
		return config.RespNone
	}
	r.Message = s.message
	return config.RespAccessDenied
}

func (s *step) permits(ip netip.Addr) bool {
	listed := false
	for _, p := range s.prefixes {
		if p.Contains(ip) {
			listed = true
			break
		}
	}
	return listed == s.allow
}

// Allow returns the plugin's verdict on a client address, for the stream
// routes (which have no HTTP request to run steps on).
func Allow(c *Config) func(netip.Addr) bool {
	s := compileStep(c)
	return s.permits
}
