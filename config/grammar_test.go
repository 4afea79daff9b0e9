package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVar(t *testing.T) {
	tests := []struct {
		name string
		kind VarKind
		arg  string
		ok   bool
	}{
		{"uri", VarURI, "", true},
		{"request_uri", VarRequestURI, "", true},
		{"host", VarHost, "", true},
		{"request_method", VarMethod, "", true},
		{"remote_addr", VarRemoteAddr, "", true},
		{"scheme", VarScheme, "", true},
		{"server_port", VarServerPort, "", true},
		{"consumer_name", VarConsumerName, "", true},
		{"ssl_client_s_dn_cn", VarSSLClientCN, "", true},
		{"ssl_client_verify", VarSSLClientVerify, "", true},
		{"arg_id", VarArg, "id", true},
		{"arg_Page_Size", VarArg, "Page_Size", true},
		{"http_x_user", VarHTTP, "x-user", true},
		{"http_X_Api_Key", VarHTTP, "x-api-key", true},
		{"cookie_session_id", VarCookie, "session_id", true},
		{"path_id", VarPath, "id", true},
		{"arg_", VarNone, "", false},
		{"http_", VarNone, "", false},
		{"cookie", VarNone, "", false},
		{"URI", VarNone, "", false},
		{"nope", VarNone, "", false},
		{"", VarNone, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseVar(tt.name)
			require.Equal(t, tt.ok, err == nil)
			require.Equal(t, VarRef{Kind: tt.kind, Arg: tt.arg}, ref)
		})
	}
	require.Equal(t, "http_", VarHTTP.String())
	require.Equal(t, "uri", VarURI.String())
}

func TestParseKeyTemplate(t *testing.T) {
	k, err := ParseKeyTemplate("a-$remote_addr:$http_X_User$arg_id!")
	require.NoError(t, err)
	require.Equal(t, []KeyPart{
		{Lit: "a-"},
		{IsVar: true, Var: VarRef{Kind: VarRemoteAddr}},
		{Lit: ":"},
		{IsVar: true, Var: VarRef{Kind: VarHTTP, Arg: "x-user"}},
		{IsVar: true, Var: VarRef{Kind: VarArg, Arg: "id"}},
		{Lit: "!"},
	}, k.Parts)

	for tmpl, msg := range map[string]string{
		"no variables": "must contain at least one $variable",
		"":             "must contain at least one $variable",
		"$nope":        `unknown variable "$nope"`,
		"$":            `unknown variable "$"`,
		"$uri$-":       `unknown variable "$"`,
	} {
		_, err := ParseKeyTemplate(tmpl)
		require.EqualError(t, err, msg, tmpl)
	}
}

func TestParseHashKey(t *testing.T) {
	remote := VarKey(VarRef{Kind: VarRemoteAddr})
	tests := []struct {
		on   HashOn
		key  string
		want KeyTemplate
		err  string
	}{
		{HashOnVars, "", remote, ""},
		{HashOnHeader, "", remote, ""},
		{HashOnVars, "arg_id", VarKey(VarRef{Kind: VarArg, Arg: "id"}), ""},
		{HashOnVars, "nope", KeyTemplate{}, `unknown variable "nope"`},
		{HashOnHeader, "X-Customer-Id", VarKey(VarRef{Kind: VarHTTP, Arg: "X-Customer-Id"}), ""},
		{HashOnHeader, "bad header", KeyTemplate{}, `invalid header name "bad header"`},
		{HashOnCookie, "sid", VarKey(VarRef{Kind: VarCookie, Arg: "sid"}), ""},
		{HashOnConsumer, "", VarKey(VarRef{Kind: VarConsumerName}), ""},
		{HashOnVarsCombinations, "$host", VarKey(VarRef{Kind: VarHost}), ""},
	}
	for _, tt := range tests {
		k, err := ParseHashKey(tt.on, tt.key)
		if tt.err != "" {
			require.EqualError(t, err, tt.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, k, "%s %q", tt.on, tt.key)
	}
}

func TestParsePathPattern(t *testing.T) {
	p, err := ParsePathPattern("/u/{id}/x/:name/*")
	require.NoError(t, err)
	require.Equal(t, PathPattern{Canon: "/u/{}/x/{}/*", Params: []string{"id", "name"}, Wild: true}, p)
	// A path without parameters is its own canonical form.
	for _, path := range []string{"/", "/r1/*", "/a/b.c/d-e", "/*"} {
		p, err := ParsePathPattern(path)
		require.NoError(t, err)
		require.Equal(t, PathPattern{Canon: path, Wild: strings.HasSuffix(path, "*")}, p)
	}

	for path, msg := range map[string]string{
		"u":       "must start with '/'",
		"/a*/b":   "'*' may only be the last character",
		"/a{id}":  "a {parameter} must be a whole segment",
		"/{id":    "a {parameter} must be a whole segment",
		"/{}":     `invalid parameter name ""`,
		"/:a-b":   `invalid parameter name "a-b" (letters, digits and '_')`,
		"/{a}/:a": `duplicate parameter "a"`,
		"/a/../b": `must not contain "." or ".." segments`,
		"/a//b":   "must not contain an empty segment",
		"/a?b":    "must not contain '?', '#' or spaces",
		"/a\x01":  "must not contain control characters",
	} {
		_, err := ParsePathPattern(path)
		require.ErrorContains(t, err, msg, path)
	}
	name, ok, err := PathParam("users")
	require.NoError(t, err)
	require.False(t, ok)
	require.Empty(t, name)
}
