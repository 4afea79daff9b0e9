package config

import (
	"slices"
	"sort"
	"strings"
)

var responseTypes = overridableResponses()

func overridableResponses() []string {
	var names []string
	for t := RespNone; t < NumResponseTypes; t++ {
		if t.Overridable() {
			names = append(names, t.String())
		}
	}
	return names
}

// ---- gateway responses ----

func (v *validator) gatewayResponses() {
	types := make([]string, 0, len(v.cfg.GatewayResponses))
	for t := range v.cfg.GatewayResponses {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		r := v.cfg.GatewayResponses[t]
		path := keyPath("gateway_responses", t)
		switch {
		case slices.Contains(responseTypes, t):
		case v.seedResponseType(path, t, r): // validate_seeds.go
			if t != Default4XX && t != Default5XX {
				continue
			}
		default:
			v.add(path, "unknown response type %q (one of %s; Huawei's %s)", t, strings.Join(responseTypes, ", "), seedResponseTypeNames())
			continue
		}
		if r.Status != 0 {
			// 0 keeps the type's own status.
			v.intRange(field(path, "status"), int64(r.Status), 100, 599)
		}
		for name := range r.Headers {
			if !validHeaderName(name) {
				v.add(keyPath(field(path, "headers"), name), "invalid header name %q", name)
			}
		}
	}
}
