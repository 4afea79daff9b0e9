package config

import (
	"crypto/tls"
	"net"
	"strconv"
)

// ---- redis connections and the keys that name them ----

func (v *validator) redisList() {
	ids := newIDSet(v, "redis")
	for i := range v.cfg.Redis {
		r := &v.cfg.Redis[i]
		path := indexPath("redis", i)
		ids.check(field(path, "id"), r.ID, maxID)
		if len(r.Addrs) == 0 {
			v.add(field(path, "addrs"), "required: at least one host:port")
		}
		for j, a := range r.Addrs {
			host, port, err := net.SplitHostPort(a)
			if err == nil {
				var n int
				n, err = strconv.Atoi(port)
				if err == nil && (n < 1 || n > 65535 || host == "") {
					err = strconv.ErrRange
				}
			}
			if err != nil {
				v.add(indexPath(field(path, "addrs"), j), "must be host:port, got %q", a)
			}
		}
		if len(r.Addrs) > 1 && !r.Cluster {
			v.add(field(path, "addrs"), "must hold one address unless cluster is true (got %d)", len(r.Addrs))
		}
		if r.Cluster && r.DB != 0 {
			v.add(field(path, "db"), "must be 0 with cluster (Redis Cluster has only database 0), got %d", r.DB)
		}
		if r.TLS != nil {
			tp := field(path, "tls")
			switch t := r.TLS; {
			case t.ClientCert == "" && t.ClientKey == "":
			case t.ClientCert == "":
				v.add(field(tp, "client_cert"), "required with client_key")
			case t.ClientKey == "":
				v.add(field(tp, "client_key"), "required with client_cert")
			default:
				if _, err := tls.X509KeyPair([]byte(t.ClientCert), []byte(t.ClientKey)); err != nil {
					v.add(field(tp, "client_cert"), "invalid certificate and key: %v", err)
				}
			}
			if r.TLS.ServerName != "" && !validHostname(r.TLS.ServerName) {
				v.add(field(tp, "server_name"), "must be a host name, got %q", r.TLS.ServerName)
			}
		}
		v.intRange(field(path, "db"), int64(r.DB), 0, 1<<16)
		v.intRange(field(path, "timeout_ms"), r.TimeoutMS, 1, 60000)
		v.intRange(field(path, "pool_size"), int64(r.PoolSize), 0, 100000)
	}
}

// redisCAs checks redis tls.ca_certificates and fills CAPEM (called with
// the loaded CA certificates by tlsObjects).
func (v *validator) redisCAs(cas map[string][]byte) {
	for i := range v.cfg.Redis {
		t := v.cfg.Redis[i].TLS
		if t == nil {
			continue
		}
		var pemAll []byte
		for j, id := range t.CACertificates {
			if !v.caKnown(id) {
				v.add(indexPath(field(field(indexPath("redis", i), "tls"), "ca_certificates"), j), "unknown CA certificate %q", id)
				continue
			}
			pemAll = append(append(pemAll, cas[id]...), '\n')
		}
		t.CAPEM = pemAll
	}
}

// redisKnown reports whether id names an entry of the top-level redis list.
func (v *validator) redisKnown(id string) bool {
	for i := range v.cfg.Redis {
		if v.cfg.Redis[i].ID == id {
			return true
		}
	}
	return false
}

// redisRef checks a redis_id key at path.
func (v *validator) redisRef(path, id string) {
	switch {
	case id == "":
		v.add(path, "required: the id of an entry of the top-level redis list")
	case !v.redisKnown(id):
		v.add(path, "unknown redis %q: no entry of the top-level redis list has that id", id)
	}
}

// policyStrategy checks a throttle policy's cluster counting keys.
func (v *validator) policyStrategy(path string, p *ThrottlePolicy) {
	v.oneOf(field(path, "throttle_strategy"), p.ThrottleStrategy, "local", "cluster")
	switch p.ThrottleStrategy {
	case "cluster":
		v.redisRef(field(path, "redis_id"), p.RedisID)
	default:
		if p.RedisID != "" {
			v.add(field(path, "redis_id"), `only applies with throttle_strategy "cluster"`)
		}
	}
	v.intRange(field(path, "cluster_batch"), p.ClusterBatch, 0, 1000000)
	if p.ClusterBatch > 1 && p.ThrottleStrategy != "cluster" {
		v.add(field(path, "cluster_batch"), `only applies with throttle_strategy "cluster"`)
	}
}

// RedisRef checks that id names an entry of the top-level redis list whose
// cluster setting is cluster, for plugins that count in Redis
// (limit-count's redis_id: policy redis wants a single server,
// redis-cluster a cluster).
func (c *Check) RedisRef(id string, cluster bool) {
	c.v.redisRef(c.path, id)
	for i := range c.v.cfg.Redis {
		if r := &c.v.cfg.Redis[i]; r.ID == id && r.Cluster != cluster {
			if cluster {
				c.Errorf("redis %q is a single server (cluster: false); policy redis-cluster needs a cluster entry", id)
			} else {
				c.Errorf("redis %q is a cluster (cluster: true); use policy redis-cluster", id)
			}
		}
	}
}
