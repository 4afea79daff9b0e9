package limitcount

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

// Validate keeps the key it parsed, so that compile never parses it again.
func TestValidateKeepsParsedKey(t *testing.T) {
	for keyType, want := range map[string]config.KeyTemplate{
		`key_type: var, key: http_x_user`: config.VarKey(config.VarRef{Kind: config.VarHTTP, Arg: "x-user"}),
		`key_type: var_combination, key: "$consumer_name-$remote_addr"`: {Parts: []config.KeyPart{
			{IsVar: true, Var: config.VarRef{Kind: config.VarConsumerName}},
			{Lit: "-"},
			{IsVar: true, Var: config.VarRef{Kind: config.VarRemoteAddr}},
		}},
		`key_type: constant, key: "$not a variable"`: config.LiteralKey("$not a variable"),
		`window_type: fixed`:                         config.VarKey(config.VarRef{Kind: config.VarRemoteAddr}), // the defaults
	} {
		doc := "services: [{id: s, upstream: {nodes: [{host: 10.0.0.1, port: 80}]}, routes: [{paths: [/]}]}]\n" +
			"global_plugins: {limit-count: {count: 1, time_window: 1, " + keyType + "}}\n"
		cfg, err := config.Parse([]byte(doc), "test.yaml")
		require.NoError(t, err, keyType)
		c := config.Plugin[Config](cfg.GlobalPlugins, Name)
		require.NotNil(t, c)
		require.Equal(t, want, c.key, keyType)
	}
}
