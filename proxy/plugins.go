package proxy

import (
	"crypto/subtle"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"

	"gateway/config"
	"gateway/ratelimit"
	"gateway/router"
)

// Plugins run in the fixed order of throttling.md: ip-restriction,
// key-auth, throttle policy, limit-count, then the proxy.

// ipRestriction is the compiled ip-restriction plugin.
type ipRestriction struct {
	prefixes []netip.Prefix
	allow    bool   // whitelist: listed addresses are allowed; blacklist: denied
	message  []byte // error_msg of the 403 when set (APISIX's `message`)
}

func compileIPRestriction(p *config.IPRestriction) *ipRestriction {
	r := &ipRestriction{prefixes: parsePrefixes(p.Blacklist)}
	if p.Message != "" {
		r.message = []byte(p.Message)
	}
	if len(p.Whitelist) > 0 {
		r.prefixes, r.allow = parsePrefixes(p.Whitelist), true
	}
	return r
}

func (r *ipRestriction) permits(ip netip.Addr) bool {
	listed := false
	for _, p := range r.prefixes {
		if p.Contains(ip) {
			listed = true
			break
		}
	}
	return listed == r.allow
}

// credential is one key of a consumer: the consumer (user) and the app.
type credential struct {
	key      []byte
	username []byte
	app      []byte
}

// consumerKeys finds credentials by key. Keys are looked up by their hash,
// then compared in constant time, so neither the map nor the comparison
// tells an attacker how much of a guessed key was right.
type consumerKeys map[uint64][]*credential

func compileConsumers(consumers []config.Consumer) consumerKeys {
	keys := consumerKeys{}
	add := func(key, user, app string) {
		c := &credential{key: []byte(key), username: []byte(user), app: []byte(app)}
		h := xxhash.Sum64String(key)
		keys[h] = append(keys[h], c)
	}
	for i := range consumers {
		c := &consumers[i]
		if ka := c.Plugins.KeyAuth; ka != nil && ka.Key != "" {
			add(ka.Key, c.Username, c.Username)
		}
		for j := range c.Credentials {
			cr := &c.Credentials[j]
			if ka := cr.Plugins.KeyAuth; ka != nil && ka.Key != "" {
				add(ka.Key, c.Username, cr.Name)
			}
		}
	}
	return keys
}

func (k consumerKeys) lookup(key []byte) *credential {
	var found *credential
	for _, c := range k[xxhash.Sum64(key)] {
		if subtle.ConstantTimeCompare(c.key, key) == 1 {
			found = c
		}
	}
	return found
}

// keyAuth is the key-auth plugin of one route.
type keyAuth struct {
	header []byte
	query  []byte
	hide   bool
	keys   consumerKeys
}

// throttlePolicy is a compiled throttle policy and its metric children per
// bound route.
type throttlePolicy struct {
	id string
	p  *ratelimit.Policy
}

func (g *Gateway) compileThrottlePolicy(p *config.ThrottlePolicy) *throttlePolicy {
	return &throttlePolicy{id: p.ID, p: ratelimit.NewPolicy(g.limits, p)}
}

// throttleBinding is a policy bound to one route.
type throttleBinding struct {
	policy    *throttlePolicy
	throttled [4]lazyCounter // by ratelimit.Counter
}

func (g *Gateway) bindThrottle(p *throttlePolicy, routeID string) *throttleBinding {
	b := &throttleBinding{policy: p}
	for _, c := range []ratelimit.Counter{ratelimit.CounterAPI, ratelimit.CounterUser, ratelimit.CounterApp, ratelimit.CounterIP} {
		b.throttled[c] = lazyCounter{vec: g.metrics.throttled, labels: [3]string{p.id, routeID, c.String()}}
	}
	return b
}

// lazyCounter is a child of gateway_throttled_total that is created on its
// first increment. Rejections are the exception, and creating every child
// up front cost 10,000 throttled routes 40,000 zero-valued series: ~26 MB
// of heap and a fifth of every /metrics scrape. The first rejection pays
// one label lookup; WithLabelValues returns the same child to concurrent
// callers and across reloads, so no count is lost.
type lazyCounter struct {
	vec    *prometheus.CounterVec
	labels [3]string
	c      atomic.Pointer[prometheus.Counter]
}

func (l *lazyCounter) Inc() {
	c := l.c.Load()
	if c == nil {
		child := l.vec.WithLabelValues(l.labels[:]...)
		l.c.CompareAndSwap(nil, &child)
		c = l.c.Load()
	}
	(*c).Inc()
}

// limitCount is the limit-count plugin of one route.
type limitCount struct {
	c            *ratelimit.Count
	key          keySpec
	rejectedCode int
	rejectedBody []byte
	showHeaders  bool
	throttled    lazyCounter
}

func (g *Gateway) compileLimitCount(p *config.LimitCount, routeID string) *limitCount {
	identity := "route:" + routeID
	if p.Group != "" {
		identity = "group:" + p.Group
	}
	lc := &limitCount{
		c:            ratelimit.NewCount(g.limits, identity, p),
		rejectedCode: p.RejectedCode,
		showHeaders:  p.ShowLimitQuotaHeader,
		throttled:    lazyCounter{vec: g.metrics.throttled, labels: [3]string{"", routeID, "limit-count"}},
	}
	switch p.KeyType {
	case "constant":
		lc.key = keySpec{parts: []keyPart{{lit: []byte(p.Key)}}}
	case "var_combination":
		lc.key = parseKeyTemplate(p.Key)
	default:
		lc.key = compileHashKey("vars", p.Key)
	}
	if p.RejectedMsg != "" {
		lc.rejectedBody = appendJSONString([]byte(`{"error_msg":"`), []byte(p.RejectedMsg))
		lc.rejectedBody = append(lc.rejectedBody, `"}`...)
	}
	return lc
}

// rateState is what the X-RateLimit-* headers report for a request.
type rateState struct {
	set        bool
	limit      int64
	remaining  int64
	reset      time.Duration
	retryAfter bool
}

func (r *rateState) merge(res ratelimit.Result) {
	if !r.set || res.Remaining < r.remaining {
		r.set, r.limit, r.remaining, r.reset = true, res.Limit, res.Remaining, res.Reset
	}
}

// keySpec is a template of literals and variables, used for chash keys and
// limit-count keys: `remote_addr`, `$remote_addr$http_user_agent`, ...
type keySpec struct {
	parts []keyPart
}

type keyPart struct {
	lit  []byte
	isV  bool
	kind router.VarKind
	name []byte
}

// compileHashKey turns an upstream's hash_on/key into a key template.
func compileHashKey(hashOn, key string) keySpec {
	switch hashOn {
	case "header":
		return keySpec{parts: []keyPart{{isV: true, kind: router.VarHTTP, name: []byte(key)}}}
	case "cookie":
		return keySpec{parts: []keyPart{{isV: true, kind: router.VarCookie, name: []byte(key)}}}
	case "consumer":
		return keySpec{parts: []keyPart{{isV: true, kind: router.VarConsumerName}}}
	case "vars_combinations":
		return parseKeyTemplate(key)
	}
	if kind, name, ok := router.ParseVar(key); ok {
		return keySpec{parts: []keyPart{{isV: true, kind: kind, name: []byte(name)}}}
	}
	return keySpec{parts: []keyPart{{isV: true, kind: router.VarRemoteAddr}}}
}

// parseKeyTemplate parses `$var` references; everything else is literal.
func parseKeyTemplate(t string) keySpec {
	var k keySpec
	for len(t) > 0 {
		if t[0] != '$' {
			i := 0
			for i < len(t) && t[i] != '$' {
				i++
			}
			k.parts = append(k.parts, keyPart{lit: []byte(t[:i])})
			t = t[i:]
			continue
		}
		i := 1
		for i < len(t) && (t[i] == '_' || t[i] >= 'a' && t[i] <= 'z' || t[i] >= 'A' && t[i] <= 'Z' || t[i] >= '0' && t[i] <= '9') {
			i++
		}
		if kind, name, ok := router.ParseVar(t[1:i]); ok {
			k.parts = append(k.parts, keyPart{isV: true, kind: kind, name: []byte(name)})
		} else {
			k.parts = append(k.parts, keyPart{lit: []byte(t[:i])})
		}
		t = t[i:]
	}
	return k
}

// appendKey renders the key for one request; variables come from src.
func (k *keySpec) appendKey(dst []byte, src router.VarSource) []byte {
	for i := range k.parts {
		p := &k.parts[i]
		if p.isV {
			dst = append(dst, src.Var(p.kind, p.name)...)
		} else {
			dst = append(dst, p.lit...)
		}
	}
	return dst
}
