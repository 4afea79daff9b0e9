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

// The Redis keys: redis_id or APISIX's inline keys, never both, each only
// with the policy it belongs to; a bad password never shows in errors.
func TestRedisPolicyErrors(t *testing.T) {
	base := "redis: [{id: r1, addrs: [\"127.0.0.1:6379\"]}]\n" +
		"services: [{id: s, upstream: {nodes: [{host: 10.0.0.1, port: 80}]}, routes: [{paths: [/]}]}]\n"
	for conf, want := range map[string]string{
		`policy: redis-cluster`:                                              `global_plugins.limit-count.redis_cluster_nodes: required`,
		`policy: redis`:                                                      `global_plugins.limit-count.redis_host: required`,
		`policy: redis-cluster, redis_id: r1`:                                `redis_id: redis "r1" is a single server`,
		`policy: redis, redis_id: nope`:                                      `global_plugins.limit-count.redis_id: unknown redis "nope"`,
		`redis_host: 127.0.0.1`:                                              `global_plugins.limit-count.redis_host: only applies with policy`,
		`policy: redis, redis_id: r1, redis_host: x`:                         `global_plugins.limit-count.redis_host: not with redis_id`,
		`policy: redis, redis_host: x, redis_cluster_nodes: ["a:1"]`:         `redis_cluster_nodes: only applies with policy "redis-cluster"`,
		`policy: redis-cluster, redis_cluster_nodes: [a]`:                    `redis_cluster_nodes[0]: must be host:port`,
		`policy: redis-cluster, redis_cluster_nodes: ["a:1"], redis_host: x`: `redis_host: only applies with policy "redis"`,
		`redis_password: hunter2`:                                            `redis_password: only applies with policy`,
	} {
		_, err := config.Parse([]byte(base+"global_plugins: {limit-count: {count: 1, time_window: 1, "+conf+"}}\n"), "test.yaml")
		require.ErrorContains(t, err, want, conf)
		require.NotContains(t, err.Error(), "hunter2")
	}
	for _, conf := range []string{
		`policy: redis, redis_id: r1`,
		`policy: redis, redis_host: 10.0.0.9, redis_port: 6380, redis_password: "$env://GW_LC_PW", redis_database: 1, redis_timeout: 50, redis_ssl: true`,
		`policy: redis-cluster, redis_cluster_nodes: ["10.0.0.1:7000", "10.0.0.2:7000"], redis_cluster_name: main`,
	} {
		t.Setenv("GW_LC_PW", "pw")
		_, err := config.Parse([]byte(base+"global_plugins: {limit-count: {count: 1, time_window: 1, "+conf+"}}\n"), "test.yaml")
		require.NoError(t, err, conf)
	}
}

// APISIX's inline keys make the connection with APISIX's defaults.
func TestInlineRedis(t *testing.T) {
	c := &Config{Policy: "redis", RedisHost: "10.0.0.9"}
	require.Equal(t, &config.Redis{ID: "limit-count:10.0.0.9:6379", Addrs: []string{"10.0.0.9:6379"}, TimeoutMS: 1000}, c.inlineRedis())
	c = &Config{Policy: "redis-cluster", RedisClusterNodes: []string{"a:1", "b:2"}, RedisClusterName: "main", RedisTimeout: 20, RedisSSL: true}
	require.Equal(t, &config.Redis{ID: "main", Addrs: []string{"a:1", "b:2"}, Cluster: true, TimeoutMS: 20, TLS: &config.RedisTLS{}}, c.inlineRedis())
}
