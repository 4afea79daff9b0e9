package plugin

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Long holds plugin state that outlives snapshots (a circuit breaker's
// state), keyed by identity: a key names what the state belongs to and the
// config it was made for, so a reload that keeps both keeps the state and
// one that changes either starts afresh. The gateway owns one.
type Long struct {
	mu  sync.Mutex
	m   map[string]any
	reg prometheus.Registerer
	log *zap.Logger

	famMu    sync.Mutex
	families map[string]prometheus.Collector
}

// NewLong is the store of a gateway whose metrics go to reg.
func NewLong(reg prometheus.Registerer, log *zap.Logger) *Long {
	if log == nil {
		log = zap.NewNop()
	}
	return &Long{m: map[string]any{}, reg: reg, log: log, families: map[string]prometheus.Collector{}}
}

// Stage starts the long-lived state of a snapshot being compiled: it reads
// the store and changes nothing in it until Commit.
func (l *Long) Stage() *LongStage {
	if l == nil {
		return nil
	}
	return &LongStage{base: l, m: map[string]any{}}
}

// Len is how many values the store holds.
func (l *Long) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// LongStage is the long-lived state one compile asked for.
type LongStage struct {
	base *Long
	m    map[string]any
}

// Get returns the value stored under key, or the one build makes when the
// store has none (kept by Commit).
func (s *LongStage) Get(key string, build func() any) any {
	if v, ok := s.m[key]; ok {
		return v
	}
	s.base.mu.Lock()
	v, ok := s.base.m[key]
	s.base.mu.Unlock()
	if !ok {
		v = build()
	}
	s.m[key] = v
	return v
}

// Committer is implemented by long-lived values with something to do
// once the snapshot that asked for them is committed (publishing a
// metric: a compile that fails must leave no trace).
type Committer interface{ Committed() }

// Commit makes the staged values the store's: what this compile did not
// ask for is dropped.
func (s *LongStage) Commit() {
	if s == nil {
		return
	}
	s.base.mu.Lock()
	s.base.m = s.m
	s.base.mu.Unlock()
	for _, v := range s.m {
		if c, ok := v.(Committer); ok {
			c.Committed()
		}
	}
}

// Log is the gateway's logger.
func (s *LongStage) Log() *zap.Logger { return s.base.log }

// Family returns the metric family registered under name, registering the
// one build makes on first use (families live as long as the gateway).
func (s *LongStage) Family(name string, build func() prometheus.Collector) prometheus.Collector {
	l := s.base
	l.famMu.Lock()
	defer l.famMu.Unlock()
	if c, ok := l.families[name]; ok {
		return c
	}
	c := build()
	if l.reg != nil {
		l.reg.MustRegister(c)
	}
	l.families[name] = c
	return c
}
