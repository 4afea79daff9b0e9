package importer

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// What Marshal writes reads back (as the config loader reads YAML) to the
// same values, whatever the keys and strings hold.
func TestMarshalReadsBack(t *testing.T) {
	inner := (&Map{}).SetC("a b", "x: y # not a comment", "a comment\nof two lines").Set("true", "null")
	m := (&Map{}).
		Set("plain", "#name#").
		Set("1x", "multi\nline\ttab \"quoted\" \\ é \u2028 \x01").
		Set("empty_map", &Map{}).
		Set("empty_list", []any{}).
		Set("ints", []int{1, 2}).
		Set("strs", []string{"a", "", "- b"}).
		Set("nested", []any{[]any{"v", "==", "1"}, []any{"w", "in", []any{"a", "b"}}}).
		SetC("list", []any{Commented{Comment: "item", Val: inner}, (&Map{}).Set("k", (&Map{}).Set("deep", 1.5)), "scalar", &Map{}}, "top").
		Set("num", 0.25).
		Set("neg", -1).
		Set("bool", false).
		Set("nil", nil)
	out := Marshal(m)
	var parsed any
	require.NoError(t, yaml.Unmarshal(out, &parsed), "%s", out)
	js, err := json.Marshal(parsed) // numbers as the JSON tree has them
	require.NoError(t, err)
	var got any
	require.NoError(t, json.Unmarshal(js, &got))
	want := map[string]any{
		"plain":      "#name#",
		"1x":         "multi\nline\ttab \"quoted\" \\ é \u2028 \x01",
		"empty_map":  map[string]any{},
		"empty_list": []any{},
		"ints":       []any{1.0, 2.0},
		"strs":       []any{"a", "", "- b"},
		"nested":     []any{[]any{"v", "==", "1"}, []any{"w", "in", []any{"a", "b"}}},
		"list": []any{
			map[string]any{"a b": "x: y # not a comment", "true": "null"},
			map[string]any{"k": map[string]any{"deep": 1.5}},
			"scalar",
			map[string]any{},
		},
		"num":  0.25,
		"neg":  -1.0,
		"bool": false,
		"nil":  nil,
	}
	require.Equal(t, want, got, "%s", out)
	require.Contains(t, string(out), "# a comment\n")
	require.Contains(t, string(out), "  # item\n  # a comment\n  # of two lines\n  - \"a b\"")
	require.Equal(t, out, Marshal(m), "the same value writes the same bytes")
}

// A comment made of a source remark cannot end early: YAML line breaks
// beyond \n (NEL, LS, PS) would turn the rest of the remark into a key.
func TestCommentCannotInjectKeys(t *testing.T) {
	for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		out := Marshal((&Map{}).SetC("a", 1, "note"+brk+"bogus_key: 1"))
		var parsed map[string]any
		require.NoError(t, yaml.Unmarshal(out, &parsed), "%q", out)
		require.Equal(t, map[string]any{"a": 1}, parsed, "%q", out)
	}
}
