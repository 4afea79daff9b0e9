package proxy

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// /metrics (issue 20). The registry's families (Go and process collectors,
// health, throttling, TLS, ...) are gathered and encoded by client_golang
// as before; the flat families are written straight from their slots into
// a small reused buffer, flushed to the client (gzip-compressed when it
// asks) as it fills, each family at its place in name order. A scrape
// therefore builds no object per series and allocates about the same at 10
// or 10,000 routes.

// flatFamily is one family written from the slot tables.
type flatFamily struct {
	name, help, typ string
	write           func(f *flatMetrics, w *expoWriter)
}

// flatFamilies are sorted by name, as Gather sorts the registry's.
var flatFamilies = []flatFamily{
	{"gateway_http_bytes_total", "Body bytes received from clients (in) and sent to them (out).", "counter", (*flatMetrics).writeBytes},
	{"gateway_http_request_duration_seconds", "Time from request start to response handed to the client.", "histogram", (*flatMetrics).writeRequestDurations},
	{"gateway_http_requests_total", "HTTP requests served, by service, route and status code.", "counter", (*flatMetrics).writeRequests},
	{"gateway_upstream_attempts_total", "Attempts against upstream nodes, by result.", "counter", (*flatMetrics).writeAttempts},
	{"gateway_upstream_request_duration_seconds", "Duration of one attempt against an upstream node.", "histogram", (*flatMetrics).writeUpstreamDurations},
}

// leLabels are the `le` values of the duration buckets, +Inf last.
var leLabels = func() (s [numBuckets + 1]string) {
	for i, b := range durationBuckets {
		s[i] = string(appendValue(nil, b))
	}
	s[numBuckets] = "+Inf"
	return
}()

// appendValue appends v as client_golang's text encoder writes a sample
// value.
func appendValue(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, '-', '1')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendCount appends a count as appendValue(float64(n)) would, faster
// below 1e6 (where %g writes the integer's digits).
func appendCount(b []byte, n uint64) []byte {
	if n < 1e6 {
		return strconv.AppendUint(b, n, 10)
	}
	return appendValue(b, float64(n))
}

// expoWriter is the buffer a scrape writes into, flushed to out whenever
// it holds more than expoFlushAt bytes.
type expoWriter struct {
	b   []byte
	out io.Writer
	err error
}

const expoFlushAt = 32 << 10

func (w *expoWriter) maybeFlush() {
	if len(w.b) >= expoFlushAt {
		w.flush()
	}
}

func (w *expoWriter) flush() {
	if w.err == nil && len(w.b) > 0 {
		_, w.err = w.out.Write(w.b)
	}
	w.b = w.b[:0]
}

func (w *expoWriter) header(ff *flatFamily) {
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, ff.name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, ff.help...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, ff.name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, ff.typ...)
	w.b = append(w.b, '\n')
}

// histogram writes the _bucket, _sum and _count lines of one series.
func (w *expoWriter) histogram(name string, labels []byte, h *histogram) {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		w.b = append(w.b, name...)
		w.b = append(w.b, "_bucket{"...)
		w.b = append(w.b, labels...)
		w.b = append(w.b, `,le="`...)
		w.b = append(w.b, leLabels[i]...)
		w.b = append(w.b, `"} `...)
		w.b = appendCount(w.b, cum)
		w.b = append(w.b, '\n')
	}
	w.b = append(w.b, name...)
	w.b = append(w.b, "_sum{"...)
	w.b = append(w.b, labels...)
	w.b = append(w.b, "} "...)
	w.b = appendValue(w.b, h.sumSeconds())
	w.b = append(w.b, '\n')
	w.b = append(w.b, name...)
	w.b = append(w.b, "_count{"...)
	w.b = append(w.b, labels...)
	w.b = append(w.b, "} "...)
	w.b = appendCount(w.b, cum)
	w.b = append(w.b, '\n')
	w.maybeFlush()
}

func (f *flatMetrics) writeBytes(w *expoWriter) {
	svcs := f.services.slots()
	for _, dir := range [...]string{"in", "out"} {
		for _, s := range svcs {
			c := &s.bytesIn
			if dir == "out" {
				c = &s.bytesOut
			}
			w.b = append(w.b, `gateway_http_bytes_total{direction="`...)
			w.b = append(w.b, dir...)
			w.b = append(w.b, `",`...)
			w.b = append(w.b, s.labels...)
			w.b = append(w.b, "} "...)
			w.b = appendCount(w.b, c.n.Load())
			w.b = append(w.b, '\n')
			w.maybeFlush()
		}
	}
}

func (f *flatMetrics) writeRequestDurations(w *expoWriter) {
	const name = "gateway_http_request_duration_seconds"
	if !f.routeHistograms.Load() {
		for _, s := range f.services.slots() {
			w.histogram(name, s.durLabel, &s.dur)
		}
		return
	}
	for _, r := range f.routes.slots() {
		w.histogram(name, r.labels, &r.dur)
	}
}

func (f *flatMetrics) writeRequests(w *expoWriter) {
	for _, r := range f.routes.slots() {
		r.codes.each(func(code int, n uint64) {
			w.b = append(w.b, `gateway_http_requests_total{code="`...)
			w.b = append(w.b, codeLabels[code]...)
			w.b = append(w.b, `",`...)
			w.b = append(w.b, r.labels...)
			w.b = append(w.b, "} "...)
			w.b = appendCount(w.b, n)
			w.b = append(w.b, '\n')
		})
		w.maybeFlush()
	}
}

func (f *flatMetrics) writeAttempts(w *expoWriter) {
	for _, n := range f.nodes.slots() {
		for i := range n.attempts {
			w.b = append(w.b, "gateway_upstream_attempts_total{"...)
			w.b = append(w.b, n.node...)
			w.b = append(w.b, `,result="`...)
			w.b = append(w.b, resultLabels[i]...)
			w.b = append(w.b, `",`...)
			w.b = append(w.b, n.upstream...)
			w.b = append(w.b, "} "...)
			w.b = appendCount(w.b, n.attempts[i].Load())
			w.b = append(w.b, '\n')
		}
		w.maybeFlush()
	}
}

func (f *flatMetrics) writeUpstreamDurations(w *expoWriter) {
	var labels []byte
	for _, n := range f.nodes.slots() {
		labels = append(append(append(labels[:0], n.node...), ','), n.upstream...)
		w.histogram("gateway_upstream_request_duration_seconds", labels, &n.duration)
	}
}

// empty reports whether a family has no series (client_golang leaves such
// a family out).
func (f *flatMetrics) empty(ff *flatFamily) bool {
	switch ff.name {
	case "gateway_upstream_attempts_total", "gateway_upstream_request_duration_seconds":
		return len(f.nodes.slots()) == 0
	case "gateway_http_requests_total":
		for _, r := range f.routes.slots() {
			if r.codes.any() {
				return false
			}
		}
		return true
	case "gateway_http_request_duration_seconds":
		if !f.routeHistograms.Load() {
			return len(f.services.slots()) == 0
		}
		return len(f.routes.slots()) == 0
	}
	return len(f.services.slots()) == 0
}

func (w *expoWriter) family(f *flatMetrics, ff *flatFamily) {
	if f.empty(ff) {
		return
	}
	w.header(ff)
	ff.write(f, w)
}

// scrapeState is what a scrape reuses: the write buffer, the buffer the
// registry's families are encoded into, and a gzip writer.
type scrapeState struct {
	w    expoWriter
	text bytes.Buffer
	gz   *gzip.Writer
}

var scrapePool = sync.Pool{New: func() any {
	return &scrapeState{w: expoWriter{b: make([]byte, 0, expoFlushAt+8<<10)}}
}}

// textContentType is what promhttp answered for the text format.
const textContentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// serveMetrics is GET /metrics: always the text format (version 0.0.4),
// gzip-compressed when the client accepts it.
func (g *Gateway) serveMetrics(rsp http.ResponseWriter, req *http.Request) {
	mfs, err := g.reg.Gather()
	if err != nil {
		g.metrics.scrapeErrors.WithLabelValues("gathering").Inc()
		http.Error(rsp, "An error has occurred while gathering metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	st := scrapePool.Get().(*scrapeState)
	defer scrapePool.Put(st)
	h := rsp.Header()
	h.Set("Content-Type", textContentType)
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	var out io.Writer = rsp
	if acceptsGzip(req.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		if st.gz == nil {
			st.gz, _ = gzip.NewWriterLevel(rsp, gzip.BestSpeed)
		} else {
			st.gz.Reset(rsp)
		}
		out = st.gz
	}
	w := &st.w
	w.b, w.out, w.err = w.b[:0], out, nil
	f := g.metrics.flat
	fi := 0
	for _, mf := range mfs {
		for fi < len(flatFamilies) && flatFamilies[fi].name < mf.GetName() {
			w.family(f, &flatFamilies[fi])
			fi++
		}
		st.text.Reset()
		if _, err := expfmt.MetricFamilyToText(&st.text, mf); err != nil {
			g.metrics.scrapeErrors.WithLabelValues("encoding").Inc()
			continue
		}
		w.b = append(w.b, st.text.Bytes()...)
		w.maybeFlush()
	}
	for ; fi < len(flatFamilies); fi++ {
		w.family(f, &flatFamilies[fi])
	}
	w.flush()
	if out != io.Writer(rsp) {
		if err := st.gz.Close(); err != nil && w.err == nil {
			w.err = err
		}
		st.gz.Reset(io.Discard) // drop the reference to rsp
	}
	w.out = nil
	if w.err != nil {
		g.metrics.scrapeErrors.WithLabelValues("encoding").Inc()
	}
	if st.text.Cap() > 1<<20 {
		st.text = bytes.Buffer{} // one huge family from a plugin: do not keep it
	}
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip.
func acceptsGzip(ae string) bool {
	for part := range strings.SplitSeq(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			params = strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return params != "q=0" && params != "q=0.0" && params != "q=0.00" && params != "q=0.000"
		}
	}
	return false
}

// flatCollector exposes the flat families as a prometheus.Collector, for
// a Gatherer (Gateway.Gatherer): the same series as /metrics writes, built
// as client_golang objects.
type flatCollector struct {
	f                                             *flatMetrics
	bytes, reqDur, requests, attempts, upDuration *prometheus.Desc
}

func newFlatCollector(f *flatMetrics) *flatCollector {
	d := func(i int, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(flatFamilies[i].name, flatFamilies[i].help, labels, nil)
	}
	return &flatCollector{f: f,
		bytes:      d(0, "service", "direction"),
		reqDur:     d(1, "service", "route"),
		requests:   d(2, "service", "route", "code"),
		attempts:   d(3, "upstream", "node", "result"),
		upDuration: d(4, "upstream", "node"),
	}
}

func (c *flatCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.reqDur
	ch <- c.requests
	ch <- c.attempts
	ch <- c.upDuration
}

func constHistogram(desc *prometheus.Desc, h *histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, numBuckets)
	var cum uint64
	for i, b := range durationBuckets {
		cum += h.counts[i].Load()
		buckets[b] = cum
	}
	cum += h.counts[numBuckets].Load()
	return prometheus.MustNewConstHistogram(desc, cum, h.sumSeconds(), buckets, labels...)
}

func (c *flatCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f
	// Read once: a reload flipping it mid-collect would export both forms.
	routeHistograms := f.routeHistograms.Load()
	for _, s := range f.services.slots() {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.bytesIn.n.Load()), s.svc, "in")
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.bytesOut.n.Load()), s.svc, "out")
		if !routeHistograms {
			ch <- constHistogram(c.reqDur, &s.dur, s.svc, "")
		}
	}
	for _, r := range f.routes.slots() {
		if routeHistograms {
			ch <- constHistogram(c.reqDur, &r.dur, r.svc, r.route)
		}
		r.codes.each(func(code int, n uint64) {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), r.svc, r.route, codeLabels[code])
		})
	}
	for _, n := range f.nodes.slots() {
		for i := range n.attempts {
			ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(n.attempts[i].Load()), n.up, n.addr, resultLabels[i])
		}
		ch <- constHistogram(c.upDuration, &n.duration, n.up, n.addr)
	}
}

// Gatherer returns every metric /metrics exports, for an embedding program
// that serves or pushes them itself: the registry (Registry) and the
// per-route and per-node families, which live outside it.
func (g *Gateway) Gatherer() prometheus.Gatherer {
	flat := prometheus.NewPedanticRegistry()
	flat.MustRegister(newFlatCollector(g.metrics.flat))
	return prometheus.Gatherers{g.reg, flat}
}
