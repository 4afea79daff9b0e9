package ratelimit

import (
	"math"
	"sync"
	"sync/atomic"
	"unsafe"
)

// shardBits selects the shard from a key's top bits; the table index comes
// from its low bits, so the two stay independent. 128 shards keep lock
// contention negligible on the machines we target, while a Limiter's shard
// array costs only 1 KiB until shards are used (they are allocated on first
// use, so thousands of per-route limit-count limiters stay cheap).
const (
	shardBits = 7
	numShards = 1 << shardBits
)

// Table sizing: grow at 3/4 full (linear probing degrades beyond), shrink
// after a sweep leaves it under 1/8 full, to a size about 3/8 full so that the
// two thresholds do not chase each other.
const (
	minTableSize = 8
	growNum      = 3
	growDen      = 4
	shrinkDen    = 8
)

type shardPtr = atomic.Pointer[shard]

// entry is the counter of one key: the counts of its current window (win)
// and of the window before it.
type entry struct {
	key  uint64 // 0: empty slot
	win  int64
	cur  uint32
	prev uint32
}

// roll moves e forward to window w (w >= e.win).
func (e *entry) roll(w int64) {
	switch {
	case e.win == w:
	case e.win == w-1:
		e.prev, e.cur, e.win = e.cur, 0, w
	default:
		e.prev, e.cur, e.win = 0, 0, w
	}
}

type shardState struct {
	mu sync.Mutex
	// win is the newest window any check of this shard has seen; every
	// entry's win is <= it. A check bringing a newer one sweeps the shard.
	win   int64
	n     int     // occupied slots
	table []entry // linear probing, len a power of two or nil
}

const cacheLine = 64

// shard is padded to a cache line so that neighbouring shards in the heap do
// not share one between cores.
type shard struct {
	shardState
	_ [cacheLine - unsafe.Sizeof(shardState{})%cacheLine]byte
}

// shard returns the shard of key, allocating it on first use.
func (l *Limiter) shard(key uint64) *shard {
	p := &l.shards[key>>(64-shardBits)]
	if s := p.Load(); s != nil {
		return s
	}
	s := &shard{}
	s.win = math.MinInt64
	if p.CompareAndSwap(nil, s) {
		return s
	}
	return p.Load()
}

// lookup returns key's entry, or nil. key != 0; s.mu is held.
func (s *shard) lookup(key uint64) *entry {
	if s.table == nil {
		return nil
	}
	mask := uint64(len(s.table) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		e := &s.table[i]
		if e.key == key {
			return e
		}
		if e.key == 0 {
			return nil
		}
	}
}

// insert adds key, known to be absent, with an empty counter in window w,
// growing the table first when it would pass 3/4 full. s.mu is held.
func (s *shard) insert(key uint64, w int64) *entry {
	if (s.n+1)*growDen > len(s.table)*growNum {
		s.resize(max(minTableSize, 2*len(s.table)), math.MinInt64)
	}
	mask := uint64(len(s.table) - 1)
	i := key & mask
	for s.table[i].key != 0 {
		i = (i + 1) & mask
	}
	s.n++
	e := &s.table[i]
	*e = entry{key: key, win: w}
	return e
}

// resize rehashes the entries whose window is >= oldest into a new table of
// size slots (a power of two with room for them).
func (s *shard) resize(size int, oldest int64) {
	old := s.table
	s.table, s.n = make([]entry, size), 0
	mask := uint64(size - 1)
	for _, e := range old {
		if e.key == 0 || e.win < oldest {
			continue
		}
		i := e.key & mask
		for s.table[i].key != 0 {
			i = (i + 1) & mask
		}
		s.table[i] = e
		s.n++
	}
}

// advance records that the shard reached window w and drops the entries last
// used before window oldest, which no longer count for anything. Runs once
// per shard per window, so its O(table) cost is spread over that window's
// checks. When few entries remain it shrinks the table (frees it when
// empty); otherwise it deletes in place, without allocating. s.mu is held.
//
// A table that empties at the turn from a window that filled it (a fixed
// window, whose keys all expire at once, under steady traffic) is cleared
// in place and kept for the new window's keys, rather than freed and grown
// again from minTableSize: that regrowth was most of what a loaded gateway
// allocated (the bench's full scenario, 4 limiters x 128 shards a second:
// ~3 MB/s of garbage). It is freed when the shard saw no check in the
// window before, or used the table too little to keep it at its size.
func (s *shard) advance(w, oldest int64) {
	prev := s.win
	s.win = w
	if s.n == 0 {
		return
	}
	live := 0
	for i := range s.table {
		if s.table[i].key != 0 && s.table[i].win >= oldest {
			live++
		}
	}
	switch {
	case live == s.n:
		return
	case live == 0 && prev == w-1 && s.n*shrinkDen >= len(s.table):
		clear(s.table)
		s.n = 0
		return
	case live == 0:
		s.table, s.n = nil, 0
		return
	case len(s.table) > minTableSize && live*shrinkDen < len(s.table):
		size := minTableSize
		for live*growDen*2 > size*growNum { // leave it ~3/8 full at most
			size *= 2
		}
		s.resize(size, oldest)
		return
	}
	s.sweep(oldest)
}

// sweep deletes in place the entries last used before window oldest.
//
// Deletion in a linear-probing table shifts later members of the cluster
// back into the hole (so lookups, which stop at an empty slot, still find
// them). Scanning from just after an empty slot, cyclically, a cluster never
// wraps past the scan's start, and a shift only moves entries from further
// along the scan into the current slot, so re-examining the current slot
// after a deletion visits every entry exactly once.
func (s *shard) sweep(oldest int64) {
	mask := len(s.table) - 1
	start := 0
	for s.table[start].key != 0 { // an empty slot exists: the table is <= 3/4 full
		start++
	}
	for k := 1; k <= len(s.table); k++ {
		i := (start + k) & mask
		for s.table[i].key != 0 && s.table[i].win < oldest {
			s.deleteAt(i)
		}
	}
}

// deleteAt empties slot i and shifts back the entries after it that probed
// past it (backward-shift deletion; no tombstones).
func (s *shard) deleteAt(i int) {
	mask := len(s.table) - 1
	s.n--
	for {
		s.table[i] = entry{}
		j := i
		for {
			j = (j + 1) & mask
			e := &s.table[j]
			if e.key == 0 {
				return
			}
			// e may move to i unless its home slot lies cyclically in (i, j].
			home := int(e.key) & mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				s.table[i] = *e
				i = j
				break
			}
		}
	}
}
