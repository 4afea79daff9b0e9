package config

import (
	"sort"
	"strings"
)

// ---- seed shapes (issue 21) ----

// globalRules checks API7 global rules and merges their plugins into
// GlobalPlugins, rules in id order. It returns global_plugins as the file
// wrote it, which validate checks at its own path: a rule's plugins are
// checked at the rule's path, once.
func (v *validator) globalRules() Plugins {
	own := v.cfg.GlobalPlugins
	if len(v.cfg.GlobalRules) == 0 {
		return own
	}
	ids := newIDSet(v, "global_rules")
	order := make([]int, len(v.cfg.GlobalRules))
	for i := range order {
		order[i] = i
		ids.check(field(indexPath("global_rules", i), "id"), v.cfg.GlobalRules[i].ID, maxID)
	}
	sort.SliceStable(order, func(a, b int) bool {
		return v.cfg.GlobalRules[order[a]].ID < v.cfg.GlobalRules[order[b]].ID
	})
	merged := make(Plugins, len(own))
	from := map[string]string{} // plugin name -> where it is set first
	for name, conf := range own {
		merged[name] = conf
		from[name] = field("global_plugins", name)
	}
	for _, i := range order {
		r := &v.cfg.GlobalRules[i]
		path := field(indexPath("global_rules", i), "plugins")
		v.plugins(path, r.Plugins)
		for _, name := range sortedPluginNames(r.Plugins) {
			if first, dup := from[name]; dup {
				v.add(field(path, name), "plugin %q is already set by %s: a plugin may be set once across global_plugins and global_rules", name, first)
				continue
			}
			from[name] = field(path, name)
			merged[name] = r.Plugins[name]
		}
	}
	v.cfg.GlobalPlugins = merged
	return own
}

// adaptiveControl checks Huawei's enable_adaptive_control, which the
// gateway does not implement: only "FALSE" (or nothing) loads.
func (v *validator) adaptiveControl(path string, p *ThrottlePolicy) {
	switch p.EnableAdaptiveControl {
	case "", "FALSE":
	case "TRUE":
		v.add(field(path, "enable_adaptive_control"), `"TRUE" is not supported yet (adaptive throttling); use "FALSE" or leave it out`)
	default:
		v.add(field(path, "enable_adaptive_control"), `must be "TRUE" or "FALSE", got %q`, p.EnableAdaptiveControl)
	}
}

// seedResponseType checks a gateway_responses key that is not a type the
// gateway writes; it reports whether the key is one of Huawei's and was
// handled here.
func (v *validator) seedResponseType(path, t string, r GatewayResponse) bool {
	if t == Default4XX || t == Default5XX {
		return true
	}
	what, ok := unproducedResponseTypes[t]
	if !ok {
		return false
	}
	if !r.Default && (r.Status != 0 || r.Body != "" || len(r.Headers) > 0) {
		v.add(path, "is not supported yet: the gateway has no %s, so it never answers with %s (only Huawei's own default, `default: true`, loads)", what, t)
	}
	return true
}

// seedResponseTypeNames lists the Huawei types that load besides the ones
// the gateway writes, for the "unknown response type" message.
func seedResponseTypeNames() string {
	names := []string{Default4XX, Default5XX}
	for t := range unproducedResponseTypes {
		names = append(names, t)
	}
	sort.Strings(names[2:])
	return strings.Join(names, ", ")
}
