package router

import (
	"bytes"
	"encoding/binary"
)

// PathMode is gateway.path_policy: what to do with path forms that
// backends read differently from the gateway (README "Paths").
type PathMode uint8

const (
	// PathReject refuses %2F, %5C, %00, a raw '\' and dot segments that
	// carry path parameters ("..;x", ".;x").
	PathReject PathMode = iota
	// PathDecode decodes %2F and %5C, reads '\' as '/', normalises the
	// result and matches and forwards that; %00 and dot segments with
	// parameters are still refused.
	PathDecode
	// PathKeep forwards them as they are (the gateway's first behaviour).
	PathKeep
)

// ParsePathMode maps a validated path_policy to its mode.
func ParsePathMode(s string) PathMode {
	switch s {
	case "decode":
		return PathDecode
	case "keep":
		return PathKeep
	}
	return PathReject
}

// normalizePath is normalizePathMode with PathKeep, for config patterns.
func normalizePath(dst, p []byte) (out []byte, ok bool) {
	return normalizePathMode(dst, p, PathKeep, false)
}

// normalizePathMode appends the normalised form of the request path p to
// dst[:0] and returns it. ok is false when the path must be refused with
// 400: it does not start with '/', it holds a broken percent escape, its
// '..' segments climb above '/', or mode or rejectParams refuse it.
//
// Normalisation (routing.md, "The request's path"):
//   - escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded,
//     every other escape is kept with upper-case hex, so `%2F` never becomes
//     a separator and `%2f` and `%2F` match the same routes (PathDecode
//     alone makes %2F and %5C separators);
//   - runs of '/' collapse into one;
//   - '.' segments are dropped and '..' segments remove the segment before
//     them, after decoding, so `%2e%2e` climbs like `..` does.
//
// The result is at most as long as p. dst is the Match's buffer, so no
// allocation happens once it has grown to the longest path seen.
func normalizePathMode(dst, p []byte, mode PathMode, rejectParams bool) (out []byte, ok bool) {
	if len(p) == 0 || p[0] != '/' {
		return dst[:0], false
	}
	if rejectParams && bytes.IndexByte(p, ';') >= 0 {
		return dst[:0], false
	}
	if isNormal(p) {
		return append(dst[:0], p...), true
	}
	decode := mode == PathDecode
	out = dst[:0]
	i := 0
	for i < len(p) {
		// p[i] is a separator: skip the whole run of them.
		for i < len(p) {
			if c := p[i]; c == '/' || decode && c == '\\' {
				i++
			} else if decode && c == '%' && i+2 < len(p) && isSlashEscape(p[i+1], p[i+2]) {
				i += 3
			} else {
				break
			}
		}
		// After a dropped '.' or '..' segment out already ends with '/'.
		if len(out) == 0 || out[len(out)-1] != '/' {
			out = append(out, '/')
		}
		seg := len(out)
	segment:
		for i < len(p) {
			c := p[i]
			switch c {
			case '/':
				break segment
			case '\\':
				if mode == PathReject {
					return out, false
				}
				if decode {
					break segment
				}
			case '%':
				if i+2 >= len(p) {
					return out, false
				}
				hi, lo := unhex(p[i+1]), unhex(p[i+2])
				if hi > 15 || lo > 15 {
					return out, false
				}
				d := hi<<4 | lo
				switch {
				case isUnreserved(d):
					out = append(out, d)
				case mode == PathKeep:
					out = append(out, '%', upperHex[hi], upperHex[lo])
				case d == 0:
					return out, false
				case d == '/' || d == '\\':
					if !decode {
						return out, false
					}
					break segment // the separator loop consumes it
				default:
					out = append(out, '%', upperHex[hi], upperHex[lo])
				}
				i += 3
				continue
			}
			out = append(out, c)
			i++
		}
		s := out[seg:]
		if mode != PathKeep {
			// "..;x" is ".." to Tomcat and Jetty: refused, whatever comes
			// after the ';'.
			if j := bytes.IndexByte(s, ';'); j >= 0 && isDots(s[:j]) {
				return out, false
			}
		}
		switch {
		case len(s) == 1 && s[0] == '.':
			out = out[:seg]
		case len(s) == 2 && s[0] == '.' && s[1] == '.':
			if seg == 1 {
				// "/.." : above the root.
				return out, false
			}
			out = out[:seg-1] // drop "/.."
			out = out[:bytes.LastIndexByte(out, '/')+1]
		}
	}
	return out, true
}

// isSlashEscape reports whether the escape %hl is %2F or %5C.
func isSlashEscape(h, l byte) bool {
	return h == '2' && (l == 'f' || l == 'F') || h == '5' && (l == 'c' || l == 'C')
}

// isDots reports whether s is "." or "..".
func isDots(s []byte) bool {
	return len(s) == 1 && s[0] == '.' || len(s) == 2 && s[0] == '.' && s[1] == '.'
}

// isNormal reports whether p, which starts with '/', is already normal: no
// escape, no '\', no "//" and no "/." (which may start a dot segment). Most paths
// are, and they need only this check and a copy. It looks at eight bytes at
// a time (SWAR): byte by byte, the check alone cost more than the rest of a
// match.
func isNormal(p []byte) bool {
	if len(p) < 8 {
		return isNormalTail(p)
	}
	var carry uint64 // 0x80 when the previous word ended with '/'
	i := 0
	for ; i+8 <= len(p); i += 8 {
		bad, first, last := abnormal(binary.LittleEndian.Uint64(p[i:]))
		if bad|first&carry != 0 {
			return false
		}
		carry = last
	}
	if i < len(p) {
		// The last, partial word: check the last eight bytes again. Every
		// pair of bytes in them has been or is checked as a pair, so no
		// carry is needed.
		bad, _, _ := abnormal(binary.LittleEndian.Uint64(p[len(p)-8:]))
		return bad == 0
	}
	return true
}

const (
	ones = 0x0101010101010101
	lo7  = 0x7f7f7f7f7f7f7f7f
	hi1  = 0x8080808080808080
)

// zeroBytes returns the high bit of every zero byte of x, and nothing else
// (unlike the shorter formula, no false positives after a zero byte).
func zeroBytes(x uint64) uint64 { return ^((x&lo7 + lo7) | x | lo7) }

// abnormal returns, for eight bytes of a path (little-endian), the high bit
// of every byte that makes the path not normal: a '%' or '\', or a '/' or '.' that
// follows a '/' in the word. first is 0x80 when the first byte is a '/' or
// '.', abnormal if the byte before the word was a '/'; last is 0x80 when the
// last byte is a '/'.
func abnormal(x uint64) (bad, first, last uint64) {
	slash := zeroBytes(x ^ '/'*ones)
	slashOrDot := slash | zeroBytes(x^'.'*ones)
	bad = zeroBytes(x^'%'*ones) | zeroBytes(x^'\\'*ones) | slash<<8&slashOrDot
	return bad, slashOrDot & 0x80, slash >> 56
}

// isNormalTail is isNormal for paths shorter than a word.
func isNormalTail(p []byte) bool {
	slash := false
	for _, c := range p {
		switch {
		case c == '%', c == '\\', slash && (c == '/' || c == '.'):
			return false
		}
		slash = c == '/'
	}
	return true
}

const upperHex = "0123456789ABCDEF"

// unhex returns the value of a hex digit, or 255 for anything else.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// isUnreserved reports whether c is an RFC 3986 unreserved character, the
// only ones whose escapes mean exactly the same as the character itself.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// normalizeHost appends the matching form of a Host header value to dst[:0]:
// the port removed (`[::1]:80` keeps its brackets, as nginx's $host does),
// one trailing dot removed (`example.com.` is `example.com`) and ASCII
// lower-cased, since host names are case-insensitive.
func normalizeHost(dst, h []byte) []byte {
	colons, first := 0, -1
	if len(h) > 0 && h[0] == '[' {
		if j := bytes.IndexByte(h, ']'); j > 0 {
			h = h[:j+1]
		}
	} else {
		// Counted in the same pass as lower-casing below would be
		// neater, but a separate vectorised search is faster.
		if first = bytes.IndexByte(h, ':'); first >= 0 {
			colons = 1
			if bytes.IndexByte(h[first+1:], ':') >= 0 {
				// More than one colon without brackets is not a valid
				// Host; it is matched as it came.
				colons = 2
			}
		}
	}
	if colons == 1 {
		h = h[:first]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	out := append(dst[:0], h...)
	lowerASCII(out)
	return out
}

// lowerASCII lower-cases the ASCII letters of b in place, eight bytes at a
// time; the last, partial word is done again whole, which is harmless.
func lowerASCII(b []byte) {
	if len(b) < 8 {
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		return
	}
	for i := 0; ; i += 8 {
		if i+8 > len(b) {
			i = len(b) - 8
		}
		x := binary.LittleEndian.Uint64(b[i:])
		h := x & lo7
		ge := h + (0x80-'A')*ones   // high bit: h >= 'A' (no carry: h <= 0x7f)
		gt := h + (0x80-'Z'-1)*ones // high bit: h > 'Z'
		upper := ge &^ gt &^ x & hi1
		binary.LittleEndian.PutUint64(b[i:], x|upper>>2) // 0x80>>2 is 'a'-'A'
		if i+8 == len(b) {
			return
		}
	}
}
