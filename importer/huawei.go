package importer

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gateway/config"
)

// Huawei converts Huawei Cloud APIG API responses: list responses (`apis`,
// `vpc_channels`, `throttles`, `throttle_specials`, `throttle_applies`,
// `envs`, `variables`, `responses`, `apps`, `app_codes`, `auths`) one file each or
// several keys in one object, and detail responses of one object (its type
// from the file name or its fields).
func Huawei(paths []string) (*Result, error) {
	in, err := readInputs(paths)
	if err != nil {
		return nil, err
	}
	return convertHuawei(in)
}

// AppCodeHeader is the header Huawei's simple (AppCode) authentication
// reads; imported APP-authenticated APIs get key-auth on it.
const AppCodeHeader = "X-Apig-AppCode"

type hwItems struct {
	apis, channels, throttles, specials, applies, boundAPIs, envs, vars, responses, apps, appCodes, auths []*obj
}

// huaweiListKeys maps a list response's key to where its items go.
func (h *hwItems) slot(key string) *[]*obj {
	switch key {
	case "apis":
		return &h.apis
	case "vpc_channels", "vpcs":
		return &h.channels
	case "throttles":
		return &h.throttles
	case "throttle_specials", "specials":
		return &h.specials
	case "throttle_applies", "bindings", "throttle_bindings":
		return &h.applies
	case "envs", "environments":
		return &h.envs
	case "variables", "env_variables":
		return &h.vars
	case "responses", "gateway_responses":
		return &h.responses
	case "apps":
		return &h.apps
	case "app_codes":
		return &h.appCodes
	case "auths", "app_auths":
		return &h.auths
	}
	return nil
}

// detailKind infers the type of a single object from the file name or its
// fields.
func detailKind(base string, m map[string]any) string {
	b := strings.ToLower(base)
	for _, k := range []string{"vpc_channel", "throttle_special", "throttle_appl", "throttle", "env_variable", "variable", "env", "gateway_response", "response", "app_code", "app_auth", "app", "api"} {
		if strings.HasPrefix(b, k) {
			switch k {
			case "vpc_channel":
				return "vpc_channels"
			case "throttle_special":
				return "throttle_specials"
			case "throttle_appl":
				return "throttle_applies"
			case "throttle":
				return "throttles"
			case "env_variable", "variable":
				return "variables"
			case "env":
				return "envs"
			case "gateway_response", "response":
				return "responses"
			case "app_code":
				return "app_codes"
			case "app_auth":
				return "auths"
			case "app":
				return "apps"
			case "api":
				return "apis"
			}
		}
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("req_uri") && (has("backend_type") || has("throttle_apply_id")):
		return "apis"
	case has("balance_strategy") || has("lb_algorithm") || has("members") || has("member_type"):
		return "vpc_channels"
	case has("api_call_limits"):
		return "throttles"
	case has("call_limits") && has("object_type"):
		return "throttle_specials"
	case has("strategy_id"):
		return "throttle_applies"
	case has("variable_name"):
		return "variables"
	case has("app_code"):
		return "app_codes"
	case has("api_id") && has("app_id"):
		return "auths"
	case has("app_key"):
		return "apps"
	}
	if r, ok := m["responses"].(map[string]any); ok && r != nil {
		return "responses"
	}
	return ""
}

func collectHuawei(in []input, w *warner) *hwItems {
	h := &hwItems{}
	for _, f := range in {
		root := f.root.(map[string]any)
		path := f.name + ": "
		listed := false
		keys := make([]string, 0, len(root))
		for k := range root {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			l, isList := root[k].([]any)
			if s := h.slot(k); s != nil && isList {
				if k == "apis" {
					for _, o := range objects(l, joinPath(path, k), w) {
						if _, bound := o.m["throttle_apply_id"]; bound {
							h.boundAPIs = append(h.boundAPIs, o)
						} else {
							h.apis = append(h.apis, o)
						}
					}
				} else {
					*s = append(*s, objects(l, joinPath(path, k), w)...)
				}
				listed = true
			}
		}
		if listed {
			for _, k := range keys {
				if _, isList := root[k].([]any); (h.slot(k) == nil || !isList) && k != "total" && k != "size" {
					w.add(joinPath(path, k), "not a list this importer knows, not imported")
				}
			}
			continue
		}
		kind := detailKind(f.base, root)
		if kind == "" {
			w.add(f.name, "cannot tell what this file holds (no list key such as apis, vpc_channels, throttles; no known fields), not imported")
			continue
		}
		o := newObj(root, path, w)
		if kind == "apis" {
			if _, bound := root["throttle_apply_id"]; bound {
				h.boundAPIs = append(h.boundAPIs, o)
				continue
			}
		}
		s := h.slot(kind)
		*s = append(*s, o)
	}
	return h
}

type hwConv struct {
	w *warner
	h *hwItems

	channelIDs map[string]*obj // channel id -> source
	upstreams  map[string]*Map // upstream id -> built
	upOrder    []string
	upComments map[string]string

	appName    map[string]string // app id -> credential name
	consumers  []any
	policies   map[string]*Map // policy id -> built
	polByName  map[string]string
	polOrder   []string
	polComment []string
	specials   map[string][]any

	apiBinding map[string]string   // api id -> policy id
	apiApps    map[string][]string // api id -> usernames of the apps authorised to call it
	routeKeys  map[string]string   // method and paths -> the API that has them
	publishAPI map[string]string   // publish id -> api id
}

func convertHuawei(in []input) (*Result, error) {
	w := &warner{}
	h := collectHuawei(in, w)
	c := &hwConv{w: w, h: h, channelIDs: map[string]*obj{}, upstreams: map[string]*Map{}, upComments: map[string]string{},
		appName: map[string]string{}, policies: map[string]*Map{}, polByName: map[string]string{}, specials: map[string][]any{},
		apiBinding: map[string]string{}, publishAPI: map[string]string{}, routeKeys: map[string]string{}, apiApps: map[string][]string{}}
	out := &Map{}

	envs, selected := c.environments()
	if selected != "" {
		out.SetC("gateway", (&Map{}).SetC("environment", selected, "the environment whose variables replace #name# (Huawei's default environment)"), "")
	}
	if len(envs) > 0 {
		out.SetC("environments", envs, "Huawei environments and their variables")
	}
	for _, ch := range h.channels {
		id := ch.str("id")
		if id == "" {
			id = sanitizeID(ch.str("name"))
		}
		if old, dup := c.channelIDs[id]; dup {
			// A list response leaves members out; the detail response of
			// the same channel has them: keep the one with members.
			if _, has := ch.m["members"]; !has {
				if _, oldHas := old.m["members"]; oldHas {
					c.w.add(ch.path, "VPC channel %s is also at %s, which is kept", id, where(old.path))
					continue
				}
			}
			c.w.add(old.path, "VPC channel %s is also at %s, which is kept", id, where(ch.path))
		}
		c.channelIDs[id] = ch
	}
	c.apps()
	c.authorizations()
	c.throttles()
	c.bindings()
	var services []any
	for _, a := range h.apis {
		if s := c.api(a); s != nil {
			services = append(services, s)
		}
	}
	// Channels no API uses are imported too.
	ids := make([]string, 0, len(c.channelIDs))
	for id := range c.channelIDs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c.upstream(id, "http", "")
	}
	var ups []any
	for _, id := range c.upOrder {
		if m := c.upstreams[id]; m != nil {
			ups = append(ups, Commented{Comment: c.upComments[id], Val: m})
		}
	}
	if len(ups) > 0 {
		out.SetC("upstreams", ups, "Huawei VPC channels")
	}
	if len(services) > 0 {
		out.SetC("services", services, "one service per Huawei API")
	} else {
		out.Set("services", []any{})
	}
	var pols []any
	for i, id := range c.polOrder {
		p := c.policies[id]
		if sp := c.specials[id]; len(sp) > 0 {
			p.Set("specials", sp)
		}
		pols = append(pols, Commented{Comment: c.polComment[i], Val: p})
	}
	if len(pols) > 0 {
		out.SetC("throttle_policies", pols, "Huawei request throttling policies")
	}
	if len(c.consumers) > 0 {
		out.SetC("consumers", c.consumers, "Huawei apps: one credential per AppCode (key-auth on "+AppCodeHeader+")")
	}
	if gr := c.gatewayResponses(); gr.Len() > 0 {
		out.SetC("gateway_responses", gr, "Huawei gateway responses (types left at their defaults are not repeated)")
	}
	return &Result{YAML: Marshal(out), Warnings: w.list}, nil
}

// ---- environments ----

func (c *hwConv) environments() ([]any, string) {
	type env struct {
		id, name, remark string
		vars             *Map
		src              string
	}
	var list []*env
	byID := map[string]*env{}
	for _, e := range c.h.envs {
		name := e.str("name")
		srcID := e.str("id")
		id := srcID
		remark := e.str("remark")
		e.ignore("create_time")
		e.done()
		if !validEnvName(name) {
			c.w.add(e.at("name"), "environment name %q is not 3 to 64 letters, digits and '_' starting with a letter; not imported", name)
			continue
		}
		if !validID(id) {
			id = sanitizeID(name)
		}
		en := &env{id: id, name: name, remark: remark, vars: &Map{}, src: e.path}
		list = append(list, en)
		byID[srcID] = en
	}
	for _, v := range c.h.vars {
		envID := v.str("env_id")
		name := v.str("variable_name")
		val := v.str("variable_value")
		v.ignore("id", "group_id")
		v.done()
		en := byID[envID]
		if en == nil && envID == "DEFAULT_ENVIRONMENT_RELEASE_ID" {
			en = &env{id: "DEFAULT_ENVIRONMENT_RELEASE_ID", name: "RELEASE", vars: &Map{}, src: "the default environment"}
			list = append(list, en)
			byID[envID] = en
		}
		switch {
		case en == nil:
			c.w.add(v.at("env_id"), "environment %q is not in the input, variable %q not imported", envID, name)
		case !validVarName(name):
			c.w.add(v.at("variable_name"), "variable name %q is not 3 to 32 letters, digits, '_' and '-' starting with a letter; not imported", name)
		default:
			if old, dup := en.vars.Get(name); dup && old != val {
				c.w.add(v.path, "variable %q of environment %q is defined twice with different values (API groups); the first is kept", name, en.name)
				continue
			}
			en.vars.Set(name, val)
		}
	}
	var out []any
	selected := ""
	for _, en := range list {
		m := (&Map{}).Set("id", en.id).Set("name", en.name).Set("variables", en.vars)
		comment := fmt.Sprintf("huawei environment %s %q (%s)", en.id, en.name, en.src)
		if en.remark != "" {
			comment += "\nremark: " + en.remark
		}
		out = append(out, Commented{Comment: comment, Val: m})
		if en.name == "RELEASE" {
			selected = "RELEASE"
		}
	}
	return out, selected
}

func validEnvName(s string) bool {
	if len(s) < 3 || len(s) > 64 || !isLetter(s[0]) {
		return false
	}
	for _, r := range []byte(s) {
		if !(isLetter(r) || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func validVarName(s string) bool {
	if len(s) < 3 || len(s) > 32 || !isLetter(s[0]) {
		return false
	}
	for _, r := range []byte(s) {
		if !(isLetter(r) || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// ---- VPC channels ----

// upstream builds (once) the upstream of channel id with scheme, and
// returns its id; "" when the channel cannot be imported.
func (c *hwConv) upstream(id, scheme, usedBy string) string {
	upID := id
	if scheme == "https" {
		upID = id + "-https"
	}
	if m, done := c.upstreams[upID]; done {
		if m == nil {
			return ""
		}
		return upID
	}
	ch := c.channelIDs[id]
	if ch == nil {
		return ""
	}
	w := c.w
	if scheme == "https" {
		// The second build of the same channel: silence its warnings,
		// which the plain one gave.
		w = &warner{}
	}
	o := newObj(ch.m, ch.path, w)
	name := o.str("name")
	o.ignore("id", "dict_code", "create_time", "update_time", "status", "member_groups", "microservice_info", "vpc_channel_id")
	if typ, ok := o.integer("type"); ok && typ != 2 {
		w.add(o.at("type"), "VPC channel type %d (microservice) is not supported: channel not imported", typ)
		c.upstreams[upID] = nil
		return ""
	}
	if mg := o.list("member_groups"); len(mg) > 0 {
		w.add(o.at("member_groups"), "backend server groups are not supported: members are imported with their own weights, group weights are ignored")
	}
	port, _ := o.integer("port")
	m := &Map{}
	m.Set("id", upID)
	if name != "" {
		m.Set("name", name)
	}
	if scheme == "https" {
		m.Set("scheme", "https")
	}
	alg, ok := o.integer("balance_strategy")
	if !ok {
		alg, ok = o.integer("lb_algorithm")
	} else {
		o.ignore("lb_algorithm")
	}
	if !ok {
		alg = 1
	}
	switch alg {
	case 1:
		m.Set("type", "roundrobin")
	case 2:
		m.Set("type", "least_conn")
	case 3:
		m.Set("type", "chash").Set("hash_on", "vars").Set("key", "remote_addr")
	case 4:
		m.Set("type", "chash").Set("hash_on", "vars").Set("key", "uri")
	default:
		w.add(o.at("balance_strategy"), "unknown distribution algorithm %d, imported as roundrobin", alg)
		m.Set("type", "roundrobin")
	}
	mt := o.str("member_type")
	var nodes []any
	for _, mem := range objects(o.list("members"), o.at("members"), w) {
		host := mem.str("host")
		mem.ignore("id", "vpc_channel_id", "create_time", "update_time", "status", "member_group_id", "health_status")
		if mt == "ecs" || host == "" {
			mem.ignore("ecs_id", "ecs_name")
		} else {
			mem.ignore("ecs_id", "ecs_name")
		}
		if host == "" {
			w.add(mem.path, "member without host (ECS id %q): not imported", mem.str("ecs_id"))
			continue
		}
		p, ok := mem.integer("port")
		if !ok || p == 0 {
			p = port
		}
		if p <= 0 || p > 65535 {
			w.add(mem.at("port"), "no port (member and channel): member not imported")
			continue
		}
		n := (&Map{}).Set("host", host).Set("port", p)
		if wt, ok := mem.integer("weight"); ok {
			n.Set("weight", wt)
		}
		if mem.boolean("is_backup") {
			n.SetC("priority", -1, "is_backup: used only when no other member is available")
		}
		mem.done()
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		w.add(o.at("members"), "no importable members: channel not imported")
		c.upstreams[upID] = nil
		o.done()
		return ""
	}
	m.Set("nodes", nodes)
	if hc := o.sub("vpc_health_config"); len(hc.m) > 0 {
		if chk := c.healthCheck(hc, port); chk != nil {
			m.Set("checks", (&Map{}).Set("active", chk))
		}
	}
	o.done()
	c.upstreams[upID] = m
	c.upOrder = append(c.upOrder, upID)
	c.upComments[upID] = fmt.Sprintf("huawei vpc_channel %s %q (%s)", id, name, where(ch.path))
	return upID
}

func (c *hwConv) healthCheck(hc *obj, chPort int64) *Map {
	hc.ignore("id", "vpc_channel_id", "create_time", "status")
	m := &Map{}
	proto := strings.ToLower(hc.str("protocol"))
	switch proto {
	case "http", "https", "tcp":
	default:
		hc.w.add(hc.at("protocol"), "unknown health check protocol %q: health check not imported", proto)
		return nil
	}
	m.Set("type", proto)
	if t, ok := hc.num("timeout"); ok && t > 0 {
		m.Set("timeout", t)
	}
	if p, ok := hc.integer("port"); ok && p != 0 && p != chPort {
		m.Set("port", p)
	}
	if proto != "tcp" {
		if p := hc.str("path"); p != "" {
			m.Set("http_path", p)
		}
	} else {
		hc.ignore("path", "http_code")
	}
	if meth := strings.ToUpper(hc.str("method")); meth != "" && meth != "GET" {
		hc.w.add(hc.at("method"), "health checks use GET; method %s not imported", meth)
	}
	if hc.boolean("enable_client_ssl") {
		hc.w.add(hc.at("enable_client_ssl"), "client certificates for health checks are not supported, not imported")
	}
	healthy, unhealthy := &Map{}, &Map{}
	if iv, ok := hc.num("time_interval"); ok && iv > 0 {
		healthy.Set("interval", iv)
		unhealthy.Set("interval", iv)
	}
	if proto != "tcp" {
		if codes, err := parseHTTPCodes(hc.str("http_code")); err != nil {
			hc.w.add(hc.at("http_code"), "%v: not imported", err)
		} else if len(codes) > 0 {
			healthy.Set("http_statuses", codes)
		}
	}
	if n, ok := hc.integer("threshold_normal"); ok && n > 0 {
		healthy.Set("successes", n)
	}
	if n, ok := hc.integer("threshold_abnormal"); ok && n > 0 {
		if proto != "tcp" {
			unhealthy.Set("http_failures", n)
		}
		unhealthy.Set("tcp_failures", n).Set("timeouts", n)
	}
	m.Set("healthy", healthy).Set("unhealthy", unhealthy)
	hc.done()
	return m
}

// parseHTTPCodes reads Huawei's http_code: "200,201,210-299".
func parseHTTPCodes(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 200 || b > 599 || a > b {
			return nil, fmt.Errorf("http_code %q is not codes or ranges within 200..599", s)
		}
		for code := a; code <= b; code++ {
			if !slices.Contains(out, code) {
				out = append(out, code)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

// ---- apps ----

var usernameChars = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

func (c *hwConv) apps() {
	codes := map[string][]string{}
	for _, ac := range c.h.appCodes {
		id := ac.str("app_id")
		code := strings.Join(strings.Fields(ac.str("app_code")), "")
		ac.ignore("id", "create_time")
		ac.done()
		if code != "" {
			codes[id] = append(codes[id], code)
		}
	}
	used := map[string]bool{}
	for _, a := range c.h.apps {
		id := a.str("id")
		name := a.str("name")
		remark := a.str("remark")
		a.ignore("app_key", "app_secret", "bind_num", "creator", "update_time", "register_time", "status", "app_type", "roma_app_type")
		a.done()
		user := usernameChars.ReplaceAllString(name, "_")
		if user == "" || used[user] {
			user = sanitizeID(id)
		}
		if len(codes[id]) == 0 {
			c.w.add(a.path, "app %q has no AppCode in the input (app_codes): not imported as a consumer (AK/SK signing is not supported)", name)
			continue
		}
		used[user] = true
		c.appName[id] = user
		var creds []any
		for i, code := range codes[id] {
			cn := user
			if i > 0 {
				cn = user + "-" + strconv.Itoa(i+1)
			}
			creds = append(creds, (&Map{}).Set("name", cn).Set("plugins", (&Map{}).Set("key-auth", (&Map{}).Set("key", code))))
		}
		comment := fmt.Sprintf("huawei app %s %q (%s)", id, name, where(a.path))
		if remark != "" {
			comment += "\nremark: " + remark
		}
		c.consumers = append(c.consumers, Commented{Comment: comment, Val: (&Map{}).Set("username", user).Set("credentials", creds)})
	}
	for id := range codes {
		if _, ok := c.appName[id]; !ok && !slices.ContainsFunc(c.h.apps, func(a *obj) bool { return a.m["id"] == id }) {
			c.w.add("app_codes", "AppCodes of app %s, which is not in the input (apps): not imported", id)
		}
	}
}

// authorizations reads the apps authorized to call each API (auths).
func (c *hwConv) authorizations() {
	for _, au := range c.h.auths {
		api := au.str("api_id")
		app := au.str("app_id")
		appName := au.str("app_name")
		au.ignore("id", "env_id", "env_name", "group_id", "group_name", "api_type", "api_name", "api_remark",
			"auth_time", "app_creator", "auth_role", "auth_tunnel", "auth_result", "app_type", "app_remark", "visit_params")
		au.done()
		user, ok := c.appName[app]
		if !ok {
			c.w.add(au.path, "app %s (%s) is not imported as a consumer: authorization not imported", app, appName)
			continue
		}
		if !slices.Contains(c.apiApps[api], user) {
			c.apiApps[api] = append(c.apiApps[api], user)
		}
	}
}

// ---- throttling ----

func (c *hwConv) throttles() {
	for _, t := range c.h.throttles {
		id := t.str("id")
		name := t.str("name")
		if !validID(id) {
			id = sanitizeID(name)
		}
		m := (&Map{}).Set("id", id)
		if name != "" {
			m.Set("name", name)
		}
		if r := t.str("remark"); r != "" {
			m.Set("desc", r)
		}
		for _, k := range []string{"api_call_limits", "user_call_limits", "app_call_limits", "ip_call_limits", "time_interval"} {
			if n, ok := t.integer(k); ok && (n != 0 || k == "api_call_limits") {
				m.Set(k, n)
			}
		}
		if u := t.str("time_unit"); u != "" {
			m.Set("time_unit", u)
		}
		typ, ok := t.integer("type")
		if !ok {
			typ = 1
		}
		m.SetC("type", typ, "1: each bound API counts alone; 2: bound APIs share the counters")
		if ac := t.str("enable_adaptive_control"); ac != "" && !strings.EqualFold(ac, "FALSE") {
			c.w.add(t.at("enable_adaptive_control"), "adaptive control is not supported, not imported")
		}
		t.ignore("enable_adaptive_control", "create_time", "bind_num", "is_inclu_special_throttle", "is_included_special_throttle", "update_time")
		t.done()
		c.policies[id] = m
		c.polByName[name] = id
		c.polOrder = append(c.polOrder, id)
		c.specials[id] = nil
		c.polComment = append(c.polComment, fmt.Sprintf("huawei throttle %s %q (%s)", t.m["id"], name, where(t.path)))
	}
	for _, s := range c.h.specials {
		tid := s.str("throttle_id")
		if tid == "" && len(c.polOrder) == 1 {
			tid = c.polOrder[0]
		}
		typ := s.str("object_type")
		oid := s.str("object_id")
		limit, _ := s.integer("call_limits")
		objName := s.str("object_name")
		s.ignore("id", "app_id", "app_name", "apply_time")
		s.done()
		if _, ok := c.policies[tid]; !ok {
			c.w.add(s.path, "throttle policy %q is not in the input: special not imported", tid)
			continue
		}
		switch typ {
		case "APP":
			user, ok := c.appName[oid]
			if !ok {
				c.w.add(s.path, "app %s (%s) is not imported as a consumer: special not imported", oid, objName)
				continue
			}
			oid = user
		case "USER":
			c.w.add(s.path, "a special for tenant %s (%s): tenants are not consumers of this gateway, not imported", oid, objName)
			continue
		default:
			c.w.add(s.at("object_type"), "unknown object type %q: special not imported", typ)
			continue
		}
		c.specials[tid] = append(c.specials[tid], (&Map{}).Set("object_type", typ).Set("object_id", oid).Set("call_limits", limit))
	}
}

func (c *hwConv) bindings() {
	for _, a := range c.h.apis {
		if p, ok := a.m["publish_id"].(string); ok && p != "" {
			if id, ok := a.m["id"].(string); ok {
				c.publishAPI[p] = id
			}
		}
	}
	bind := func(path, api, pol string) {
		if old, dup := c.apiBinding[api]; dup && old != pol {
			c.w.add(path, "API %s is bound to throttle policies %s and %s (in different environments?); %s is kept", api, old, pol, old)
			return
		}
		c.apiBinding[api] = pol
	}
	for _, b := range c.h.applies {
		pol := b.str("strategy_id")
		if pol == "" {
			pol = b.str("throttle_id")
		} else {
			b.ignore("throttle_id")
		}
		api := b.str("api_id")
		pub := b.str("publish_id")
		b.ignore("id", "scope", "apply_time", "env_id", "env_name")
		b.done()
		if api == "" {
			api = c.publishAPI[pub]
		}
		switch {
		case c.policies[pol] == nil:
			c.w.add(b.path, "throttle policy %q is not in the input: binding not imported", pol)
		case api == "":
			c.w.add(b.path, "publication %q names no API of the input (an API's publish_id): binding not imported", pub)
		default:
			bind(b.path, api, pol)
		}
	}
	for _, b := range c.h.boundAPIs {
		api := b.str("id")
		pol := c.polByName[b.str("throttle_name")]
		if tid := b.str("throttle_id"); tid != "" {
			pol = tid
		}
		if c.policies[pol] == nil {
			c.w.add(b.path, "throttle policy %q is not in the input: binding not imported", b.m["throttle_name"])
			continue
		}
		bind(b.path, api, pol)
	}
}

// ---- APIs ----

var apiIgnored = []string{"id", "name", "group_id", "group_name", "group_version", "status", "arrange_necessary",
	"register_time", "update_time", "version", "version_id", "tags", "tag", "result_normal_sample", "result_failure_sample",
	"body_remark", "publish_id", "publish_time", "run_env_id", "run_env_name", "api_group_info", "remark", "req_protocol",
	"type", "content_type", "domain_name", "roma_app_id", "sl_domain", "sl_domains", "response_id", "backend_type",
	"req_method", "req_uri", "match_mode", "is_send_fg_body_base64", "tag_list"}

func (c *hwConv) api(a *obj) any {
	id := a.str("id")
	name := a.str("name")
	if !validID(id) {
		id = sanitizeID(name)
	}
	comment := fmt.Sprintf("huawei api %s %q (%s)", a.m["id"], name, where(a.path))
	if r, _ := a.m["remark"].(string); r != "" {
		comment += "\nremark: " + r
	}
	if p, _ := a.m["req_protocol"].(string); p == "HTTPS" {
		comment += "\nreq_protocol HTTPS: this gateway serves the API on every listener (serve it on tls_listen only)"
	}
	bt := strings.ToUpper(a.str("backend_type"))
	if bt == "" {
		bt = "HTTP"
	}
	if bt != "HTTP" && bt != "MOCK" {
		c.w.add(a.at("backend_type"), "backend type %s is not supported: API %q not imported", bt, name)
		return nil
	}
	auth := strings.ToUpper(a.str("auth_type"))
	if auth != "" && auth != "NONE" && auth != "APP" {
		c.w.add(a.at("auth_type"), "auth_type %s is not supported: API %q not imported (it would be open)", auth, name)
		return nil
	}
	svc := (&Map{}).Set("id", id)
	if name != "" {
		svc.Set("name", name)
	}
	route := &Map{}
	if name != "" {
		route.Set("name", name)
	}
	routePlugins := &Map{}
	svcPlugins := &Map{}

	// Frontend.
	uri := a.str("req_uri")
	if !strings.HasPrefix(uri, "/") {
		c.w.add(a.at("req_uri"), "req_uri %q does not start with '/': API not imported", uri)
		return nil
	}
	mode := strings.ToUpper(a.str("match_mode"))
	paths := []string{uri}
	if mode == "SWA" {
		prefix := strings.TrimSuffix(uri, "/")
		if prefix == "" {
			paths = []string{"/*"}
		} else {
			paths = []string{prefix, prefix + "/*"}
		}
	}
	route.SetC("paths", paths, "match_mode "+orDefault(mode, "NORMAL"))
	meth := strings.ToUpper(a.str("req_method"))
	if meth != "" && meth != "ANY" {
		route.Set("methods", []string{meth})
	}
	rk := meth + " " + strings.Join(paths, " ")
	if first, dup := c.routeKeys[rk]; dup {
		c.w.add(a.at("req_uri"), "%s %s is also the path of the API at %s (another API group? groups' domains are not imported): API %q not imported", orDefault(meth, "ANY"), uri, first, name)
		return nil
	}
	c.routeKeys[rk] = where(a.path)
	// Authentication.
	if auth == "APP" {
		opt := a.sub("auth_opt")
		act := strings.ToUpper(opt.str("app_code_auth_type"))
		opt.ignore("auth_code_auth_type")
		if act != "HEADER" {
			c.w.add(a.at("auth_type"), "APP authentication by signature (AK/SK) is not supported: imported as AppCode authentication (key-auth on %s)", AppCodeHeader)
		}
		opt.done()
		svcPlugins.SetC("key-auth", (&Map{}).Set("header", AppCodeHeader), "auth_type APP: the app's AppCode in "+AppCodeHeader)
		users := c.apiApps[fmt.Sprint(a.m["id"])]
		switch {
		case len(c.h.auths) == 0:
			c.w.add(a.at("auth_type"), "no app authorizations in the input (auths): every imported app may call API %q", name)
		case len(users) == 0:
			c.w.add(a.at("auth_type"), "no imported app is authorized to call API %q (auths): API not imported", name)
			return nil
		default:
			svcPlugins.SetC("consumer-restriction", (&Map{}).Set("type", "consumer_name").Set("whitelist", users), "the apps authorized to call the API (auths)")
		}
	} else {
		a.ignore("auth_opt")
	}
	if a.boolean("cors") {
		svcPlugins.SetC("cors", &Map{}, "cors: true")
	}
	// Parameters.
	reqParams, names := c.reqParams(a)
	if len(reqParams) > 0 {
		route.Set("req_params", reqParams)
	}
	if bps := c.backendParams(a, names); len(bps) > 0 {
		route.Set("backend_params", bps)
	}
	// Backend.
	if bt == "MOCK" {
		mi := a.sub("mock_info")
		mock := &Map{}
		if sc, ok := mi.integer("status_code"); ok && sc != 0 {
			mock.Set("response_status", sc)
		}
		mock.Set("response_example", mi.str("result_content"))
		if hs := mi.list("header"); len(hs) > 0 {
			mock.Set("response_headers", c.kvHeaders(hs, mi.at("header")))
		}
		if hs := mi.list("headers"); len(hs) > 0 {
			mock.Set("response_headers", c.kvHeaders(hs, mi.at("headers")))
		}
		mi.ignore("id", "remark", "version", "register_time", "update_time", "status")
		mi.done()
		routePlugins.SetC("mocking", mock, "backend_type MOCK")
	} else {
		ba := a.sub("backend_api")
		if len(ba.m) == 0 {
			c.w.add(a.path, "backend_type HTTP without backend_api (a list response leaves it out; use the API's detail response): API %q not imported", name)
			return nil
		}
		if !c.backend(ba, svc, route, routePlugins, uri, mode) {
			return nil
		}
	}
	if pol, ok := c.apiBinding[fmt.Sprint(a.m["id"])]; ok {
		route.SetC("throttle_policy", pol, "bound throttle policy")
	}
	a.ignore(apiIgnored...)
	a.done()
	if routePlugins.Len() > 0 {
		route.Set("plugins", routePlugins)
	}
	if svcPlugins.Len() > 0 {
		svc.Set("plugins", svcPlugins)
	}
	svc.Set("routes", []any{route})
	return Commented{Comment: comment, Val: svc}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (c *hwConv) kvHeaders(l []any, path string) *Map {
	m := &Map{}
	for _, h := range objects(l, path, c.w) {
		k := h.str("key")
		if k == "" {
			k = h.str("name")
		} else {
			h.ignore("name")
		}
		m.Set(k, h.str("value"))
		h.done()
	}
	return m
}

// backend fills the service's upstream and the route's timeout and
// proxy-rewrite from backend_api; false: the API cannot be imported.
func (c *hwConv) backend(ba *obj, svc, route, plugins *Map, frontURI, mode string) bool {
	ba.ignore("id", "status", "register_time", "update_time", "remark", "vpc_channel_status", "url_domain")
	scheme := strings.ToLower(ba.str("req_protocol"))
	switch scheme {
	case "", "http":
		scheme = "http"
	case "https":
	default:
		c.w.add(ba.at("req_protocol"), "backend protocol %s is not supported: API not imported", scheme)
		return false
	}
	retry := ba.str("retry_count")
	retries := -1
	if retry != "" {
		if n, err := strconv.Atoi(retry); err == nil {
			retries = n
		}
	}
	vs, _ := ba.num("vpc_channel_status")
	vi := ba.sub("vpc_channel_info")
	if vs == 1 || vi.has("vpc_channel_id") {
		chID := vi.str("vpc_channel_id")
		vi.ignore("cascade_flag")
		if p, ok := vi.integer("vpc_channel_port"); ok && p != 0 {
			c.w.add(vi.at("vpc_channel_port"), "a port override of the channel is not supported: the members' ports are used")
		}
		if h := vi.str("vpc_channel_proxy_host"); h != "" {
			plugins.Set("proxy-rewrite", (&Map{}).Set("host", h))
		}
		vi.done()
		up := c.upstream(chID, scheme, "")
		if up == "" {
			c.w.add(vi.at("vpc_channel_id"), "VPC channel %q is not in the input or not importable: API not imported", chID)
			return false
		}
		svc.Set("upstream_id", up)
		if retries >= 0 {
			c.w.add(ba.at("retry_count"), "retry_count on a VPC channel is the upstream's (shared): not imported")
		}
	} else {
		vi.done()
		u, _ := ba.m["url_domain"].(string)
		u = strings.TrimSpace(u)
		host, port, err := splitHostPort(u, scheme)
		if err != nil {
			c.w.add(ba.at("url_domain"), "%v: API not imported", err)
			return false
		}
		up := (&Map{})
		if scheme == "https" {
			up.Set("scheme", "https")
		}
		up.Set("nodes", []any{(&Map{}).Set("host", host).Set("port", port)})
		if retries >= 0 {
			up.Set("retries", retries)
		}
		svc.SetC("upstream", up, "backend_api.url_domain "+u)
	}
	if ba.boolean("enable_client_ssl") {
		c.w.add(ba.at("enable_client_ssl"), "client certificates to the backend (enable_client_ssl) are not imported: set the upstream's tls.client_cert and tls.client_key")
	}
	if t, ok := ba.num("timeout"); ok && t > 0 {
		route.SetC("timeout", (&Map{}).Set("send", secs(t)).Set("read", secs(t)), fmt.Sprintf("backend_api.timeout %v ms", t))
	}
	if ba.has("authorizer_id") {
		c.w.add(ba.at("authorizer_id"), "backend custom authorizers are not supported, not imported")
	}
	backURI := ba.str("req_uri")
	if backURI != "" && backURI != frontURI {
		pr, _ := plugins.Get("proxy-rewrite")
		prm, _ := pr.(*Map)
		if prm == nil {
			prm = &Map{}
		}
		if mode == "SWA" {
			if strings.ContainsAny(frontURI, "{}") {
				c.w.add(ba.at("req_uri"), "a prefix-matched API with path parameters and another backend path: the backend path is not rewritten")
			} else {
				prm.Set("regex_uri", []string{"^" + regexp.QuoteMeta(strings.TrimSuffix(frontURI, "/")) + "(.*)$", strings.TrimSuffix(backURI, "/") + "$1"})
			}
		} else {
			prm.Set("uri", backURI)
		}
		if prm.Len() > 0 {
			plugins.SetC("proxy-rewrite", prm, "backend_api.req_uri "+backURI)
		}
	}
	if m := strings.ToUpper(ba.str("req_method")); m != "" && m != "ANY" {
		if fm, _ := route.Get("methods"); fm == nil || fm.([]string)[0] != m {
			pr, _ := plugins.Get("proxy-rewrite")
			prm, _ := pr.(*Map)
			if prm == nil {
				prm = &Map{}
				plugins.Set("proxy-rewrite", prm)
			}
			if m == "HEAD" {
				c.w.add(ba.at("req_method"), "a backend method HEAD cannot be rewritten to: not imported")
			} else {
				prm.Set("method", m)
			}
		}
	}
	ba.done()
	return true
}

func splitHostPort(u, scheme string) (string, int64, error) {
	if u == "" {
		return "", 0, fmt.Errorf("no url_domain")
	}
	if strings.Contains(u, "://") {
		_, u, _ = strings.Cut(u, "://")
	}
	u, _, _ = strings.Cut(u, "/")
	host, p, err := net.SplitHostPort(u)
	if err != nil {
		host = strings.Trim(u, "[]")
		if scheme == "https" {
			return host, 443, nil
		}
		return host, 80, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		if strings.HasPrefix(p, "#") {
			return "", 0, fmt.Errorf("url_domain %q: a port from an environment variable is not supported", u)
		}
		return "", 0, fmt.Errorf("url_domain %q: bad port", u)
	}
	return host, int64(port), nil
}

func (c *hwConv) reqParams(a *obj) ([]any, map[string]bool) {
	names := map[string]bool{}
	var out []any
	for _, p := range objects(a.list("req_params"), a.at("req_params"), c.w) {
		m := &Map{}
		name := p.str("name")
		m.Set("name", name)
		for _, k := range []string{"type", "location"} {
			m.Set(k, p.str(k))
		}
		for _, k := range []string{"required", "valid_enable"} {
			if n, ok := p.integer(k); ok && n != 0 {
				m.Set(k, n)
			}
		}
		if e := p.str("enumerations"); e != "" {
			m.Set("enumerations", e)
		}
		for _, k := range []string{"min_num", "max_num", "min_size", "max_size"} {
			// The API returns 0 for a bound that is not set.
			if n, ok := p.integer(k); ok && n != 0 {
				m.Set(k, n)
			}
		}
		for _, k := range []string{"sample_value", "remark"} {
			if s := p.str(k); s != "" {
				m.Set(k, s)
			}
		}
		if pt, ok := p.integer("pass_through"); ok && pt == 2 {
			m.Set("pass_through", 2) // removed before forwarding
		}
		if v := p.str("default_value"); v != "" {
			m.Set("default_value", v)
		}
		if v := p.str("regular"); v != "" {
			if ve, _ := p.integer("valid_enable"); ve == 1 {
				m.Set("regular", v)
			} else {
				c.w.add(p.at("regular"), "checked only with valid_enable 1 (as in APIG): not imported")
			}
		}
		if p.has("json_schema") {
			c.w.add(p.at("json_schema"), "not supported yet, not imported")
			p.ignore("json_schema")
		}
		p.ignore("id", "req_param_id", "orchestrations")
		p.done()
		names[name] = true
		out = append(out, m)
	}
	return out, names
}

func (c *hwConv) backendParams(a *obj, reqNames map[string]bool) []any {
	var out []any
	for _, p := range objects(a.list("backend_params"), a.at("backend_params"), c.w) {
		name := p.str("name")
		loc := strings.ToUpper(p.str("location"))
		origin := strings.ToUpper(p.str("origin"))
		val := p.str("value")
		remark := p.str("remark")
		p.ignore("id", "req_param_id")
		p.done()
		switch {
		case loc == "PATH":
			c.w.add(p.at("location"), "backend parameters in the PATH are not supported yet (use proxy-rewrite's uri with {param}): %q not imported", name)
			continue
		case origin == "SYSTEM" && !slices.Contains(config.SystemParams, val):
			c.w.add(p.at("value"), "system parameter %q is not supported: %q not imported", val, name)
			continue
		case origin == "REQUEST" && !reqNames[val]:
			c.w.add(p.at("value"), "request parameter %q is not among the API's req_params: %q not imported", val, name)
			continue
		}
		m := (&Map{}).Set("name", name).Set("location", loc).Set("origin", origin).Set("value", val)
		if remark != "" {
			m.Set("remark", remark)
		}
		out = append(out, m)
	}
	return out
}

// ---- gateway responses ----

func (c *hwConv) gatewayResponses() *Map {
	// DEFAULT_4XX and DEFAULT_5XX are Huawei's catch-alls, which the
	// gateway applies to every 4xx/5xx without its own entry.
	known := map[string]bool{config.Default4XX: true, config.Default5XX: true}
	for t := config.ResponseType(1); t < config.NumResponseTypes; t++ {
		if t.Overridable() {
			known[t.String()] = true
		}
	}
	out := &Map{}
	from := map[string]string{}
	for _, g := range c.h.responses {
		gname := g.str("name")
		g.ignore("id", "create_time", "update_time", "default", "name")
		rs := g.sub("responses")
		types := make([]string, 0, len(rs.m))
		for k := range rs.m {
			types = append(types, k)
		}
		sort.Strings(types)
		for _, typ := range types {
			r := newObj(asMap(rs.raw(typ)), rs.at(typ), c.w)
			if r.boolean("default") {
				r.ignore("body", "status", "headers")
				continue
			}
			if !known[typ] {
				c.w.add(r.path, "not imported: type %s not supported by this build", typ)
				continue
			}
			m := &Map{}
			if st, ok := r.integer("status"); ok && st != 0 {
				m.Set("status", st)
			}
			if b := r.str("body"); b != "" {
				m.Set("body", b)
			}
			if hs := r.list("headers"); len(hs) > 0 {
				m.Set("headers", c.kvHeaders(hs, r.at("headers")))
			}
			r.done()
			if first, dup := from[typ]; dup {
				c.w.add(r.path, "%s is also customised by %s; gateway responses are global here, the first is kept", typ, first)
				continue
			}
			from[typ] = r.path
			out.SetC(typ, m, fmt.Sprintf("huawei gateway response %q %s (%s)", gname, typ, where(r.path)))
		}
		rs.done()
		g.done()
	}
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}
