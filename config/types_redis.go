package config

// Redis is one connection to a Redis server (or, later, a Redis Cluster)
// that holds counters shared by several gateway instances: throttle
// policies with throttle_strategy "cluster" and limit-count with policy
// "redis" name it by id (redis_id).
type Redis struct {
	ID       string   `json:"id"`
	Addrs    []string `json:"addrs"` // host:port; one for a single server
	Username string   `json:"username"`
	Password string   `json:"password" secret:"true"`
	DB       int      `json:"db"`
	// Cluster: the addrs are seed nodes of a Redis Cluster.
	Cluster bool `json:"cluster"`
	// TimeoutMS bounds each command (dial, read and write), in
	// milliseconds; past it the request counts as a Redis failure.
	TimeoutMS int64 `json:"timeout_ms"`
	// PoolSize is the most connections kept to the server; 0: go-redis's
	// default (10 per CPU).
	PoolSize int `json:"pool_size"`
	// TLS: connect with TLS (absent: plain TCP).
	TLS *RedisTLS `json:"tls"`
}

// RedisTLS is a redis entry's TLS client settings, in the shape of an
// upstream's tls.
type RedisTLS struct {
	Verify bool `json:"verify"` // default true
	// ServerName is the SNI and the name verified ("": the host of the
	// first address).
	ServerName string `json:"server_name"`
	// CACertificates are ids of ca_certificates trusted besides the system
	// roots.
	CACertificates []string `json:"ca_certificates"`
	// ClientCert and ClientKey (PEM) authenticate the gateway to a Redis
	// that asks for client certificates (tls-auth-clients).
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key" secret:"true"`

	// CAPEM is the PEM of the CA certificates named, filled when loading.
	CAPEM []byte `json:"-"`
}
