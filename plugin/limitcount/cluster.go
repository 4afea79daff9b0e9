package limitcount

import (
	"errors"
	"strconv"
	"time"

	"gateway/config"
	"gateway/plugin"
	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
)

// cluster counts limit-count in Redis (policy: redis): one admit script
// round trip per request, shared by every gateway on the same Redis. When
// Redis fails, allow_degradation counts on the local limiter instead, else
// the request is refused with 503 THROTTLE_STORE_UNAVAILABLE.
type cluster struct {
	client   *redisstore.Client
	degr     *redisstore.Degradation
	fallback bool
	window   time.Duration
	sliding  bool
	limit    int64
	// prefix of every key: "gw:lc:<identity>:<window ms>:<kind>:<count>:",
	// then the request key's hash in hex. The count and window are in the
	// key so that a changed config starts fresh counters.
	prefix string
}

func newCluster(env *plugin.Env, c *Config, identity string, window time.Duration) (*cluster, error) {
	if env.Redis == nil {
		return nil, errors.New("limit-count policy redis: no redis clients")
	}
	for i := range len(env.Config.Redis) + 1 {
		var r *config.Redis
		switch {
		case c.RedisID == "":
			r = c.inlineRedis() // APISIX's inline keys
		case i < len(env.Config.Redis) && env.Config.Redis[i].ID == c.RedisID:
			r = &env.Config.Redis[i]
		default:
			continue
		}
		kind := ratelimit.ParseWindow(c.WindowType)
		return &cluster{
			client:   env.Redis.Get(r),
			degr:     env.Redis.Degradation("limit-count:" + identity),
			fallback: c.AllowDegradation,
			window:   window,
			sliding:  kind == ratelimit.Sliding,
			limit:    c.Count,
			prefix: "gw:lc:" + identity + ":" + strconv.FormatInt(window.Milliseconds(), 10) + ":" + kind.String() +
				":" + strconv.FormatInt(c.Count, 10) + ":",
		}, nil
	}
	return nil, errors.New("limit-count: unknown redis " + strconv.Quote(c.RedisID))
}

// admit counts key in Redis, or in local when Redis fails and
// allow_degradation is set; unavailable reports a refusal because Redis
// failed.
func (c *cluster) admit(now time.Time, local *ratelimit.Limiter, key uint64) (ok bool, res ratelimit.Result, unavailable bool) {
	keys := [1]string{c.prefix + strconv.FormatUint(key, 16)}
	limits := [1]int64{c.limit}
	r, err := c.client.Admit(now, keys[:], limits[:], c.window, c.sliding)
	if err != nil {
		c.degr.Down(c.client, err, c.fallback)
		if !c.fallback {
			return false, ratelimit.Result{}, true
		}
		ok, res = local.Admit(now, key)
		return ok, res, false
	}
	c.degr.Up(c.client)
	return r.OK, ratelimit.Result{Limit: r.Limit, Remaining: r.Remaining, Reset: r.Reset}, false
}
