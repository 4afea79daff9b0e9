package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/internal/testcert"
)

const redisPolicyDoc = `
redis:
  - {id: r1, addrs: ["127.0.0.1:6379"], password: "$env://GW_TEST_REDIS_PW", db: 2}
throttle_policies:
  - {id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND, throttle_strategy: cluster, redis_id: r1}
` + minimal

func TestRedisConfigLoads(t *testing.T) {
	t.Setenv("GW_TEST_REDIS_PW", "s3cret")
	cfg := mustParse(t, redisPolicyDoc)
	require.Equal(t, []Redis{{ID: "r1", Addrs: []string{"127.0.0.1:6379"}, Password: "s3cret", DB: 2, TimeoutMS: 100}}, cfg.Redis)
	p := cfg.ThrottlePolicies[0]
	require.Equal(t, "cluster", p.ThrottleStrategy)
	require.Equal(t, "r1", p.RedisID)
	require.True(t, p.AllowDegradation, "allow_degradation defaults to true")

	local := mustParse(t, "throttle_policies: [{id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND}]\n"+minimal)
	require.Equal(t, "local", local.ThrottlePolicies[0].ThrottleStrategy)
}

func TestRedisConfigErrors(t *testing.T) {
	pol := func(extra string) string {
		return "redis: [{id: r1, addrs: [\"127.0.0.1:6379\"]}]\nthrottle_policies: [{id: p, api_call_limits: 10, time_interval: 1, time_unit: SECOND, " + extra + "}]\n" + minimal
	}
	red := func(entry string) string { return "redis: [" + entry + "]\n" + minimal }
	runErrCases(t, []errCase{
		{"no addrs", red(`{id: r1}`), "redis[0].addrs", []string{"required"}},
		{"bad addr", red(`{id: r1, addrs: [localhost]}`), "redis[0].addrs[0]", []string{"host:port", "localhost"}},
		{"two addrs", red(`{id: r1, addrs: ["a:1", "b:2"]}`), "redis[0].addrs", []string{"cluster"}},
		{"duplicate id", red(`{id: r1, addrs: ["a:1"]}, {id: r1, addrs: ["a:1"]}`), "redis[1].id", []string{"r1"}},
		{"cluster db", red(`{id: r1, addrs: ["a:1"], cluster: true, db: 1}`), "redis[0].db", []string{"cluster"}},
		{"tls client cert", red(`{id: r1, addrs: ["a:1"], tls: {client_cert: x, client_key: hunter2}}`), "redis[0].tls.client_cert", []string{"invalid certificate"}},
		{"tls client key missing", red(`{id: r1, addrs: ["a:1"], tls: {client_cert: x}}`), "redis[0].tls.client_key", []string{"required"}},
		{"tls unknown ca", red(`{id: r1, addrs: ["a:1"], tls: {ca_certificates: [nope]}}`), "redis[0].tls.ca_certificates[0]", []string{"nope"}},
		{"timeout", red(`{id: r1, addrs: ["a:1"], timeout_ms: 0}`), "redis[0].timeout_ms", []string{"0"}},
		{"strategy", pol(`throttle_strategy: global`), "throttle_policies[0].throttle_strategy", []string{"global"}},
		{"no redis_id", pol(`throttle_strategy: cluster`), "throttle_policies[0].redis_id", []string{"required"}},
		{"unknown redis_id", pol(`throttle_strategy: cluster, redis_id: nope`), "throttle_policies[0].redis_id", []string{"nope"}},
		{"redis_id when local", pol(`redis_id: r1`), "throttle_policies[0].redis_id", []string{"cluster"}},
		{"cluster_batch", pol(`cluster_batch: 10`), "throttle_policies[0].cluster_batch", []string{"cluster"}},
	})
}

// A bad secret reference names the variable, never a value.
func TestRedisPasswordReference(t *testing.T) {
	errs := parseErrs(t, "redis: [{id: r1, addrs: [\"a:1\"], password: \"$env://GW_TEST_REDIS_UNSET_PW\"}]\n"+minimal, "test.yaml")
	requireFieldError(t, errs, "redis[0].password", "GW_TEST_REDIS_UNSET_PW")
}

func TestRedisTLSLoads(t *testing.T) {
	ca := testcert.NewCA("redis-ca")
	doc := `
ca_certificates:
  - id: rc
    cert: |
` + indentN(string(ca.CertPEM), 6) + `
redis:
  - {id: r1, addrs: ["127.0.0.1:6380"], tls: {ca_certificates: [rc], server_name: redis.internal}}
  - {id: r2, addrs: ["127.0.0.1:6381"], tls: {verify: false}}
` + minimal
	cfg := mustParse(t, doc)
	require.Equal(t, &RedisTLS{Verify: true, ServerName: "redis.internal", CACertificates: []string{"rc"}, CAPEM: append(ca.CertPEM, '\n')}, cfg.Redis[0].TLS)
	require.Equal(t, &RedisTLS{Verify: false}, cfg.Redis[1].TLS)
	require.Nil(t, mustParse(t, redisPolicyDocNoEnv).Redis[0].TLS, "no tls: plain TCP")
}

const redisPolicyDocNoEnv = `redis: [{id: r1, addrs: ["127.0.0.1:6379"]}]` + "\n" + minimal

// A bad client key is reported without its value.
func TestRedisTLSClientKeyNotPrinted(t *testing.T) {
	errs := parseErrs(t, "redis: [{id: r1, addrs: [\"a:1\"], tls: {client_cert: x, client_key: hunter2}}]\n"+minimal, "test.yaml")
	require.NotContains(t, errs.Error(), "hunter2")
}
