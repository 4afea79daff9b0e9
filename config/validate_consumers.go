package config

import (
	"strings"
)

// ---- consumers ----

func (v *validator) consumers() {
	usernames := map[string]string{}
	keys := map[string]string{} // plugin + credential -> path of its first use
	checkKeys := func(path string, p map[string]any) {
		for _, name := range sortedPluginNames(p) {
			u, ok := p[name].(UniqueCredential)
			if !ok {
				continue
			}
			key, value := u.Credential()
			if value == "" {
				continue
			}
			kp := field(field(path, name), key)
			k := name + "\x00" + value
			if first, dup := keys[k]; dup {
				// Name both places, never the credential: it is a secret.
				v.add(kp, "duplicate %s: the same %s is used by %s", key, key, first)
				continue
			}
			keys[k] = kp
		}
	}
	for i := range v.cfg.Consumers {
		c := &v.cfg.Consumers[i]
		path := indexPath("consumers", i)
		up := field(path, "username")
		switch first, dup := usernames[c.Username]; {
		case !validUsername(c.Username):
			v.add(up, "must match ^[a-zA-Z0-9_-]+$ and have 1..%d characters, got %q", maxUsername, c.Username)
		case dup:
			v.add(up, "duplicate username %q (first at %s)", c.Username, first)
		default:
			usernames[c.Username] = up
		}
		v.plugins(field(path, "plugins"), c.Plugins)
		checkKeys(field(path, "plugins"), c.Plugins)
		names := map[string]bool{}
		if len(c.Plugins) > 0 {
			// The APISIX-shape credential is named after the consumer.
			names[c.Username] = true
		}
		for j := range c.Credentials {
			cr := &c.Credentials[j]
			cp := indexPath(field(path, "credentials"), j)
			if cr.ID != "" && !validID(cr.ID, maxID) {
				v.add(field(cp, "id"), "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxID, cr.ID)
			}
			np := field(cp, "name")
			switch {
			case cr.Name == "":
				v.add(np, "required")
			case len(cr.Name) > maxID || strings.ContainsAny(cr.Name, "/\x00\n\r\t"):
				v.add(np, "must have 1..%d characters and no '/' or control characters, got %q", maxID, cr.Name)
			case names[cr.Name]:
				v.add(np, "duplicate credential name %q in consumer %q", cr.Name, c.Username)
			}
			names[cr.Name] = true
			v.plugins(field(cp, "plugins"), cr.Plugins)
			checkKeys(field(cp, "plugins"), cr.Plugins)
		}
	}
}
