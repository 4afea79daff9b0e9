package throttle

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"gateway/config"
	"gateway/ratelimit"
	"gateway/ratelimit/redisstore"
)

// clusterPolicy counts a throttle policy in Redis (throttle_strategy:
// cluster), shared by every gateway that uses the same Redis: one admit
// script round trip per request checks and counts all of the request's
// counters. When Redis fails, allow_degradation counts on the policy's
// local counters instead, else the request is refused.
type clusterPolicy struct {
	local    *Policy
	client   *redisstore.Client
	degr     *redisstore.Degradation
	fallback bool // allow_degradation
	window   time.Duration
	sliding  bool
	// prefix and suffix frame every key: "gw:tp:{<policy id>:" + the scope
	// in hex + "}:" + suffix + counter + ":" + limit + ":" + key in hex. The
	// hash tag holds the policy and scope, so one request's counters share
	// a cluster slot; type, window and limits are in the key so that a
	// changed policy starts fresh counters.
	prefix, suffix string

	// batch is cluster_batch (> 1: on): a round trip takes up to batch
	// permits, which later requests with the same counters use locally
	// until the window ends (reserve.go).
	batch int64
	resv  atomic.Pointer[reservations]
}

// errNoRedis is a cluster policy compiled without the Redis clients (a
// caller that passes no Env.Redis).
var errNoRedis = errors.New("throttle_strategy cluster: no redis clients")

func newClusterPolicy(cfg *config.Config, clients *redisstore.Clients, local *Policy, p *config.ThrottlePolicy) (*clusterPolicy, error) {
	if clients == nil {
		return nil, errNoRedis
	}
	var r *config.Redis
	for i := range cfg.Redis {
		if cfg.Redis[i].ID == p.RedisID {
			r = &cfg.Redis[i]
		}
	}
	if r == nil {
		return nil, errors.New("throttle policy " + strconv.Quote(p.ID) + ": unknown redis " + strconv.Quote(p.RedisID))
	}
	window := PolicyWindow(p)
	kind := ratelimit.ParseWindow(p.Window)
	return &clusterPolicy{
		local:    local,
		client:   clients.Get(r),
		degr:     clients.Degradation(p.ID),
		fallback: p.AllowDegradation,
		window:   window,
		sliding:  kind == ratelimit.Sliding,
		prefix:   "gw:tp:{" + p.ID + ":",
		suffix:   ":" + strconv.Itoa(p.Type) + ":" + strconv.FormatInt(window.Milliseconds(), 10) + ":" + kind.String() + ":",
		batch:    p.ClusterBatch,
	}, nil
}

// Admit is Policy.Admit in Redis. unavailable reports a request refused
// because Redis failed and allow_degradation is false.
func (c *clusterPolicy) Admit(now time.Time, scope uint64, user, app, ip []byte) (ok bool, counter Counter, res ratelimit.Result, unavailable bool) {
	var buf [PolicyChecks]ratelimit.Check
	var kinds [PolicyChecks]Counter
	checks, scope := c.local.checks(scope, user, app, ip, buf[:], &kinds)
	var keysBuf [PolicyChecks]string
	var limitsBuf [PolicyChecks]int64
	keys, limits := keysBuf[:len(checks)], limitsBuf[:len(checks)]
	head := c.prefix + strconv.FormatUint(scope, 16) + "}" + c.suffix
	for i, ch := range checks {
		lim := ch.Limit
		if lim == 0 {
			lim = ch.L.Limit()
		}
		limits[i] = lim
		keys[i] = head + kinds[i].String() + ":" + strconv.FormatInt(lim, 10) + ":" + strconv.FormatUint(ch.Key, 16)
	}
	if c.batch > 1 {
		if ok, res := c.fromReserve(now, keys); ok {
			return true, CounterAPI, res, false
		}
	}
	r, err := c.client.AdmitN(now, keys, limits, c.window, c.sliding, c.batch)
	if err != nil {
		c.degr.Down(c.client, err, c.fallback)
		if !c.fallback {
			return false, CounterAPI, ratelimit.Result{}, true
		}
		ok, counter, res = c.local.Admit(now, scope, user, app, ip, buf[:])
		return ok, counter, res, false
	}
	c.degr.Up(c.client)
	res = ratelimit.Result{Limit: r.Limit, Remaining: r.Remaining, Reset: r.Reset}
	if !r.OK {
		return false, kinds[r.Index], res, false
	}
	if c.batch > 1 && r.Taken > 1 {
		res.Remaining += c.reserve(now, keys, r)
	}
	return true, CounterAPI, res, false
}
