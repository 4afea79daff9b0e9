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
// A reloader that must not touch the Store before the snapshot is known to
// be good builds it from a Stage and calls Commit before the swap; a
// snapshot that is thrown away then leaves the Store as it was. Without a
// Stage, a reload that fails half-way simply never calls Sweep: what it
// asked for stays one generation longer. Requests still running on an old snapshot
// keep using its limiters after they leave the Store; they are only no
// longer shared with new snapshots.
type Store struct {
	mu  sync.Mutex
	gen uint64
	m   map[storeKey]*stored
	// base is the Store a staged Store (Stage) hands out limiters of.
	base *Store
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
		var l *Limiter
		if s.base != nil {
			s.base.mu.Lock()
			if be := s.base.m[k]; be != nil {
				l = be.l
			}
			s.base.mu.Unlock()
		}
		if l == nil {
			l = NewLimiter(limit, window, kind)
		}
		e = &stored{l: l}
		s.m[k] = e
	}
	e.gen = s.gen
	return e.l
}

// Stage returns a Store for building a snapshot without touching s: its
// Limiter hands out s's limiters, makes the missing ones for itself and
// marks nothing in s. Commit makes what it handed out s's.
func (s *Store) Stage() *Store {
	if s == nil {
		return nil
	}
	return &Store{m: make(map[storeKey]*stored), base: s}
}

// Commit adds the limiters a staged Store made to the Store it was staged
// from and marks every limiter it handed out as asked for in that Store's
// current generation, as if they had been asked of it. It does nothing on a
// Store that was not staged.
func (s *Store) Commit() {
	if s == nil || s.base == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.base
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range s.m {
		be := b.m[k]
		if be == nil || be.l != e.l {
			be = &stored{l: e.l}
			b.m[k] = be
		}
		be.gen = b.gen
	}
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
