package plugin

import (
	"gateway/config"
	"gateway/router"
)

// Key is a config.KeyTemplate made ready to render: chash keys and
// limit-count keys. config parses the template at load (config.ParseHashKey,
// config.ParseKeyTemplate); Key only converts it, once, at compile time.
type Key struct {
	parts []keyPart
}

type keyPart struct {
	lit  []byte
	isV  bool
	kind router.VarKind
	name []byte
}

// NewKey prebuilds a parsed template. The zero template renders nothing,
// which the callers read as "hash on the client address".
func NewKey(t config.KeyTemplate) Key {
	k := Key{parts: make([]keyPart, len(t.Parts))}
	for i, p := range t.Parts {
		if p.IsVar {
			k.parts[i] = keyPart{isV: true, kind: p.Var.Kind, name: []byte(p.Var.Arg)}
		} else {
			k.parts[i] = keyPart{lit: []byte(p.Lit)}
		}
	}
	return k
}

// Append renders the key for one request; variables come from src.
func (k *Key) Append(dst []byte, src router.VarSource) []byte {
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
