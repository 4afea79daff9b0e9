package discovery

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"gateway/config"
)

// Want is one discovered service a config uses: the upstream id and its
// service_name, parsed. It is also the watcher's identity: a reload that
// keeps all three keeps the watcher, its node set and its rhythm.
type Want struct {
	Upstream string
	Name     string // the name to resolve
	Port     int    // the nodes' port for A/AAAA (the scheme's default when the service name has none)
	SRV      bool   // SRV records, for a name starting with '_'
}

// Set is one resolved node set; it is never changed once published.
type Set struct {
	Nodes []config.Node // sorted, distinct, weight 1
	At    time.Time     // when it was resolved; zero before any success
}

// Watcher keeps one service's node set current. Its goroutine is owned by
// the Manager, which stops it.
type Watcher struct {
	m    *Manager
	want Want
	cur  atomic.Pointer[Set]

	ctx   context.Context // cancelled to stop the watcher
	stop  context.CancelFunc
	done  chan struct{}
	first chan struct{} // closed after the first resolution, good or not
}

// Want returns what the watcher resolves.
func (w *Watcher) Want() Want { return w.want }

// Current returns the last good node set (empty before any success).
func (w *Watcher) Current() *Set { return w.cur.Load() }

// Manager owns the watchers.
type Manager struct {
	log      *zap.Logger
	onChange func(*Watcher)
	resolver atomic.Pointer[Resolver]

	mu       sync.Mutex
	watchers map[Want]*Watcher
	closed   bool
}

// NewManager returns a manager with no watcher. onChange, if not nil, is
// called on a watcher's goroutine each time its node set changes, after the
// new set is published; it may read the watcher but must not call Sync or
// Close (they wait for the goroutine).
func NewManager(log *zap.Logger, r *Resolver, onChange func(*Watcher)) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	m := &Manager{log: log, onChange: onChange, watchers: map[Want]*Watcher{}}
	m.resolver.Store(r)
	return m
}

// SetResolver makes every watcher use r from its next resolution on.
func (m *Manager) SetResolver(r *Resolver) { m.resolver.Store(r) }

// Sync makes the watchers those of wants: it keeps the watchers of wants it
// has, starts the others and stops the ones no longer wanted. It returns
// after each new watcher's first resolution (good or failed, so at most the
// resolver's timeout per query and server) and after the stopped watchers'
// goroutines have exited. The result has the watcher of every want.
func (m *Manager) Sync(wants []Want) map[Want]*Watcher {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	out := make(map[Want]*Watcher, len(wants))
	var started, stopped []*Watcher
	for _, want := range wants {
		if out[want] != nil {
			continue
		}
		w := m.watchers[want]
		if w == nil {
			w = m.start(want)
			m.watchers[want] = w
			started = append(started, w)
		}
		out[want] = w
	}
	for want, w := range m.watchers {
		if out[want] == nil {
			w.stop()
			stopped = append(stopped, w)
			delete(m.watchers, want)
		}
	}
	m.mu.Unlock()
	for _, w := range started {
		<-w.first
	}
	for _, w := range stopped {
		<-w.done
	}
	return out
}

// Close stops every watcher and waits for them. Sync does nothing after it.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ws := m.watchers
	m.watchers = map[Want]*Watcher{}
	m.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	for _, w := range ws {
		<-w.done
	}
}

func (m *Manager) start(want Want) *Watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{m: m, want: want, ctx: ctx, stop: cancel, done: make(chan struct{}), first: make(chan struct{})}
	w.cur.Store(&Set{})
	go w.run()
	return w
}

// Failed resolutions are retried after retryMin, doubling up to retryMax,
// but never later than the last good answer's TTL would have: a short TTL
// says the operator wants changes seen quickly, recovery included.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

func (w *Watcher) run() {
	firstDone := false
	defer func() {
		if !firstDone {
			close(w.first) // stopped during the first resolution
		}
		close(w.done)
	}()
	ctx := w.ctx
	log := w.m.log.With(zap.String("upstream", w.want.Upstream), zap.String("service_name", w.want.Name))
	retry := retryMin
	lastTTL := time.Duration(0) // of the last good answer; 0 before one
	failing := false
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		nodes, ttl, err := w.m.resolver.Load().Lookup(ctx, w.want.Name, w.want.Port, w.want.SRV)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait, retry = retry, min(retry*2, retryMax)
			if lastTTL > 0 {
				wait = min(wait, lastTTL)
			}
			// Keep the last good set: a DNS outage must not empty an
			// upstream that still works.
			log.Warn("dns discovery: resolution failed; keeping the last node set",
				zap.Error(err), zap.Int("nodes", len(w.cur.Load().Nodes)), zap.Duration("retry_in", wait))
			failing = true
		default:
			if failing {
				log.Info("dns discovery: resolution works again", zap.Int("nodes", len(nodes)))
				failing = false
			}
			retry = retryMin
			wait = refreshAfter(ttl)
			lastTTL = wait
			if old := w.cur.Load(); !sameNodes(old.Nodes, nodes) {
				w.cur.Store(&Set{Nodes: nodes, At: time.Now()})
				addrs := make([]string, len(nodes))
				for i := range nodes {
					addrs[i] = nodes[i].Addr()
				}
				log.Info("dns discovery: node set changed", zap.Strings("nodes", addrs), zap.Int("was", len(old.Nodes)))
				if w.m.onChange != nil {
					w.m.onChange(w)
				}
			}
		}
		if !firstDone {
			close(w.first)
			firstDone = true
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// refreshAfter is when a good answer with this TTL is asked again.
func refreshAfter(ttl time.Duration) time.Duration { return min(max(ttl, MinTTL), MaxTTL) }

func sameNodes(a, b []config.Node) bool { return slices.Equal(a, b) }
