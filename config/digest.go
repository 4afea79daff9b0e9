package config

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Digest is a hash of the parts of a loaded file, for a reload to reuse
// what was compiled from a part that did not change (proxy's incremental
// compile). Two equal hashes mean equal text after #name# environment
// substitution and with the same $env:// values, so the part decodes,
// defaults and validates to the same values.
type Digest struct {
	// Global is everything but the services and the revision: the
	// gateway section, upstreams, policies, consumers, global plugins...
	// whatever a service's routes may refer to.
	Global uint64
	// Consumers is the consumers list alone (what credential indexes
	// are built from).
	Consumers uint64
	// Services is one hash per service, its routes included; Own is the
	// same without the routes, and Routes[i][j] is route j of service i
	// (nil for a service that is not an object with a list of routes).
	Services []uint64
	Own      []uint64
	Routes   [][]uint64
}

// Digest returns what Parse hashed of the file; nil for a config that Parse
// did not make (built in code), which is compiled whole.
func (cfg *Config) Digest() *Digest { return cfg.digest }

// digestTree hashes the parsed tree of a file.
func digestTree(root any) *Digest { return digestTreeCached(root, nil) }

// digestTreeCached is digestTree reusing the hashes of the items a Loader
// kept (incremental.go); c may be nil.
func digestTreeCached(root any, c *itemCache) *Digest {
	top, ok := root.(map[string]any)
	if !ok {
		return nil
	}
	d := &Digest{}
	h := xxhash.New()
	var buf []byte
	for _, k := range sortedKeys(top) {
		if k == "services" || k == "revision" {
			continue
		}
		buf = appendHashString(buf, k)
		buf = hashValue(h, buf, top[k])
	}
	h.Write(buf)
	d.Global = h.Sum64()
	h.Reset()
	buf = hashValue(h, buf[:0], top["consumers"])
	h.Write(buf)
	d.Consumers = h.Sum64()
	if svcs, ok := top["services"].([]any); ok {
		d.Services = make([]uint64, len(svcs))
		d.Own = make([]uint64, len(svcs))
		d.Routes = make([][]uint64, len(svcs))
		for i, s := range svcs {
			m, isMap := s.(map[string]any)
			routes, isList := m["routes"].([]any)
			if !isMap || !isList {
				h.Reset()
				buf = hashValue(h, buf[:0], s)
				h.Write(buf)
				d.Services[i] = h.Sum64()
				continue
			}
			// The service without its routes, then each route; the
			// service's hash is of those hashes.
			if e := c.entryOf(m); e != nil && e.ownDone {
				d.Own[i] = e.own
			} else {
				delete(m, "routes")
				h.Reset()
				buf = hashValue(h, buf[:0], m)
				h.Write(buf)
				m["routes"] = routes
				d.Own[i] = h.Sum64()
				if e != nil {
					e.own, e.ownDone = d.Own[i], true
				}
			}
			d.Routes[i] = make([]uint64, len(routes))
			for j, r := range routes {
				e := c.entryOf(r)
				if e != nil && e.hashed {
					d.Routes[i][j] = e.hash
					continue
				}
				h.Reset()
				buf = hashValue(h, buf[:0], r)
				h.Write(buf)
				d.Routes[i][j] = h.Sum64()
				if e != nil {
					e.hash, e.hashed = d.Routes[i][j], true
				}
			}
			buf = binary.AppendUvarint(append(buf[:0], 'S'), d.Own[i])
			for _, rh := range d.Routes[i] {
				buf = binary.LittleEndian.AppendUint64(buf, rh)
			}
			d.Services[i] = xxhash.Sum64(buf)
		}
	}
	return d
}

// hashValue writes v to h in a form where different trees never write the
// same bytes: a type byte, lengths before contents, keys sorted. buf is
// scratch space, returned for reuse.
func hashValue(h *xxhash.Digest, buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		buf = append(buf, 'z')
	case bool:
		buf = append(buf, 'f')
		if x {
			buf[len(buf)-1] = 't'
		}
	case json.Number:
		buf = appendHashString(append(buf, 'n'), string(x))
	case string:
		buf = appendHashString(append(buf, 's'), x)
		if name, ok := strings.CutPrefix(x, envPrefix); ok {
			// The reference's value is read at each load.
			val, set := os.LookupEnv(name)
			buf = append(buf, 'e')
			if set {
				buf = appendHashString(append(buf, 1), val)
			}
		}
	case []any:
		buf = binary.AppendUvarint(append(buf, 'l'), uint64(len(x)))
		for _, item := range x {
			buf = hashValue(h, buf, item)
		}
	case map[string]any:
		buf = binary.AppendUvarint(append(buf, 'm'), uint64(len(x)))
		// Most maps have a few keys: their list stays on the stack.
		var small [16]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			buf = appendHashString(buf, k)
			buf = hashValue(h, buf, x[k])
		}
	default:
		buf = append(buf, '?')
	}
	if len(buf) > 4096 {
		h.Write(buf)
		buf = buf[:0]
	}
	return buf
}

func appendHashString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}
