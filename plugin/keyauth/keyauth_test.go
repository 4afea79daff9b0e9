package keyauth

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
	"gateway/plugin"
)

// TestStepSharedBySameConfig: the routes of one snapshot with the same
// header, query and hide_credentials get one step; any difference gets
// its own, and a new snapshot builds its own (its consumers may differ).
func TestStepSharedBySameConfig(t *testing.T) {
	cfg := &config.Config{}
	env := plugin.NewEnv(cfg, nil, nil)
	conf := func(header, query string, hide bool) *Config {
		return &Config{Header: header, Query: query, HideCredentials: hide}
	}
	a, err := compile(conf("apikey", "apikey", false), env)
	require.NoError(t, err)
	b, err := compile(conf("apikey", "apikey", false), env)
	require.NoError(t, err)
	require.Same(t, a, b)
	for _, c := range []*Config{conf("X-Key", "apikey", false), conf("apikey", "key", false), conf("apikey", "apikey", true)} {
		o, err := compile(c, env)
		require.NoError(t, err)
		require.NotSame(t, a, o)
		s := o.(*step)
		require.Equal(t, c.Header, string(s.header))
		require.Equal(t, c.Query, string(s.query))
		require.Equal(t, c.HideCredentials, s.hide)
	}
	next, err := compile(conf("apikey", "apikey", false), plugin.NewEnv(cfg, nil, nil))
	require.NoError(t, err)
	require.NotSame(t, a, next)
}
