package config

import (
	"reflect"
	"strconv"
	"strings"
)

// Seed shapes (issue 21): the forms in which the seed APIs (API7 Admin API,
// Huawei APIG) write objects, accepted as they are. README "Seed shapes".

// GlobalRule is an API7 global rule: plugins that run on every route,
// another spelling of global_plugins. Rules merge into GlobalPlugins in id
// order when loading; a plugin named twice (in two rules, or in a rule and
// global_plugins) is an error.
type GlobalRule struct {
	ID      string  `json:"id"`
	Plugins Plugins `json:"plugins"`

	// Response-only or descriptive: the Admin API's rule has no name,
	// desc or labels today, other API7 objects do.
	Name      Ignored `json:"name"`
	Desc      Ignored `json:"desc"`
	Labels    Ignored `json:"labels"`
	CreatedAt Ignored `json:"created_at"`
	UpdatedAt Ignored `json:"updated_at"`
}

// ResponseHeaders are the headers of a gateway response, written as an
// object {name: value} or as Huawei's list [{key, value}].
type ResponseHeaders map[string]string

// maxStatusRange bounds the statuses one http_code string may expand to
// (100..599 is 500).
const maxStatusRange = 500

// Huawei response types the gateway never produces: a gateway_responses
// entry for one loads only as Huawei's untouched default (default: true),
// since a customised one would be a promise the gateway cannot keep.
var unproducedResponseTypes = map[string]string{
	"AUTHORIZER_FAILURE":                "custom authorizers",
	"AUTHORIZER_CONF_FAILURE":           "custom authorizers",
	"AUTHORIZER_CONFIG_FAILURE":         "custom authorizers",
	"AUTHORIZER_IDENTITY_FAILURE":       "custom authorizers",
	"AUTHORIZER_IDENTITIES_FAILURE":     "custom authorizers",
	"THIRD_AUTH_FAILURE":                "third-party authorizers",
	"THIRD_AUTH_IDENTITY_FAILURE":       "third-party authorizers",
	"THIRD_AUTH_CONF_FAILURE":           "third-party authorizers",
	"THIRD_AUTH_CONFIG_FAILURE":         "third-party authorizers",
	"ORCHESTRATION_PARAMETER_NOT_FOUND": "parameter orchestration",
	"ORCHESTRATION_FAILURE":             "parameter orchestration",
}

// The Huawei catch-all response types: DEFAULT_4XX applies to every
// gateway-made 4xx whose own type has no gateway_responses entry,
// DEFAULT_5XX to every 5xx.
const (
	Default4XX = "DEFAULT_4XX"
	Default5XX = "DEFAULT_5XX"
)

var (
	responseHeadersType = reflect.TypeFor[ResponseHeaders]()
)

// apiObjectTypes are the API7 Admin API objects: where the schema expects
// one, the Admin API's answer `{"value": {...}, "warning_msg": "..."}`
// loads as the object, and where it expects a list of them, a list page
// `{"list": [...], "total": N}` loads as the list.
var apiObjectTypes = map[reflect.Type]bool{
	reflect.TypeFor[Service]():       true,
	reflect.TypeFor[Route]():         true,
	reflect.TypeFor[Upstream]():      true,
	reflect.TypeFor[Consumer]():      true,
	reflect.TypeFor[Credential]():    true,
	reflect.TypeFor[Certificate]():   true,
	reflect.TypeFor[CACertificate](): true,
	reflect.TypeFor[SNI]():           true,
	reflect.TypeFor[GlobalRule]():    true,
}

// decodeSeedShape decodes the values whose seed forms differ from the
// plain schema; it reports whether it did.
func (d *decoder) decodeSeedShape(in any, v reflect.Value) bool {
	t := v.Type()
	switch {
	case t == responseHeadersType:
		list, ok := in.([]any)
		if !ok {
			return false
		}
		d.decodeHeaderList(list, v)
		return true
	case t.Kind() == reflect.Struct && apiObjectTypes[t]:
		if inner, ok := unwrapValue(in); ok {
			// Paths leave the wrapper out ("services[0].hosts", not
			// "services[0].value.hosts"), as validation's do.
			d.decode(inner, v)
			return true
		}
	case t.Kind() == reflect.Slice && apiObjectTypes[t.Elem()]:
		if list, ok := unwrapListPage(in); ok {
			d.decode(list, v)
			return true
		}
	}
	return false
}

// unwrapValue recognises `{"value": {...}, "warning_msg": ...}`: an object
// whose only keys are value (an object) and warning_msg.
func unwrapValue(in any) (any, bool) {
	obj, ok := in.(map[string]any)
	if !ok {
		return nil, false
	}
	inner, ok := obj["value"].(map[string]any)
	if !ok {
		return nil, false
	}
	for k := range obj {
		if k != "value" && k != "warning_msg" {
			return nil, false
		}
	}
	return inner, true
}

// unwrapListPage recognises `{"list": [...], "total": N}`.
func unwrapListPage(in any) (any, bool) {
	obj, ok := in.(map[string]any)
	if !ok {
		return nil, false
	}
	list, ok := obj["list"].([]any)
	if !ok {
		return nil, false
	}
	for k := range obj {
		if k != "list" && k != "total" {
			return nil, false
		}
	}
	return list, true
}

// parseStatusList reads Huawei's http_code: statuses and ranges separated
// by commas ("200,202,300-399"). Ranges are checked against 100..599 here;
// validation applies the schema's own bounds to each status.
func parseStatusList(s string) ([]int, string) {
	var codes []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		switch {
		case part == "" || err1 != nil || err2 != nil:
			return nil, `expected statuses and ranges separated by commas ("200,202,300-399") or a list of integers`
		case b < a:
			return nil, "a range must not end before it starts"
		case a < 100 || b > 599:
			return nil, "statuses must be 100..599"
		case len(codes)+b-a+1 > maxStatusRange:
			return nil, "too many statuses"
		}
		for c := a; c <= b; c++ {
			codes = append(codes, c)
		}
	}
	return codes, ""
}

// decodeStatusString decodes Huawei's http_code string form into a field
// tagged `statuses:"..."` (a []int of HTTP statuses written as a list of
// integers or as "200,202,300-399"); it reports whether it did.
func (d *decoder) decodeStatusString(f reflect.StructField, in any, v reflect.Value) bool {
	s, ok := in.(string)
	if !ok || f.Tag.Get("statuses") == "" {
		return false
	}
	codes, msg := parseStatusList(s)
	if msg != "" {
		d.fail("%s, got %q", msg, s)
		return true
	}
	v.Set(reflect.ValueOf(codes))
	return true
}

// decodeHeaderList reads Huawei's `[{key, value}]` headers.
func (d *decoder) decodeHeaderList(list []any, v reflect.Value) {
	m := make(ResponseHeaders, len(list))
	seen := make(map[string]bool, len(list))
	for i, item := range list {
		d.path.pushIndex(i)
		var h struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if item == nil {
			d.fail("expected an object {key, value}, got null")
		} else {
			d.decode(item, reflect.ValueOf(&h).Elem())
			lower := strings.ToLower(h.Key)
			switch {
			case h.Key == "":
				d.path.pushKey("key")
				d.fail("required")
				d.path.pop()
			case seen[lower]:
				d.fail("duplicate header %q", h.Key)
			default:
				seen[lower] = true
				m[h.Key] = h.Value
			}
		}
		d.path.pop()
	}
	v.Set(reflect.ValueOf(m))
}
