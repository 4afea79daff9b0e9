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

// Redis Cluster and APISIX's inline connection keys are not supported yet:
// refused at load, never accepted and ignored.
func TestRedisPolicyRefused(t *testing.T) {
	base := "redis: [{id: r1, addrs: [\"127.0.0.1:6379\"]}]\n" +
		"services: [{id: s, upstream: {nodes: [{host: 10.0.0.1, port: 80}]}, routes: [{paths: [/]}]}]\n"
	for conf, want := range map[string]string{
		`policy: redis-cluster`:                          `global_plugins.limit-count.redis_id: required`,
		`policy: redis-cluster, redis_id: r1`:            `redis_id: redis "r1" is a single server`,
		`redis_host: 127.0.0.1`:                          `global_plugins.limit-count.redis_host: inline Redis connection keys are not supported yet`,
		`redis_cluster_nodes: ["127.0.0.1:7000"]`:        `global_plugins.limit-count.redis_cluster_nodes: inline Redis connection keys are not supported yet`,
		`policy: redis, redis_id: nope`:                  `global_plugins.limit-count.redis_id: unknown redis "nope"`,
		`redis_password: hunter2, policy: redis-cluster`: `redis_password: inline`,
	} {
		_, err := config.Parse([]byte(base+"global_plugins: {limit-count: {count: 1, time_window: 1, "+conf+"}}\n"), "test.yaml")
		require.ErrorContains(t, err, want, conf)
		require.NotContains(t, err.Error(), "hunter2")
	}
}
