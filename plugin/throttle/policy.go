package throttle

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"gateway/config"
	"gateway/ratelimit"
)

// Counter names one of a throttle policy's counters.
type Counter uint8

// The counters of a throttle policy, in the order Policy.Admit checks them.
const (
	CounterAPI  Counter = iota // per API scope: the route (type 1) or the policy (type 2)
	CounterUser                // per consumer, within the scope
	CounterApp                 // per credential of a consumer, within the scope
	CounterIP                  // per client IP, within the scope
)

var counterNames = [...]string{CounterAPI: "api", CounterUser: "user", CounterApp: "app", CounterIP: "ip"}

// String returns the counter's metric label: "api", "user", "app" or "ip".
func (c Counter) String() string {
	if int(c) < len(counterNames) {
		return counterNames[c]
	}
	return "Counter(" + strconv.Itoa(int(c)) + ")"
}

// Policy is a compiled Huawei throttle policy: the API counter per scope,
// and, when configured, counters per user, app and client IP within each
// scope, with the specials that replace the user or app limit for one
// object.
type Policy struct {
	id     string
	key    string                 // the Env.Shared key (policyKey)
	conf   *config.ThrottlePolicy // a copy: kept steps must not keep the config they came from
	shared bool                   // type 2: all bound routes share one scope

	api, user, app, ip *ratelimit.Limiter // user, app, ip nil when not configured

	userLimit, appLimit int64 // 0: no limit unless a special says so

	// Special limits, precomputed so that a request looks them up without
	// allocating (m[string(b)] does not copy b). Values are > 0, or -1 for a
	// special of 0 calls, so that it does not read as "no special".
	userSpecials map[string]int64
	appSpecials  map[string]appSpecial
}

// appSpecial holds the APP specials of one credential name: written as
// "<name>" (limit, when bare) or as "<username>/<name>" (byUser).
type appSpecial struct {
	bare   bool
	limit  int64
	byUser map[string]int64
}

// sameCounters reports whether p and q count on the same limiters.
func (p *Policy) sameCounters(q *Policy) bool {
	return p.api == q.api && p.user == q.user && p.app == q.app && p.ip == q.ip
}

// NewPolicy compiles p, taking its limiters from store so that a reload
// keeps the counters of every counter whose policy id, type, limit, window
// and kind did not change (a changed special keeps them and applies its new
// limit at once). With a nil store the counters are private.
func NewPolicy(store *ratelimit.Store, p *config.ThrottlePolicy) *Policy {
	window := PolicyWindow(p)
	kind := ratelimit.ParseWindow(p.Window)
	conf := *p
	conf.Specials = slices.Clone(p.Specials) // not the config's array
	pol := &Policy{
		id:        p.ID,
		key:       policyKey(p.ID),
		conf:      &conf,
		shared:    p.Type == 2,
		userLimit: p.UserCallLimits,
		appLimit:  p.AppCallLimits,
	}
	for _, sp := range p.Specials {
		lim := sp.CallLimits
		if lim <= 0 {
			lim = -1
		}
		switch sp.ObjectType {
		case "USER":
			if pol.userSpecials == nil {
				pol.userSpecials = make(map[string]int64)
			}
			pol.userSpecials[sp.ObjectID] = lim
		case "APP":
			if pol.appSpecials == nil {
				pol.appSpecials = make(map[string]appSpecial)
			}
			// Usernames cannot contain '/', so the first one separates.
			user, name, qualified := strings.Cut(sp.ObjectID, "/")
			if !qualified {
				name = user
			}
			a := pol.appSpecials[name]
			if qualified {
				if a.byUser == nil {
					a.byUser = make(map[string]int64)
				}
				a.byUser[user] = lim
			} else {
				a.bare, a.limit = true, lim
			}
			pol.appSpecials[name] = a
		}
	}

	// The type is part of every identity: type 1 and type 2 key their
	// counters by different scopes, so counters cannot carry over between
	// them.
	prefix := "throttle\x00" + p.ID + "\x00" + strconv.Itoa(p.Type) + "\x00"
	pol.api = store.Limiter(prefix+"api", p.APICallLimits, window, kind)
	if p.UserCallLimits > 0 || pol.userSpecials != nil {
		pol.user = store.Limiter(prefix+"user", p.UserCallLimits, window, kind)
	}
	if p.AppCallLimits > 0 || pol.appSpecials != nil {
		pol.app = store.Limiter(prefix+"app", p.AppCallLimits, window, kind)
	}
	if p.IPCallLimits > 0 {
		pol.ip = store.Limiter(prefix+"ip", p.IPCallLimits, window, kind)
	}
	return pol
}

// PolicyWindow returns p's window, time_interval x time_unit, saturated at
// the largest time.Duration (~292 years: a window that never ends) since
// config allows up to 2147483647 days. An empty or unknown unit counts as
// MINUTE, Huawei's default; config rejects unknown spellings.
func PolicyWindow(p *config.ThrottlePolicy) time.Duration {
	unit := time.Minute
	switch p.TimeUnit {
	case "SECOND":
		unit = time.Second
	case "HOUR":
		unit = time.Hour
	case "DAY":
		unit = 24 * time.Hour
	}
	return ratelimit.Windows(p.TimeInterval, unit)
}

// ID returns the policy's id.
func (p *Policy) ID() string { return p.id }

// Shared reports whether the policy is type 2 (all bound routes share its
// counters).
func (p *Policy) Shared() bool { return p.shared }

// PolicyChecks is the buffer size Policy.Admit needs to avoid allocating.
const PolicyChecks = 4

// Admit checks a request against the policy at time now and counts it when
// every applicable counter admits it. scope identifies the route the
// request matched (ignored for type 2 policies, whose routes share one
// scope); it must be stable across reloads for counters to carry over (e.g.
// the xxhash of the route ID rather than its position). user is the
// consumer's username and app the credential name, empty when the request
// has none (the app counter counts the credential per user, as credential
// names are unique only within a consumer); ip is the client address after
// real_ip, in any canonical form.
//
// buf is scratch space the caller owns, reused per request; with capacity
// PolicyChecks or more (or nil, which uses the stack) Admit does not
// allocate.
//
// When rejected, counter is the blocking counter and res its state (for
// Retry-After); when admitted, res is the most constrained counter (for
// X-RateLimit-*) and counter is CounterAPI, meaningless.
func (p *Policy) Admit(now time.Time, scope uint64, user, app, ip []byte, buf []ratelimit.Check) (ok bool, counter Counter, res ratelimit.Result) {
	var inline [PolicyChecks]ratelimit.Check
	if cap(buf) < PolicyChecks {
		buf = inline[:]
	}
	var kinds [PolicyChecks]Counter
	checks, _ := p.checks(scope, user, app, ip, buf, &kinds)
	ok, blocking, res := ratelimit.Admit(now, checks)
	if !ok {
		counter = kinds[blocking]
	}
	return ok, counter, res
}

// checks appends the counters that apply to a request to buf[:0] (with
// capacity PolicyChecks), and their kinds to kinds; it returns them and the
// scope they were keyed in (0 for a type 2 policy).
func (p *Policy) checks(scope uint64, user, app, ip []byte, buf []ratelimit.Check, kinds *[PolicyChecks]Counter) ([]ratelimit.Check, uint64) {
	if p.shared {
		scope = 0
	}
	checks := append(buf[:0], ratelimit.Check{L: p.api, Key: ratelimit.Mix(scope)})
	kinds[0] = CounterAPI
	// The user within the scope keys the user counter, and scopes the app
	// counter: credential names are unique only within a consumer.
	var userKey uint64
	hashedUser := false
	if p.user != nil && len(user) > 0 {
		if lim := p.userLimitFor(user); lim != 0 {
			userKey, hashedUser = scopedKey(scope, user), true
			kinds[len(checks)] = CounterUser
			checks = append(checks, ratelimit.Check{L: p.user, Key: userKey, Limit: lim})
		}
	}
	if p.app != nil && len(app) > 0 {
		if lim := p.appLimitFor(user, app); lim != 0 {
			if !hashedUser {
				userKey = scopedKey(scope, user)
			}
			kinds[len(checks)] = CounterApp
			checks = append(checks, ratelimit.Check{L: p.app, Key: scopedKey(userKey, app), Limit: lim})
		}
	}
	if p.ip != nil && len(ip) > 0 {
		kinds[len(checks)] = CounterIP
		checks = append(checks, ratelimit.Check{L: p.ip, Key: scopedKey(scope, ip)})
	}
	return checks, scope
}

// userLimitFor returns the user counter's limit for user: its USER special,
// else user_call_limits (0: the user is not counted).
func (p *Policy) userLimitFor(user []byte) int64 {
	if lim, ok := p.userSpecials[string(user)]; ok {
		return lim
	}
	return p.userLimit
}

// appLimitFor returns the app counter's limit for app of user: a special
// written "<user>/<app>", else one written "<app>", else app_call_limits (0:
// the app is not counted).
func (p *Policy) appLimitFor(user, app []byte) int64 {
	if a, ok := p.appSpecials[string(app)]; ok {
		if lim, ok := a.byUser[string(user)]; ok {
			return lim
		}
		if a.bare {
			return a.limit
		}
	}
	return p.appLimit
}

// scopedKey is the counter key of value within scope: the xxhash of value
// combined with the scope, then mixed so the shard and slot bits depend on
// both. Two (scope, value) pairs meet with probability 2^-64.
func scopedKey(scope uint64, value []byte) uint64 {
	return ratelimit.Mix(xxhash.Sum64(value) + scope*0x9e3779b97f4a7c15)
}
