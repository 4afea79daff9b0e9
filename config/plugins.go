package config

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// PluginDef declares a plugin to the loader. Plugins register themselves
// (package plugin and its sub-packages); config never imports a plugin, it
// only decodes and validates through what was registered.
type PluginDef struct {
	Name string
	// Priority orders a route's steps: higher runs first (APISIX's plugin
	// priorities).
	Priority int
	// Route makes a config value (a pointer to a struct) for the plugin
	// under global_plugins, a service or a route; nil: not allowed there.
	Route func() any
	// Consumer makes the config value for a consumer or a consumer
	// credential; nil: not allowed there.
	Consumer func() any
}

var (
	pluginsMu   sync.RWMutex
	pluginDefs  = map[string]*PluginDef{}
	pluginOrder []*PluginDef // by priority, highest first; then by name
)

// RegisterPlugin declares a plugin. It panics on a second plugin of the
// same name or priority: the order of steps must never depend on chance.
func RegisterPlugin(def PluginDef) {
	pluginsMu.Lock()
	defer pluginsMu.Unlock()
	if _, dup := pluginDefs[def.Name]; dup {
		panic("config: plugin " + def.Name + " registered twice")
	}
	for _, d := range pluginOrder {
		if d.Priority == def.Priority {
			panic(fmt.Sprintf("config: plugins %s and %s have the same priority %d", d.Name, def.Name, def.Priority))
		}
	}
	d := def
	pluginDefs[def.Name] = &d
	pluginOrder = append(pluginOrder, &d)
	sort.SliceStable(pluginOrder, func(i, j int) bool { return pluginOrder[i].Priority > pluginOrder[j].Priority })
}

// LookupPlugin returns a registered plugin's definition.
func LookupPlugin(name string) (*PluginDef, bool) {
	pluginsMu.RLock()
	defer pluginsMu.RUnlock()
	d, ok := pluginDefs[name]
	return d, ok
}

// RegisteredPlugins returns every registered plugin, highest priority first.
func RegisteredPlugins() []*PluginDef {
	pluginsMu.RLock()
	defer pluginsMu.RUnlock()
	return slices.Clone(pluginOrder)
}

// Plugins maps a plugin name to its config under global_plugins, a
// service or a route: the value made by its PluginDef.Route.
type Plugins map[string]any

// ConsumerPlugins maps a plugin name to its config on a consumer or a
// credential: the value made by its PluginDef.Consumer.
type ConsumerPlugins map[string]any

// Defaulter is implemented by plugin config types with defaults; the
// loader calls SetDefaults before decoding into the value.
type Defaulter interface{ SetDefaults() }

// Validating is implemented by plugin config types that check themselves;
// c reports problems with key paths below the plugin's own.
type Validating interface{ Validate(c *Check) }

// UniqueCredential is implemented by consumer plugin configs whose value
// identifies one consumer (a key-auth key): no two may be equal. Credential
// returns the key holding it and its value, which is never printed.
type UniqueCredential interface{ Credential() (key, value string) }

// Check reports problems of one object at a key path. Plugins use it in
// Validate; it is the validator's own, so messages read the same
// everywhere.
type Check struct {
	v    *validator
	path string
}

// Path is the key path of the object being checked.
func (c *Check) Path() string { return c.path }

// Field is a check of the key name under this object.
func (c *Check) Field(name string) *Check { return &Check{v: c.v, path: field(c.path, name)} }

// Index is a check of the i-th element of this list.
func (c *Check) Index(i int) *Check { return &Check{v: c.v, path: indexPath(c.path, i)} }

// Errorf reports a problem at this path; %q arguments are clipped.
func (c *Check) Errorf(format string, args ...any) { c.v.add(c.path, format, args...) }

// IntRange reports n outside lo..hi.
func (c *Check) IntRange(n, lo, hi int64) { c.v.intRange(c.path, n, lo, hi) }

// OneOf reports got not in allowed.
func (c *Check) OneOf(got string, allowed ...string) { c.v.oneOf(c.path, got, allowed...) }

// IPOrCIDR reports s that is neither an IP address nor a CIDR.
func (c *Check) IPOrCIDR(s string) { c.v.ipOrCIDR(c.path, s) }

// HeaderName reports an invalid header name.
func (c *Check) HeaderName(name string) {
	if !validHeaderName(name) {
		c.Errorf("invalid header name %q", name)
	}
}

// Var parses a variable name of routing.md (ParseVar) and reports one
// that is not; a plugin keeps the result for its compile step.
func (c *Check) Var(name string) VarRef {
	r, err := ParseVar(name)
	if err != nil {
		c.Errorf("%v", err)
	}
	return r
}

// VarTemplate parses a template of $variables (ParseKeyTemplate) and
// reports one that does not parse; a plugin keeps the result for its
// compile step.
func (c *Check) VarTemplate(t string) KeyTemplate {
	k, err := ParseKeyTemplate(t)
	if err != nil {
		c.Errorf("%v, got %q", err, t)
	}
	return k
}

// Upstream checks an upstream a plugin carries inline (traffic-split), as
// a top-level upstream is checked, after the same defaults.
func (c *Check) Upstream(u *Upstream) {
	resolveUpstream(u)
	c.v.upstream(c.path, u)
}

// Plugin returns the config of plugin name in p as *T, or nil.
func Plugin[T any](p map[string]any, name string) *T {
	v, _ := p[name].(*T)
	return v
}
