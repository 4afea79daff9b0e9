package router

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// matchVars compiles one route at /p/{id} with the given conditions and
// reports whether a GET of path with vars matches it.
func matchVars(t *testing.T, conds []config.Var, host, path string, vars VarSource) bool {
	t.Helper()
	r := compile(t, svc("s", nil, "/p", true, withVars(rt("r", "/{id}", "/x/*"), conds...)))
	m := do(r, "GET", host, path, vars)
	require.Contains(t, []int{0, 404}, m.Status)
	return m.Status == 0
}

func TestVarsVariables(t *testing.T) {
	all := vs{
		v(VarRequestURI, "", "/p/42?a=1"),
		v(VarRemoteAddr, "", "10.1.2.3"),
		v(VarScheme, "", "https"),
		v(VarServerPort, "", "8443"),
		v(VarArg, "page", "3"),
		v(VarHTTP, "x-user", "alice"),
		v(VarCookie, "session", "s1"),
		v(VarConsumerName, "", "bob"),
	}
	tests := []struct {
		name, value string
		path        string
	}{
		{"uri", "/p/42", "/p/./42"},
		{"request_uri", "/p/42?a=1", "/p/42"},
		{"host", "api.example.com", "/p/42"},
		{"request_method", "GET", "/p/42"},
		{"remote_addr", "10.1.2.3", "/p/42"},
		{"scheme", "https", "/p/42"},
		{"server_port", "8443", "/p/42"},
		{"arg_page", "3", "/p/42"},
		{"http_x_user", "alice", "/p/42"},
		{"HTTP_X_USER", "alice", "/p/42"}, // not a variable: compile error below
		{"cookie_session", "s1", "/p/42"},
		{"path_id", "42", "/p/42"},
		{"consumer_name", "bob", "/p/42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conds := []config.Var{cv(tt.name, "==", tt.value)}
			if _, err := config.ParseVar(tt.name); err != nil {
				_, err := Compile(&config.Config{Services: []config.Service{
					svc("s", nil, "/", true, withVars(rt("r", "/"), conds...))}})
				require.ErrorContains(t, err, "services[0].routes[0].vars[0]: unknown variable")
				return
			}
			require.True(t, matchVars(t, conds, "API.example.com:80", tt.path, all))
			conds[0].Value += "x"
			require.False(t, matchVars(t, conds, "API.example.com:80", tt.path, all))
			if tt.name == "uri" || tt.name == "request_method" {
				return // never missing
			}
			// Missing (no VarSource, no host, a pattern without the
			// parameter): fails ==, holds for ~=.
			require.False(t, matchVars(t, []config.Var{cv(tt.name, "==", tt.value)}, "", "/p/x/42", nil))
			require.True(t, matchVars(t, []config.Var{cv(tt.name, "~=", tt.value)}, "", "/p/x/42", nil))
		})
	}
}

func TestVarsOperators(t *testing.T) {
	vars := vs{
		v(VarArg, "n", "42"),
		v(VarArg, "f", "-1.5e2"),
		v(VarArg, "s", "Hello"),
		v(VarArg, "junk", "12abc"),
		v(VarArg, "empty", ""),
		v(VarHTTP, "accept", "text/html, application/json ,  image/png"),
		v(VarRemoteAddr, "", "10.1.2.3"),
		v(VarHTTP, "x-v6", "2001:db8::7"),
		v(VarHTTP, "x-mapped", "::ffff:192.168.1.9"),
		v(VarHTTP, "x-bad-ip", "10.1.2"),
	}
	tests := []struct {
		name string
		cond config.Var
		want bool
	}{
		{"== holds", cv("arg_s", "==", "Hello"), true},
		{"== is case-sensitive", cv("arg_s", "==", "hello"), false},
		{"== empty value of a present var", cv("arg_empty", "==", ""), true},
		{"~= holds", cv("arg_s", "~=", "hello"), true},
		{"~= fails", cv("arg_s", "~=", "Hello"), false},
		{"!= is ~=", cv("arg_s", "!=", "Hello"), false},
		{"> holds", cv("arg_n", ">", "41.5"), true},
		{"> fails on equal", cv("arg_n", ">", "42"), false},
		{">= equal", cv("arg_n", ">=", "42"), true},
		{"< holds", cv("arg_n", "<", "100"), true},
		{"< is numeric, not lexical", cv("arg_n", "<", "5"), false},
		{"<= equal", cv("arg_n", "<=", "42"), true},
		{"<= exponent and sign", cv("arg_f", "<=", "-150"), true},
		{"< exponent and sign", cv("arg_f", "<", "-150"), false},
		{"numeric on junk fails", cv("arg_junk", ">", "0"), false},
		{"numeric on junk fails for <", cv("arg_junk", "<", "1e9"), false},
		{"numeric on empty fails", cv("arg_empty", "<", "1"), false},
		{"~~ holds", cv("arg_s", "~~", "^H.l+o$"), true},
		{"~~ is case-sensitive", cv("arg_s", "~~", "^hello$"), false},
		{"~~ unanchored", cv("arg_s", "~~", "ell"), true},
		{"~* case-insensitive", cv("arg_s", "~*", "^hello$"), true},
		{"~* fails", cv("arg_s", "~*", "^bye$"), false},
		{"in holds", cv("arg_s", "in", "", "a", "Hello", "b"), true},
		{"in fails", cv("arg_s", "in", "", "a", "hello"), false},
		{"in with a long list", cv("arg_n", "in", "", "1", "2", "3", "4", "5", "6", "7", "8", "42"), true},
		{"in with a long list fails", cv("arg_n", "in", "", "1", "2", "3", "4", "5", "6", "7", "8", "9"), false},
		{"has holds", cv("http_accept", "has", "application/json"), true},
		{"has trims", cv("http_accept", "has", "image/png"), true},
		{"has first", cv("http_accept", "has", "text/html"), true},
		{"has whole items only", cv("http_accept", "has", "text"), false},
		{"ipmatch CIDR", cv("remote_addr", "ipmatch", "", "192.168.0.0/16", "10.0.0.0/8"), true},
		{"ipmatch single IP", cv("remote_addr", "ipmatch", "", "10.1.2.3"), true},
		{"ipmatch single value", cv("remote_addr", "ipmatch", "10.1.0.0/16"), true},
		{"ipmatch fails", cv("remote_addr", "ipmatch", "", "10.1.2.4", "172.16.0.0/12"), false},
		{"ipmatch IPv6", cv("http_x_v6", "ipmatch", "", "2001:db8::/32"), true},
		{"ipmatch IPv6 fails", cv("http_x_v6", "ipmatch", "", "2001:db9::/32", "10.0.0.0/8"), false},
		{"ipmatch v4-mapped", cv("http_x_mapped", "ipmatch", "", "192.168.0.0/16"), true},
		{"ipmatch v4-mapped CIDR", cv("remote_addr", "ipmatch", "", "::ffff:10.0.0.0/104"), true},
		{"ipmatch not an IP", cv("http_x_bad_ip", "ipmatch", "", "0.0.0.0/0"), false},
		{"ipmatch a word", cv("arg_s", "ipmatch", "", "0.0.0.0/0", "::/0"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, matchVars(t, []config.Var{tt.cond}, "", "/p/1", vars))
			// "!" negates.
			require.Equal(t, !tt.want, matchVars(t, []config.Var{not(tt.cond)}, "", "/p/1", vars))
		})
	}
}

// A missing variable is the empty string that fails every operator but
// "not equal".
func TestVarsMissing(t *testing.T) {
	for _, c := range []config.Var{
		cv("arg_x", "==", ""),
		cv("arg_x", "==", "a"),
		cv("arg_x", ">", "-1"),
		cv("arg_x", ">=", "0"),
		cv("arg_x", "<", "1"),
		cv("arg_x", "<=", "0"),
		cv("arg_x", "~~", ".*"),
		cv("arg_x", "~*", "^$"),
		cv("arg_x", "in", "", ""),
		cv("arg_x", "has", ""),
		cv("arg_x", "ipmatch", "", "0.0.0.0/0"),
		cv("path_nope", "==", ""),
		cv("host", "~~", ""),
	} {
		t.Run(c.Name+c.Op, func(t *testing.T) {
			for _, vars := range []VarSource{nil, vs{v(VarArg, "y", "1")}} {
				require.False(t, matchVars(t, []config.Var{c}, "", "/p/1", vars))
				require.True(t, matchVars(t, []config.Var{not(c)}, "", "/p/1", vars))
			}
		})
	}
	for _, c := range []config.Var{cv("arg_x", "~=", ""), cv("arg_x", "~=", "a"), cv("arg_x", "!=", "a")} {
		require.True(t, matchVars(t, []config.Var{c}, "", "/p/1", nil))
		require.False(t, matchVars(t, []config.Var{not(c)}, "", "/p/1", nil))
	}
}

func TestVarsAllMustHold(t *testing.T) {
	conds := []config.Var{cv("arg_a", "==", "1"), cv("arg_b", "==", "2"), not(cv("arg_c", "==", "3"))}
	require.True(t, matchVars(t, conds, "", "/p/1", vs{v(VarArg, "a", "1"), v(VarArg, "b", "2")}))
	require.False(t, matchVars(t, conds, "", "/p/1", vs{v(VarArg, "a", "1")}))
	require.False(t, matchVars(t, conds, "", "/p/1", vs{v(VarArg, "a", "1"), v(VarArg, "b", "2"), v(VarArg, "c", "3")}))
}

// path_<name> is the parameter of the path that matched: each path of a
// route binds its own names.
func TestVarsPathParamPerPath(t *testing.T) {
	r := compile(t, svc("s", nil, "/", true,
		withVars(rt("r", "/a/{id}", "/b/{x}/{id}", "/c/{x}"), cv("path_id", "~~", "^[0-9]+$"))))
	require.Equal(t, "r", routeID(do(r, "GET", "", "/a/12", nil)))
	require.Equal(t, "404", routeID(do(r, "GET", "", "/a/x1", nil)))
	require.Equal(t, "r", routeID(do(r, "GET", "", "/b/zz/7", nil)))
	require.Equal(t, "404", routeID(do(r, "GET", "", "/b/7/zz", nil)))
	require.Equal(t, "404", routeID(do(r, "GET", "", "/c/7", nil)))
}

func TestParseNumber(t *testing.T) {
	good := map[string]float64{"0": 0, "42": 42, "-1": -1, "+2.5": 2.5, ".5": .5, "5.": 5, "1e3": 1000, "1E-2": 0.01, "-0.0": 0}
	for in, want := range good {
		f, ok := parseNumber([]byte(in))
		require.True(t, ok, in)
		require.Equal(t, want, f, in)
	}
	for _, in := range []string{"", "-", ".", "e1", "1e", "1e+", "1e100", "0x10", "inf", "NaN", "1_000", " 1", "1 ", "1.2.3",
		"1234567890123456789012345678901234567890123456789012345678901234567890"} {
		_, ok := parseNumber([]byte(in))
		require.False(t, ok, in)
	}
}

func TestParseAddr(t *testing.T) {
	for _, in := range []string{"0.0.0.0", "10.1.2.3", "255.255.255.255", "::1", "2001:db8::1", "::ffff:1.2.3.4"} {
		_, ok := parseAddr([]byte(in))
		require.True(t, ok, in)
	}
	for _, in := range []string{"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", "fe80::1%eth0", "::g", "1234", "1.2.3.4:80"} {
		_, ok := parseAddr([]byte(in))
		require.False(t, ok, in)
	}
}

func TestCompileVarErrors(t *testing.T) {
	tests := []struct {
		cond config.Var
		err  string
	}{
		{cv("nope", "==", "1"), `unknown variable "nope"`},
		{cv("arg_x", "=~", "1"), `unknown operator "=~"`},
		{cv("arg_x", ">", "abc"), `operator >: "abc" is not a number`},
		{cv("arg_x", "~~", "("), "operator ~~: error parsing regexp"},
		{cv("arg_x", "~*", "[a-"), "operator ~*: error parsing regexp"},
		{cv("arg_x", "ipmatch", "", "10.0.0.0/33"), `operator ipmatch: "10.0.0.0/33" is not an IP or CIDR`},
		{cv("arg_x", "ipmatch", "", "host.example"), `operator ipmatch: "host.example" is not an IP or CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.err, func(t *testing.T) {
			_, err := Compile(&config.Config{Services: []config.Service{
				svc("s", nil, "/", true, rt("ok", "/"), withVars(rt("r", "/"), cv("arg_a", "==", "1"), tt.cond))}})
			require.ErrorContains(t, err, "services[0].routes[1].vars[1]: "+tt.err)
		})
	}
}
