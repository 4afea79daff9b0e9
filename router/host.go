package router

import (
	"fmt"
	"net/netip"
	"strings"
)

// hosts holds one radix tree per host key, in the three tiers of routing.md
// ("Host"): exact names, wildcard suffixes and the services without hosts.
type hosts struct {
	exact map[string]*node // lower-cased host -> tree

	// wild maps a wildcard's suffix, dot included (".example.com" for
	// "*.example.com"), to its tree. A request host is looked up at each of
	// its dots from the left, which tries the longest matching suffix first
	// and costs one lookup per label whatever the number of wildcards.
	wild             map[string]*node
	wildMin, wildMax int // suffix lengths present, to skip lookups that cannot hit

	any *node // services without hosts; nil when there are none
}

func newHosts() *hosts {
	return &hosts{exact: map[string]*node{}, wild: map[string]*node{}}
}

// trees returns the trees of a service's hosts, creating them; the same
// host listed twice yields one tree.
func (h *hosts) trees(names []string) ([]*node, error) {
	if len(names) == 0 {
		if h.any == nil {
			h.any = &node{}
		}
		return []*node{h.any}, nil
	}
	var ts []*node
	for i, name := range names {
		key, wild, err := hostKey(name)
		if err != nil {
			return nil, &indexError{"hosts", i, err}
		}
		m := h.exact
		if wild {
			m = h.wild
			if len(h.wild) == 0 || len(key) < h.wildMin {
				h.wildMin = len(key)
			}
			h.wildMax = max(h.wildMax, len(key))
		}
		t := m[key]
		if t == nil {
			t = &node{}
			m[key] = t
		}
		dup := false
		for _, o := range ts {
			dup = dup || o == t
		}
		if !dup {
			ts = append(ts, t)
		}
	}
	return ts, nil
}

// hostKey returns the map key of a configured host: lower case, without a
// trailing dot, an IPv6 literal in brackets (as normalizeHost leaves a
// request's), and for "*.example.com" the suffix ".example.com".
func hostKey(name string) (key string, wild bool, err error) {
	key = strings.TrimSuffix(strings.ToLower(name), ".")
	if strings.HasPrefix(key, "*.") {
		key, wild = key[1:], true
	}
	switch {
	case len(key) == 0 || key == ".":
		return "", false, fmt.Errorf("invalid host %q", name)
	case strings.IndexByte(key, '*') >= 0:
		return "", false, fmt.Errorf("invalid host %q: '*' only as a whole leading label", name)
	}
	if a, err := netip.ParseAddr(key); err == nil && a.Is6() {
		key = "[" + key + "]"
	}
	return key, wild, nil
}

// lookup calls try with the trees of host's tiers in order until it returns
// true. It is written as a loop over the tiers rather than returning a list
// so that a match allocates nothing.
func (h *hosts) lookup(host []byte, w *walker) {
	if len(h.exact) > 0 {
		// The string(host) conversion in a map index does not allocate.
		if t := h.exact[string(host)]; t != nil && w.try(t) {
			return
		}
	}
	if len(h.wild) > 0 {
		// The wildcard label must be non-empty: start after host[0].
		for i := 1; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			n := len(host) - i
			if n < h.wildMin {
				break
			}
			if n > h.wildMax {
				continue
			}
			if t := h.wild[string(host[i:])]; t != nil && w.try(t) {
				return
			}
		}
	}
	if h.any != nil {
		w.try(h.any)
	}
}
