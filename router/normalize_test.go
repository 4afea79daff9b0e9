package router

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string // want "400": refused
	}{
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		// '//' collapses, anywhere.
		{"//", "/"},
		{"//a///b//", "/a/b/"},
		// '.' segments go.
		{"/./a/./b/.", "/a/b/"},
		{"/a/.b/", "/a/.b/"},
		{"/a/b./", "/a/b./"},
		// '..' removes the segment before it.
		{"/a/../b", "/b"},
		{"/a/b/..", "/a/"},
		{"/a/b/../", "/a/"},
		{"/a/..", "/"},
		{"/public/../admin", "/admin"},
		{"/a/.../b", "/a/.../b"},
		{"/a/..b", "/a/..b"},
		// Climbing above the root is refused.
		{"/..", "400"},
		{"/../a", "400"},
		{"/a/../..", "400"},
		{"/a/../../b", "400"},
		// Escaped dots are dots: decoded first, then resolved.
		{"/%2e%2e", "400"},
		{"/a/%2e%2e/b", "/b"},
		{"/a/%2E%2e/b", "/b"},
		{"/a/.%2e/b", "/b"},
		{"/a/%2e/b", "/a/b"},
		// Unreserved characters are decoded.
		{"/%41%7a%30%2D%5f%7E", "/Az0-_~"},
		// Others stay encoded, hex upper-cased: %2F is not a separator.
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb/..", "/"},
		{"/%2f%2e%2e", "/%2F.."},
		{"/%20%c3%a9", "/%20%C3%A9"},
		{"/%25", "/%25"},
		// Broken escapes and relative paths are refused.
		{"/%", "400"},
		{"/%4", "400"},
		{"/%zz", "400"},
		{"/a%g1", "400"},
		{"", "400"},
		{"a/b", "400"},
		{"*", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := normalizePath(make([]byte, 0, len(tt.in)+1), []byte(tt.in))
			if tt.want == "400" {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com:8080", "example.com"},
		{"EXAMPLE.com:80", "example.com"},
		{"example.com.", "example.com"},
		{"example.com.:443", "example.com"},
		{"10.0.0.1:80", "10.0.0.1"},
		{"[::1]:80", "[::1]"},
		{"[::1]", "[::1]"},
		{"[FE80::1]:8443", "[fe80::1]"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, string(normalizeHost(nil, []byte(tt.in))))
		})
	}
}

func TestMatchNormalisesPath(t *testing.T) {
	r := compile(t,
		svc("s", nil, "/", true,
			rt("admin", "/admin"),
			rt("public", "/public/*"),
			rt("enc", "/files/a%2Fb"),
			rt("tilde", "/~user"),
		),
	)
	tests := []struct{ path, want, norm string }{
		{"/public/../admin", "admin", "/admin"},
		{"/public/%2e%2e/admin", "admin", "/admin"},
		{"//admin", "admin", "/admin"},
		{"/./admin", "admin", "/admin"},
		{"/public//x", "public", "/public/x"},
		{"/files/a%2fb", "400", ""}, // path_policy reject, the default; keep: TestPathModes
		{"/files/a/b", "404", "/files/a/b"},
		{"/%7euser", "tilde", "/~user"},
		{"/%61dmin", "admin", "/admin"},
		{"/..", "400", ""},
		{"/public/../../admin", "400", ""},
		{"admin", "400", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m := do(r, "GET", "", tt.path, nil)
			require.Equal(t, tt.want, routeID(m))
			require.Equal(t, tt.norm, string(m.Path))
		})
	}
}

// refNormalize is a plain, slow normalisation to check normalizePath
// against: decode, split, resolve, join.
func refNormalize(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return "", false
		}
		d, err := strconv.ParseUint(p[i+1:i+3], 16, 8)
		if err != nil || strings.ContainsAny(p[i+1:i+3], "+-") {
			return "", false
		}
		if c := byte(d); isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
		}
		i += 2
	}
	segs := strings.Split(b.String()[1:], "/")
	var stack []string
	trailing := false
	for _, s := range segs {
		trailing = s == "" || s == "." || s == ".."
		switch s {
		case "", ".":
		case "..":
			if len(stack) == 0 {
				return "", false
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, s)
		}
	}
	out := "/" + strings.Join(stack, "/")
	if trailing && len(stack) > 0 {
		out += "/"
	}
	return out, true
}

func TestNormalizePathAgainstReference(t *testing.T) {
	const alphabet = "//..aZ%2eEfF41"
	rnd := rand.New(rand.NewPCG(1, 2))
	n := 50000
	if testing.Short() {
		n = 5000
	}
	for range n {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		if len(b) > 0 && rnd.IntN(10) > 0 {
			b[0] = '/'
		}
		want, wantOK := refNormalize(string(b))
		got, ok := normalizePath(nil, b)
		if ok != wantOK || ok && string(got) != want {
			t.Fatalf("%q: got %q %v, want %q %v", b, got, ok, want, wantOK)
		}
		if ok {
			// Normal paths are fixed points.
			if again, ok := normalizePath(nil, got); !ok || string(again) != string(got) {
				t.Fatalf("%q: not a fixed point: %q", got, again)
			}
		}
		if len(b) > 0 && b[0] == '/' && isNormal(b) != isNormalTail(b) {
			t.Fatalf("%q: isNormal %v, byte by byte %v", b, isNormal(b), isNormalTail(b))
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "//a//b/./c/..", "/a%2fb", "/.well-known/x",
		"/a/%2E%2e/b", "/%7euser/%41%2f%2F", "/a/b/../../..", "/..", "/%", "/%g0", "/a/./././b//", "/\x00/\xff%00",
		"/public/..%2Fadmin", "/public\\..\\admin", "/public/..;x/admin", "/a%2F%2F%5cb", "/%2F..%2F..", "/a;b/c.;d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want, wantOK := refNormalize(p)
		got, ok := normalizePath(nil, []byte(p))
		if ok != wantOK || ok && string(got) != want {
			t.Fatalf("%q: got %q %v, want %q %v", p, got, ok, want, wantOK)
		}
		if len(p) > 0 && p[0] == '/' && isNormal([]byte(p)) != isNormalTail([]byte(p)) {
			t.Fatalf("%q: isNormal disagrees", p)
		}
		if ok {
			checkNormalPath(t, p, got)
			// Normalising into a dirty, reused buffer gives the same.
			dst := append([]byte(nil), "/garbage/../%2e/"...)
			if again, ok2 := normalizePath(dst, []byte(p)); !ok2 || string(again) != string(got) {
				t.Fatalf("%q: with a reused buffer %q %v, want %q", p, again, ok2, got)
			}
		}
		if !ok && len(p) > 0 && p[0] == '/' && isNormal([]byte(p)) {
			t.Fatalf("%q: refused, but isNormal says it is normal", p)
		}
		checkPathModes(t, p)
	})
}

func TestLowerASCII(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for n := range len(all) {
		for _, off := range []int{0, 1, 7, 100} {
			if off+n > len(all) {
				continue
			}
			b := append([]byte(nil), all[off:off+n]...)
			lowerASCII(b)
			var want []byte
			for _, c := range all[off : off+n] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				want = append(want, c)
			}
			require.Equal(t, want, b)
		}
	}
}

// Issue 12.4: path forms that backends reinterpret, under each
// gateway.path_policy (and reject_path_params).
func TestPathModes(t *testing.T) {
	const refused = "400"
	tests := []struct {
		in                    string
		reject, decode, keep  string
		rejectParamsOverrides bool // reject_path_params: true refuses it in every mode
	}{
		{"/a/b", "/a/b", "/a/b", "/a/b", false},
		{"/public/..%2Fadmin", refused, "/admin", "/public/..%2Fadmin", false},
		{"/public/..%2fadmin", refused, "/admin", "/public/..%2Fadmin", false},
		{"/public/..%5Cadmin", refused, "/admin", "/public/..%5Cadmin", false},
		{"/public/..\\admin", refused, "/admin", "/public/..\\admin", false},
		{"/public\\..\\admin", refused, "/admin", "/public\\..\\admin", false},
		{"/public/..;/admin", refused, refused, "/public/..;/admin", true},
		{"/public/..;x/admin", refused, refused, "/public/..;x/admin", true},
		{"/public/.;x/admin", refused, refused, "/public/.;x/admin", true},
		{"/public/%2e%2e;x/admin", refused, refused, "/public/..;x/admin", true},
		{"/admin;x", "/admin;x", "/admin;x", "/admin;x", true},
		{"/a;b/c.;d/e..;f", "/a;b/c.;d/e..;f", "/a;b/c.;d/e..;f", "/a;b/c.;d/e..;f", true},
		{"/admin%2Fx", refused, "/admin/x", "/admin%2Fx", false},
		{"/admin%00", refused, refused, "/admin%00", false},
		{"/a%2F%2F%5cb", refused, "/a/b", "/a%2F%2F%5Cb", false},
		{"/a/%2F..", refused, "/", "/a/%2F..", false},
		{"/%2F..%2F..", refused, refused, "/%2F..%2F..", false},
		{"/a%3Bb", "/a%3Bb", "/a%3Bb", "/a%3Bb", false},
		{"/a%2", refused, refused, refused, false},
	}
	for _, tt := range tests {
		for _, mc := range []struct {
			mode PathMode
			want string
		}{{PathReject, tt.reject}, {PathDecode, tt.decode}, {PathKeep, tt.keep}} {
			for _, rp := range []bool{false, true} {
				want := mc.want
				if rp && tt.rejectParamsOverrides {
					want = refused
				}
				got, ok := normalizePathMode(nil, []byte(tt.in), mc.mode, rp)
				if want == refused {
					require.False(t, ok, "%q mode %d params %v: got %q", tt.in, mc.mode, rp, got)
					continue
				}
				require.True(t, ok, "%q mode %d params %v", tt.in, mc.mode, rp)
				require.Equal(t, want, string(got), "%q mode %d params %v", tt.in, mc.mode, rp)
			}
		}
	}
}

// The router applies gateway.path_policy: with a catch-all, the encoded
// forms of /admin never reach it under reject, and reach /admin under
// decode.
func TestMatchPathPolicy(t *testing.T) {
	services := []config.Service{svc("s", nil, "/", true, rt("admin", "/admin/*"), rt("open", "/*"))}
	for _, tc := range []struct {
		policy string
		params bool
		want   map[string]string
	}{
		{"reject", false, map[string]string{"/admin%2Fx": "400", "/x/..%2Fadmin/y": "400", "/x/..;/admin/y": "400", "/admin;x/y": "open", "/x/..\\admin/y": "400"}},
		{"reject", true, map[string]string{"/admin;x/y": "400", "/admin/y": "admin"}},
		{"decode", false, map[string]string{"/admin%2Fx": "admin", "/x/..%2Fadmin/y": "admin", "/x/..%5cadmin/y": "admin", "/x/..\\admin/y": "admin", "/x/..;/admin/y": "400"}},
		{"keep", false, map[string]string{"/admin%2Fx": "open", "/x/..%2Fadmin/y": "open", "/x/..;/admin/y": "open"}},
	} {
		r, err := Compile(&config.Config{Gateway: config.Gateway{PathPolicy: tc.policy, RejectPathParams: tc.params}, Services: services})
		require.NoError(t, err)
		for path, want := range tc.want {
			require.Equal(t, want, routeID(do(r, "GET", "", path, nil)), "%s %v %s", tc.policy, tc.params, path)
		}
	}
	r, err := Compile(&config.Config{Gateway: config.Gateway{PathPolicy: "decode"}, Services: services})
	require.NoError(t, err)
	m := do(r, "GET", "", "/admin%2Fx%2F..%2Fy", nil)
	require.Equal(t, "/admin/y", string(m.UpstreamPath), "the decoded path is what goes upstream")
}
