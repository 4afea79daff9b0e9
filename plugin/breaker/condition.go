package breaker

import (
	"fmt"
	"strconv"
	"strings"
)

// A condition is unhealthy_condition compiled: a disjunction ("or") of
// conjunctions ("and") of comparisons; "and" binds tighter.
type condition [][]comparison

type operand uint8

const (
	opStatus  operand = iota // $context.statusCode
	opLatency                // $context.backendResponseLatency, milliseconds
)

type comparison struct {
	what operand
	op   string  // ">", ">=", "<", "<=", "==", "!=", "in"
	n    int64   // the operand of every op but in
	set  []int64 // in
}

var operands = map[string]operand{
	"$context.statusCode":             opStatus,
	"$context.backendResponseLatency": opLatency,
}

// parseCondition parses expressions such as
//
//	$context.statusCode >= 500 and $context.backendResponseLatency > 3000
//	$context.statusCode in 502,503,504 or $context.backendResponseLatency >= 1000
func parseCondition(s string) (condition, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("is empty")
	}
	var c condition
	for _, alt := range splitWord(s, "or") {
		var conj []comparison
		for _, term := range splitWord(alt, "and") {
			cmp, err := parseComparison(term)
			if err != nil {
				return nil, err
			}
			conj = append(conj, cmp)
		}
		c = append(c, conj)
	}
	return c, nil
}

// splitWord splits s at the whole word w surrounded by spaces.
func splitWord(s, w string) []string {
	fields := strings.Fields(s)
	var parts []string
	start := 0
	for i, f := range fields {
		if f == w {
			parts = append(parts, strings.Join(fields[start:i], " "))
			start = i + 1
		}
	}
	return append(parts, strings.Join(fields[start:], " "))
}

func parseComparison(term string) (comparison, error) {
	f := strings.Fields(term)
	if len(f) < 3 {
		return comparison{}, fmt.Errorf("%q is not `<variable> <operator> <value>`", term)
	}
	what, ok := operands[f[0]]
	if !ok {
		return comparison{}, fmt.Errorf("unknown variable %q (supported: $context.statusCode, $context.backendResponseLatency)", f[0])
	}
	cmp := comparison{what: what, op: f[1]}
	rest := strings.Join(f[2:], "")
	switch f[1] {
	case ">", ">=", "<", "<=", "==", "!=":
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n < 0 {
			return comparison{}, fmt.Errorf("%q: %q is not a non-negative integer", term, rest)
		}
		cmp.n = n
	case "in":
		rest = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]")
		for _, v := range strings.Split(rest, ",") {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return comparison{}, fmt.Errorf("%q: %q is not a non-negative integer", term, v)
			}
			cmp.set = append(cmp.set, n)
		}
	default:
		return comparison{}, fmt.Errorf("%q: unknown operator %q (supported: >, >=, <, <=, ==, !=, in)", term, f[1])
	}
	return cmp, nil
}

func (c condition) match(status, latencyMS int64) bool {
	for _, conj := range c {
		all := true
		for i := range conj {
			if !conj[i].match(status, latencyMS) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (c *comparison) match(status, latencyMS int64) bool {
	v := status
	if c.what == opLatency {
		v = latencyMS
	}
	switch c.op {
	case ">":
		return v > c.n
	case ">=":
		return v >= c.n
	case "<":
		return v < c.n
	case "<=":
		return v <= c.n
	case "==":
		return v == c.n
	case "!=":
		return v != c.n
	}
	for _, n := range c.set {
		if v == n {
			return true
		}
	}
	return false
}
