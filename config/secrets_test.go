package config

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

func consumerKey(key string) string {
	return minimal + "consumers: [{username: alice, credentials: [{name: app, plugins: {key-auth: {key: '" + key + "'}}}]}]\n"
}

func loadedKey(t *testing.T, cfg *Config) string {
	t.Helper()
	p := cfg.Consumers[0].Credentials[0].Plugins["key-auth"]
	// The key-auth config is a pointer to a struct with a Key field.
	return reflectString(t, p, "Key")
}

func TestSecretReferenceFromEnvironment(t *testing.T) {
	t.Setenv("GW_TEST_UKEY", "secret-from-env")
	cfg := mustParse(t, consumerKey("$env://GW_TEST_UKEY"))
	require.Equal(t, "secret-from-env", loadedKey(t, cfg), "the reference is replaced by the variable")

	// Each load reads the environment again (a reload picks up a new value).
	t.Setenv("GW_TEST_UKEY", "rotated")
	cfg = mustParse(t, consumerKey("$env://GW_TEST_UKEY"))
	require.Equal(t, "rotated", loadedKey(t, cfg))
}

func TestSecretLiteralsStayLiteral(t *testing.T) {
	for _, lit := range []string{"$2b$10$abcdefghijklmnopqrstuv", "env://X", "$ENV://X", "k$env://X", "$envX"} {
		cfg := mustParse(t, consumerKey(lit))
		require.Equal(t, lit, loadedKey(t, cfg))
	}
}

func TestSecretReferenceErrors(t *testing.T) {
	const path = "consumers[0].credentials[0].plugins.key-auth.key"
	t.Setenv("GW_TEST_SET_SECRET", "do-not-print-me")
	t.Setenv("GW_TEST_EMPTY_SECRET", "")
	cases := []struct{ ref, want string }{
		{"$env://GW_TEST_UNSET_SECRET", "environment variable GW_TEST_UNSET_SECRET is not set"},
		{"$env://", "invalid environment variable name"},
		{"$env://GW_TEST_SET_SECRET/key", "invalid environment variable name"},
		{"$env://GW_TEST_EMPTY_SECRET", "environment variable GW_TEST_EMPTY_SECRET is empty"},
		{"$secret://vault/kv/alice/key", `secret provider "vault" is not supported`},
		{"$secret://aws/k", `secret provider "aws" is not supported`},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			errs := parseErrs(t, consumerKey(c.ref), "test.yaml")
			requireFieldError(t, errs, path, c.want)
			require.NotContains(t, errs.Error(), "do-not-print-me")
		})
	}
}

// reflectString reads a string field of a plugin config (config does not
// import the plugins, so it cannot name their types).
func reflectString(t *testing.T, conf any, field string) string {
	t.Helper()
	v := reflect.ValueOf(conf)
	require.Equal(t, reflect.Pointer, v.Kind())
	return v.Elem().FieldByName(field).String()
}
