package config

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Limits of the spec that several checks share.
const (
	maxID          = 256
	maxUsername    = 512
	maxName        = 65536
	maxHosts       = 32
	maxPaths       = 64
	maxPathLen     = 4096
	maxNodes       = 1024
	maxPort        = 65535
	maxWeight      = 65535
	maxRetries     = 65535
	maxThreshold   = 254
	maxCallLimit   = 2147483647
	maxBodySize    = 1 << 30
	minHeaderSize  = 1024
	maxHeaderSize  = 1 << 20
	maxHostnameLen = 253
	maxHeaderCount = 10000
)

// validator checks a decoded and resolved config and collects every
// problem. It never stops early.
type validator struct {
	cfg  *Config
	errs Errors

	upstreams map[string]bool // ids of top-level upstreams
	policies  map[string]bool // ids of throttle policies
	paths     pathMemo        // a Loader's; nil: parse each time
}

func validate(cfg *Config) Errors { return validateWith(cfg, nil) }

// validateWith is validate reading route paths through paths, when not
// nil (incremental.go).
func validateWith(cfg *Config, paths pathMemo) Errors {
	v := &validator{cfg: cfg, upstreams: map[string]bool{}, policies: map[string]bool{}, paths: paths}
	for _, u := range cfg.Upstreams {
		v.upstreams[u.ID] = true
	}
	for _, p := range cfg.ThrottlePolicies {
		v.policies[p.ID] = true
	}
	ownGlobal := v.globalRules() // validate_seeds.go: before services, which read GlobalPlugins
	v.gateway("gateway", &cfg.Gateway)
	v.services()
	ids := newIDSet(v, "upstreams")
	for i := range cfg.Upstreams {
		path := indexPath("upstreams", i)
		ids.check(field(path, "id"), cfg.Upstreams[i].ID, maxID)
		v.upstream(path, &cfg.Upstreams[i])
	}
	v.streamRoutes() // types_stream.go; after the upstreams, whose hash keys it reads
	v.redisList()    // validate_redis.go
	v.policiesList()
	v.consumers()
	v.gatewayResponses()
	v.plugins("global_plugins", ownGlobal)
	v.routeConflicts()
	v.tlsObjects() // validate_tls.go
	return v.errs
}

// add records an error. String arguments printed with %q are clipped to
// maxQuoted bytes; secret values must never be arguments.
func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, clipArgs(args)...)})
}

func field(path, name string) string { return keyPath(path, name) }

// idSet checks that ids are well-formed and unique within one list.
type idSet struct {
	v    *validator
	seen map[string]string // id -> path of its first use
	what string
}

func newIDSet(v *validator, what string) *idSet {
	return &idSet{v: v, seen: map[string]string{}, what: what}
}

// check validates an id and remembers it; it reports false when the id is
// unusable, so that callers can skip checks that would only repeat it.
func (s *idSet) check(path, id string, maxLen int) bool {
	if id == "" {
		s.v.add(path, "required")
		return false
	}
	if !validID(id, maxLen) {
		s.v.add(path, "must match ^[a-zA-Z0-9-_.]+$ and have 1..%d characters, got %q", maxLen, id)
		return false
	}
	if first, dup := s.seen[id]; dup {
		s.v.add(path, "duplicate id %q in %s (first at %s)", id, s.what, first)
		return false
	}
	s.seen[id] = path
	return true
}

func validID(id string, maxLen int) bool {
	if len(id) == 0 || len(id) > maxLen {
		return false
	}
	for _, c := range []byte(id) {
		if !isWordByte(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func validUsername(name string) bool {
	if len(name) == 0 || len(name) > maxUsername {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) && c != '-' {
			return false
		}
	}
	return true
}

// Small range checks that name the bad value.

func (v *validator) intRange(path string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.add(path, "must be %d..%d, got %d", lo, hi, n)
	}
}

// Durations. Every Seconds field is checked by positive or nonNegative:
// at most a day, since a larger value (1e300) overflows time.Duration
// (about 292 years) or makes a timeout that never fires; and not below a
// millisecond, since a value that rounds to 0 would turn a timeout into
// "none" or "keep the default".
const (
	minDuration Seconds = 0.001
	maxDuration Seconds = 86400
)

// positive checks a duration that must be set: 0.001..86400 seconds.
func (v *validator) positive(path string, s Seconds) {
	if s < minDuration || s > maxDuration {
		v.add(path, "must be %v..%v seconds (1 ms to 1 day), got %v", float64(minDuration), float64(maxDuration), float64(s))
	}
}

// nonNegative checks a duration where 0 has a meaning of its own (no
// debounce, no budget, keep the upstream's value): 0 or 0.001..86400.
func (v *validator) nonNegative(path string, s Seconds) {
	if s != 0 && (s < minDuration || s > maxDuration) {
		v.add(path, "must be 0 or %v..%v seconds (1 ms to 1 day), got %v", float64(minDuration), float64(maxDuration), float64(s))
	}
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	if !slices.Contains(allowed, got) {
		v.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	}
}

// ---- shared syntax checks ----

func (v *validator) ipOrCIDR(path, s string) {
	if !validIPOrCIDR(s) {
		v.add(path, "must be an IP address or CIDR, got %q", s)
	}
}

func validIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validHeaderName accepts an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !isWordByte(c) && !strings.ContainsRune("!#$%&'*+-.^`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHostname accepts a DNS name (labels of letters, digits, '-' and '_')
// or an IP address.
func validHostname(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > maxHostnameLen {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isWordByte(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// ---- plugins ----

func (v *validator) plugins(path string, p map[string]any) {
	for _, name := range sortedPluginNames(p) {
		if c, ok := p[name].(Validating); ok {
			c.Validate(&Check{v: v, path: field(path, name)})
		}
	}
}

func sortedPluginNames(p map[string]any) []string {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
