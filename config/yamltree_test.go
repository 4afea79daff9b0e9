package config

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// YAML is read with yaml/v3's nodes (issue 20); scalars keep the YAML 1.1
// meanings they had when YAML went through yaml.v2.
func TestYAMLScalarsAsBefore(t *testing.T) {
	root, errs := parseTree([]byte(`
bools: [yes, Yes, on, ON, y, true, no, off, n, False]
strings: ["yes", 'on', !!str yes, !!str 12, yesterday, 0x, 1.2.3, 2024-01-02, "12"]
ints: [12, 0x1F, 017, 0o17, 1_000, -5, +7, 0b101, 1e3]
floats: [1.50, .5, -1.25e2]
nulls: [~, null, Null]
tagged: [!!int 12, !!float 3, !custom 12]
on: 1
`), "c.yaml")
	require.Empty(t, errs)
	top := root.(map[string]any)
	require.Equal(t, []any{true, true, true, true, true, true, false, false, false, false}, top["bools"])
	require.Equal(t, []any{"yes", "on", "yes", "12", "yesterday", "0x", "1.2.3", "2024-01-02", "12"}, top["strings"])
	require.Equal(t, "[12 31 15 15 1000 -5 7 5 1000]", strings.Join(strings.Fields(fmtList(top["ints"])), " "))
	require.Equal(t, "[1.5 0.5 -125]", fmtList(top["floats"]))
	require.Equal(t, []any{nil, nil, nil}, top["nulls"])
	require.Equal(t, `[12 3 "12"]`, fmtList(top["tagged"]), "an unknown tag leaves a string")
	require.Contains(t, top, "true", "a YAML 1.1 boolean key is the text true, as before")

	// .inf is no number a field accepts.
	errs = parseErrs(t, "gateway: {max_connections: .inf}\n"+minimal, "c.yaml")
	requireFieldError(t, errs, "gateway.max_connections", "expected an integer, got .inf")
	// A value that does not fit its tag is an error at its place, without the value.
	errs = parseErrs(t, minimal+"consumers: [{username: alice, plugins: {key-auth: {key: !!int sk-live-4242}}}]\n", "c.yaml")
	requireFieldError(t, errs, "consumers[0].plugins.key-auth.key", "not a valid !!int")
	require.NotContains(t, errs.Error(), "sk-live-4242")
}

func fmtList(v any) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v.([]any) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(describe(x))
	}
	b.WriteByte(']')
	return b.String()
}

func TestYAMLErrorsHaveLines(t *testing.T) {
	doc := `services:
  - id: s
    upstream:
      type: fastest
      nodes: [{host: a, port: 1}]
    routes:
      - paths: [/]
        methds: [GET]
`
	errs := parseErrs(t, doc, "gw.yaml")
	require.Equal(t, "gw.yaml:4: services[0].upstream.type: must be one of roundrobin, chash, least_conn, got \"fastest\"\n"+
		"gw.yaml:8: services[0].routes[0].methds: unknown key", errs.Error())

	// A missing key is reported at the object that lacks it.
	errs = parseErrs(t, "services:\n  - id: s\n    upstream: {nodes: [{host: a, port: 1}]}\n", "gw.yaml")
	require.Equal(t, 1, len(errs), errs.Error())
	require.Equal(t, "services[0].routes", errs[0].Path)
	require.Equal(t, 2, errs[0].Line)

	// A duplicate key is an error at the second, naming the first.
	errs = parseErrs(t, "gateway:\n  listen: a:1\n  listen: b:2\n"+minimal, "gw.yaml")
	require.Equal(t, `gw.yaml:3: gateway.listen: duplicate key (key "listen" already set on line 2)`, errs.Error())
}

func TestYAMLAnchorsAndMerges(t *testing.T) {
	cfg := mustParse(t, `
services:
  - id: a
    upstream: &up {nodes: [{host: a, port: 1}], timeout: {connect: 3}}
    routes:
      - &r {paths: [/a], methods: [GET], priority: 2}
      - {<<: *r, paths: [/b]}
  - id: b
    upstream: *up
    routes: [{<<: [*r], priority: 7}]
`)
	require.Equal(t, cfg.Services[0].Upstream.Nodes, cfg.Services[1].Upstream.Nodes)
	require.EqualValues(t, 3, cfg.Services[1].Upstream.Timeout.Connect)
	r := cfg.Services[0].Routes[1]
	require.Equal(t, []string{"/b"}, r.Paths, "a key of the mapping wins over the merged one")
	require.Equal(t, []string{"GET"}, r.Methods)
	require.Equal(t, 7, cfg.Services[1].Routes[0].Priority)
	require.Equal(t, []string{"/a"}, cfg.Services[1].Routes[0].Paths)

	// A merged key's error is located at the key in the merged mapping.
	errs := parseErrs(t, "x: &bad {port: 0}\n", "gw.yaml")
	require.Len(t, errs, 1)
	errs = parseErrs(t, `
services:
  - id: a
    upstream: {nodes: [{host: a, port: 1}]}
    routes:
      - &r {paths: [/a], methods: [FETCH]}
      - {<<: *r, paths: [/b]}
`, "gw.yaml")
	requireFieldError(t, errs, "services[0].routes[1].methods[0]")
	for _, e := range errs {
		require.Equal(t, 6, e.Line, e.Error())
	}
}

// Aliases cannot expand a small file into a huge tree (billion laughs).
func TestYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	n := allocated(func() {
		errs := parseErrs(t, b.String(), "c.yaml")
		require.Len(t, errs, 1)
		require.Contains(t, errs[0].Msg, "aliases expand the file to too many values")
	})
	require.Less(t, n, uint64(16<<20))
}

// An unquoted value starting with '*' is an alias: yaml.v3's message names
// it, and it may be a key written without quotes.
func TestYAMLUnknownAliasDoesNotEchoTheName(t *testing.T) {
	_, err := Parse([]byte("consumers:\n  - username: a\n    plugins:\n      key-auth: {key: *Sup3rS3cretValue}\n"), "gw.yaml")
	require.Error(t, err)
	require.Contains(t, err.Error(), "refers to no anchor")
	require.NotContains(t, err.Error(), "Sup3rS3cret")
}

// A second document would load and do nothing: refused.
func TestYAMLSecondDocumentRefused(t *testing.T) {
	_, err := Parse([]byte("revision: r1\n---\nbogus_key: 1\n"), "gw.yaml")
	require.Error(t, err)
	require.Contains(t, err.Error(), "gw.yaml:2: invalid YAML: the file holds more than one document")
}
