package ratelimit

import (
	"sync"
	"time"
)

// Store hands out Limiters by identity and limits so that counters survive
// config reloads: compiling a new snapshot asks for the limiters it needs,
// and gets back the very same *Limiter (with its counters) for every
// identity whose limit, window length and kind did not change, and a fresh
// one otherwise.
//
// Limiters the newest snapshot no longer asks for are dropped by Sweep, with
// a generation count: each Limiter call marks its limiter as used in the
// current generation; Sweep drops the ones not marked since the previous
// Sweep and starts a new generation. The intended cycle, serialized by the
// reloader, is
//
//	build the snapshot (NewPolicy, NewCount, Store.Limiter ...)
//	swap it in
//	store.Sweep()
//
// A reload that fails half-way simply never calls Sweep: what it asked for
// stays one generation longer. Requests still running on an old snapshot
// keep using its limiters after they leave the Store; they are only no
// longer shared with new snapshots.
type Store struct {
	mu  sync.Mutex
	gen uint64
	m   map[storeKey]*stored
}

type storeKey struct {
	identity string
	limit    int64
	window   time.Duration
	kind     Window
}

type stored struct {
	l   *Limiter
	gen uint64 // the last generation that asked for l
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{m: make(map[storeKey]*stored)}
}

// Limiter returns the Limiter for identity with these limits, the same one
// across calls (and reloads) as long as identity, limit, window and kind are
// all unchanged. The identity names the counter family, e.g. a policy id and
// counter kind; the front ends in this package prefix theirs so they cannot
// meet a caller's.
//
// On a nil Store it returns a private Limiter (tests, or callers that need
// no reload).
func (s *Store) Limiter(identity string, limit int64, window time.Duration, kind Window) *Limiter {
	if s == nil {
		return NewLimiter(limit, window, kind)
	}
	k := storeKey{identity, limit, window, kind}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		e = &stored{l: NewLimiter(limit, window, kind)}
		s.m[k] = e
	}
	e.gen = s.gen
	return e.l
}

// Sweep drops the limiters nobody asked for since the previous Sweep and
// starts a new generation. It returns how many it dropped.
func (s *Store) Sweep() (dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if e.gen != s.gen {
			delete(s.m, k)
			dropped++
		}
	}
	s.gen++
	return dropped
}

// Len returns how many limiters the Store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
