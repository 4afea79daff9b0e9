package plugin

import (
	"maps"
	"slices"

	"gateway/config"
)

// HeaderActions is APISIX's `headers: {set, add, remove}` of proxy-rewrite
// and response-rewrite; values are value templates
// (config.ParseValueTemplate).
type HeaderActions struct {
	Set    map[string]string `json:"set"`
	Add    map[string]string `json:"add"`
	Remove []string          `json:"remove"`
}

// Check reports bad names (checkName, which also says which headers the
// plugin refuses) and values that do not parse or hold control characters;
// captures is how many regex captures values may read.
func (h *HeaderActions) Check(ch *config.Check, captures int, checkName func(*config.Check, string)) {
	for _, part := range []struct {
		key string
		m   map[string]string
	}{{"set", h.Set}, {"add", h.Add}} {
		for _, name := range slices.Sorted(maps.Keys(part.m)) {
			f := ch.Field(part.key).Field(name)
			checkName(f, name)
			if _, err := config.ParseValueTemplate(part.m[name], captures); err != nil {
				f.Errorf("%v", err)
			}
			CheckHeaderValue(f, part.m[name])
		}
	}
	for i, name := range h.Remove {
		checkName(ch.Field("remove").Index(i), name)
	}
}

// CheckHeaderValue reports control characters (but tab) in a header value.
func CheckHeaderValue(ch *config.Check, v string) {
	for _, c := range []byte(v) {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			ch.Errorf("must not contain control characters")
			return
		}
	}
}

// HeaderAction is one compiled action of HeaderActions.
type HeaderAction struct {
	Name  []byte
	Value Template
}

// Compile returns the set and add actions, by name.
func (h *HeaderActions) Compile(captures int) (set, add []HeaderAction, err error) {
	build := func(m map[string]string) ([]HeaderAction, error) {
		var out []HeaderAction
		for _, name := range slices.Sorted(maps.Keys(m)) {
			t, err := config.ParseValueTemplate(m[name], captures)
			if err != nil {
				return nil, err
			}
			out = append(out, HeaderAction{Name: []byte(name), Value: NewTemplate(t)})
		}
		return out, nil
	}
	if set, err = build(h.Set); err != nil {
		return nil, nil, err
	}
	add, err = build(h.Add)
	return set, add, err
}
