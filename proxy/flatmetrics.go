package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Per-route, per-service and per-node metric state (issue 20).
//
// Each kind lives in a slotTable: fixed-size chunks of slots that never
// move, so a snapshot holds plain pointers into them and the request path
// does atomic adds and nothing else (no lock, no allocation, no label
// lookup). Slots are keyed by identity (service id + route id, service id,
// upstream id + node address), not by snapshot: a route that survives a
// reload keeps its slot and its counters. A slot its config no longer uses
// stops being exported at once and is kept, unexported, for
// slotQuarantine: a request still running on the old snapshot adds to a
// slot nobody reads, and a route that comes back within that time gets its
// counters back. Only then is the slot zeroed and reused.
//
// A writer can outlive the quarantine (a WebSocket tunnel, a streamed
// body, a slow upstream): every slot carries a reuse generation, bumped
// when the slot is freed, and what a snapshot holds is the slot with the
// generation it had then (slotRef). A late add whose generation no longer
// matches is dropped rather than counted for whichever key reused the
// slot. The check and the add are two steps: an add already past the
// check when the slot is freed still lands, a window of nanoseconds
// against the minute of quarantine.

// durationBuckets are the upper bounds of both duration histograms, in
// seconds, and durationBucketsNs the same in nanoseconds.
var durationBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

const numBuckets = len(durationBuckets)

var durationBucketsNs = func() (ns [numBuckets]int64) {
	for i, b := range durationBuckets {
		ns[i] = int64(b * 1e9)
	}
	return
}()

// histogram is a fixed-bucket histogram of durations. counts are per
// bucket (not cumulative), the last one +Inf; the sum is kept in integer
// nanoseconds, so observing is two atomic adds. A scrape reads the buckets
// and the sum one after the other, not as one consistent snapshot.
type histogram struct {
	counts [numBuckets + 1]atomic.Uint64
	sumNs  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < numBuckets && int64(d) > durationBucketsNs[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

func (h *histogram) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.sumNs.Store(0)
}

// sumSeconds is the sum as the exposition writes it.
func (h *histogram) sumSeconds() float64 { return float64(h.sumNs.Load()) / 1e9 }

// byteCounter counts bytes; it is a transport.Adder.
type byteCounter struct{ n atomic.Uint64 }

// slotGen is a slot's reuse generation (see the top of this file).
type slotGen struct{ gen atomic.Uint64 }

func (g *slotGen) generation() *atomic.Uint64 { return &g.gen }

// slotRef is a slot's generation as a snapshot saw it: current reports
// whether the slot still belongs to that key.
type slotRef struct {
	gen  *atomic.Uint64
	want uint64
}

func refOf(g *atomic.Uint64) slotRef { return slotRef{gen: g, want: g.Load()} }

func (r *slotRef) current() bool { return r.gen == nil || r.gen.Load() == r.want }

// guardedCounter is a byteCounter of a slot, added to only while the slot
// is still the one the snapshot was given; it is a transport.Adder.
type guardedCounter struct {
	c   *byteCounter
	ref slotRef
}

func (g *guardedCounter) Add(v float64) {
	if g.ref.current() {
		g.c.Add(v)
	}
}

func (c *byteCounter) Add(v float64) {
	if v > 0 {
		c.n.Add(uint64(v))
	}
}

// codeLabels holds the decimal form of every status code.
var codeLabels = func() (s [600]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return
}()

// statusCounters count a route's responses by status code. A route sees
// few distinct codes: each slot packs a code (+1, in the top bits) and its
// count; the first request with a new code claims a free slot with one
// compare-and-swap. Codes beyond the slots go to a small locked map.
type statusCounters struct {
	slots [8]atomic.Uint64
	more  atomic.Pointer[moreCodes]
}

const (
	codeShift = 48
	countMask = 1<<codeShift - 1
)

type moreCodes struct {
	mu sync.Mutex
	n  map[int]uint64
}

func (s *statusCounters) inc(code int) {
	if code < 0 || code >= len(codeLabels) {
		code = 0
	}
	want := uint64(code+1) << codeShift
	for i := range s.slots {
		sl := &s.slots[i]
		v := sl.Load()
		if v == 0 && sl.CompareAndSwap(0, want) {
			v = want
		} else if v == 0 {
			v = sl.Load()
		}
		if v&^countMask == want {
			sl.Add(1)
			return
		}
	}
	mc := s.more.Load()
	if mc == nil {
		s.more.CompareAndSwap(nil, &moreCodes{n: map[int]uint64{}})
		mc = s.more.Load()
	}
	mc.mu.Lock()
	mc.n[code]++
	mc.mu.Unlock()
}

func (s *statusCounters) reset() {
	for i := range s.slots {
		s.slots[i].Store(0)
	}
	s.more.Store(nil)
}

// any reports whether a code was counted.
func (s *statusCounters) any() bool { return s.slots[0].Load() != 0 }

// each calls f with every code counted and its count.
func (s *statusCounters) each(f func(code int, n uint64)) {
	for i := range s.slots {
		// A slot with a count and no code is one a request still holding a
		// retired route's counters added to after the slot was reset for
		// reuse (inc's Add landing after reset's Store): not a code.
		if v := s.slots[i].Load(); v>>codeShift != 0 {
			f(int(v>>codeShift)-1, v&countMask)
		}
	}
	if mc := s.more.Load(); mc != nil {
		mc.mu.Lock()
		for c, n := range mc.n {
			f(c, n)
		}
		mc.mu.Unlock()
	}
}

// routeSlot is one (service, route): gateway_http_requests_total and, with
// route_histograms, gateway_http_request_duration_seconds.
type routeSlot struct {
	slotGen
	codes statusCounters
	dur   histogram
	// labels is `route="…",service="…"`, escaped, as the exposition
	// writes them (label names sorted, as client_golang writes them).
	labels []byte
	route  string
	svc    string
}

func (s *routeSlot) reset() { s.codes.reset(); s.dur.reset() }

// serviceSlot is one service: gateway_http_bytes_total and, without
// route_histograms, the service's request duration histogram (route "").
type serviceSlot struct {
	slotGen
	bytesIn  byteCounter
	bytesOut byteCounter
	dur      histogram
	labels   []byte // `service="…"`
	durLabel []byte // `route="",service="…"`
	svc      string
}

func (s *serviceSlot) reset() {
	s.bytesIn.n.Store(0)
	s.bytesOut.n.Store(0)
	s.dur.reset()
}

// nodeSlot is one (upstream, node): gateway_upstream_attempts_total and
// gateway_upstream_request_duration_seconds.
type nodeSlot struct {
	slotGen
	attempts [numResults]atomic.Uint64
	duration histogram
	node     []byte // `node="…"`
	upstream []byte // `upstream="…"`
	up, addr string
}

func (s *nodeSlot) reset() {
	for i := range s.attempts {
		s.attempts[i].Store(0)
	}
	s.duration.reset()
}

// routeMetrics are what one route (or the no-route bucket) counts into,
// each with the generation of its slot (writers may outlive the slot).
type routeMetrics struct {
	codes    *statusCounters
	route    slotRef
	duration *histogram // the route's, or its service's without route_histograms
	durRef   slotRef
	bytesIn  guardedCounter
	bytesOut guardedCounter
}

// count counts a response with its code and duration.
func (m *routeMetrics) count(code int, d time.Duration) {
	if m.route.current() {
		m.codes.inc(code)
	}
	if m.durRef.current() {
		m.duration.observe(d)
	}
}

// nodeMetrics are the counters of one (upstream, node).
type nodeMetrics = *nodeSlot

// slotQuarantine is how long a slot no config uses is kept before reuse.
const slotQuarantine = time.Minute

const slotChunk = 256

type slotter[T any] interface {
	*T
	reset()
	generation() *atomic.Uint64
}

// slotTable hands out slots of T by key. Everything but live is guarded by
// mu, which only commits take; a scrape reads live, the request path the
// slots it was given.
type slotTable[T any, P slotter[T]] struct {
	mu     sync.Mutex
	chunks []*[slotChunk]T
	meta   []slotMeta // by slot index
	byKey  map[string]int32
	free   []int32
	gen    uint64
	dirty  bool
	// sweeping is true from begin to end.
	sweeping bool
	live     atomic.Pointer[[]P] // the slots the serving config uses, by index
	// quarantine is slotQuarantine (tests shorten it).
	quarantine time.Duration
	// lookups counts the keys looked up in byKey (tests: a reload finds
	// the slots of unchanged routes without).
	lookups int
}

type slotMeta struct {
	key     string
	gen     uint64 // the last sweep that used the slot
	retired int64  // unix ns when the config stopped using it; 0 while used
	inUse   bool   // false: the slot is free
}

func newSlotTable[T any, P slotter[T]]() *slotTable[T, P] {
	return &slotTable[T, P]{byKey: map[string]int32{}, quarantine: slotQuarantine}
}

func (t *slotTable[T, P]) at(i int32) P { return P(&t.chunks[i/slotChunk][i%slotChunk]) }

// begin starts a sweep: the slots use marks until end are the live ones.
func (t *slotTable[T, P]) begin() {
	t.mu.Lock()
	t.gen++
	t.sweeping = true
}

// use returns the slot of key, marking it used by this sweep; a new slot
// is zeroed and given to init first. Only a new key is copied.
func (t *slotTable[T, P]) use(key []byte, init func(P)) P {
	p, _ := t.useIndex(key, init)
	return p
}

// hit returns slot i marked used by this sweep if it is key's (a caller
// that asks for the same keys in the same order as last time tries the
// index it got then, and skips the map).
func (t *slotTable[T, P]) hit(i int, key []byte) (P, bool) {
	if i < 0 || i >= len(t.meta) {
		return nil, false
	}
	m := &t.meta[i]
	if !m.inUse || m.key != string(key) {
		return nil, false
	}
	if m.retired != 0 {
		m.retired = 0
		t.dirty = true
	}
	m.gen = t.gen
	return t.at(int32(i)), true
}

// useIndex is use that also returns the slot's index, for hit.
func (t *slotTable[T, P]) useIndex(key []byte, init func(P)) (P, int32) {
	t.lookups++
	if i, ok := t.byKey[string(key)]; ok {
		m := &t.meta[i]
		if m.retired != 0 {
			m.retired = 0
			t.dirty = true
		}
		m.gen = t.gen
		return t.at(i), i
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = int32(len(t.meta))
		if int(i)%slotChunk == 0 {
			t.chunks = append(t.chunks, new([slotChunk]T))
		}
		t.meta = append(t.meta, slotMeta{})
	}
	p := t.at(i)
	p.reset()
	init(p)
	k := string(key)
	t.meta[i] = slotMeta{key: k, gen: t.gen, inUse: true}
	t.byKey[k] = i
	t.dirty = true
	return p, i
}

// end retires the slots this sweep did not use, frees those retired for
// the quarantine, and publishes the live list.
func (t *slotTable[T, P]) end(now time.Time) {
	defer t.mu.Unlock()
	t.sweeping = false
	for i := range t.meta {
		m := &t.meta[i]
		if !m.inUse || m.gen == t.gen {
			continue
		}
		if m.retired == 0 {
			m.retired = now.UnixNano()
			t.dirty = true
		} else if now.UnixNano()-m.retired >= int64(t.quarantine) {
			delete(t.byKey, m.key)
			*m = slotMeta{}
			t.at(int32(i)).generation().Add(1) // late writers drop their adds
			t.free = append(t.free, int32(i))
		}
	}
	t.publishLocked()
}

// add brackets uses outside a sweep (a DNS discovery callback adding a
// node between reloads): the slots it uses join the live ones and nothing
// is retired; the next sweep retires what is no longer used.
func (t *slotTable[T, P]) addBegin() { t.mu.Lock() }

// retire stops exporting the slot of key now, inside an add bracket (a
// discovered address left): it is freed once the quarantine is over, by a
// later sweep, unless a use brings it back first. Inside a sweep it does
// nothing: end retires what the sweep did not use.
func (t *slotTable[T, P]) retire(key []byte, now time.Time) {
	if t.sweeping {
		return
	}
	if i, ok := t.byKey[string(key)]; ok && t.meta[i].retired == 0 {
		t.meta[i].retired = now.UnixNano()
		t.dirty = true
	}
}
func (t *slotTable[T, P]) addEnd() {
	defer t.mu.Unlock()
	t.publishLocked()
}

// publishLocked publishes the live list when it changed; t.mu is held.
func (t *slotTable[T, P]) publishLocked() {
	if !t.dirty {
		return
	}
	t.dirty = false
	live := make([]P, 0, len(t.byKey))
	for i := range t.meta {
		if m := &t.meta[i]; m.inUse && m.retired == 0 {
			live = append(live, t.at(int32(i)))
		}
	}
	t.live.Store(&live)
}

// slots returns the live slots.
func (t *slotTable[T, P]) slots() []P {
	if l := t.live.Load(); l != nil {
		return *l
	}
	return nil
}

// flatMetrics holds the slot tables.
type flatMetrics struct {
	routes   *slotTable[routeSlot, *routeSlot]
	services *slotTable[serviceSlot, *serviceSlot]
	nodes    *slotTable[nodeSlot, *nodeSlot]
	// routeHistograms is metrics.route_histograms of the serving config.
	routeHistograms atomic.Bool
	// routeOrder is the last route sweep's slots, in the order it asked
	// for them (routeSweep.order); guarded by routes.mu.
	routeOrder []int32
}

func newFlatMetrics() *flatMetrics {
	f := &flatMetrics{
		routes:   newSlotTable[routeSlot](),
		services: newSlotTable[serviceSlot](),
		nodes:    newSlotTable[nodeSlot](),
	}
	f.routeHistograms.Store(true)
	return f
}

// appendLabel appends name="value" with value escaped as the text format
// wants it.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// routeSweep resolves the route metrics of one snapshot; end publishes
// which routes and services /metrics exports.
type routeSweep struct {
	f          *flatMetrics
	histograms bool
	key        []byte
	// The service slot of the previous route: a service's routes come
	// one after the other, so most routes need one lookup, not two.
	lastSvc  *serviceSlot
	lastName string
	// order are the route slots in the order this sweep asked for them;
	// the previous sweep's (flatMetrics.routeOrder) are tried first, so
	// that a reload finds the slots of routes that kept their place
	// without a map lookup (issue 20).
	order []int32
	shift int
}

func (f *flatMetrics) beginRoutes(routeHistograms bool) *routeSweep {
	f.services.begin()
	f.routes.begin()
	return &routeSweep{f: f, histograms: routeHistograms, order: make([]int32, 0, len(f.routeOrder)+1)}
}

func (rs *routeSweep) route(service, route string) routeMetrics {
	rs.key = append(rs.key[:0], service...)
	svc := rs.lastSvc
	if svc == nil || rs.lastName != service {
		svc = rs.f.services.use(rs.key, func(s *serviceSlot) {
			s.svc = service
			s.labels = appendLabel(nil, "service", service)
			s.durLabel = appendLabel(append(appendLabel(nil, "route", ""), ','), "service", service)
		})
		rs.lastSvc, rs.lastName = svc, service
	}
	rs.key = append(append(rs.key, 0), route...)
	r, i := rs.hinted()
	if r == nil {
		r, i = rs.f.routes.useIndex(rs.key, func(s *routeSlot) {
			s.svc, s.route = service, route
			s.labels = appendLabel(append(appendLabel(nil, "route", route), ','), "service", service)
		})
	}
	rs.order = append(rs.order, i)
	sref := refOf(svc.generation())
	rm := routeMetrics{codes: &r.codes, route: refOf(r.generation()), duration: &r.dur, durRef: refOf(r.generation()),
		bytesIn: guardedCounter{&svc.bytesIn, sref}, bytesOut: guardedCounter{&svc.bytesOut, sref}}
	if !rs.histograms {
		rm.duration, rm.durRef = &svc.dur, sref
	}
	return rm
}

// hinted finds the slot of rs.key where the previous sweep had the k-th
// route (k the number asked for so far), shifted by the routes inserted
// or removed before it so far; a route that is found one place away
// moves the shift. nil: not found there.
func (rs *routeSweep) hinted() (*routeSlot, int32) {
	k := len(rs.order) + rs.shift
	for _, d := range [3]int{0, -1, 1} {
		j := k + d
		if j < 0 || j >= len(rs.f.routeOrder) {
			continue
		}
		if r, ok := rs.f.routes.hit(int(rs.f.routeOrder[j]), rs.key); ok {
			rs.shift += d
			return r, rs.f.routeOrder[j]
		}
	}
	return nil, -1
}

func (rs *routeSweep) end() {
	rs.f.routeOrder = rs.order
	now := time.Now()
	rs.f.routes.end(now)
	rs.f.services.end(now)
	rs.f.routeHistograms.Store(rs.histograms)
}

func nodeKey(upstream, addr string) []byte {
	key := make([]byte, 0, 64)
	return append(append(append(key, upstream...), 0), addr...)
}

// node returns the slot of (upstream, node) for a sweep of the node table
// (nodes.begin ... nodes.end).
func (f *flatMetrics) node(upstream, addr string) *nodeSlot {
	key := nodeKey(upstream, addr)
	return f.nodes.use(key, func(s *nodeSlot) {
		s.up, s.addr = upstream, addr
		s.node = appendLabel(nil, "node", addr)
		s.upstream = appendLabel(nil, "upstream", upstream)
	})
}
