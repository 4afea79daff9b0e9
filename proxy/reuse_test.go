package proxy

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/internal/testconf"
	"gateway/plugin"
)

// TestReloadCompilesOnlyChangedServices (issue 20): a reload of a
// 10,000-route config compiles the plugin chains of what changed only: the
// changed route, or every route of a service whose own settings changed,
// or everything when the config outside the services changed.
func TestReloadCompilesOnlyChangedServices(t *testing.T) {
	b := startBackend(t, "b", nil)
	tg := startGateway(t, testconf.ManyServices(b.port(), 100, 100, -1, -1, "k1"))
	built := func() int { return tg.g.snap.Load().built }
	require.Equal(t, 10000, built(), "the first compile builds every route")
	get := func(uri, key string) int {
		return tg.do(t, "GET", uri, map[string]string{"apikey": key}, "").StatusCode()
	}
	require.Equal(t, 200, get("/s7/r3/x", "k1"))

	require.NoError(t, tg.g.Apply(mustParse(t, testconf.ManyServices(b.port(), 100, 100, 42, -1, "k1"))))
	require.Equal(t, 1, built(), "one route changed: it only")
	require.Equal(t, 200, get("/s42/changed/x", "k1"))
	require.Equal(t, 404, get("/s42/r0/x", "k1"))
	require.Equal(t, 200, get("/s42/r1/x", "k1"), "a kept chain serves as before")
	require.Equal(t, 200, get("/s7/r3/x", "k1"))
	require.Equal(t, 401, get("/s7/r3/x", "wrong"))
	require.Equal(t, 401, get("/s42/changed/x", "wrong"))

	require.NoError(t, tg.g.Apply(mustParse(t, testconf.ManyServices(b.port(), 100, 100, 42, -1, "k1"))))
	require.Equal(t, 0, built(), "nothing changed")

	require.NoError(t, tg.g.Apply(mustParse(t, testconf.ManyServices(b.port(), 100, 100, 42, 42, "k1"))))
	require.Equal(t, 100, built(), "one service's own settings changed: its routes")
	require.Equal(t, 200, get("/s42/r1/x", "k1"))

	// A change outside the services (the consumer's key) may concern any
	// route: everything is compiled again, and the new key works everywhere.
	require.NoError(t, tg.g.Apply(mustParse(t, testconf.ManyServices(b.port(), 100, 100, 42, 42, "k2"))))
	require.Equal(t, 10000, built())
	require.Equal(t, 401, get("/s7/r3/x", "k1"))
	require.Equal(t, 200, get("/s7/r3/x", "k2"))
}

// A kept throttle step keeps its counters in the store: they survive
// reloads that keep it, and a route compiled again later counts on the
// same ones.
func TestReusedThrottleKeepsCounters(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(otherPath string, methods bool) string {
		s := `
throttle_policies:
  - {id: p, api_call_limits: 3, time_interval: 1, time_unit: HOUR}
services:
  - id: a
    upstream: ` + upstreamYAML(b) + `
    throttle_policy: p
    routes: [{id: ra, paths: ["/a"]`
		if methods {
			s += `, methods: [GET]`
		}
		return s + `}]
  - id: o
    upstream: ` + upstreamYAML(b) + `
    routes: [{id: ro, paths: ["` + otherPath + `"]}]
`
	}
	tg := startGateway(t, conf("/o1", false))
	require.Equal(t, 200, tg.get(t, "/a").StatusCode())
	require.Equal(t, 200, tg.get(t, "/a").StatusCode())
	// Two reloads that change only the other service: a's chain is kept,
	// and each sweep of the counters finds them asked for.
	for _, p := range []string{"/o2", "/o3"} {
		require.NoError(t, tg.g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+conf(p, false))))
		require.Equal(t, 1, tg.g.snap.Load().built)
	}
	require.Equal(t, 200, tg.get(t, "/a").StatusCode())
	require.Equal(t, 429, tg.get(t, "/a").StatusCode(), "the fourth request of the hour, counted across reloads")
	// ra changes: it is compiled again, on the same counters.
	require.NoError(t, tg.g.Apply(mustParse(t, "gateway: {access_log: {enabled: false}}\n"+conf("/o3", true))))
	require.Equal(t, 1, tg.g.snap.Load().built)
	require.Equal(t, 429, tg.get(t, "/a").StatusCode())
}

// TestReloadFindsKeptChainsByPlace (issue 20): a reload finds the chains
// it keeps at the same place in their service, and indexes by route id
// only a service whose routes moved; a route inserted before the others
// still leaves every other chain kept, and each route answers as its own.
func TestReloadFindsKeptChainsByPlace(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(inserted bool) string {
		s := testconf.ManyServices(b.port(), 20, 50, -1, -1, "k1")
		if inserted {
			// A route first in s7, with a plugin of its own.
			s = strings.Replace(s, "    routes:\n      - {id: s7-r0,",
				"    routes:\n      - {id: s7-new, paths: [\"/new/*\"], plugins: {key-auth: {query: token}}}\n      - {id: s7-r0,", 1)
		}
		return s
	}
	tg := startGateway(t, conf(false))
	snap := func() *snapshot { return tg.g.snap.Load() }
	require.Equal(t, 1000, snap().built)
	get := func(uri, key string) int {
		return tg.do(t, "GET", uri, map[string]string{"apikey": key}, "").StatusCode()
	}

	// The route metric slots of routes that kept their place, or moved by
	// a route inserted or removed before them, are found without a map
	// lookup.
	lookups := func() int {
		n := tg.g.metrics.flat.routes.lookups
		tg.g.metrics.flat.routes.lookups = 0
		return n
	}
	lookups()

	require.NoError(t, tg.g.Apply(mustParse(t, conf(false))))
	require.Equal(t, 0, snap().built, "nothing changed")
	require.Equal(t, 0, snap().indexed, "every route at its place")
	require.Equal(t, 0, lookups())

	require.NoError(t, tg.g.Apply(mustParse(t, conf(true))))
	require.Equal(t, 1, snap().built, "the inserted route only")
	require.Equal(t, 1, snap().indexed, "s7's routes moved: s7 alone is indexed")
	require.Equal(t, 1, lookups(), "the inserted route's slot only")
	require.Equal(t, 200, get("/s7/r0/x", "k1"))
	require.Equal(t, 200, get("/s7/r49/x", "k1"))
	require.Equal(t, 401, get("/s7/r49/x", "wrong"))
	require.Equal(t, 401, get("/s7/new/x", "wrong"))
	require.Equal(t, 200, get("/s7/new/x?token=k1", ""), "the new route's chain is its own")
	require.Equal(t, 401, get("/s7/r1/x?token=k1", ""), "a kept chain is its route's, not its neighbour's")

	require.NoError(t, tg.g.Apply(mustParse(t, conf(false))))
	require.Equal(t, 0, snap().built, "the routes moved back: kept")
	require.Equal(t, 1, snap().indexed)
	require.Equal(t, 0, lookups())
	require.Equal(t, 404, get("/s7/new/x?token=k1", ""))
	require.Equal(t, 200, get("/s7/r0/x", "k1"))
}

// stepField is the pointer held in field of the first step of chain whose
// type is typeName (a white-box look at another package's unexported
// fields: reading pointers only).
func stepField(t *testing.T, chain *plugin.Chain, typeName, field string) unsafe.Pointer {
	t.Helper()
	steps := reflect.ValueOf(chain).Elem().FieldByName("steps")
	for i := range steps.Len() {
		s := steps.Index(i).Elem()
		if s.Type().String() == typeName {
			return s.Elem().FieldByName(field).UnsafePointer()
		}
	}
	t.Fatalf("no %s step in the chain", typeName)
	return nil
}

// TestReusedAuthChainsShareTheCurrentIndex: a kept key-auth or jwt-auth
// step holds the credential index (and jwt's verify cache) that the routes
// compiled afresh use, not the one of the snapshot that built it; a
// consumer change takes effect on every route; the store keeps only the
// indexes of the current consumers.
func TestReusedAuthChainsShareTheCurrentIndex(t *testing.T) {
	b := startBackend(t, "b", nil)
	conf := func(otherPath, consumers string) *config.Config {
		return mustParse(t, `gateway: {access_log: {enabled: false}}
consumers: [`+consumers+`]
services:
  - id: a
    upstream: `+upstreamYAML(b)+`
    plugins: {key-auth: {}, jwt-auth: {}}
    routes: [{id: ra, paths: ["/a"]}]
  - id: o
    upstream: `+upstreamYAML(b)+`
    plugins: {key-auth: {}, jwt-auth: {}}
    routes: [{id: ro, paths: ["`+otherPath+`"]}]
`)
	}
	const alice = `{username: alice, plugins: {key-auth: {key: k-alice}, jwt-auth: {key: j-alice, secret: s-alice}}}`
	const bob = `{username: bob, plugins: {key-auth: {key: k-bob}, jwt-auth: {key: j-bob, secret: s-bob}}}`
	g := New(Options{})
	require.NoError(t, g.Apply(conf("/o1", alice)))
	tg := serveGateway(t, g)
	require.Equal(t, 200, tg.do(t, "GET", "/a", map[string]string{"apikey": "k-alice"}, "").StatusCode())

	chains := func() (ra, ro *plugin.Chain) {
		s := g.snap.Load()
		for _, rs := range s.routes {
			switch rs.id {
			case "ra":
				ra = rs.chain
			case "ro":
				ro = rs.chain
			}
		}
		return
	}
	for _, p := range []string{"/o2", "/o3"} {
		before, _ := chains()
		require.NoError(t, g.Apply(conf(p, alice)))
		require.Equal(t, 1, g.snap.Load().built, "only ro is compiled again")
		ra, ro := chains()
		require.Same(t, before, ra, "ra's chain is kept")
		require.Equal(t, stepField(t, ro, "*keyauth.step", "keys"), stepField(t, ra, "*keyauth.step", "keys"),
			"the kept chain uses the index the new snapshot has")
		require.Equal(t, stepField(t, ro, "*jwtauth.step", "keys"), stepField(t, ra, "*jwtauth.step", "keys"))
		require.Equal(t, stepField(t, ro, "*jwtauth.step", "cache"), stepField(t, ra, "*jwtauth.step", "cache"),
			"one verify cache")
	}
	require.Equal(t, 3, g.long.Len(), "key-auth's and jwt-auth's indexes and jwt's cache, once")

	// The consumers change: bob comes, alice goes.
	require.NoError(t, g.Apply(conf("/o3", bob)))
	ra, ro := chains()
	require.Equal(t, stepField(t, ro, "*keyauth.step", "keys"), stepField(t, ra, "*keyauth.step", "keys"))
	require.Equal(t, 3, g.long.Len(), "the indexes of the old consumers are dropped")
	for _, path := range []string{"/a", "/o3"} {
		require.Equal(t, 200, tg.do(t, "GET", path, map[string]string{"apikey": "k-bob"}, "").StatusCode(), path)
		require.Equal(t, 401, tg.do(t, "GET", path, map[string]string{"apikey": "k-alice"}, "").StatusCode(), path)
		tok := sign(t, jwt.SigningMethodHS256, []byte("s-bob"), jwt.MapClaims{"key": "j-bob"})
		require.Equal(t, 200, tg.do(t, "GET", path, map[string]string{"Authorization": "Bearer " + tok}, "").StatusCode(), path)
		tok = sign(t, jwt.SigningMethodHS256, []byte("s-alice"), jwt.MapClaims{"key": "j-alice"})
		require.Equal(t, 401, tg.do(t, "GET", path, map[string]string{"Authorization": "Bearer " + tok}, "").StatusCode(), path)
	}
}
