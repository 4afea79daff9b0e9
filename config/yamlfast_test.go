package config

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fastYAMLSeeds are the inputs the differential test and FuzzFastYAML
// start from: the YAML files under testdata, the README's YAML examples,
// the bench's config, and snippets at the edges of the subset.
func fastYAMLSeeds(t testing.TB) []string {
	seeds := []string{minimal, benchConfig(20)}
	for _, dir := range []string{"testdata", "../router/testdata"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				seeds = append(seeds, string(data))
			}
			return err
		})
		require.NoError(t, err)
	}
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		seeds = append(seeds, m[1])
	}
	return append(seeds, fastYAMLEdges...)
}

// fastYAMLEdges are snippets at the edges of the fast path's subset; some
// it reads, most it must decline.
var fastYAMLEdges = []string{
	"a: 1\nb: [x, 'y', \"z\"]\nc: {d: e, f: [g, {h: i}]}\n",
	"---\na: 1\n",
	"--- \na: 1\n",
	"---\na: 1\n---\nb: 2\n",
	"---\n---\na: 1\n",
	"---\n...\n",
	"a: 1\n...\n",
	"a:\n- x\n- y\nb: 2\n",
	"a:\n  - x\n  -\n  - - y\n    - z\n  - k: v\n    l: w\n",
	"- a: 1\n  b:\n  - c\n- d\n",
	"a: b\n  c\n",
	"a:\n  b\n",
	"- a\n  b\n",
	"a: b: c\n",
	"a: 'it''s' # c\nb: \"q\\\"\\n\\x41\\u00e9\\U0001F600\\t\"\n",
	"a: \"\\/\"\n",
	"a: \"\\uD800\"\n",
	"a: \"\\UFFFFFFFF\"\n",
	"a: \"x\n  y\"\n",
	"a: 'x\n  y'\n",
	"a: [1,\n  2]\n",
	"a: [1, 2,]\n",
	"a: {b: 1, }\n",
	"a: {b}\n",
	"a: {b:}\n",
	"a: {b: }\n",
	"a: {\"b\":1}\n",
	"a: [b: c]\n",
	"a: [a:b, c]\n",
	"a: [a?b]\n",
	"a: http://x:80/p?q#f\n",
	"a: b #c\nd: e#f\n",
	"a: &x 1\nb: *x\n",
	"a: !!str 1\n",
	"a: |\n  x\n",
	"a: >\n  x\n",
	"? a\n: b\n",
	"<<: {a: 1}\nb: 2\n",
	"'<<': 1\n",
	"a: 1\na: 2\n",
	"yes: 1\n1.50: 2\n0x1F: 3\n~: 4\n",
	"null: 1\n",
	"'': 1\n\"\": 2\n",
	"a: [yes, on, y, 0x1F, 017, 0o17, 1_000, -5, +7, 0b101, 1e3, .5, -1.25e2, .inf, -.Inf, .nan, ~, null, 1.2.3, 2024-01-02]\n",
	"a: -\nb: -1\nc: -x\nd: --x\n",
	"a: ---\nb: ...\n",
	"a:\tb\n",
	"a: b\r\n",
	"a: b\r\nc:\r\n  - 'd' # e\r\n\r\n  - {f: g}\r\n",
	"a: b\rc: d\n",
	"a: b\r",
	"a: 'b\r\n  c'\r\n",
	"\ufeffa: 1\n",
	"a: \u00e9\u4e2d\U0001F600\n",
	"a: \u2028\n",
	"a: \u0085\n",
	"  a: 1\n  b: 2\n",
	"  a: 1\nb: 2\n",
	"a:\n  b: 1\n c: 2\n",
	"a:\n    b: 1\n  c: 2\n",
	"a:   \n  # c\n  b: 1\n",
	"# only a comment\n",
	"a\n",
	"[a, b]\n",
	"{a: 1}\n",
	"- 1\n- 2\n",
	"a: 'x'y\n",
	"a: \"x\"#c\n",
	"a : 1\n",
	"a:1\n",
	"%YAML 1.2\n---\na: 1\n",
	"a: `x`\n",
	"a: @x\n",
	"a: %x\n",
	"a: x, y\n",
	"a: x]\n",
	"a: ]\n",
	"a: [[[[[[1]]]]]]\n",
	"a: {b: {c: {d: [e, {f: g}]}}}\n",
	strings.Repeat("x", 600) + ": 1\n",
	"a: [" + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "]\n",
}

// checkFastYAML fails when the fast path reads data to a tree that
// yaml.v3's reading does not also give without errors.
func checkFastYAML(t testing.TB, data []byte) bool {
	t.Helper()
	fast, ok := fastYAML(data)
	if !ok {
		return false
	}
	slow, _, errs := parseYAML(data)
	if len(errs) > 0 {
		t.Fatalf("the fast path read %q, yaml.v3 has errors: %v", data, errs)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("the fast path read %q as\n%#v\nyaml.v3 as\n%#v", data, fast, slow)
	}
	return true
}

func TestFastYAMLAgreesWithYAMLv3(t *testing.T) {
	accepted := 0
	for _, doc := range fastYAMLSeeds(t) {
		if checkFastYAML(t, []byte(doc)) {
			accepted++
		}
	}
	require.Greater(t, accepted, 20, "the fast path reads the common files")
}

// The fast path reads what operators write and the bench loads; these
// must not silently fall back (that would only be slow).
func TestFastYAMLReads(t *testing.T) {
	for _, doc := range []string{
		minimal,
		benchConfig(100),
		"---\n# c\na: 1\n\nb:\n- x\n- {y: [1, 2.5, 'z', \"w\"]}\n",
		"a:\n  - k: v\n    l:\n      - 1\n    m: {n: o}\n",
		"a: 'it''s' # comment\nb: \"\\\"\\n\\u00e9\"\nc: \u00e9\n",
		"a: 1\r\nb:\r\n  - x # c\r\n\r\n  - {y: z}\r\n",
	} {
		_, ok := fastYAML([]byte(doc))
		require.True(t, ok, doc)
		checkFastYAML(t, []byte(doc))
	}
	for _, doc := range []string{
		"a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  x\n", "a: b\n  c\n", "a: [1,\n  2]\n",
		"a: 1\na: 2\n", "<<: {a: 1}\n", "---\na: 1\n---\nb: 2\n", "a:\tb\n", "? a\n: b\n",
		"a: \"x\n  y\"\n", "a: \"\\/\"\n", "a: b\rc: d\n", "a: [" + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "]\n",
	} {
		_, ok := fastYAML([]byte(doc))
		require.False(t, ok, doc)
	}
}

// A file the fast path reads but that does not load is loaded again by
// yaml.v3: its errors have their lines, as before.
func TestFastYAMLErrorsHaveLines(t *testing.T) {
	doc := "services:\n  - id: s\n    upstream: {nodes: [{host: 10.0.0.1, port: 80}]}\n    routes:\n      - {paths: [/]}\n      - {paths: [/x], bogus: 1}\n"
	_, ok := fastYAML([]byte(doc))
	require.True(t, ok)
	_, err := Parse([]byte(doc), "gw.yaml")
	require.ErrorContains(t, err, "gw.yaml:6: services[0].routes[1].bogus")
}

func FuzzFastYAML(f *testing.F) {
	for _, doc := range fastYAMLSeeds(f) {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		checkFastYAML(t, data)
	})
}

// TestFastYAMLRandomDocs compares the two readers on documents made of
// random lines of the subset's pieces (and pieces around it): the
// fuzzer's byte mutations rarely make a whole document the fast path
// reads.
func TestFastYAMLRandomDocs(t *testing.T) {
	indents := []string{"", "", " ", "  ", "  ", "   ", "    ", "      "}
	leads := []string{"", "", "", "- ", "- ", "-", "- - ", "-  "}
	keys := []string{"a:", "b:", "c: ", "'d':", `"e":`, "-x:", "1:", "yes:", "a b:", "a#b:", "<<:", "~:", "1.50:", "0x1F:", "x:y:", "", "", "a :", "'<<':", `"\u00e9":`, "é:", "-:", "? a:", "...:", "---:", "[a]:", "{a: b}:"}
	values := []string{"", " 1", " x", " 'q''s'", ` "d\"\u00e9"`, " [1, x]", " {k: v, 'l': [m]}", " []", " {}", " # c",
		" -1", " .5", " on", " null", " ~", " a: b", " &a x", " *a", " !!str 1", " |", " x #c", " x#c", " [a,", " http://h:1/p",
		" 'a", ` "\/"`, " ---", " - x", " [a, [b, {c: [d]}]]", " {a: 1, a: 2}", " {a: b c}", " [a b, 'c d']", " 1e3", " 0o17",
		"  x  ", " x: ", " ...", " -", " -.inf", " {a: [b, c], d: {e: f}}  # c", " [\"a\", 'b']", " é中", " a,b", " a]", " {a: 1}x",
		" [-1, -x, .5, ~]", " {1: 2, yes: no}", ` "\x41\u00e9\n"`, " '  '", " ''", ` ""`, " {'<<': 1}", " [a#b, c]", " {a: b#c}", " 0b101", " +7"}
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rnd.IntN(len(s))] }
	accepted := 0
	for range 30000 {
		var b strings.Builder
		if rnd.IntN(10) == 0 {
			b.WriteString("---\n")
		}
		for range 1 + rnd.IntN(8) {
			b.WriteString(pick(indents) + pick(leads) + pick(keys) + pick(values) + "\n")
			if rnd.IntN(8) == 0 {
				b.WriteString(pick(indents) + "# comment\n\n")
			}
		}
		doc := b.String()
		if rnd.IntN(4) == 0 {
			doc = strings.ReplaceAll(doc, "\n", "\r\n")
		}
		if checkFastYAML(t, []byte(doc)) {
			accepted++
		}
	}
	require.Greater(t, accepted, 1000)
	t.Logf("the fast path read %d of the documents", accepted)
}
