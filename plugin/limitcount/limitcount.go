// Package limitcount is APISIX's limit-count plugin: count requests per key
// in a fixed or sliding window.
package limitcount

import (
	"time"

	"github.com/cespare/xxhash/v2"

	"gateway/config"
	"gateway/plugin"
	"gateway/ratelimit"
)

// Name is the plugin's key under plugins.
const Name = "limit-count"

// Priority: last of the request checks (APISIX 1002).
const Priority = 1002

const maxCallLimit = 2147483647

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config on a route, a service or global_plugins.
type Config struct {
	Count                int64  `json:"count"`
	TimeWindow           int64  `json:"time_window"`
	KeyType              string `json:"key_type"` // var, var_combination, constant
	Key                  string `json:"key"`
	RejectedCode         int    `json:"rejected_code"`
	RejectedMsg          string `json:"rejected_msg"`
	ShowLimitQuotaHeader bool   `json:"show_limit_quota_header"`
	WindowType           string `json:"window_type"` // fixed, sliding
	Group                string `json:"group"`

	// Where the counters live (APISIX's policy): local, or redis /
	// redis-cluster (the top-level redis entry redis_id names, a single
	// server or a cluster, shared by every gateway).
	Policy           string `json:"policy"`
	RedisID          string `json:"redis_id,omitempty"`
	AllowDegradation bool   `json:"allow_degradation"`
	// APISIX's inline connection keys, instead of redis_id (inline.go).
	RedisHost         string   `json:"redis_host,omitempty"`
	RedisPort         int      `json:"redis_port,omitempty"`
	RedisUsername     string   `json:"redis_username,omitempty"`
	RedisPassword     string   `json:"redis_password,omitempty" secret:"true"`
	RedisDatabase     int      `json:"redis_database,omitempty"`
	RedisTimeout      int      `json:"redis_timeout,omitempty"`
	RedisSSL          bool     `json:"redis_ssl,omitempty"`
	RedisSSLVerify    bool     `json:"redis_ssl_verify,omitempty"`
	RedisClusterNodes []string `json:"redis_cluster_nodes,omitempty"`
	RedisClusterName  string   `json:"redis_cluster_name,omitempty"`

	// key is Key parsed as KeyType says, kept by Validate at load.
	key config.KeyTemplate
}

// SetDefaults implements config.Defaulter (APISIX's defaults).
func (c *Config) SetDefaults() {
	c.KeyType = "var"
	c.Key = "remote_addr"
	c.RejectedCode = 503
	c.ShowLimitQuotaHeader = true
	c.WindowType = "fixed"
	c.Policy = "local"
	c.AllowDegradation = true
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	ch.Field("count").IntRange(c.Count, 1, maxCallLimit)
	ch.Field("time_window").IntRange(c.TimeWindow, 1, maxCallLimit)
	ch.Field("key_type").OneOf(c.KeyType, "var", "var_combination", "constant")
	switch c.KeyType {
	case "var":
		c.key = config.VarKey(ch.Field("key").Var(c.Key))
	case "var_combination":
		c.key = ch.Field("key").VarTemplate(c.Key)
	case "constant":
		c.key = config.LiteralKey(c.Key)
	}
	ch.Field("rejected_code").IntRange(int64(c.RejectedCode), 200, 599)
	ch.Field("window_type").OneOf(c.WindowType, "fixed", "sliding")
	ch.Field("policy").OneOf(c.Policy, "local", "redis", "redis-cluster")
	c.validateRedis(ch) // inline.go
}

type step struct {
	l            *ratelimit.Limiter
	cluster      *cluster // policy redis; nil: local
	key          plugin.Key
	rejectedCode int
	rejectedBody []byte
	showHeaders  bool
	throttled    *plugin.LazyCounter
}

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	// Routes of a group share counters; otherwise the route's id keeps
	// them across reloads.
	identity := "route:" + env.RouteID
	if c.Group != "" {
		identity = "group:" + c.Group
	}
	window := ratelimit.Windows(c.TimeWindow, time.Second)
	s := &step{
		l:            env.Limits.Limiter("limit-count\x00"+identity, c.Count, window, ratelimit.ParseWindow(c.WindowType)),
		rejectedCode: c.RejectedCode,
		showHeaders:  c.ShowLimitQuotaHeader,
		throttled:    plugin.NewLazyCounter(env.Throttled, "", env.RouteID, "limit-count"),
	}
	s.key = plugin.NewKey(c.key)
	if c.Policy != "local" {
		cl, err := newCluster(env, c, identity, window)
		if err != nil {
			return nil, err
		}
		s.cluster = cl
	}
	if c.RejectedMsg != "" {
		s.rejectedBody = plugin.AppendJSONString([]byte(`{"error_msg":"`), []byte(c.RejectedMsg))
		s.rejectedBody = append(s.rejectedBody, `"}`...)
	}
	return s, nil
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	r.Scratch = s.key.Append(r.Scratch[:0], r.Vars)
	if len(r.Scratch) == 0 {
		r.Scratch = append(r.Scratch, r.ClientIPB...)
	}
	var ok bool
	var res ratelimit.Result
	if s.cluster != nil {
		var unavailable bool
		ok, res, unavailable = s.cluster.admit(r.Now, s.l, xxhash.Sum64(r.Scratch))
		if unavailable {
			return config.RespThrottleStoreUnavailable
		}
	} else {
		ok, res = s.l.Admit(r.Now, xxhash.Sum64(r.Scratch))
	}
	if s.showHeaders {
		r.Rate.Merge(res)
	}
	if ok {
		return config.RespNone
	}
	s.throttled.Inc()
	r.Status, r.Body = s.rejectedCode, s.rejectedBody
	if s.showHeaders {
		r.Rate = plugin.RateState{Set: true, Limit: res.Limit, Remaining: res.Remaining, Reset: res.Reset}
	}
	return config.RespThrottled
}
