package router

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// svc builds a service; strip is set explicitly since its file default
// (true) does not apply to literals.
func svc(id string, hosts []string, prefix string, strip bool, routes ...config.Route) config.Service {
	return config.Service{ID: id, Hosts: hosts, PathPrefix: prefix, StripPathPrefix: strip, Routes: routes}
}

// rt builds a route with an ID and paths.
func rt(id string, paths ...string) config.Route {
	return config.Route{ID: id, Paths: paths}
}

// methods returns r with methods.
func methods(r config.Route, ms ...string) config.Route { r.Methods = ms; return r }

// prio returns r with a priority.
func prio(r config.Route, p int) config.Route { r.Priority = p; return r }

// withVars returns r with vars.
func withVars(r config.Route, vars ...config.Var) config.Route { r.Vars = vars; return r }

// cv builds a condition.
func cv(name, op, value string, values ...string) config.Var {
	ref, _ := config.ParseVar(name) // as validation does; an unknown name stays unparsed
	return config.Var{Name: name, Op: op, Value: value, Values: values, Ref: ref}
}

// not negates a condition.
func not(c config.Var) config.Var { c.Negate = true; return c }

func compile(t testing.TB, services ...config.Service) *Router {
	t.Helper()
	r, err := Compile(&config.Config{Services: services})
	require.NoError(t, err)
	return r
}

// vs is a VarSource over a fixed list, searched without allocating.
type vs []kv

type kv struct {
	kind  VarKind
	name  []byte
	value []byte
}

func (s vs) Var(kind VarKind, name []byte) []byte {
	for i := range s {
		if s[i].kind == kind && bytes.Equal(s[i].name, name) {
			return s[i].value
		}
	}
	return nil
}

func v(kind VarKind, name, value string) kv {
	return kv{kind: kind, name: []byte(name), value: []byte(value)}
}

// req builds a request.
func req(method, host, path string, vars VarSource) *Request {
	return &Request{Method: []byte(method), Host: []byte(host), Path: []byte(path), Vars: vars}
}

// do matches one request with a fresh Match.
func do(r *Router, method, host, path string, vars VarSource) *Match {
	m := &Match{}
	r.Match(req(method, host, path, vars), m)
	return m
}

// routeID returns the matched route's ID or the status as a string, which
// makes table expectations short: "a", "404", "405".
func routeID(m *Match) string {
	switch m.Status {
	case 0:
		return m.Route.ID
	case 400:
		return "400"
	case 404:
		return "404"
	case 405:
		return "405"
	}
	return "?"
}
