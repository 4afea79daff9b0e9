// Package gzip is APISIX's gzip and brotli plugins: a response of an
// eligible type and size is compressed when the client accepts the
// encoding. A buffered body is compressed whole; a streamed one (chunked,
// or longer than transport.StreamThreshold) is compressed as it streams.
package gzip

import (
	"bytes"
	"io"
	"runtime"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/valyala/fasthttp"

	"gateway/config"
	"gateway/plugin"
)

// Name is the plugin's key under plugins.
const Name = "gzip"

// Priority: APISIX's 995.
const Priority = 995

func init() {
	plugin.Register(config.PluginDef{Name: Name, Priority: Priority, Route: func() any { return &Config{} }}, compile)
}

// Config is the plugin's config.
type Config struct {
	Types     []string `json:"types"`      // media types; ["*"]: all
	MinLength int64    `json:"min_length"` // bytes
	CompLevel int64    `json:"comp_level"` // 1..9
}

// SetDefaults implements config.Defaulter (APISIX's defaults).
func (c *Config) SetDefaults() {
	c.Types, c.MinLength, c.CompLevel = []string{"text/html"}, 20, 1
}

// Validate implements config.Validating.
func (c *Config) Validate(ch *config.Check) {
	checkTypes(ch, c.Types)
	ch.Field("min_length").IntRange(c.MinLength, 1, 1<<31-1)
	ch.Field("comp_level").IntRange(c.CompLevel, 1, 9)
}

func checkTypes(ch *config.Check, types []string) {
	if len(types) == 0 {
		ch.Field("types").Errorf(`at least one media type (or "*") is required`)
	}
	for i, t := range types {
		if t == "*" {
			continue
		}
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;,") {
			ch.Field("types").Index(i).Errorf(`not a media type (type/subtype, or "*"), got %q`, t)
		}
	}
}

var (
	hdrAcceptEncoding  = []byte("Accept-Encoding")
	hdrContentEncoding = []byte("Content-Encoding")
	hdrVary            = []byte("Vary")
	hdrETag            = []byte("ETag")
	strAcceptEncoding  = []byte("Accept-Encoding")
	strGzip            = []byte("gzip")
	strXGzip           = []byte("x-gzip")
	strBr              = []byte("br")
	strSemicolon       = []byte(";")
	strWeak            = []byte("W/")
)

type step struct {
	all       bool
	types     [][]byte // lower case
	minLength int
	writers   *writerPool
	encoding  []byte               // the Content-Encoding it writes
	accepts   func(ae []byte) bool // the client's Accept-Encoding allows it

	plugin.Stateless // no long-lived state: a reload may keep the step (issue 20)
}

// compressor is a gzip or brotli writer.
type compressor interface {
	Reset(w io.Writer)
	Write(p []byte) (int, error)
	Flush() error
	Close() error
}

// writerPool keeps the writers of one encoding and level. It is a bounded
// free list rather than a sync.Pool: a GC empties a sync.Pool, and a new
// writer costs up to megabytes of compressor state, so under a busy heap
// a sync.Pool would rebuild writers all the time.
type writerPool struct {
	level int
	newW  func() compressor
	free  chan compressor
}

func (p *writerPool) get() compressor {
	select {
	case w := <-p.free:
		return w
	default:
		return p.newW()
	}
}

func (p *writerPool) put(w compressor) {
	select {
	case p.free <- w:
	default: // full: let it go
	}
}

// One pool per level, shared by every route; as many writers as requests
// compress at once, up to a bound.
var writerPools [10]writerPool

// poolSize bounds every free list.
var poolSize = 4 * runtime.GOMAXPROCS(0)

func init() {
	for level := range writerPools {
		writerPools[level] = writerPool{level: level, free: make(chan compressor, poolSize), newW: func() compressor {
			w, _ := kgzip.NewWriterLevel(nil, level)
			return w
		}}
	}
	outFree = make(chan *out, poolSize)
}

func compile(conf any, _ *plugin.Env) (plugin.Step, error) {
	c := conf.(*Config)
	return newStep(c.Types, c.MinLength, &writerPools[c.CompLevel], strGzip, acceptsGzip), nil
}

func newStep(types []string, minLength int64, pool *writerPool, encoding []byte, accepts func([]byte) bool) *step {
	s := &step{minLength: int(minLength), writers: pool, encoding: encoding, accepts: accepts}
	for _, t := range types {
		if t == "*" {
			s.all = true
		}
		s.types = append(s.types, []byte(strings.ToLower(t)))
	}
	return s
}

// out is the compressed body while it is written; pooled.
type out struct{ b []byte }

func (o *out) Write(p []byte) (int, error) {
	o.b = append(o.b, p...)
	return len(p), nil
}

// compress sets o.b to body compressed by a writer of pool.
func (o *out) compress(body []byte, pool *writerPool) error {
	o.b = o.b[:0]
	w := pool.get()
	defer pool.put(w)
	w.Reset(o)
	if _, err := w.Write(body); err != nil {
		return err
	}
	return w.Close()
}

// outFree keeps output buffers (bounded, as writerPool).
var outFree chan *out

func getOut() *out {
	select {
	case o := <-outFree:
		return o
	default:
		return &out{}
	}
}

func putOut(o *out) {
	select {
	case outFree <- o:
	default:
	}
}

// maxPooledOut is the largest buffer kept in outFree.
const maxPooledOut = 1 << 20

// EncodesBody implements plugin.Encoder: gzip runs after the other
// response steps.
func (s *step) EncodesBody() {}

// OnResponse compresses the body when everything allows it.
func (s *step) OnResponse(r *plugin.Request) {
	ctx := r.Ctx
	resp := &ctx.Response
	switch sc := resp.StatusCode(); {
	case ctx.IsHead(), sc < 200, sc == fasthttp.StatusNoContent, sc == fasthttp.StatusPartialContent, sc == fasthttp.StatusNotModified:
		return
	}
	if len(resp.Header.PeekBytes(hdrContentEncoding)) > 0 || !s.typeOK(resp.Header.ContentType()) {
		return
	}
	// Whether this answer is compressed depends on Accept-Encoding from
	// here on, whatever this client sent.
	resp.Header.AddBytesKV(hdrVary, strAcceptEncoding)
	if !s.accepts(ctx.Request.Header.PeekBytes(hdrAcceptEncoding)) {
		return
	}
	if resp.IsBodyStream() {
		if n := resp.Header.ContentLength(); n >= 0 && n < s.minLength {
			return
		}
		if !s.compressStream(resp) {
			return
		}
	} else {
		body := resp.Body()
		if len(body) < s.minLength {
			return
		}
		o := getOut()
		err := o.compress(body, s.writers)
		if err == nil {
			resp.SetBody(o.b) // copies into the response's own buffer
		}
		if cap(o.b) <= maxPooledOut {
			putOut(o)
		}
		if err != nil {
			return
		}
	}
	resp.Header.SetBytesKV(hdrContentEncoding, s.encoding)
	// The representation changed: a strong validator becomes weak (as
	// nginx does).
	if et := resp.Header.PeekBytes(hdrETag); len(et) > 0 && et[0] == '"' {
		r.Scratch = append(append(r.Scratch[:0], strWeak...), et...)
		resp.Header.SetBytesKV(hdrETag, r.Scratch)
	}
}

func (s *step) typeOK(ct []byte) bool {
	if s.all {
		return true
	}
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range s.types {
		if len(t) == len(ct) && equalFoldLower(ct, t) {
			return true
		}
	}
	return false
}

func equalFoldLower(b, lower []byte) bool {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// acceptsGzip reads Accept-Encoding: gzip (or x-gzip, or *) with a q-value
// other than 0.
func acceptsGzip(ae []byte) bool { return acceptsCoding(ae, strGzip, strXGzip, true) }

// acceptsBrotli reads Accept-Encoding: br with a q-value other than 0 (not
// *: a client that names no encoding gets gzip, the older one, if any).
func acceptsBrotli(ae []byte) bool { return acceptsCoding(ae, strBr, nil, false) }

func acceptsCoding(ae, name, alias []byte, star bool) bool {
	for len(ae) > 0 {
		var item []byte
		if i := bytes.IndexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, nil
		}
		coding, params, _ := bytes.Cut(item, strSemicolon)
		coding = bytes.TrimSpace(coding)
		if !(len(coding) == len(name) && equalFoldLower(coding, name)) &&
			!(alias != nil && len(coding) == len(alias) && equalFoldLower(coding, alias)) &&
			!(star && len(coding) == 1 && coding[0] == '*') {
			continue
		}
		return !qZero(params)
	}
	return false
}

// qZero reports a q parameter of 0 (q=0, q=0.0, q=0.000).
func qZero(params []byte) bool {
	p := bytes.TrimSpace(params)
	if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') {
		return false
	}
	p = bytes.TrimSpace(p[1:])
	if len(p) == 0 || p[0] != '=' {
		return false
	}
	p = bytes.TrimSpace(p[1:])
	if len(p) == 0 || p[0] != '0' {
		return false
	}
	for _, c := range p[1:] {
		if c != '.' && c != '0' {
			return false
		}
	}
	return true
}
