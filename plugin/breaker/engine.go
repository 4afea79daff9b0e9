package breaker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Breaker states, as gateway_breaker_state reports them.
const (
	closed   = 0
	open     = 1
	halfOpen = 2
)

var stateNames = [...]string{closed: "closed", open: "open", halfOpen: "half_open"}

// admission is what the breaker decides for one request.
type admission uint8

const (
	admitPass   admission = iota // closed: the request goes on
	admitProbe                   // half-open: this request is the one probe
	admitReject                  // open (or half-open with a probe out)
)

// params are the thresholds of one breaker.
type params struct {
	percentage bool  // breaker_mode percentage; else counter
	threshold  int64 // unhealthy_threshold (counter)
	minCalls   int64 // min_call_threshold (percentage)
	percent    int64 // unhealthy_percentage (percentage)
	window     int   // time_window, seconds
	openFor    int64 // open_breaker_time, nanoseconds

	// apisix: APISIX api-breaker's counting (recordAPISIX) instead of a
	// window: open at every failures-th unhealthy response for 2^n
	// seconds (at most openFor), then let every request through; close
	// after successes healthy responses.
	apisix    bool
	successes int64
}

// outcome is how a response counts.
type outcome uint8

const (
	outcomeOK      outcome = iota
	outcomeFail            // unhealthy
	outcomeNeutral         // neither (api-breaker: a status in no list)
)

type bucket struct{ sec, calls, fails int64 }

// engine is one circuit breaker: its state outlives snapshots (kept in
// plugin.Long under its identity) and is shared by the routes it guards.
type engine struct {
	p     params
	label string
	log   *zap.Logger
	// Metric children, set by Committed (nil before: no transition can
	// happen before the engine serves).
	gauge    prometheus.Gauge
	to       [3]prometheus.Counter // transitions, by the state entered
	stateVec *prometheus.GaugeVec
	transVec *prometheus.CounterVec

	state atomic.Int32 // read without the lock on the closed path

	mu       sync.Mutex
	buckets  []bucket // one per second of the window, by sec % window
	openedAt int64    // unix nanoseconds
	openFor  int64    // of the current opening, nanoseconds
	probeAt  int64    // unix nanoseconds of the probe let through; 0: none
	// api-breaker's counters (params.apisix).
	unhealthy, healthy int64
}

func newEngine(p params, label string, log *zap.Logger, state *prometheus.GaugeVec, trans *prometheus.CounterVec) *engine {
	e := &engine{p: p, label: label, log: log, buckets: make([]bucket, p.window), stateVec: state, transVec: trans}
	return e
}

// Committed implements plugin.Committer: the metric children are made
// once a snapshot using the breaker is committed (a breaker made by a
// compile that fails exports nothing, and a new breaker does not report
// "closed" while the old one of its route still serves).
func (e *engine) Committed() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gauge != nil {
		return
	}
	for s, name := range stateNames {
		e.to[s] = e.transVec.WithLabelValues(e.label, name)
	}
	e.gauge = e.stateVec.WithLabelValues(e.label)
	e.gauge.Set(float64(e.state.Load()))
}

// admit decides for a request arriving at now (unix nanoseconds).
func (e *engine) admit(now int64) admission {
	if e.state.Load() == closed {
		return admitPass
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state.Load() {
	case closed:
		return admitPass
	case open:
		if now-e.openedAt < e.openFor {
			return admitReject
		}
		e.transition(halfOpen, "open time elapsed")
	}
	if e.p.apisix {
		return admitPass // api-breaker lets every request through again
	}
	// Half-open: one probe at a time. A probe whose outcome never came
	// (its client went away) is replaced after open_breaker_time.
	if e.probeAt != 0 && now-e.probeAt < e.p.openFor {
		return admitReject
	}
	e.probeAt = now
	return admitProbe
}

// cancelProbe gives up a probe that never reached the upstream (a later
// step stopped it).
func (e *engine) cancelProbe() {
	e.mu.Lock()
	e.probeAt = 0
	e.mu.Unlock()
}

// record counts the outcome of a request admitted at admission a.
func (e *engine) record(a admission, failed bool, now int64) {
	if a == admitReject {
		return // passed through while open: not counted
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if a == admitProbe {
		if e.state.Load() != halfOpen {
			return
		}
		e.probeAt = 0
		if failed {
			e.openedAt, e.openFor = now, e.p.openFor
			e.transition(open, "half-open probe failed")
			return
		}
		clear(e.buckets)
		e.transition(closed, "half-open probe succeeded")
		return
	}
	if e.state.Load() != closed {
		return
	}
	sec := now / int64(time.Second)
	b := &e.buckets[sec%int64(len(e.buckets))]
	if b.sec != sec {
		*b = bucket{sec: sec}
	}
	b.calls++
	if !failed {
		return
	}
	b.fails++
	var calls, fails int64
	for i := range e.buckets {
		if o := &e.buckets[i]; o.sec > sec-int64(len(e.buckets)) {
			calls += o.calls
			fails += o.fails
		}
	}
	trip := fails >= e.p.threshold
	if e.p.percentage {
		trip = calls >= e.p.minCalls && fails*100 >= e.p.percent*calls
	}
	if trip {
		e.openedAt, e.openFor = now, e.p.openFor
		e.transition(open, "unhealthy threshold reached")
	}
}

// recordAPISIX counts a response as APISIX's api-breaker does: every
// failures-th unhealthy response (since the last reset) opens the breaker
// for 2^(unhealthy/failures) seconds, at most max_breaker_sec; once some
// were unhealthy, successes healthy responses close it and reset the
// counts.
func (e *engine) recordAPISIX(o outcome, now int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch o {
	case outcomeFail:
		e.unhealthy, e.healthy = e.unhealthy+1, 0
		if e.unhealthy%e.p.threshold != 0 {
			return
		}
		d := e.p.openFor
		if n := e.unhealthy / e.p.threshold; n < 31 && int64(time.Second)<<n < d {
			d = int64(time.Second) << n
		}
		e.openedAt, e.openFor = now, d
		if e.state.Load() != open {
			e.transition(open, "unhealthy.failures reached")
		}
	case outcomeOK:
		if e.unhealthy == 0 {
			return
		}
		if e.healthy++; e.healthy < e.p.successes {
			return
		}
		e.unhealthy, e.healthy = 0, 0
		if e.state.Load() != closed {
			e.transition(closed, "healthy.successes reached")
		}
	}
}

// transition enters state s; e.mu is held.
func (e *engine) transition(s int32, why string) {
	from := e.state.Swap(s)
	e.gauge.Set(float64(s))
	e.to[s].Inc()
	e.log.Warn("circuit breaker "+stateNames[s],
		zap.String("route", e.label), zap.String("from", stateNames[from]), zap.String("reason", why))
}
