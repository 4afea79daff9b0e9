package config

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"gateway/internal/testconf"
)

// manyServices is testconf.ManyServices on port 1 with key k.
func manyServices(services, routes, changed, described int) string {
	return testconf.ManyServices("1", services, routes, changed, described, "k")
}

// loadBoth loads doc with l and with Parse and requires the same config
// or the same errors.
func loadBoth(t *testing.T, l *Loader, doc string) *Config {
	t.Helper()
	got, gotErr := l.Parse([]byte(doc), "gw.yaml")
	want, wantErr := Parse([]byte(doc), "gw.yaml")
	require.Equal(t, wantErr, gotErr, "errors of\n%s", doc)
	require.Equal(t, want, got, "config of\n%s", doc)
	return got
}

// TestLoaderMatchesParse (issue 20): a Loader's config of each of a
// sequence of edited files is deep-equal to Parse's of the same file,
// digests included.
func TestLoaderMatchesParse(t *testing.T) {
	t.Setenv("INCR_HOST", "a.example")
	t.Setenv("INCR_KEY", "k1")
	base := manyServices(5, 5, -1, -1)
	edits := []string{
		base,
		base, // all reused
		manyServices(5, 5, 2, -1),
		manyServices(5, 5, 2, 3),
		manyServices(5, 6, 2, 3),
		manyServices(4, 6, -1, -1),
		benchConfig(50),
		benchConfig(50) + "      - {id: extra, paths: [\"/extra/*\"]}\n",
		benchConfig(50),
		// Routes without ids get their index: moving one changes ids.
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {paths: [/a]}\n      - {paths: [/b]}\n",
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {paths: [/b]}\n      - {paths: [/a]}\n      - {paths: [/c], vars: [[arg_x, ==, '1']]}\n",
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {paths: [/b]}\n      - {paths: [/a]}\n      - {paths: [/c], vars: [[arg_x, ==, '1']]}\n      - {paths: [/c], vars: [[arg_x, ==, '1']]}\n",
		// Identical items, comments between and in items, block items.
		"services:\n  - id: s\n    upstream:\n      nodes:\n        - {host: h, port: 1}\n        # a comment\n        - {host: h, port: 1}\n    routes:\n      - id: a # note\n        paths: [/a]\n\n      - id: b\n        paths:\n          - /b\n          - /b2\n",
		"services:\n  - id: s\n    upstream:\n      nodes:\n        - {host: h, port: 1}\n        - {host: h, port: 1}\n    routes:\n      - id: a\n        paths: [/a]\n      - id: b\n        paths:\n          - /b\n          - /b2\n",
		// Hosts are lowered in place by resolve.
		"services:\n  - id: s\n    hosts: [A.Example]\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a], plugins: {proxy-rewrite: {uri: /x}}}\n",
		"services:\n  - id: s\n    hosts: [A.Example]\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a], plugins: {proxy-rewrite: {uri: /x}}}\n      - {id: b, paths: [/b]}\n",
		// An error, then the same file without it.
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a]}\n      - {id: a, paths: [/b]}\n",
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a]}\n      - {id: b, paths: [/b]}\n",
		// A file the fast path declines.
		"services:\n  - id: s\n    upstream: &u {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a]}\n",
		"services:\n  - id: s\n    upstream: {nodes: [{host: h, port: 1}]}\n    routes:\n      - {id: a, paths: [/a]}\n      - {id: b, paths: [/b]}\n",
		"services:\n- id: s\n  upstream: {nodes: [{host: h, port: 1}]}\n  routes:\n  - {id: a, paths: [/a]}\n  - {id: b, paths: [/b]}\r\n",
	}
	l := NewLoader()
	for _, doc := range edits {
		loadBoth(t, l, doc)
	}
}

// TestLoaderFollowsTheEnvironment: items with environment variables or
// $env:// references are read and substituted at each load.
func TestLoaderFollowsTheEnvironment(t *testing.T) {
	doc := func(env string) string {
		return "gateway: {environment: " + env + "}\n" +
			"environments:\n  - {name: dev, variables: {uphost: dev.example}}\n  - {name: prd, variables: {uphost: prd.example}}\n" +
			"consumers:\n  - {username: alice, plugins: {key-auth: {key: $env://INCR_KEY}}}\n" +
			"services:\n  - id: s\n    upstream: {nodes: [{host: '#uphost#', port: 1}]}\n    routes:\n" +
			"      - {id: a, paths: [/a], plugins: {proxy-rewrite: {host: '#uphost#'}}}\n      - {id: b, paths: [/b]}\n"
	}
	l := NewLoader()
	t.Setenv("INCR_KEY", "k1")
	cfg := loadBoth(t, l, doc("dev"))
	require.Equal(t, "dev.example", cfg.Services[0].Upstream.Nodes[0].Host)
	cfg = loadBoth(t, l, doc("prd"))
	require.Equal(t, "prd.example", cfg.Services[0].Upstream.Nodes[0].Host)
	t.Setenv("INCR_KEY", "k2")
	before := cfg.Digest().Consumers
	cfg = loadBoth(t, l, doc("prd"))
	require.NotEqual(t, before, cfg.Digest().Consumers)
	cfg = loadBoth(t, l, doc("dev"))
	require.Equal(t, "dev.example", cfg.Services[0].Upstream.Nodes[0].Host)
}

// TestLoaderReadsOnlyChangedItems (issue 20) counts the work of a reload
// of 100 services of 100 routes where one route of one service changed:
// that service's item and that route's are read again, and that route
// alone is decoded; everything else is reused.
func TestLoaderReadsOnlyChangedItems(t *testing.T) {
	l := NewLoader()
	loadBoth(t, l, manyServices(100, 100, -1, -1))
	st := l.Stats()
	require.Equal(t, 10000, st.RoutesDecoded)
	require.Equal(t, 0, st.Reused)

	loadBoth(t, l, manyServices(100, 100, 42, -1))
	st = l.Stats()
	require.Equal(t, 2, st.Read, "the changed service and route")
	require.Equal(t, 1, st.RoutesDecoded)
	require.Equal(t, 9999, st.RoutesReused)
	// The upstream, the policy, the consumer, 99 services and 99 routes.
	require.Equal(t, 3+99+99, st.Reused)

	// A service whose own settings changed: its item is read; its
	// routes' items are not.
	loadBoth(t, l, manyServices(100, 100, 42, 7))
	st = l.Stats()
	require.Equal(t, 1, st.Read)
	require.Equal(t, 0, st.RoutesDecoded)
	require.Equal(t, 10000, st.RoutesReused)
}

// TestLoaderKeepsOnlyTheLastLoad: what is kept is the last successful
// load's items, each holding a copy of its own text, not the file.
func TestLoaderKeepsOnlyTheLastLoad(t *testing.T) {
	l := NewLoader()
	for i := range 5 {
		_, err := l.Parse([]byte(manyServices(3, 3, i%3, -1)), "gw.yaml")
		require.NoError(t, err)
	}
	// 3 top-level items, 3 services, 9 routes, 1 node list item per
	// upstream is inline (flow): not an item.
	require.Len(t, l.prev, 3+3+9)
	doc := []byte(manyServices(3, 3, 0, -1))
	lo, hi := uintptr(unsafe.Pointer(&doc[0])), uintptr(unsafe.Pointer(&doc[0]))+uintptr(len(doc))
	_, err := l.Parse(doc, "gw.yaml")
	require.NoError(t, err)
	for k := range l.prev {
		p := uintptr(unsafe.Pointer(unsafe.StringData(k)))
		require.False(t, p >= lo && p < hi)
	}
	// The routes are kept without their trees.
	compact := 0
	for _, e := range l.prev {
		if e.compact {
			require.Nil(t, e.tree)
			compact++
		}
	}
	require.Equal(t, 9, compact)
	// A failed load keeps the last successful one's items.
	kept := len(l.prev)
	_, err = l.Parse([]byte("services: [{id: x}]\n"), "gw.yaml")
	require.Error(t, err)
	require.Len(t, l.prev, kept)
}

// TestLoaderRandomEdits loads random edits of random documents through
// the cached fast path and compares each tree with fastYAML's.
func TestLoaderRandomEdits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	values := []string{"1", "x", "'q''s'", "[1, x]", "{k: v, l: [m]}", "[]", "{}", "x # c", "a#b", "$env://X", "~", "'#x#'", "y", "z", "w", "v", "u", "t"}
	flowValues := []string{"1", "x", "'q''s'", "[1, x]", "{k: v, l: [m]}", "[]", "{}", "a#b", "'$env://X'", "~", "'#x#'", "y", "z"}
	keys := []string{"a", "b", "c", "d", "e", "f"}
	pick := func(s []string) string { return s[rnd.IntN(len(s))] }
	n := 0
	unique := func() string { n++; return fmt.Sprintf("k%d", n) }
	// line is a line of an item at the top level (ind 4) or of an item
	// of a list in it (ind 8); a few are wrong or odd.
	line := func() string {
		switch rnd.IntN(12) {
		case 0:
			return "    # comment"
		case 1:
			return ""
		case 2:
			return "      - " + pick(values)
		case 3:
			return "    " + pick(keys) + ": " + pick(values) // may be a duplicate
		case 4:
			if rnd.IntN(3) == 0 {
				return "   " + unique() + ": x" // declined
			}
			return "    " + unique() + ":"
		case 5:
			return "      - {id: " + pick(keys) + ", v: " + pick(flowValues) + "}"
		case 6:
			return "        " + unique() + ": " + pick(values)
		case 7:
			return "      - id: " + pick(keys)
		default:
			return "    " + unique() + ": " + pick(values)
		}
	}
	gen := func() []string {
		var lines []string
		for _, top := range []string{"services", "upstreams", "consumers"} {
			lines = append(lines, top+":")
			for range 1 + rnd.IntN(4) {
				lines = append(lines, "  - id: "+pick(keys))
				for _, k := range keys[:rnd.IntN(3)] {
					lines = append(lines, "    "+k+": "+pick(values))
				}
				lines = append(lines, "    routes:")
				for range 1 + rnd.IntN(4) {
					lines = append(lines, "      - {id: "+pick(keys)+", v: "+pick(flowValues)+"}")
				}
			}
		}
		return lines
	}
	accepted, fast, reused := 0, 0, 0
	for range 1000 {
		var l Loader
		lines := gen()
		eol := "\n"
		if rnd.IntN(4) == 0 {
			eol = "\r\n"
		}
		for range 10 {
			doc := strings.Join(lines, eol) + eol
			c := &itemCache{prev: l.prev, next: map[string]*itemEntry{}, byTree: map[unsafe.Pointer]*itemEntry{}, gen: l.gen + 1}
			l.gen++
			got, ok := fastYAMLCached([]byte(doc), c)
			want, wantOK := fastYAML([]byte(doc))
			if wantOK {
				fast++
			}
			if ok {
				require.True(t, wantOK, "the cached path read what fastYAML declines:\n%s", doc)
				require.True(t, reflect.DeepEqual(want, got), "%s\n%#v\n%#v", doc, want, got)
				l.prev = c.next
				accepted++
				reused += c.stats.Reused
			}
			// An edit: a line changed, added or removed.
			i := rnd.IntN(len(lines))
			switch rnd.IntN(3) {
			case 0:
				if !strings.HasSuffix(lines[i], ":") {
					lines[i] = line()
				}
			case 1:
				lines = append(lines[:i+1], append([]string{line()}, lines[i+1:]...)...)
			default:
				if len(lines) > 4 && i > 0 {
					lines = append(lines[:i], lines[i+1:]...)
				}
			}
		}
	}
	t.Logf("the cached path read %d of 10000 documents, fastYAML %d; %d items reused", accepted, fast, reused)
	require.Greater(t, accepted, 1000)
	require.Greater(t, reused, 5000)
}

// TestLoaderOnSeedFiles loads every seed file after every other through
// one Loader, comparing each load with Parse's.
func TestLoaderOnSeedFiles(t *testing.T) {
	seeds := fastYAMLSeeds(t)
	l := NewLoader()
	for _, a := range seeds {
		loadBoth(t, l, a)
		for _, b := range seeds[:min(len(seeds), 12)] {
			loadBoth(t, l, b)
			loadBoth(t, l, a)
		}
	}
}

// FuzzLoader loads a then b through a Loader and requires b's config (or
// errors) to be Parse's.
func FuzzLoader(f *testing.F) {
	seeds := fastYAMLSeeds(f)
	for i, a := range seeds {
		f.Add([]byte(a), []byte(seeds[(i+1)%len(seeds)]))
	}
	f.Add([]byte(manyServices(3, 3, -1, -1)), []byte(manyServices(3, 3, 1, 2)))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a)+len(b) > 1<<16 {
			return
		}
		l := NewLoader()
		_, _ = l.Parse(a, "gw.yaml")
		want, wantErr := Parse(b, "gw.yaml")
		for range 2 {
			// reflect.DeepEqual: a diff of two configs takes long.
			got, gotErr := l.Parse(b, "gw.yaml")
			if !reflect.DeepEqual(wantErr, gotErr) || !reflect.DeepEqual(want, got) {
				t.Fatalf("the Loader's load of %q after %q differs from Parse's", b, a)
			}
		}
	})
}
