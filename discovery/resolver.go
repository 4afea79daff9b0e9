// Package discovery keeps the node sets of upstreams whose nodes come from
// service discovery (issue 21; APISIX's discovery_type). Only DNS is
// implemented: A/AAAA records, or SRV records for a name starting with '_',
// re-resolved at the records' TTL.
//
// A Manager owns one Watcher (one goroutine) per discovered upstream and
// service name; the proxy tells it which ones a config wants (Sync) and
// reads each Watcher's current node set, an immutable value swapped with one
// atomic store. The package knows nothing of the proxy.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"gateway/config"
)

// TTL bounds: a record's TTL is clamped to [MinTTL, MaxTTL] before it
// schedules the next resolution.
const (
	MinTTL = time.Second
	MaxTTL = 300 * time.Second
)

// resolvConf is where the nameservers come from when the config names
// none; a variable for tests.
var resolvConf = "/etc/resolv.conf"

// Resolver is a DNS client over a fixed list of nameservers, tried in order.
// net.Resolver does not expose record TTLs, which set the re-resolution
// rhythm, hence github.com/miekg/dns.
type Resolver struct {
	servers []string // ip:port
	timeout time.Duration
	err     error // why there are no servers (resolv.conf unreadable)
}

// NewResolver builds the resolver gateway.resolver describes: its
// nameservers, or those of /etc/resolv.conf when it lists none. A
// resolv.conf that cannot be read is not an error here: every lookup then
// fails with the reason, which the watchers log.
func NewResolver(c config.Resolver) *Resolver {
	r := &Resolver{timeout: c.Timeout.Duration()}
	if r.timeout <= 0 {
		r.timeout = 2 * time.Second
	}
	for _, ns := range c.Nameservers {
		if addr, err := config.NameserverAddr(ns); err == nil {
			r.servers = append(r.servers, addr)
		}
	}
	if len(c.Nameservers) > 0 {
		return r
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		r.err = fmt.Errorf("no gateway.resolver.nameservers and %s: %w", resolvConf, err)
		return r
	}
	for _, s := range cc.Servers {
		r.servers = append(r.servers, net.JoinHostPort(strings.Trim(s, "[]"), cc.Port))
	}
	if len(r.servers) == 0 {
		r.err = fmt.Errorf("no gateway.resolver.nameservers and none in %s", resolvConf)
	}
	return r
}

// Servers returns the nameservers the resolver asks, ip:port.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// errNoRecords is an answer without a usable record.
var errNoRecords = errors.New("no records")

// RcodeError is a DNS answer with an error code (NXDOMAIN, SERVFAIL...).
type RcodeError struct {
	Name  string
	Rcode int
}

func (e *RcodeError) Error() string {
	return e.Name + ": " + dns.RcodeToString[e.Rcode]
}

// Lookup resolves a service: name's A and AAAA records as nodes on port
// (which must not be 0), or, when srv, its SRV records, each target's
// addresses on the record's port. Every node has weight 1; an SRV record's
// priority becomes the node's priority negated, so that the lowest SRV
// priority is the highest node priority the balancer prefers. ttl is the
// smallest TTL of the records used. The nodes are sorted and distinct. An
// empty answer is an error.
func (r *Resolver) Lookup(ctx context.Context, name string, port int, srv bool) (nodes []config.Node, ttl time.Duration, err error) {
	if r == nil {
		return nil, 0, errors.New("no resolver")
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	minTTL := uint32(0)
	seen := false
	noteTTL := func(t uint32) {
		if !seen || t < minTTL {
			minTTL, seen = t, true
		}
	}
	if !srv {
		addrs, err := r.addresses(ctx, name, noteTTL, nil)
		if err != nil {
			return nil, 0, err
		}
		for _, a := range addrs {
			nodes = append(nodes, config.Node{Host: a, Port: port, Weight: 1})
		}
	} else {
		resp, err := r.query(ctx, name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range resp.Answer {
			s, ok := rr.(*dns.SRV)
			if !ok {
				if _, cname := rr.(*dns.CNAME); cname {
					noteTTL(rr.Header().Ttl)
				}
				continue
			}
			if s.Target == "." || s.Port == 0 {
				continue // "service not available" (RFC 2782)
			}
			noteTTL(s.Hdr.Ttl)
			addrs, err := r.addresses(ctx, s.Target, noteTTL, resp.Extra)
			if err != nil {
				return nil, 0, fmt.Errorf("SRV target %s: %w", s.Target, err)
			}
			for _, a := range addrs {
				nodes = append(nodes, config.Node{Host: a, Port: int(s.Port), Weight: 1, Priority: -int(s.Priority)})
			}
		}
	}
	if len(nodes) == 0 {
		return nil, 0, fmt.Errorf("%s: %w", name, errNoRecords)
	}
	slices.SortFunc(nodes, compareNodes)
	// One node per address, at its most preferred priority (the sort puts
	// it first): SRV records of two priorities may name the same target,
	// which are not neighbours once sorted.
	kept := make(map[string]bool, len(nodes))
	nodes = slices.DeleteFunc(nodes, func(n config.Node) bool {
		k := n.Addr()
		if kept[k] {
			return true
		}
		kept[k] = true
		return false
	})
	return nodes, time.Duration(minTTL) * time.Second, nil
}

func compareNodes(a, b config.Node) int {
	if a.Priority != b.Priority {
		return b.Priority - a.Priority
	}
	if c := strings.Compare(a.Host, b.Host); c != 0 {
		return c
	}
	return a.Port - b.Port
}

// addresses returns name's A and AAAA addresses: from extra (an SRV
// answer's additional section) when it has them, else from two queries.
// Both queries must succeed (an empty AAAA answer does): a half answer
// would shrink the node set for no reason.
func (r *Resolver) addresses(ctx context.Context, name string, noteTTL func(uint32), extra []dns.RR) ([]string, error) {
	var out []string
	collect := func(rrs []dns.RR, owner string) {
		for _, rr := range rrs {
			if owner != "" && !strings.EqualFold(rr.Header().Name, owner) {
				continue
			}
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
				noteTTL(a.Hdr.Ttl)
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
				noteTTL(a.Hdr.Ttl)
			case *dns.CNAME:
				if owner == "" {
					noteTTL(a.Hdr.Ttl)
				}
			}
		}
	}
	if collect(extra, dns.Fqdn(name)); len(out) > 0 {
		return out, nil
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.query(ctx, name, qt)
		if err != nil {
			return nil, err
		}
		// The answer may hold a CNAME chain: every address in it is the
		// name's.
		collect(resp.Answer, "")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errNoRecords)
	}
	return out, nil
}

// query asks the nameservers in order until one answers; SERVFAIL and
// REFUSED count as no answer. A truncated UDP answer is asked again over
// TCP. An answer other than NOERROR is an *RcodeError.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	var last error
	for _, server := range r.servers {
		resp, err := r.exchange(ctx, m, server, "udp")
		if err == nil && resp.Truncated {
			resp, err = r.exchange(ctx, m, server, "tcp")
		}
		if err != nil {
			last = fmt.Errorf("%s %s via %s: %w", name, dns.TypeToString[qtype], server, err)
			if ctx.Err() != nil {
				return nil, last
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			return resp, nil
		case dns.RcodeServerFailure, dns.RcodeRefused:
			last = fmt.Errorf("via %s: %w", server, &RcodeError{Name: name, Rcode: resp.Rcode})
			continue
		}
		return nil, fmt.Errorf("via %s: %w", server, &RcodeError{Name: name, Rcode: resp.Rcode})
	}
	if last == nil {
		last = errors.New("no nameserver")
	}
	return nil, last
}

// exchange asks one server once. Cancelling ctx closes the connection, so
// that stopping a watcher does not wait for a silent server's timeout.
func (r *Resolver) exchange(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.timeout}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	return resp, err
}
