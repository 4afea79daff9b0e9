package router

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gateway/config"
)

// This file checks Match against a brute-force reading of routing.md on
// random configs and requests: every path of every route is tried against
// the request, and the candidates are sorted by the precedence rules
// instead of found by a tree walk.

type refCandidate struct {
	route  *Route
	e      int // path index
	plen   int
	class  uint8
	k      int     // prefix: where '*' starts in the path
	shape  []uint8 // kinds of the segments before k (or all): 0 static, 1 parameter
	names  []string
	values []string
	order  int
}

// refMatchPattern matches the service-relative path rel against the route
// path pat; it returns the parameter values, where '*' starts in rel and
// the shape.
func refMatchPattern(pat, rel string) (ok bool, names, values []string, star int, shape []uint8) {
	wild := strings.HasSuffix(pat, "*")
	body := strings.TrimSuffix(pat, "*")
	// Split body into '/'-separated pieces; the last one may be partial
	// when wild ("/files*").
	pp := strings.Split(body, "/")[1:]
	pos := 0
	for i, seg := range pp {
		if pos >= len(rel) || rel[pos] != '/' {
			return false, nil, nil, 0, nil
		}
		pos++
		last := i == len(pp)-1
		if name, isParam, _ := config.PathParam(seg); isParam {
			end := strings.IndexByte(rel[pos:], '/')
			if end < 0 {
				end = len(rel) - pos
			}
			if end == 0 {
				return false, nil, nil, 0, nil
			}
			names = append(names, name)
			values = append(values, rel[pos:pos+end])
			shape = append(shape, 1)
			pos += end
			continue
		}
		if !strings.HasPrefix(rel[pos:], seg) {
			return false, nil, nil, 0, nil
		}
		pos += len(seg)
		if !last || !wild {
			// A whole segment must end here.
			if pos < len(rel) && rel[pos] != '/' {
				return false, nil, nil, 0, nil
			}
		}
		shape = append(shape, 0)
	}
	if !wild && pos != len(rel) {
		return false, nil, nil, 0, nil
	}
	return true, names, values, pos, shape
}

// refMatch is the reference: a Match result as routeID, params and Allow.
func refMatch(r *Router, cfg *config.Config, method, host, path string, args map[string]string) (string, []Param, string) {
	// The path under the config's path_policy (TestPathModes and
	// FuzzNormalizePath check normalisation itself).
	np, ok := normalizePathMode(nil, []byte(path), ParsePathMode(cfg.Gateway.PathPolicy), cfg.Gateway.RejectPathParams)
	if !ok {
		return "400", nil, ""
	}
	p := string(np)
	h := string(normalizeHost(nil, []byte(host)))

	// Tiers: exact, wildcards longest suffix first, no hosts.
	var tiers [][]int // service indices
	var exact []int
	wild := map[string][]int{}
	var none []int
	for si, s := range cfg.Services {
		if len(s.Hosts) == 0 {
			none = append(none, si)
		}
		for _, name := range s.Hosts {
			key, w, _ := hostKey(name)
			switch {
			case !w && key == h:
				exact = append(exact, si)
			case w && strings.HasSuffix(h, key) && len(h) > len(key):
				wild[key] = append(wild[key], si)
			}
		}
	}
	tiers = append(tiers, exact)
	suffixes := make([]string, 0, len(wild))
	for k := range wild {
		suffixes = append(suffixes, k)
	}
	slices.SortFunc(suffixes, func(a, b string) int { return len(b) - len(a) })
	for _, k := range suffixes {
		tiers = append(tiers, wild[k])
	}
	tiers = append(tiers, none)

	mbit := requestMethod([]byte(method))
	candidates, varsFailed := false, false
	var allow methodSet
	for _, tier := range tiers {
		var cands []refCandidate
		for _, si := range tier {
			s := &cfg.Services[si]
			prefix, _ := normalizePrefix(s.PathPrefix)
			var rel string
			switch {
			case prefix == "":
				rel = p
			case p == prefix:
				rel = "/"
			case strings.HasPrefix(p, prefix+"/"):
				rel = p[len(prefix):]
			default:
				continue
			}
			for ri := range s.Routes {
				rt := findRoute(r, si, ri)
				for pi, rp := range s.Routes[ri].Paths {
					ok, names, values, star, shape := refMatchPattern(rp, rel)
					if !ok {
						continue
					}
					// The prefix's segments are static.
					shape = append(make([]uint8, strings.Count(prefix, "/")), shape...)
					c := refCandidate{route: rt, e: pi, plen: len(prefix), names: names, values: values, order: rt.Seq*100 + pi, shape: shape}
					switch {
					case strings.HasSuffix(rp, "*"):
						c.class, c.k = classPrefix, len(prefix)+star
					case len(names) > 0:
						c.class = classParam
					}
					cands = append(cands, c)
				}
			}
		}
		slices.SortStableFunc(cands, func(a, b refCandidate) int {
			if c := cmp.Compare(a.class, b.class); c != 0 {
				return c
			}
			if c := cmp.Compare(b.k, a.k); c != 0 {
				return c
			}
			// Shapes of the same length: a request for a path_prefix
			// itself (rel "/") has one segment more, all static.
			if len(a.shape) == len(b.shape) {
				if c := slices.Compare(a.shape, b.shape); c != 0 {
					return c
				}
			}
			if c := cmp.Compare(b.plen, a.plen); c != 0 {
				return c
			}
			if c := cmp.Compare(b.route.Config.Priority, a.route.Config.Priority); c != 0 {
				return c
			}
			return cmp.Compare(a.order, b.order)
		})
		for _, c := range cands {
			candidates = true
			ms, _ := compileMethods(c.route.Methods)
			varsOK := true
			for _, v := range c.route.Config.Vars {
				if (args[strings.TrimPrefix(v.Name, "arg_")] == v.Value) == v.Negate {
					varsOK = false
				}
			}
			switch {
			case !varsOK:
				varsFailed = true
			case !ms.accepts(mbit):
				allow |= ms
			default:
				var params []Param
				for i := range c.names {
					params = append(params, Param{c.names[i], []byte(c.values[i])})
				}
				return c.route.ID, params, ""
			}
		}
	}
	switch {
	case !candidates, varsFailed:
		return "404", nil, ""
	}
	return "405", nil, string(allowHeaders[allow])
}

func findRoute(r *Router, si, ri int) *Route {
	for _, rt := range r.routes {
		if rt.ServiceSeq == si && rt.Config == &rt.Service.Routes[ri] {
			return rt
		}
	}
	panic("no route")
}

// argVars serves arg_ variables from a map.
type argVars map[string]string

func (a argVars) Var(kind VarKind, name []byte) []byte {
	if v, ok := a[string(name)]; ok && kind == VarArg {
		return []byte(v)
	}
	return nil
}

func randomConfig(rnd *rand.Rand) *config.Config {
	hostSets := [][]string{nil, nil, {"a.com"}, {"b.a.com"}, {"*.a.com"}, {"*.com"}, {"a.com", "*.a.com"}}
	prefixes := []string{"/", "/", "/a", "/a/", "/a/b", "/b", "/ab"}
	segs := []string{"a", "b", "ab", "{p}", ":q", "a", "b"}
	argX := config.VarRef{Kind: config.VarArg, Arg: "x"} // "arg_x", as validation parses it
	cfg := &config.Config{}
	for si := range 1 + rnd.IntN(4) {
		s := config.Service{
			ID:              fmt.Sprintf("s%d", si),
			Hosts:           hostSets[rnd.IntN(len(hostSets))],
			PathPrefix:      prefixes[rnd.IntN(len(prefixes))],
			StripPathPrefix: rnd.IntN(2) == 0,
		}
		for ri := range 1 + rnd.IntN(4) {
			rc := config.Route{ID: fmt.Sprintf("s%d.%d", si, ri), Priority: rnd.IntN(3) - 1}
			for range 1 + rnd.IntN(2) {
				var b strings.Builder
				n := rnd.IntN(4)
				used := map[string]bool{}
				for range n {
					seg := segs[rnd.IntN(len(segs))]
					if _, isParam, _ := config.PathParam(seg); isParam {
						name := fmt.Sprintf("p%d", len(used))
						used[name] = true
						seg = strings.Replace(strings.Replace(seg, "p", name, 1), "q", name, 1)
					}
					b.WriteString("/" + seg)
				}
				switch rnd.IntN(6) {
				case 0:
					b.WriteString("/*")
				case 1:
					if n > 0 && !strings.HasSuffix(b.String(), "}") && !strings.Contains(b.String()[strings.LastIndexByte(b.String(), '/'):], ":") {
						b.WriteString("*")
					}
				case 2:
					b.WriteString("/")
				}
				if b.Len() == 0 {
					b.WriteString("/")
				}
				rc.Paths = append(rc.Paths, b.String())
			}
			switch rnd.IntN(4) {
			case 0:
				rc.Methods = []string{"GET"}
			case 1:
				rc.Methods = []string{"POST", "DELETE"}
			}
			switch rnd.IntN(5) {
			case 0:
				rc.Vars = []config.Var{{Name: "arg_x", Op: "==", Value: "1", Ref: argX}}
			case 1:
				rc.Vars = []config.Var{{Negate: true, Name: "arg_x", Op: "==", Value: "1", Ref: argX}}
			}
			s.Routes = append(s.Routes, rc)
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg
}

func randomRequest(rnd *rand.Rand) (method, host, path string, args argVars) {
	methods := []string{"GET", "GET", "POST", "PUT"}
	hosts := []string{"a.com", "b.a.com", "c.b.a.com", "x.com", "", "A.com:80"}
	segs := []string{"a", "b", "ab", "c", "", "abc", "a", "b"}
	var b strings.Builder
	for range rnd.IntN(5) {
		b.WriteString("/" + segs[rnd.IntN(len(segs))])
	}
	if b.Len() == 0 || rnd.IntN(4) == 0 {
		b.WriteString("/")
	}
	args = argVars{}
	if rnd.IntN(2) == 0 {
		args["x"] = "1"
	}
	return methods[rnd.IntN(len(methods))], hosts[rnd.IntN(len(hosts))], b.String(), args
}

func TestMatchAgainstReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	configs, requests := 3000, 50
	if testing.Short() {
		configs = 300
	}
	m := &Match{}
	for range configs {
		cfg := randomConfig(rnd)
		r, err := Compile(cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, dumpConfig(cfg))
		}
		for range requests {
			method, host, path, args := randomRequest(rnd)
			wantID, wantParams, wantAllow := refMatch(r, cfg, method, host, path, args)
			r.Match(&Request{Method: []byte(method), Host: []byte(host), Path: []byte(path), Vars: args}, m)
			got := routeID(m)
			if got != wantID || string(m.Allow) != wantAllow || !paramsEqual(m.Params, wantParams) {
				t.Fatalf("%s %s%s %v: got %s %q %s, want %s %q %s\n%s", method, host, path, args,
					got, m.Allow, fmtParams(m.Params), wantID, wantAllow, fmtParams(wantParams), dumpConfig(cfg))
			}
		}
	}
}

func paramsEqual(a, b []Param) bool {
	return slices.EqualFunc(a, b, func(x, y Param) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) })
}

func fmtParams(ps []Param) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s=%s ", p.Name, p.Value)
	}
	return b.String()
}

func dumpConfig(cfg *config.Config) string {
	var b strings.Builder
	for _, s := range cfg.Services {
		fmt.Fprintf(&b, "service %s hosts=%v prefix=%q strip=%v\n", s.ID, s.Hosts, s.PathPrefix, s.StripPathPrefix)
		for _, r := range s.Routes {
			fmt.Fprintf(&b, "  route %s paths=%q methods=%v prio=%d vars=%v\n", r.ID, r.Paths, r.Methods, r.Priority, r.Vars)
		}
	}
	return b.String()
}
