package plugin

import "gateway/router"

// Key is a template of literals and variables, used for chash keys and
// limit-count keys: `remote_addr`, `$remote_addr$http_user_agent`, ...
// It is parsed once, at compile time.
type Key struct {
	parts []keyPart
}

type keyPart struct {
	lit  []byte
	isV  bool
	kind router.VarKind
	name []byte
}

// HashKey turns an upstream's hash_on/key into a key template.
func HashKey(hashOn, key string) Key {
	switch hashOn {
	case "header":
		return Key{parts: []keyPart{{isV: true, kind: router.VarHTTP, name: []byte(key)}}}
	case "cookie":
		return Key{parts: []keyPart{{isV: true, kind: router.VarCookie, name: []byte(key)}}}
	case "consumer":
		return Key{parts: []keyPart{{isV: true, kind: router.VarConsumerName}}}
	case "vars_combinations":
		return KeyTemplate(key)
	}
	if kind, name, ok := router.ParseVar(key); ok {
		return Key{parts: []keyPart{{isV: true, kind: kind, name: []byte(name)}}}
	}
	return Key{parts: []keyPart{{isV: true, kind: router.VarRemoteAddr}}}
}

// KeyTemplate parses `$var` references; everything else is literal.
func KeyTemplate(t string) Key {
	var k Key
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

// Literal is a key that is the same for every request.
func Literal(s string) Key { return Key{parts: []keyPart{{lit: []byte(s)}}} }
