package config

import (
	"slices"
	"sort"
	"strings"
)

// ---- throttle policies ----

func (v *validator) policiesList() {
	ids := newIDSet(v, "throttle_policies")
	apps, users := v.appIDs()
	for i := range v.cfg.ThrottlePolicies {
		p := &v.cfg.ThrottlePolicies[i]
		path := indexPath("throttle_policies", i)
		ids.check(field(path, "id"), p.ID, maxID)
		if len(p.Name) > maxName {
			v.add(field(path, "name"), "must have at most %d characters, got %d", maxName, len(p.Name))
		}
		v.intRange(field(path, "api_call_limits"), p.APICallLimits, 1, maxCallLimit)
		for _, opt := range []struct {
			key string
			n   int64
		}{{"user_call_limits", p.UserCallLimits}, {"app_call_limits", p.AppCallLimits}, {"ip_call_limits", p.IPCallLimits}} {
			// 0 means not set.
			v.intRange(field(path, opt.key), opt.n, 0, maxCallLimit)
		}
		if p.UserCallLimits > p.APICallLimits {
			v.add(field(path, "user_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.UserCallLimits)
		}
		switch {
		case p.UserCallLimits > 0 && p.AppCallLimits > p.UserCallLimits:
			v.add(field(path, "app_call_limits"), "must be <= user_call_limits (%d), got %d", p.UserCallLimits, p.AppCallLimits)
		case p.UserCallLimits == 0 && p.AppCallLimits > p.APICallLimits:
			v.add(field(path, "app_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.AppCallLimits)
		}
		if p.IPCallLimits > p.APICallLimits {
			v.add(field(path, "ip_call_limits"), "must be <= api_call_limits (%d), got %d", p.APICallLimits, p.IPCallLimits)
		}
		v.intRange(field(path, "time_interval"), p.TimeInterval, 1, maxCallLimit)
		v.oneOf(field(path, "time_unit"), p.TimeUnit, "SECOND", "MINUTE", "HOUR", "DAY")
		if p.Type != 1 && p.Type != 2 {
			v.add(field(path, "type"), "must be 1 (per route) or 2 (shared), got %d", p.Type)
		}
		v.oneOf(field(path, "window"), p.Window, "fixed", "sliding")
		v.policyStrategy(path, p)  // validate_redis.go
		v.adaptiveControl(path, p) // validate_seeds.go
		seen := map[string]bool{}
		for j := range p.Specials {
			v.special(indexPath(field(path, "specials"), j), &p.Specials[j], apps, users, seen)
		}
	}
}

func (v *validator) special(path string, sp *Special, apps map[string][]string, users map[string]bool, seen map[string]bool) {
	op := field(path, "object_id")
	switch sp.ObjectType {
	case "APP":
		if sp.ObjectID == "" {
			v.add(op, "required")
			break
		}
		switch owners := apps[sp.ObjectID]; {
		case strings.Contains(sp.ObjectID, "/") && len(owners) == 0:
			v.add(op, "unknown app %q: no consumer has that credential", sp.ObjectID)
		case len(owners) == 0:
			v.add(op, "unknown app %q: no consumer has a credential of that name", sp.ObjectID)
		case len(owners) > 1:
			v.add(op, "app %q is ambiguous (consumers %s); write it as <username>/%s", sp.ObjectID, strings.Join(owners, ", "), clip(sp.ObjectID))
		}
	case "USER":
		if sp.ObjectID == "" {
			v.add(op, "required")
		} else if !users[sp.ObjectID] {
			v.add(op, "unknown user %q: no consumer has that username", sp.ObjectID)
		}
	default:
		v.add(field(path, "object_type"), `must be "APP" or "USER", got %q`, sp.ObjectType)
	}
	key := sp.ObjectType + "\x00" + sp.ObjectID
	if sp.ObjectID != "" && seen[key] {
		v.add(op, "duplicate special for %s %q", clip(sp.ObjectType), sp.ObjectID)
	}
	seen[key] = true
	v.intRange(field(path, "call_limits"), sp.CallLimits, 1, maxCallLimit)
}

// appIDs maps every way to name an app, `<name>` and `<username>/<name>`,
// to the usernames that own it, and lists the usernames. An APISIX-shape
// consumer (key-auth on the consumer itself) is an app named after its
// username.
func (v *validator) appIDs() (apps map[string][]string, users map[string]bool) {
	apps, users = map[string][]string{}, map[string]bool{}
	addApp := func(user, name string) {
		if !slices.Contains(apps[name], user) {
			apps[name] = append(apps[name], user)
		}
		apps[user+"/"+name] = []string{user}
	}
	for _, c := range v.cfg.Consumers {
		users[c.Username] = true
		if len(c.Plugins) > 0 {
			addApp(c.Username, c.Username)
		}
		for _, cr := range c.Credentials {
			if cr.Name != "" {
				addApp(c.Username, cr.Name)
			}
		}
	}
	for _, owners := range apps {
		sort.Strings(owners)
	}
	return apps, users
}
