package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func withControlAPI(body string) string {
	return "gateway:\n  control_api: " + body + "\n" + minimal
}

func TestControlAPIToken(t *testing.T) {
	cfg := mustParse(t, minimal)
	require.Empty(t, cfg.Gateway.ControlAPI.Token, "no token by default: the control API stays open on loopback")
	require.False(t, cfg.Gateway.ControlAPI.ProtectMetrics)

	cfg = mustParse(t, withControlAPI(`{token: literal-token-0123456789, protect_metrics: true, allowed_hosts: [Gateway.Internal, 10.0.0.7]}`))
	require.Equal(t, "literal-token-0123456789", cfg.Gateway.ControlAPI.Token)
	require.True(t, cfg.Gateway.ControlAPI.ProtectMetrics)
	require.Equal(t, []string{"gateway.internal", "10.0.0.7"}, cfg.Gateway.ControlAPI.AllowedHosts)
}

func TestControlAPITokenFromEnv(t *testing.T) {
	const secret = "s3cret-from-the-environment"
	t.Setenv("GW_TEST_CONTROL_TOKEN", secret)
	cfg := mustParse(t, withControlAPI(`{token: "$env://GW_TEST_CONTROL_TOKEN"}`))
	require.Equal(t, secret, cfg.Gateway.ControlAPI.Token)

	// A missing variable is a load error naming the key and the variable.
	errs := parseErrs(t, withControlAPI(`{token: "$env://GW_TEST_NOT_SET_ANYWHERE"}`), "test.yaml")
	requireFieldError(t, errs, "gateway.control_api.token", "GW_TEST_NOT_SET_ANYWHERE", "not set")

	t.Setenv("GW_TEST_EMPTY_TOKEN", "")
	errs = parseErrs(t, withControlAPI(`{token: "$env://GW_TEST_EMPTY_TOKEN"}`), "test.yaml")
	requireFieldError(t, errs, "gateway.control_api.token", "GW_TEST_EMPTY_TOKEN", "empty")

	errs = parseErrs(t, withControlAPI(`{token: "$env://1BAD-NAME"}`), "test.yaml")
	requireFieldError(t, errs, "gateway.control_api.token", "invalid environment variable name")

	// A token from the environment that is unusable is reported without
	// its value.
	t.Setenv("GW_TEST_SHORT_TOKEN", "tiny-secret")
	errs = parseErrs(t, withControlAPI(`{token: "$env://GW_TEST_SHORT_TOKEN"}`), "test.yaml")
	requireFieldError(t, errs, "gateway.control_api.token", "at least 16 characters")
	require.NotContains(t, errs.Error(), "tiny-secret")
}

func TestControlAPITokenErrorsHideTheValue(t *testing.T) {
	for _, tc := range []struct{ name, token, want string }{
		{"too short", "short-secret", "at least 16 characters"},
		{"space", "has a space in the secret", "printable ASCII"},
		{"control character", `"tab\tin-the-secret-value"`, "printable ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrs(t, withControlAPI(`{token: `+tc.token+`}`), "test.yaml")
			requireFieldError(t, errs, "gateway.control_api.token", tc.want)
			require.NotContains(t, errs.Error(), "secret")
		})
	}
}

func TestControlAPITokenWrongTypeNotPrinted(t *testing.T) {
	// An unquoted numeric token is still the token.
	errs := parseErrs(t, withControlAPI(`{token: 98765432109876543210}`), "test.yaml")
	requireFieldError(t, errs, "gateway.control_api.token", "secret")
	require.NotContains(t, errs.Error(), "98765432109876543210")
}

func TestControlAPIValidation(t *testing.T) {
	runErrCases(t, []errCase{
		{"protect_metrics needs a token", withControlAPI(`{protect_metrics: true}`),
			"gateway.control_api.protect_metrics", []string{"needs gateway.control_api.token"}},
		{"allowed host with a port", withControlAPI(`{allowed_hosts: ["gw.internal:9091"]}`),
			"gateway.control_api.allowed_hosts[0]", []string{`got "gw.internal:9091"`}},
		{"unknown key", withControlAPI(`{tokens: x}`), "gateway.control_api.tokens", nil},
	})
}
