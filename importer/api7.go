package importer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gateway/config"
)

// API7 converts API7 Enterprise Admin API responses: list responses
// (`{list, total}`), get responses (`{value}`) or bare objects, one file
// per object type or a directory of them. The type comes from the file
// name (services.json, routes.json, stream_routes.json, consumers.json,
// credentials.json or credentials-<username>.json, certificates.json,
// ca_certificates.json, snis.json, global_rules.json, upstreams.json) or
// from the objects' fields.
//
// The gateway's schema is API7's, so objects are carried over key by key
// against the config types: response-only fields are left out, and a key
// the gateway does not have is a warning.
func API7(paths []string) (*Result, error) {
	in, err := readInputs(paths)
	if err != nil {
		return nil, err
	}
	return convertAPI7(in), nil
}

type api7Item struct {
	m    map[string]any
	path string
	file string // file base name
}

func api7Kind(base string, m map[string]any) string {
	b := strings.ToLower(base)
	for _, k := range []struct{ prefix, kind string }{
		{"stream_route", "stream_routes"}, {"published_service", "services"}, {"service", "services"}, {"route", "routes"},
		{"consumer_credential", "credentials"}, {"credential", "credentials"}, {"consumer", "consumers"},
		{"ca_certificate", "ca_certificates"}, {"certificate", "certificates"}, {"ssl", "certificates"},
		{"sni", "snis"}, {"global_rule", "global_rules"}, {"upstream", "upstreams"},
	} {
		if strings.HasPrefix(b, k.prefix) {
			return k.kind
		}
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("server_addr") || has("server_port") || has("remote_addr"):
		return "stream_routes"
	case has("paths") && !has("path_prefix"):
		return "routes"
	case has("path_prefix") || has("hosts") || has("upstream") || has("strip_path_prefix"):
		return "services"
	case has("nodes"):
		return "upstreams"
	case has("username"):
		return "consumers"
	case has("domain"):
		return "snis"
	case has("cert") && (has("key") || has("common_name") || has("subject_alt_names")):
		return "certificates"
	case has("cert"):
		return "ca_certificates"
	case has("plugins") && has("name"):
		return "credentials"
	case has("plugins"):
		return "global_rules"
	}
	return ""
}

// owner of a credentials file: credentials-<username>.json.
func credentialOwner(base string) string {
	for _, sep := range []string{"-", ".", "_"} {
		for _, p := range []string{"credentials", "consumer_credentials"} {
			if strings.HasPrefix(base, p+sep) {
				return base[len(p)+1:]
			}
		}
	}
	return ""
}

func convertAPI7(in []input) *Result {
	w := &warner{}
	items := map[string][]api7Item{}
	for _, f := range in {
		root := f.root.(map[string]any)
		path := f.name + ": "
		var objs []api7Item
		switch {
		case root["list"] != nil:
			l, _ := root["list"].([]any)
			for i, e := range l {
				m, ok := e.(map[string]any)
				if !ok {
					w.add(indexed(path+"list", i), "expected an object, skipped")
					continue
				}
				p := indexed(path+"list", i)
				// APISIX's Admin API wraps each item: {key, value, createdIndex, modifiedIndex}.
				if v, ok := m["value"].(map[string]any); ok && m["key"] != nil {
					m, p = v, p+".value"
				}
				objs = append(objs, api7Item{m: m, path: p, file: f.base})
			}
		case root["value"] != nil:
			m, ok := root["value"].(map[string]any)
			if !ok {
				w.add(path+"value", "expected an object, skipped")
				continue
			}
			objs = append(objs, api7Item{m: m, path: path + "value", file: f.base})
		default:
			objs = append(objs, api7Item{m: root, path: path, file: f.base})
		}
		for _, o := range objs {
			kind := api7Kind(f.base, o.m)
			if kind == "" {
				w.add(o.path, "cannot tell which object type this is (name the file services.json, routes.json, ...): not imported")
				continue
			}
			items[kind] = append(items[kind], o)
		}
	}
	a := &api7Conv{w: w, registered: len(config.RegisteredPlugins()) > 0}
	out := &Map{}

	if ups := a.list(items["upstreams"], reflect.TypeFor[config.Upstream](), "upstream"); len(ups) > 0 {
		out.SetC("upstreams", ups, "API7 upstreams")
	}
	routesOf := map[string][]any{}
	for _, r := range items["routes"] {
		sid, _ := r.m["service_id"].(string)
		if sid == "" && len(items["services"]) == 1 {
			sid, _ = items["services"][0].m["id"].(string)
		}
		m := a.object(r, reflect.TypeFor[config.Route]())
		m.entries = slicesDelete(m.entries, "service_id")
		routesOf[sid] = append(routesOf[sid], Commented{Comment: a.comment("route", r), Val: m})
	}
	var services []any
	seen := map[string]bool{}
	for _, s := range items["services"] {
		id, _ := s.m["id"].(string)
		m := a.object(s, reflect.TypeFor[config.Service]())
		seen[id] = true
		if t, _ := s.m["type"].(string); t == "stream" {
			// A stream service holds the upstream of its stream routes
			// and has no HTTP routes.
			services = append(services, Commented{Comment: a.comment("stream service", s), Val: m})
			continue
		}
		if inline, ok := m.Get("routes"); ok {
			if l, _ := inline.([]any); len(l) > 0 {
				routesOf[id] = append(l, routesOf[id]...)
			}
		}
		if len(routesOf[id]) == 0 {
			w.add(where(s.path), "service %q has no routes in the input (routes.json): not imported", id)
			continue
		}
		m.Set("routes", routesOf[id])
		services = append(services, Commented{Comment: a.comment("service", s), Val: m})
	}
	for _, r := range items["routes"] {
		sid, _ := r.m["service_id"].(string)
		if !seen[sid] {
			w.add(where(r.path), "service %q of this route is not in the input: route not imported", sid)
		}
	}
	if len(services) > 0 {
		out.SetC("services", services, "API7 published services with their routes")
	} else {
		out.Set("services", []any{})
	}
	// Stream routes, and a stream listener for every server_port they
	// match on (on all addresses: API7 opens its stream ports itself).
	var streamRoutes []any
	listen := map[int]bool{}
	for _, r := range items["stream_routes"] {
		m := a.object(r, reflect.TypeFor[config.StreamRoute]())
		var port float64
		if n, ok := r.m["server_port"].(json.Number); ok {
			port, _ = n.Float64()
		}
		if port <= 0 || port > 65535 || port != float64(int(port)) {
			w.add(where(r.path), "stream route without server_port: not imported (API7 matches it on every stream port; give it the port it serves)")
			continue
		}
		listen[int(port)] = true
		streamRoutes = append(streamRoutes, Commented{Comment: a.comment("stream route", r), Val: m})
	}
	if len(streamRoutes) > 0 {
		ports := make([]int, 0, len(listen))
		for p := range listen {
			ports = append(ports, p)
		}
		sort.Ints(ports)
		addrs := make([]any, len(ports))
		for i, p := range ports {
			addrs[i] = ":" + strconv.Itoa(p)
		}
		gw := &Map{}
		gw.Set("stream_listen", addrs)
		out.SetC("gateway", gw, "stream listeners: one per server_port of the stream routes")
		out.SetC("stream_routes", streamRoutes, "API7 stream routes")
	}
	// Consumers and their credentials.
	credsOf := map[string][]any{}
	for _, c := range items["credentials"] {
		user := credentialOwner(c.file)
		if u, ok := c.m["username"].(string); ok && u != "" {
			user = u
		}
		if user == "" && len(items["consumers"]) == 1 {
			user, _ = items["consumers"][0].m["username"].(string)
		}
		if user == "" {
			w.add(where(c.path), "cannot tell the consumer of this credential (name the file credentials-<username>.json): not imported")
			continue
		}
		m := a.object(c, reflect.TypeFor[config.Credential]())
		m.entries = slicesDelete(m.entries, "username")
		credsOf[user] = append(credsOf[user], Commented{Comment: a.comment("credential", c), Val: m})
	}
	var consumers []any
	users := map[string]bool{}
	for _, c := range items["consumers"] {
		user, _ := c.m["username"].(string)
		users[user] = true
		m := a.object(c, reflect.TypeFor[config.Consumer]())
		if creds := credsOf[user]; len(creds) > 0 {
			m.Set("credentials", creds)
		}
		consumers = append(consumers, Commented{Comment: a.comment("consumer", c), Val: m})
	}
	for user := range credsOf {
		if !users[user] {
			w.add("credentials", "consumer %q is not in the input: its credentials are not imported", user)
		}
	}
	if len(consumers) > 0 {
		out.SetC("consumers", consumers, "API7 consumers and their credentials")
	}
	var certs []any
	for _, c := range items["certificates"] {
		m := a.object(c, reflect.TypeFor[config.Certificate]())
		if _, ok := m.Get("key"); !ok {
			if _, ok := m.Get("key_file"); !ok {
				id, _ := c.m["id"].(string)
				env := envName("GATEWAY_CERT_KEY_", id)
				m.SetC("key", "$env://"+env, "the Admin API never returns a private key: the gateway reads it from $"+env)
				w.add(where(c.path), "no private key (the Admin API never returns one): set the environment variable %s to the PEM key, or replace key with key_file", env)
			}
		}
		certs = append(certs, Commented{Comment: a.comment("certificate", c), Val: m})
	}
	if len(certs) > 0 {
		out.SetC("certificates", certs, "API7 certificates")
	}
	if cas := a.list(items["ca_certificates"], reflect.TypeFor[config.CACertificate](), "ca_certificate"); len(cas) > 0 {
		out.SetC("ca_certificates", cas, "API7 CA certificates")
	}
	if snis := a.list(items["snis"], reflect.TypeFor[config.SNI](), "sni"); len(snis) > 0 {
		out.SetC("snis", snis, "API7 SNIs")
	}
	global := &Map{}
	from := map[string]string{}
	for _, g := range items["global_rules"] {
		o := newObj(g.m, g.path, w)
		o.ignore("id", "created_at", "updated_at")
		plugins := a.plugins(o.sub("plugins"))
		o.done()
		for _, e := range plugins.entries {
			if first, dup := from[e.key]; dup {
				w.add(joinPath(joinPath(g.path, "plugins"), e.key), "plugin %s is also in the global rule at %s, which is kept", e.key, first)
				continue
			}
			from[e.key] = where(g.path)
			global.SetC(e.key, e.val, fmt.Sprintf("api7 global_rule %v (%s)", g.m["id"], where(g.path)))
		}
	}
	if global.Len() > 0 {
		out.SetC("global_plugins", global, "API7 global rules")
	}
	return &Result{YAML: Marshal(out), Warnings: w.list}
}

type api7Conv struct {
	w          *warner
	registered bool
}

func (a *api7Conv) comment(kind string, it api7Item) string {
	id := it.m["id"]
	if id == nil {
		id = it.m["username"]
	}
	name, _ := it.m["name"].(string)
	if name != "" {
		return fmt.Sprintf("api7 %s %v %q (%s)", kind, id, name, where(it.path))
	}
	return fmt.Sprintf("api7 %s %v (%s)", kind, id, where(it.path))
}

func (a *api7Conv) list(items []api7Item, t reflect.Type, kind string) []any {
	var out []any
	for _, it := range items {
		out = append(out, Commented{Comment: a.comment(kind, it), Val: a.object(it, t)})
	}
	return out
}

func (a *api7Conv) object(it api7Item, t reflect.Type) *Map {
	m, _ := a.value(it.m, t, it.path).(*Map)
	if m == nil {
		m = &Map{}
	}
	return m
}

var (
	ignoredType      = reflect.TypeFor[config.Ignored]()
	notSupportedType = reflect.TypeFor[config.NotSupported]()
	varType          = reflect.TypeFor[config.Var]()
	pluginsType      = reflect.TypeFor[config.Plugins]()
	consPluginsType  = reflect.TypeFor[config.ConsumerPlugins]()
	upstreamType     = reflect.TypeFor[config.Upstream]()
)

// value carries v over as type t says: struct keys in the type's field
// order, keys the type lacks warned about and left out.
func (a *api7Conv) value(v any, t reflect.Type, path string) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case varType:
		return tree(v)
	case pluginsType, consPluginsType:
		m, ok := v.(map[string]any)
		if !ok {
			a.w.add(path, "expected an object, not imported")
			return &Map{}
		}
		return a.plugins(newObj(m, path, a.w))
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			a.w.add(path, "expected an object, not imported")
			return &Map{}
		}
		out := &Map{}
		known := map[string]bool{}
		// Only DNS discovery is built: another discovery_type drops the
		// three discovery keys with one warning (the nodes must be given).
		otherDiscovery := false
		if t == upstreamType {
			if dt, _ := m["discovery_type"].(string); dt != "" && dt != "dns" {
				otherDiscovery = true
				a.w.add(joinPath(path, "discovery_type"), "discovery_type %q is not supported (only dns): service_name, discovery_type and discovery_args not imported (give the upstream nodes)", dt)
			}
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			known[name] = true
			fv, present := m[name]
			if !present || fv == nil {
				continue
			}
			if otherDiscovery && (name == "discovery_type" || name == "service_name" || name == "discovery_args") {
				continue
			}
			if t == upstreamType && name == "scheme" && fv == "tcp" {
				// API7's scheme of stream upstreams: the gateway's stream
				// routes speak TCP to any upstream, whose scheme is http.
				a.w.add(joinPath(path, name), `"tcp" left out: stream routes speak TCP to the nodes of any upstream (HTTP routes cannot use it)`)
				continue
			}
			switch f.Type {
			case ignoredType:
				continue
			case notSupportedType:
				a.w.add(joinPath(path, name), "not supported yet, not imported")
				continue
			}
			out.Set(name, a.value(fv, f.Type, joinPath(path, name)))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if known[k] || empty(m[k]) {
				continue
			}
			a.w.add(joinPath(path, k), "not supported, not imported")
		}
		return out
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return tree(v)
		}
		out := make([]any, 0, len(l))
		for i, e := range l {
			out = append(out, a.value(e, t.Elem(), indexed(path, i)))
		}
		return out
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return tree(v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := &Map{}
		for _, k := range keys {
			out.Set(k, a.value(m[k], t.Elem(), joinPath(path, k)))
		}
		return out
	}
	return tree(v)
}

// plugins carries a plugin map over; a plugin this build does not have is
// warned about and left out.
func (a *api7Conv) plugins(o *obj) *Map {
	out := &Map{}
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := config.LookupPlugin(k); a.registered && !ok {
			a.w.add(o.at(k), "plugin %s is not supported by this gateway: not imported", k)
			continue
		}
		out.Set(k, tree(o.raw(k)))
	}
	return out
}

func slicesDelete(es []entry, key string) []entry {
	out := es[:0]
	for _, e := range es {
		if e.key != key {
			out = append(out, e)
		}
	}
	return out
}
