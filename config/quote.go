package config

import (
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// maxQuoted is how many bytes of a value an error message shows. A config
// value can be large (a PEM block, a pasted document), and an error is
// printed to logs and returned by the control API; the start of a value is
// enough to find it. Values of secret fields are not shown at all.
const maxQuoted = 64

// clip returns s, cut to maxQuoted bytes (on a rune boundary) with the
// length said when it was longer.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:cutAt(s, maxQuoted)] + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// quote is strconv.Quote of s cut to maxQuoted bytes; a longer value is
// followed by its length: "abc..."... (1000 bytes).
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cutAt(s, maxQuoted)]+"...") + " (" + strconv.Itoa(len(s)) + " bytes)"
}

// cutAt returns where to cut s, longer than n bytes, to keep at most n
// bytes and whole runes.
func cutAt(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// clipped is a string argument of an error message: %q prints it with
// quote, %s and %v in full (paths and lists of allowed values).
type clipped string

func (c clipped) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, quote(string(c)))
		return
	}
	_, _ = io.WriteString(f, string(c))
}

// clipArgs makes the string arguments of an error message clipped.
func clipArgs(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clipped(s)
		}
	}
	return args
}
