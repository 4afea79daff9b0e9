package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/internal/testheap"
)

// Hostile files (issue 12, items 9 and 11): nesting, secrets, and how much
// of a value an error may show.

func nested(depth int, open, close, leaf string) string {
	return strings.Repeat(open, depth) + leaf + strings.Repeat(close, depth)
}

func TestDepthCap(t *testing.T) {
	for _, name := range []string{"c.json", "c.yaml"} {
		// MaxDepth levels are fine: the tree parses (it is no config, but
		// the error is about that, not about depth).
		root, errs := parseTree([]byte(nested(MaxDepth, "[", "]", "1")), name)
		require.Empty(t, errs, name)
		require.NotNil(t, root, name)
		root, errs = parseTree([]byte(nested(MaxDepth-1, `{"a":`, "}", "[1]")), name)
		require.Empty(t, errs, name)
		require.NotNil(t, root, name)

		for _, doc := range []string{
			nested(MaxDepth+1, "[", "]", "1"),
			nested(MaxDepth+1, `{"a":`, "}", "1"),
			nested(100_000, "[", "]", ""),
		} {
			errs := parseErrs(t, doc, name)
			require.Len(t, errs, 1, name)
			require.Contains(t, errs[0].Msg, "nested deeper than 64 levels", name)
		}
	}
	// JSON says where.
	errs := parseErrs(t, nested(MaxDepth+1, "[", "]", "1"), "c.json")
	require.Equal(t, "invalid JSON: line 1, column 66: objects and lists nested deeper than 64 levels", errs[0].Msg)
}

// allocated returns the bytes f allocates (all goroutines; the package's
// tests do not run in parallel).
func allocated(f func()) uint64 {
	count := testheap.Count()
	f()
	_, bytes := count.Since()
	return bytes
}

// A deep file used to cost memory quadratic in its depth: every level's
// error path was built up front (30,000 levels: 1.4 GB; 100,000: 15 GB).
// 20,000 levels cost the old code about 1.2 GB; now the parse stops at
// level 65.
func TestDeepFileIsCheap(t *testing.T) {
	for name, doc := range map[string]string{
		"lists.json":   nested(20_000, "[", "]", ""),
		"objects.json": nested(20_000, `{"a":`, "}", "1"),
		"lists.yaml":   nested(20_000, "[", "]", ""),
		"objects.yaml": nested(20_000, "{a: ", "}", "1"),
	} {
		n := allocated(func() {
			_, err := Parse([]byte(doc), name)
			require.ErrorContains(t, err, "nested deeper than 64 levels", name)
		})
		require.Less(t, n, uint64(64<<20), "%s: %d bytes allocated", name, n)
	}
}

func TestSecretsAreNotEchoed(t *testing.T) {
	cert, key := selfSigned(t)
	_ = cert
	keyBody := strings.Split(key, "\n")[1] // a line of the private key's base64
	for _, c := range []struct {
		name, doc, path, secret string
	}{
		{"numeric consumer key", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: 8675309123}}}]\n",
			"consumers[0].plugins.key-auth.key", "8675309123"},
		{"numeric credential key", minimal + "consumers: [{username: alice, credentials: [{name: app, plugins: {key-auth: {key: 31337.4242}}}]}]\n",
			"consumers[0].credentials[0].plugins.key-auth.key", "31337.4242"},
		{"key-auth written as a scalar", minimal + "consumers: [{username: alice, plugins: {key-auth: sk-live-4242}}]\n",
			"consumers[0].plugins.key-auth", "sk-live-4242"},
		{"key as a list", minimal + "consumers: [{username: alice, plugins: {key-auth: {key: [sk-live-4242]}}}]\n",
			"consumers[0].plugins.key-auth.key", "sk-live-4242"},
		{"numeric client_key", withUpstream("{nodes: [{host: a, port: 1}], tls: {client_key: 99887766554433}}"),
			"services[0].upstream.tls.client_key", "99887766554433"},
		{"health check header", withUpstream("{nodes: [{host: a, port: 1}], checks: {active: {http_path: /, req_headers: [\"Authorization Bearer s3cr3t-t0ken\"]}}}"),
			"services[0].upstream.checks.active.req_headers[0]", "s3cr3t-t0ken"},
		{"tls written as a scalar", withUpstream(fmt.Sprintf("{nodes: [{host: a, port: 1}], tls: %q}", keyBody)),
			"services[0].upstream.tls", keyBody},
	} {
		errs := parseErrs(t, c.doc, "c.yaml")
		requireFieldError(t, errs, c.path, "not shown")
		require.NotContains(t, errs.Error(), c.secret, c.name)
	}

	// Numbers and booleans outside secrets are still shown: they help.
	errs := parseErrs(t, "gateway: {listen: 9080}\n"+minimal, "c.yaml")
	requireFieldError(t, errs, "gateway.listen", "got 9080")
}

func TestLongValuesAreClipped(t *testing.T) {
	long := strings.Repeat("h", 10_000)
	digits := strings.Repeat("7", 10_000)
	for _, c := range []struct {
		name, doc, path string
	}{
		{"validation", withUpstream("{nodes: [{host: " + long + ", port: 1}]}"), "services[0].upstream.nodes[0].host"},
		{"duplicate node", withUpstream("{nodes: [{host: " + long + ", port: 1}, {host: " + long + ", port: 1}]}"), "services[0].upstream.nodes[1]"},
		{"wrong type", "gateway: {access_log: {enabled: " + long + "}}\n" + minimal, "gateway.access_log.enabled"},
		{"long number", "gateway: {access_log: {enabled: " + digits + "}}\n" + minimal, "gateway.access_log.enabled"},
		// YAML caps implicit keys at 1024 characters; JSON does not.
		{"unknown plugin", `{"global_plugins": {"` + long + `": {}}}`, `global_plugins["` + long[:64] + `..."]`},
		{"unknown key", `{"gateway": {"` + long + `": 1}}`, `gateway["` + long[:64] + `..."]`},
	} {
		name := "c.yaml"
		if strings.HasPrefix(c.doc, "{") {
			name = "c.json"
		}
		errs := parseErrs(t, c.doc, name)
		requireFieldError(t, errs, c.path)
		require.Less(t, len(errs.Error()), 200*len(errs), "%s: %s", c.name, errs.Error())
	}
	errs := parseErrs(t, withUpstream("{nodes: [{host: "+long+", port: 1}]}"), "c.yaml")
	requireFieldError(t, errs, "services[0].upstream.nodes[0].host", `got "`+long[:64]+`..." (10000 bytes)`)

	// Cutting keeps whole UTF-8 characters.
	require.Equal(t, `"`+strings.Repeat("é", 32)+`..." (130 bytes)`, quote(strings.Repeat("é", 65)))
	require.Equal(t, `"a`+strings.Repeat("é", 31)+`..." (129 bytes)`, quote("a"+strings.Repeat("é", 64)))
	require.Equal(t, `"short"`, quote("short"))
}

// -c pointed at the wrong file must not print it.
func TestAnotherFileIsNotEchoed(t *testing.T) {
	shadow := "root:$6$Zk3aQ9$hSecretHash:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n"
	for _, c := range []struct{ name, doc string }{
		{"shadow-like: keys", shadow},
		{"one line: a string", "root:$6$Zk3aQ9$hSecretHash:19700:0:99999:7\n"},
		{"a list", "- hSecretHash\n"},
		{"a number", "123456789012\n"},
		{"yaml with a list as a key", "? [a, b]\n: hSecretHash\n"},
	} {
		errs := parseErrs(t, c.doc, "c.yaml")
		require.Len(t, errs, 1, "%s: %s", c.name, errs.Error())
		require.NotContains(t, errs.Error(), "hSecretHash", c.name)
		require.NotContains(t, errs.Error(), "123456789012", c.name)
	}
	errs := parseErrs(t, shadow, "c.yaml")
	require.Contains(t, errs.Error(), "not a gateway config")

	// An empty object is still a config with nothing in it, and a config
	// with a typo among known keys still names the typo.
	mustParse(t, "{}\n")
	errs = parseErrs(t, minimal+"servces: []\n", "c.yaml")
	requireFieldError(t, errs, "servces", "unknown key")
}
