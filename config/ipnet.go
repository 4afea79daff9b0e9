package config

import "net/netip"

// ParsePrefixes parses a list of IPs and CIDRs (validated by config) into
// prefixes; a single address becomes a full-length prefix.
func ParsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range list {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked())
		} else if ip, err := netip.ParseAddr(a); err == nil {
			ip = ip.Unmap()
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	return out
}

// unmapBits is what Unmap removes from a prefix length: an IPv4-mapped
// IPv6 prefix (::ffff:10.0.0.0/104) describes the IPv4 prefix 10.0.0.0/8,
// and client addresses are compared unmapped.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}
