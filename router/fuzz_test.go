package router

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"gateway/config"
)

// Fuzz targets of the router. Each runs its seeds in the default `go test`;
// .ci/run fuzzes each for a bounded time.

// FuzzParseCompile: any file that config.Parse accepts must compile into a
// router, and neither may panic. A config that validates but does not
// compile would be refused only at Apply, after `gateway validate` said ok.
func FuzzParseCompile(f *testing.F) {
	seeds := []string{
		"",
		"services: []",
		"services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/]}]}]",
		`services:
  - id: s
    hosts: [api.example.com, "*.example.com"]
    path_prefix: /api
    strip_path_prefix: false
    upstream: {nodes: [{host: 10.0.0.1, port: 80}]}
    routes:
      - {id: a, paths: ["/users/{id}", "/u/:id/x"], methods: [GET, POST], priority: 2}
      - {id: b, paths: ["/files*"], vars: [["arg_x", "==", "1"], ["!", "http_y", "~~", "^a"]]}
      - {id: c, paths: ["/*"]}
`,
		`{"services":[{"id":"s","upstream":{"nodes":[{"host":"a","port":1}]},"routes":[{"paths":["/{a}/{b}"]}]}]}`,
		"services: [{id: s, upstream: {nodes: [{host: a, port: 1}]}, routes: [{paths: [/a]}, {paths: [/a]}]}]",
		"gateway: {control_api: {token: \"$env://NOPE\"}}",
	}
	for _, s := range seeds {
		f.Add([]byte(s), len(s) > 0 && s[0] == '{')
	}
	// Whole files: the README-style config in testdata (every plugin, a
	// throttle policy, consumers, health checks) and config's own.
	files, _ := filepath.Glob("testdata/fuzz-seed-*")
	more, _ := filepath.Glob("../config/testdata/*")
	files = append(files, more...)
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data, filepath.Ext(name) == ".json")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		name := "fuzz.yaml"
		if isJSON {
			name = "fuzz.json"
		}
		cfg, err := config.Parse(data, name)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Parse returned a config with errors: %v", err)
			}
			return
		}
		r, err := Compile(cfg)
		if err != nil {
			t.Fatalf("a config that loads does not compile: %v\n%s", err, data)
		}
		// Every compiled route is matchable: a request to its first path
		// (parameters filled in) reaches some route.
		var m Match
		for _, rt := range r.Routes() {
			r.Match(&Request{Method: []byte("GET"), Host: []byte("fuzz.example"), Path: []byte(rt.Patterns[0]), Vars: argVars{}}, &m)
		}
	})
}

// FuzzMatchAgainstReference: Match agrees with the brute-force reference
// of reference_test.go for a random config (from the seeds) and a request
// of arbitrary bytes.
func FuzzMatchAgainstReference(f *testing.F) {
	f.Add(uint64(1), uint64(2), "GET", "a.com", "/a/b", false)
	f.Add(uint64(3), uint64(4), "POST", "b.a.com:8080", "/ab/../a/%62", true)
	f.Add(uint64(5), uint64(6), "DELETE", "A.COM.", "//a//./b/", false)
	f.Add(uint64(7), uint64(8), "PUT", "[::1]:80", "/a%2fb/c", true)
	f.Add(uint64(9), uint64(10), "GET", "", "/", false)
	f.Add(uint64(11), uint64(12), "get", "x.com", "/a/b/c/d/e", true)
	f.Add(uint64(13), uint64(14), "GET", "c.b.a.com", "/%2e%2e/a", false)
	f.Add(uint64(15), uint64(16), "GET", "a.com", "/a/..%2Fb;x/..;/c\\d%5c", true)
	f.Add(uint64(16), uint64(17), "POST", "a.com", "/ab/%00/a;b", false)
	m := &Match{}
	f.Fuzz(func(t *testing.T, s1, s2 uint64, method, host, path string, x bool) {
		cfg := randomConfig(rand.New(rand.NewPCG(s1, s2)))
		cfg.Gateway.PathPolicy = []string{"reject", "decode", "keep"}[s1%3]
		cfg.Gateway.RejectPathParams = s2%2 == 1
		r, err := Compile(cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, dumpConfig(cfg))
		}
		args := argVars{}
		if x {
			args["x"] = "1"
		}
		wantID, wantParams, wantAllow := refMatch(r, cfg, method, host, path, args)
		r.Match(&Request{Method: []byte(method), Host: []byte(host), Path: []byte(path), Vars: args}, m)
		got := routeID(m)
		if got != wantID || string(m.Allow) != wantAllow || !paramsEqual(m.Params, wantParams) {
			t.Fatalf("%q %q %q %v: got %s %q %s, want %s %q %s\n%s", method, host, path, args,
				got, m.Allow, fmtParams(m.Params), wantID, wantAllow, fmtParams(wantParams), dumpConfig(cfg))
		}
	})
}

// checkNormalPath asserts the properties every normalised path has.
func checkNormalPath(t *testing.T, in string, out []byte) {
	t.Helper()
	if len(out) == 0 || out[0] != '/' {
		t.Fatalf("%q: result %q does not start with /", in, out)
	}
	if len(out) > len(in) {
		t.Fatalf("%q: result %q is longer than the input", in, out)
	}
	if bytes.Contains(out, []byte("//")) {
		t.Fatalf("%q: result %q has an empty segment", in, out)
	}
	for seg := range bytes.SplitSeq(out[1:], []byte("/")) {
		if string(seg) == "." || string(seg) == ".." {
			t.Fatalf("%q: result %q has a dot segment", in, out)
		}
	}
	for i := 0; i < len(out); i++ {
		if out[i] != '%' {
			continue
		}
		if i+2 >= len(out) || unhex(out[i+1]) > 15 || unhex(out[i+2]) > 15 {
			t.Fatalf("%q: result %q has a broken escape", in, out)
		}
		if out[i+1] >= 'a' || out[i+2] >= 'a' {
			t.Fatalf("%q: result %q has a lower-case escape", in, out)
		}
		if isUnreserved(unhex(out[i+1])<<4 | unhex(out[i+2])) {
			t.Fatalf("%q: result %q keeps an escape of an unreserved character", in, out)
		}
		i += 2
	}
	again, ok := normalizePath(nil, out)
	if !ok || !bytes.Equal(again, out) {
		t.Fatalf("%q: not idempotent: %q then %q (%v)", in, out, again, ok)
	}
}

// checkPathModes asserts how the path policies relate on one input: every
// accepted result is normal and a fixed point of its mode; reject accepts
// only what keep and decode give the same result for; reject_path_params
// only ever refuses more; decode leaves no encoded separator; reject lets
// none through.
func checkPathModes(t *testing.T, in string) {
	t.Helper()
	type result struct {
		out string
		ok  bool
	}
	res := map[PathMode][2]result{}
	for _, mode := range []PathMode{PathReject, PathDecode, PathKeep} {
		var r [2]result
		for i, rp := range []bool{false, true} {
			out, ok := normalizePathMode(nil, []byte(in), mode, rp)
			r[i] = result{string(out), ok}
			if !ok {
				continue
			}
			if len(out) == 0 || out[0] != '/' || bytes.Contains(out, []byte("//")) || len(out) > len(in) {
				t.Fatalf("%q mode %d params %v: result %q", in, mode, rp, out)
			}
			for seg := range bytes.SplitSeq(out[1:], []byte("/")) {
				if string(seg) == "." || string(seg) == ".." {
					t.Fatalf("%q mode %d params %v: result %q has a dot segment", in, mode, rp, out)
				}
			}
			again, ok2 := normalizePathMode(nil, out, mode, rp)
			if !ok2 || !bytes.Equal(again, out) {
				t.Fatalf("%q mode %d params %v: not a fixed point: %q then %q (%v)", in, mode, rp, out, again, ok2)
			}
			if mode != PathKeep {
				up := bytes.ToUpper(out)
				if bytes.Contains(up, []byte("%2F")) || bytes.Contains(up, []byte("%5C")) || bytes.IndexByte(out, '\\') >= 0 {
					t.Fatalf("%q mode %d params %v: result %q keeps an encoded separator", in, mode, rp, out)
				}
			}
			if mode == PathReject && bytes.Contains(out, []byte("%00")) {
				t.Fatalf("%q: reject let %%00 through: %q", in, out)
			}
		}
		if r[1].ok && (!r[0].ok || r[0].out != r[1].out) {
			t.Fatalf("%q mode %d: reject_path_params accepted %q but without it %v %q", in, mode, r[1].out, r[0].ok, r[0].out)
		}
		res[mode] = r
	}
	for i := range 2 {
		rej := res[PathReject][i]
		if !rej.ok {
			continue
		}
		for _, mode := range []PathMode{PathDecode, PathKeep} {
			if o := res[mode][i]; !o.ok || o.out != rej.out {
				t.Fatalf("%q: reject accepted %q, mode %d gives %v %q", in, rej.out, mode, o.ok, o.out)
			}
		}
	}
}
