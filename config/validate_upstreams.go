package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
)

// ---- upstreams ----

func (v *validator) upstream(path string, u *Upstream) {
	v.oneOf(field(path, "scheme"), string(u.Scheme), string(SchemeHTTP), string(SchemeHTTPS))
	v.oneOf(field(path, "type"), string(u.Type), string(RoundRobin), string(CHash), string(LeastConn))
	// hash_on and key are only used by chash; like APISIX, other types
	// accept and ignore them, but hash_on must still be a known value.
	v.oneOf(field(path, "hash_on"), string(u.HashOn), string(HashOnVars), string(HashOnHeader), string(HashOnCookie), string(HashOnConsumer), string(HashOnVarsCombinations))
	if u.Type == CHash {
		v.hashKey(field(path, "key"), u)
	}
	np := field(path, "nodes")
	switch v.discovery(path, u) {
	case discoveryDNS:
		if len(u.Nodes) > 0 {
			v.add(np, `must be empty with discovery_type "dns": the nodes are the addresses service_name resolves to`)
		}
	case discoveryRefused: // its error says it: no "nodes required" besides
	default:
		if len(u.Nodes) == 0 || len(u.Nodes) > maxNodes {
			v.add(np, "must have 1..%d nodes, got %d", maxNodes, len(u.Nodes))
		}
	}
	seen := map[string]int{}
	for i, n := range u.Nodes {
		p := indexPath(np, i)
		if n.Host == "" {
			v.add(field(p, "host"), "required")
		} else if !validHostname(n.Host) {
			v.add(field(p, "host"), "must be an IP address or DNS name, got %q", n.Host)
		}
		v.intRange(field(p, "port"), int64(n.Port), 1, maxPort)
		v.intRange(field(p, "weight"), int64(n.Weight), 0, maxWeight)
		// Health state and the tried-set are per host:port; the same node
		// twice would be one node with two entries.
		addr := n.Addr()
		if first, dup := seen[addr]; dup {
			v.add(p, "duplicate node %s (also %s)", clip(addr), indexPath(np, first))
		} else {
			seen[addr] = i
		}
	}
	tp := field(path, "timeout")
	v.positive(field(tp, "connect"), u.Timeout.Connect)
	v.positive(field(tp, "send"), u.Timeout.Send)
	v.positive(field(tp, "read"), u.Timeout.Read)
	if u.Retries != nil {
		v.intRange(field(path, "retries"), int64(*u.Retries), 0, maxRetries)
	}
	v.nonNegative(field(path, "retry_timeout"), u.RetryTimeout)
	for i, code := range u.RetryOnStatuses {
		v.intRange(indexPath(field(path, "retry_on_statuses"), i), int64(code), 400, 599)
	}
	kp := field(path, "keepalive_pool")
	if u.KeepalivePool.Size < 0 {
		v.add(field(kp, "size"), "must be >= 0 (0 = no pooling), got %d", u.KeepalivePool.Size)
	}
	v.positive(field(kp, "idle_timeout"), u.KeepalivePool.IdleTimeout)
	if u.KeepalivePool.Requests < 1 {
		v.add(field(kp, "requests"), "must be >= 1, got %d", u.KeepalivePool.Requests)
	}
	v.oneOf(field(path, "pass_host"), string(u.PassHost), string(PassHostPass), string(PassHostNode), string(PassHostRewrite))
	if u.PassHost == PassHostRewrite && u.UpstreamHost == "" {
		v.add(field(path, "upstream_host"), `required with pass_host "rewrite"`)
	}
	v.upstreamTLS(field(path, "tls"), &u.TLS)
	if u.Checks != nil {
		v.checks(field(path, "checks"), u.Checks)
	}
}

// How an upstream's nodes are given.
const (
	discoveryNone    = iota // nodes
	discoveryDNS            // discovery_type "dns"
	discoveryRefused        // an unsupported discovery_type
)

// discovery checks service_name, discovery_type and discovery_args and
// says how the upstream's nodes are given (issue 21).
func (v *validator) discovery(path string, u *Upstream) int {
	for _, k := range slices.Sorted(maps.Keys(u.DiscoveryArgs)) {
		v.add(field(field(path, "discovery_args"), k), "is not supported: discovery_type \"dns\" takes no arguments")
	}
	switch u.DiscoveryType {
	case "":
		if u.ServiceName != "" {
			v.add(field(path, "service_name"), `requires discovery_type "dns"`)
		}
		return discoveryNone
	case DiscoveryDNS:
	default:
		v.add(field(path, "discovery_type"), `%q is not supported (only "dns" is)`, u.DiscoveryType)
		return discoveryRefused
	}
	sp := field(path, "service_name")
	if u.ServiceName == "" {
		v.add(sp, `required with discovery_type "dns"`)
	} else if _, _, err := ParseServiceName(u.ServiceName); err != nil {
		v.add(sp, "%v", err)
	}
	return discoveryDNS
}

// DiscoveryDNS is the discovery_type of DNS service discovery.
const DiscoveryDNS = "dns"

// ParseServiceName splits a dns service_name into the name to resolve and
// the port of its nodes: "host:port", or "host" (port 0: the scheme's
// default), or a "_service._proto.name" SRV name whose records give the
// ports (it takes no port).
func ParseServiceName(s string) (name string, port int, err error) {
	name = s
	if h, p, ok := strings.Cut(s, ":"); ok {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > maxPort {
			return "", 0, fmt.Errorf("must be host or host:port with a port 1..%d, got %q", maxPort, clip(s))
		}
		name, port = h, n
	}
	name = strings.TrimSuffix(name, ".")
	if strings.HasPrefix(name, "_") {
		if port != 0 {
			return "", 0, fmt.Errorf("an SRV name (starting with '_') takes no port: the records give it, got %q", clip(s))
		}
		// _service._proto.name: labels with '_' are legal in DNS.
		if !validHostname(strings.ReplaceAll(name, "_", "x")) {
			return "", 0, fmt.Errorf("must be a DNS name, got %q", clip(s))
		}
		return name, 0, nil
	}
	if name == "" || !validHostname(name) || net.ParseIP(name) != nil {
		return "", 0, fmt.Errorf("must be a DNS name (host or host:port; an IP address belongs in nodes), got %q", clip(s))
	}
	return name, port, nil
}

// hashKey parses a chash key as hash_on says to read it and keeps the
// parsed template on the upstream. An empty key falls back to remote_addr
// (upstreams.md).
func (v *validator) hashKey(path string, u *Upstream) {
	k, err := ParseHashKey(u.HashOn, u.Key)
	switch {
	case err != nil && u.HashOn == HashOnVarsCombinations:
		v.add(path, "%v, got %q", err, u.Key)
	case err != nil:
		v.add(path, "%v", err)
	default:
		u.HashKey = k
	}
}

func (v *validator) upstreamTLS(path string, t *UpstreamTLS) {
	switch {
	case t.ClientCert == "" && t.ClientKey == "":
	case t.ClientCert == "":
		v.add(field(path, "client_cert"), "required with client_key")
	case t.ClientKey == "":
		v.add(field(path, "client_key"), "required with client_cert")
	default:
		if _, err := tls.X509KeyPair([]byte(t.ClientCert), []byte(t.ClientKey)); err != nil {
			v.add(field(path, "client_cert"), "invalid certificate and key: %v", err)
		}
	}
}

func (v *validator) checks(path string, c *Checks) {
	if c.Passive != nil && c.Active == nil {
		v.add(field(path, "passive"), "requires checks.active: passive checks alone could never bring a node back")
	}
	if a := c.Active; a != nil {
		p := field(path, "active")
		v.oneOf(field(p, "type"), string(a.Type), string(SchemeHTTP), string(SchemeHTTPS), string(SchemeTCP))
		v.positive(field(p, "timeout"), a.Timeout)
		if a.Concurrency < 1 {
			v.add(field(p, "concurrency"), "must be >= 1, got %d", a.Concurrency)
		}
		if a.Host != "" && !validHostname(a.Host) {
			v.add(field(p, "host"), "must be an IP address or DNS name, got %q", a.Host)
		}
		// 0 probes the node's own port.
		v.intRange(field(p, "port"), int64(a.Port), 0, maxPort)
		if !strings.HasPrefix(a.HTTPPath, "/") {
			v.add(field(p, "http_path"), "must start with '/', got %q", a.HTTPPath)
		}
		for i, h := range a.ReqHeaders {
			name, _, ok := strings.Cut(h, ":")
			if !ok || !validHeaderName(strings.TrimSpace(name)) {
				// A probe header is often a credential (Authorization:
				// Bearer ...): the entry is not echoed.
				v.add(indexPath(field(p, "req_headers"), i), `must be "Name: value" with a header name before the colon; the entry is not shown because it may hold a credential`)
			}
		}
		hp, up := field(p, "healthy"), field(p, "unhealthy")
		v.nonNegative(field(hp, "interval"), a.Healthy.Interval)
		v.statuses(field(hp, "http_statuses"), a.Healthy.HTTPStatuses)
		v.intRange(field(hp, "successes"), int64(a.Healthy.Successes), 1, maxThreshold)
		v.nonNegative(field(up, "interval"), a.Unhealthy.Interval)
		v.statuses(field(up, "http_statuses"), a.Unhealthy.HTTPStatuses)
		v.threshold(field(up, "http_failures"), a.Unhealthy.HTTPFailures)
		v.threshold(field(up, "tcp_failures"), a.Unhealthy.TCPFailures)
		v.threshold(field(up, "timeouts"), a.Unhealthy.Timeouts)
	}
	if ps := c.Passive; ps != nil {
		p := field(path, "passive")
		v.oneOf(field(p, "type"), string(ps.Type), string(SchemeHTTP), string(SchemeHTTPS), string(SchemeTCP))
		hp, up := field(p, "healthy"), field(p, "unhealthy")
		v.statuses(field(hp, "http_statuses"), ps.Healthy.HTTPStatuses)
		// 0: real traffic never marks a node healthy; the active probes do.
		v.threshold(field(hp, "successes"), ps.Healthy.Successes)
		v.statuses(field(up, "http_statuses"), ps.Unhealthy.HTTPStatuses)
		v.threshold(field(up, "http_failures"), ps.Unhealthy.HTTPFailures)
		v.threshold(field(up, "tcp_failures"), ps.Unhealthy.TCPFailures)
		v.threshold(field(up, "timeouts"), ps.Unhealthy.Timeouts)
	}
}

// threshold is a counter threshold where 0 disables the counter.
func (v *validator) threshold(path string, n int) {
	v.intRange(path, int64(n), 0, maxThreshold)
}

func (v *validator) statuses(path string, codes []int) {
	for i, c := range codes {
		v.intRange(indexPath(path, i), int64(c), 200, 599)
	}
}
