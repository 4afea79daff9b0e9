package config

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid config; tests add to or change it.
const minimal = `
services:
  - id: s
    upstream: {nodes: [{host: 10.0.0.1, port: 80}]}
    routes: [{paths: [/]}]
`

// mustParse loads YAML that must be valid.
func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(doc), "test.yaml")
	require.NoError(t, err)
	require.NotNil(t, cfg)
	return cfg
}

// parseErrs loads YAML that must be invalid and returns its errors.
func parseErrs(t *testing.T, doc, name string) Errors {
	t.Helper()
	cfg, err := Parse([]byte(doc), name)
	require.Error(t, err)
	require.Nil(t, cfg)
	var errs Errors
	require.True(t, errors.As(err, &errs), "error is %T, want Errors", err)
	require.NotEmpty(t, errs)
	return errs
}

// requireFieldError asserts that errs has an error at exactly path whose
// message contains every part (the bad value, mostly), and that the
// rendered error text shows "path: message".
func requireFieldError(t *testing.T, errs Errors, path string, parts ...string) {
	t.Helper()
	for _, e := range errs {
		if e.Path != path {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(e.Msg, p)
		}
		if ok {
			require.Contains(t, errs.Error(), e.Error())
			if path != "" {
				// "file:line: path: message" for YAML, "path: message" for JSON.
				want := path + ": " + e.Msg
				if e.Line > 0 {
					require.NotEmpty(t, e.File)
					want = e.File + ":" + strconv.Itoa(e.Line) + ": " + want
				}
				require.Equal(t, want, e.Error())
			}
			return
		}
	}
	require.Failf(t, "missing error", "want an error at %q containing %q; got:\n%s", path, parts, errs.Error())
}

// errCase is one invalid config and the error it must produce.
type errCase struct {
	name string
	doc  string
	path string
	want []string
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := parseErrs(t, c.doc, "test.yaml")
			requireFieldError(t, errs, c.path, c.want...)
		})
	}
}

// svc returns a config with one service "s" whose body (indented YAML keys
// after `- id: s`) is given; it has no default upstream or routes.
func svc(body string) string {
	return "services:\n  - id: s\n" + indent(body, "    ")
}

// withRoute returns a service "s" with a valid upstream and the one route
// given as a YAML flow mapping (services[0].routes[0]).
func withRoute(route string) string {
	return svc(`
upstream: {nodes: [{host: 10.0.0.1, port: 80}]}
routes:
  - ` + route + `
`)
}

// withUpstream returns a service "s" with the given inline upstream (YAML
// flow mapping or block, indented under `upstream:`).
func withUpstream(up string) string {
	return svc("upstream: " + up + "\nroutes: [{paths: [/]}]\n")
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.Trim(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// requirePluginJSON checks plugin name's config in p by its JSON form:
// the config types belong to the plugins, which these tests cannot name.
func requirePluginJSON(t *testing.T, want string, p map[string]any, name string) {
	t.Helper()
	require.Contains(t, p, name)
	got, err := json.Marshal(p[name])
	require.NoError(t, err)
	require.JSONEq(t, want, string(got))
}
