package breaker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gateway/config"
	"gateway/plugin"
)

// Parameter is one of downgrade_parameters (Huawei's
// PluginCommonParameter): a named value read from the request for the
// downgrade rules' expressions.
type Parameter struct {
	Name  string `json:"name"`
	Type  string `json:"type"`  // path, method, header, query, system
	Value string `json:"value"` // header / query name, system variable
	// The console's bookkeeping, kept by Huawei's own sample.
	Disabled config.Ignored `json:"disabled"`
	Focused  config.Ignored `json:"focused"`
	ID       config.Ignored `json:"id"`
}

// Rule is one of downgrade_rules (PluginBreakerDowngradeRule).
type Rule struct {
	RuleName         string     `json:"rule_name"`
	Parameters       []string   `json:"parameters"` // names from downgrade_parameters
	MatchRegex       string     `json:"match_regex"`
	BreakerCondition *Condition `json:"breaker_condition"`
	DowngradeBackend *Downgrade `json:"downgrade_backend"`
	parsedCond       condition
	expr             node
}

type source uint8

const (
	srcPath source = iota
	srcMethod
	srcHeader
	srcQuery
	srcSourceIP
	srcConsumer
)

type param struct {
	src  source
	name []byte // header or query argument
}

// builtinParams are the parameters every rule may use without defining
// them (Huawei's console includes reqPath and method by default).
var builtinParams = map[string]param{"reqPath": {src: srcPath}, "method": {src: srcMethod}}

var systemParams = map[string]source{
	"sourceIp": srcSourceIP, "$context.sourceIp": srcSourceIP,
	"appName": srcConsumer, "$context.appName": srcConsumer,
	"appId": srcConsumer, "$context.appId": srcConsumer,
}

func parseParameter(p *Parameter) (param, error) {
	switch p.Type {
	case "path":
		return param{src: srcPath}, nil
	case "method":
		return param{src: srcMethod}, nil
	case "header", "query":
		if p.Value == "" {
			return param{}, fmt.Errorf("value: names the %s to read and cannot be empty", p.Type)
		}
		if p.Type == "header" {
			return param{src: srcHeader, name: []byte(p.Value)}, nil
		}
		return param{src: srcQuery, name: []byte(p.Value)}, nil
	case "system":
		s, ok := systemParams[p.Value]
		if !ok {
			return param{}, fmt.Errorf("value: unknown system parameter %q (supported: sourceIp, appName, appId)", p.Value)
		}
		return param{src: s}, nil
	}
	return param{}, fmt.Errorf("type: %q is not one of path, method, header, query, system", p.Type)
}

func (p *param) value(r *plugin.Request) []byte {
	switch p.src {
	case srcPath:
		return r.Ctx.Path()
	case srcMethod:
		return r.Ctx.Method()
	case srcHeader:
		return r.Ctx.Request.Header.PeekBytes(p.name)
	case srcQuery:
		return r.Ctx.QueryArgs().PeekBytes(p.name)
	case srcSourceIP:
		return r.ClientIPB
	}
	return r.Consumer
}

// A node is a match_regex expression compiled: a comparison, or a list of
// them joined by AND (the default) or OR.
type node struct {
	cmp  *comparisonExpr
	or   bool
	kids []node
}

type opKind uint8

const (
	opEq opKind = iota
	opNe
	opRegex // ~~ and ~* (compiled case-insensitive)
	opIn
	opGt
	opGe
	opLt
	opLe
)

type comparisonExpr struct {
	p   param
	not bool
	op  opKind
	val []byte
	set [][]byte
	n   int64
	re  *regexp.Regexp
}

// parseExpr parses match_regex, a JSON array in the shape of APISIX's
// vars (lua-resty-expr) that Huawei's sample uses:
//
//	["reqPath", "==", "/test"]
//	[["method", "==", "POST"], ["tier", "in", ["gold", "silver"]]]   (AND)
//	["OR", ["reqPath", "~~", "^/a/"], ["!", "method", "==", "GET"]]
//
// params are the parameters the rule may use, by name.
func parseExpr(s string, params map[string]param) (node, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return node{}, fmt.Errorf("is not a JSON expression: %v", err)
	}
	if d.More() {
		return node{}, fmt.Errorf("is not one JSON expression")
	}
	return parseNode(v, params)
}

func parseNode(v any, params map[string]param) (node, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return node{}, fmt.Errorf("%s is not a non-empty array", compact(v))
	}
	var n node
	if op, ok := list[0].(string); ok {
		switch strings.ToUpper(op) {
		case "AND", "OR":
			if _, isParam := params[op]; !isParam {
				n.or = strings.EqualFold(op, "OR")
				list = list[1:]
				if len(list) == 0 {
					return node{}, fmt.Errorf("%s joins nothing", op)
				}
			}
		}
		if len(list) > 0 {
			if _, isList := list[0].([]any); !isList {
				c, err := parseComparisonExpr(list, params)
				if err != nil {
					return node{}, err
				}
				return node{cmp: c}, nil
			}
		}
	}
	for _, item := range list {
		k, err := parseNode(item, params)
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, k)
	}
	return n, nil
}

func parseComparisonExpr(list []any, params map[string]param) (*comparisonExpr, error) {
	c := &comparisonExpr{}
	name, _ := list[0].(string)
	if name == "!" {
		c.not = true
		list = list[1:]
		if len(list) > 0 {
			name, _ = list[0].(string)
		}
	}
	if len(list) != 3 {
		return nil, fmt.Errorf("%s is not [parameter, operator, value]", compact(list))
	}
	p, ok := params[name]
	if !ok {
		return nil, fmt.Errorf("parameter %q is not defined (downgrade_parameters, or the rule's parameters; reqPath and method are built in)", name)
	}
	c.p = p
	op, _ := list[1].(string)
	val := list[2]
	scalar := func() (string, error) {
		switch x := val.(type) {
		case string:
			return x, nil
		case json.Number:
			return x.String(), nil
		}
		return "", fmt.Errorf("%s: the value must be a string or a number", compact(list))
	}
	var err error
	var sv string
	switch op {
	case "==", "~=", "!=":
		c.op = opEq
		if op != "==" {
			c.op = opNe
		}
		sv, err = scalar()
		c.val = []byte(sv)
	case "~~", "~*":
		c.op = opRegex
		if sv, err = scalar(); err == nil {
			if op == "~*" {
				sv = "(?i)" + sv
			}
			c.re, err = regexp.Compile(sv)
			if err != nil {
				err = fmt.Errorf("%s: invalid regex: %v", compact(list), err)
			}
		}
	case "in":
		c.op = opIn
		items, ok := val.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: in takes an array", compact(list))
		}
		for _, it := range items {
			val = it
			if sv, err = scalar(); err != nil {
				return nil, err
			}
			c.set = append(c.set, []byte(sv))
		}
	case ">", ">=", "<", "<=":
		c.op = map[string]opKind{">": opGt, ">=": opGe, "<": opLt, "<=": opLe}[op]
		if sv, err = scalar(); err == nil {
			c.n, err = strconv.ParseInt(sv, 10, 64)
			if err != nil {
				err = fmt.Errorf("%s: %s compares integers", compact(list), op)
			}
		}
	default:
		return nil, fmt.Errorf("%s: unknown operator %q (supported: ==, ~=, !=, ~~, ~*, in, >, >=, <, <=)", compact(list), op)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (n *node) eval(r *plugin.Request) bool {
	if n.cmp != nil {
		return n.cmp.eval(r) != n.cmp.not
	}
	for i := range n.kids {
		if n.kids[i].eval(r) == n.or {
			return n.or
		}
	}
	return !n.or
}

func (c *comparisonExpr) eval(r *plugin.Request) bool {
	v := c.p.value(r)
	switch c.op {
	case opEq:
		return bytes.Equal(v, c.val)
	case opNe:
		return !bytes.Equal(v, c.val)
	case opRegex:
		return c.re.Match(v)
	case opIn:
		for _, s := range c.set {
			if bytes.Equal(v, s) {
				return true
			}
		}
		return false
	}
	n, ok := config.ParseNumber(v)
	if !ok {
		return false
	}
	switch c.op {
	case opGt:
		return n > c.n
	case opGe:
		return n >= c.n
	case opLt:
		return n < c.n
	}
	return n <= c.n
}
