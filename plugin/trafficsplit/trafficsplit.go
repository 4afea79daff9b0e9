// Package trafficsplit is APISIX's traffic-split plugin: rules matched by
// vars, in order, each with weighted upstreams chosen by smooth weighted
// round robin (a 90/10 split is exact over every 10 requests). The step
// names the upstream in plugin.Request.Upstream; the proxy calls it with
// that upstream's own balancer, pools and health.
package trafficsplit

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"

	"gateway/config"
	"gateway/plugin"
	"gateway/router"
)

// Name is the plugin's key under plugins.
const Name = "traffic-split"

// Priority is APISIX's (966).
const Priority = 966

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config on a route, a service or global_plugins.
type Config struct {
	Rules []Rule `json:"rules"`
}

// Rule is one rule: when one of Match holds (or Match is empty), the
// request goes to one of WeightedUpstreams.
type Rule struct {
	Match             []Match    `json:"match"`
	WeightedUpstreams []Weighted `json:"weighted_upstreams"`
}

// Match holds when every one of its vars does.
type Match struct {
	Vars []config.Var `json:"vars"`
}

// Weighted is one upstream of a rule: upstream_id names a top-level
// upstream, upstream is one written inline; neither is the route's own
// upstream.
type Weighted struct {
	UpstreamID string           `json:"upstream_id"`
	Upstream   *config.Upstream `json:"upstream"`
	Weight     *int             `json:"weight"` // default 1
}

// Limits of the config.
const (
	MaxRules      = 20
	MaxWeighted   = 20
	MaxWeight     = 100000
	defaultWeight = 1
)

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	rc := ch.Field("rules")
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		rc.Errorf("must have 1..%d rules, got %d", MaxRules, len(c.Rules))
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		ri := rc.Index(i)
		for j := range r.Match {
			for k := range r.Match[j].Vars {
				x := &r.Match[j].Vars[k]
				x.Ref = ri.Field("match").Index(j).Field("vars").Index(k).Var(x.Name)
			}
		}
		wc := ri.Field("weighted_upstreams")
		if len(r.WeightedUpstreams) == 0 || len(r.WeightedUpstreams) > MaxWeighted {
			wc.Errorf("must have 1..%d entries, got %d", MaxWeighted, len(r.WeightedUpstreams))
		}
		total := 0
		for j, w := range r.WeightedUpstreams {
			if w.Upstream != nil {
				if w.UpstreamID != "" {
					wc.Index(j).Errorf("upstream_id and upstream are exclusive, got both")
				}
				wc.Index(j).Field("upstream").Upstream(w.Upstream)
			}
			if w.Weight != nil {
				wc.Index(j).Field("weight").IntRange(int64(*w.Weight), 0, MaxWeight)
				total += *w.Weight
			} else {
				total += defaultWeight
			}
		}
		if len(r.WeightedUpstreams) > 0 && total == 0 {
			wc.Errorf("at least one weight must be above 0")
		}
	}
}

// wrr is nginx's smooth weighted round robin over a rule's upstreams.
type wrr struct {
	mu      sync.Mutex
	weight  []int
	current []int
	total   int
}

func (w *wrr) pick() int {
	w.mu.Lock()
	best := -1
	for i, wt := range w.weight {
		if wt == 0 {
			continue
		}
		w.current[i] += wt
		if best < 0 || w.current[i] > w.current[best] {
			best = i
		}
	}
	w.current[best] -= w.total
	w.mu.Unlock()
	return best
}

type rule struct {
	match []*router.Conds // any holds; none: always
	ids   []string        // "" is the route's own upstream
	wrr   wrr
}

type step struct{ rules []*rule }

func compile(conf any, env *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	known := map[string]bool{}
	for i := range env.Config.Upstreams {
		known[env.Config.Upstreams[i].ID] = true
	}
	s := &step{}
	for i := range c.Rules {
		cr := &c.Rules[i]
		r := &rule{}
		for j := range cr.Match {
			conds, err := router.CompileConds(cr.Match[j].Vars)
			if err != nil {
				return nil, fmt.Errorf("rules[%d].match[%d]: %w", i, j, err)
			}
			r.match = append(r.match, conds)
		}
		for j, w := range cr.WeightedUpstreams {
			if w.UpstreamID != "" && !known[w.UpstreamID] {
				return nil, fmt.Errorf("rules[%d].weighted_upstreams[%d].upstream_id: unknown upstream %q", i, j, w.UpstreamID)
			}
			id := w.UpstreamID
			if w.Upstream != nil {
				// Named by its content: the same inline upstream on several
				// routes is one upstream, and a reload that keeps it keeps
				// its pools, health and balancer state's identity.
				sum, err := json.Marshal(w.Upstream)
				if err != nil {
					return nil, err
				}
				id = "traffic-split/" + strconv.FormatUint(xxhash.Sum64(sum), 16)
				if env.AddUpstream == nil {
					return nil, fmt.Errorf("rules[%d].weighted_upstreams[%d].upstream: inline upstreams need the proxy", i, j)
				}
				if err := env.AddUpstream(id, w.Upstream); err != nil {
					return nil, fmt.Errorf("rules[%d].weighted_upstreams[%d].upstream: %w", i, j, err)
				}
			}
			wt := defaultWeight
			if w.Weight != nil {
				wt = *w.Weight
			}
			r.ids = append(r.ids, id)
			r.wrr.weight = append(r.wrr.weight, wt)
			r.wrr.total += wt
		}
		r.wrr.current = make([]int, len(r.ids))
		s.rules = append(s.rules, r)
	}
	return s, nil
}

func (s *step) OnRequest(r *plugin.Request) config.ResponseType {
	for _, rl := range s.rules {
		if rl.matches(r.Vars) {
			r.Upstream = rl.ids[rl.wrr.pick()]
			return config.RespNone
		}
	}
	return config.RespNone
}

func (rl *rule) matches(src router.VarSource) bool {
	if len(rl.match) == 0 {
		return true
	}
	for _, m := range rl.match {
		if m.Match(src) {
			return true
		}
	}
	return false
}
