// Package testseed reads the seed sample objects of config/testdata/seeds
// (issue 21: objects copied from the API7 and Huawei documents) for tests,
// and edits them where a test must: a sample's node address becomes the
// test's backend, a placeholder PEM a certificate made at test time. Every
// edit is a call a reader of the test can see.
package testseed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Dir is config/testdata/seeds, wherever the test runs from.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "testdata", "seeds")
}

// Load reads one sample file as generic JSON (objects are
// map[string]any, lists []any, numbers float64).
func Load(name string) any {
	b, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		panic(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return v
}

// Set replaces the value at path ("value.upstream.nodes", "list.0.paths")
// and returns doc. The path must exist up to its last step.
func Set(doc any, path string, val any) any {
	parent, last := walk(doc, path)
	switch p := parent.(type) {
	case map[string]any:
		p[last] = val
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i >= len(p) {
			panic("testseed: bad index " + path)
		}
		p[i] = val
	}
	return doc
}

// Delete removes the key at path and returns doc.
func Delete(doc any, path string) any {
	parent, last := walk(doc, path)
	m, ok := parent.(map[string]any)
	if !ok {
		panic("testseed: not an object at " + path)
	}
	if _, ok := m[last]; !ok {
		panic("testseed: no key at " + path)
	}
	delete(m, last)
	return doc
}

// Get returns the value at path.
func Get(doc any, path string) any {
	parent, last := walk(doc, path)
	switch p := parent.(type) {
	case map[string]any:
		return p[last]
	case []any:
		i, _ := strconv.Atoi(last)
		return p[i]
	}
	return nil
}

func walk(doc any, path string) (any, string) {
	steps := strings.Split(path, ".")
	cur := doc
	for _, s := range steps[:len(steps)-1] {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[s]
			if !ok {
				panic("testseed: no key " + s + " in " + path)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i >= len(c) {
				panic("testseed: bad index " + s + " in " + path)
			}
			cur = c[i]
		default:
			panic("testseed: cannot walk into " + path)
		}
	}
	return cur, steps[len(steps)-1]
}

// JSON marshals a config document.
func JSON(doc any) string {
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return string(b)
}
