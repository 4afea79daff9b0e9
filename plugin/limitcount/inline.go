package limitcount

import (
	"net"
	"strconv"

	"gateway/config"
)

// APISIX's inline Redis keys on limit-count. A config names a top-level
// redis entry (redis_id) or writes the connection inline as APISIX does:
// redis_host/redis_port/... for policy redis, redis_cluster_nodes for
// redis-cluster. Inline connections with the same settings share one
// client (Clients keys them by settings).

// APISIX's defaults for the inline keys, applied at compile so that
// validation can tell a key that was written from one that was not.
const (
	defaultRedisPort    = 6379
	defaultRedisTimeout = 1000 // ms
)

func (c *Config) validateRedis(ch *config.Check) {
	single := []struct {
		name string
		set  bool
	}{
		{"redis_host", c.RedisHost != ""}, {"redis_port", c.RedisPort != 0}, {"redis_database", c.RedisDatabase != 0},
	}
	common := []struct {
		name string
		set  bool
	}{
		{"redis_username", c.RedisUsername != ""}, {"redis_password", c.RedisPassword != ""},
		{"redis_timeout", c.RedisTimeout != 0}, {"redis_ssl", c.RedisSSL}, {"redis_ssl_verify", c.RedisSSLVerify},
	}
	clusterKeys := []struct {
		name string
		set  bool
	}{
		{"redis_cluster_nodes", len(c.RedisClusterNodes) > 0}, {"redis_cluster_name", c.RedisClusterName != ""},
	}
	refuse := func(keys []struct {
		name string
		set  bool
	}, why string) {
		for _, k := range keys {
			if k.set {
				ch.Field(k.name).Errorf("%s", why)
			}
		}
	}
	switch c.Policy {
	case "redis", "redis-cluster":
		cluster := c.Policy == "redis-cluster"
		if c.RedisID != "" {
			ch.Field("redis_id").RedisRef(c.RedisID, cluster)
			why := "not with redis_id: the connection is the top-level redis entry it names"
			refuse(single, why)
			refuse(common, why)
			refuse(clusterKeys, why)
			return
		}
		ch.Field("redis_timeout").IntRange(int64(c.RedisTimeout), 0, 60000)
		if !cluster {
			refuse(clusterKeys, `only applies with policy "redis-cluster"`)
			if c.RedisHost == "" {
				ch.Field("redis_host").Errorf(`required with policy "redis" (or name a top-level redis entry with redis_id)`)
			}
			ch.Field("redis_port").IntRange(int64(c.RedisPort), 0, 65535)
			ch.Field("redis_database").IntRange(int64(c.RedisDatabase), 0, 1<<16)
			return
		}
		refuse(single, `only applies with policy "redis"`)
		if len(c.RedisClusterNodes) == 0 {
			ch.Field("redis_cluster_nodes").Errorf(`required with policy "redis-cluster" (or name a top-level redis entry with redis_id)`)
		}
		for i, n := range c.RedisClusterNodes {
			host, port, err := net.SplitHostPort(n)
			if p, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || p < 1 || p > 65535 {
				ch.Field("redis_cluster_nodes").Index(i).Errorf("must be host:port, got %q", n)
			}
		}
	default:
		if c.RedisID != "" {
			ch.Field("redis_id").Errorf(`only applies with policy "redis" or "redis-cluster"`)
		}
		why := `only applies with policy "redis" or "redis-cluster"`
		refuse(single, why)
		refuse(common, why)
		refuse(clusterKeys, why)
	}
}

// inlineRedis is the redis entry APISIX's inline keys describe, with
// APISIX's defaults (port 6379, timeout 1000 ms). Its id, the redis label
// of the metrics, is redis_cluster_name or "limit-count:<first address>".
func (c *Config) inlineRedis() *config.Redis {
	r := &config.Redis{
		Username:  c.RedisUsername,
		Password:  c.RedisPassword,
		DB:        c.RedisDatabase,
		TimeoutMS: int64(c.RedisTimeout),
	}
	if r.TimeoutMS == 0 {
		r.TimeoutMS = defaultRedisTimeout
	}
	if c.Policy == "redis-cluster" {
		r.Cluster = true
		r.Addrs = c.RedisClusterNodes
	} else {
		port := c.RedisPort
		if port == 0 {
			port = defaultRedisPort
		}
		r.Addrs = []string{net.JoinHostPort(c.RedisHost, strconv.Itoa(port))}
	}
	r.ID = c.RedisClusterName
	if r.ID == "" {
		r.ID = "limit-count:" + r.Addrs[0]
	}
	if c.RedisSSL {
		r.TLS = &config.RedisTLS{Verify: c.RedisSSLVerify}
	}
	return r
}
