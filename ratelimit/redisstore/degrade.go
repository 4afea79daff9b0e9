package redisstore

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Degradation is the Redis state one policy saw last: it sets
// gateway_throttle_degraded{policy} and logs each change of state once.
// It outlives snapshots (Clients.Degradation), so a reload neither logs
// again nor resets the gauge.
type Degradation struct {
	policy string
	down   atomic.Bool
	gauge  prometheus.Gauge
	log    *zap.Logger
}

// Degradation returns policy's state, the same across reloads.
func (cs *Clients) Degradation(policy string) *Degradation {
	root := cs
	if cs.base != nil {
		root = cs.base
	}
	root.mu.Lock()
	defer root.mu.Unlock()
	if root.degr == nil {
		root.degr = map[string]*Degradation{}
	}
	d := root.degr[policy]
	if d == nil {
		d = &Degradation{policy: policy, log: root.log}
		if root.met != nil {
			d.gauge = root.met.Degraded.WithLabelValues(policy)
			d.gauge.Set(0)
		}
		root.degr[policy] = d
	}
	return d
}

// Down records a failed round trip of client c; fallback says whether the
// policy counts locally meanwhile (allow_degradation) or refuses.
func (d *Degradation) Down(c *Client, err error, fallback bool) {
	if d.down.Load() || d.down.Swap(true) {
		return
	}
	if d.gauge != nil {
		d.gauge.Set(1)
	}
	mode := "refusing requests with 503 THROTTLE_STORE_UNAVAILABLE (allow_degradation is false)"
	if fallback {
		mode = "counting on this instance only (allow_degradation)"
	}
	d.log.Warn("throttle policy: redis unavailable, "+mode,
		zap.String("policy", d.policy), zap.String("redis", c.name), zap.Error(err))
}

// Up records a successful round trip.
func (d *Degradation) Up(c *Client) {
	if !d.down.Load() || !d.down.Swap(false) {
		return
	}
	if d.gauge != nil {
		d.gauge.Set(0)
	}
	d.log.Info("throttle policy: redis available again, counting in redis",
		zap.String("policy", d.policy), zap.String("redis", c.name))
}

// IsDown reports whether the last round trip failed.
func (d *Degradation) IsDown() bool { return d.down.Load() }
