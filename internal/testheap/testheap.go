// Package testheap measures memory for tests and benchmarks that bound it:
// what the live heap holds, and what a stretch of code allocates. It reads
// runtime.MemStats, which covers every goroutine of the process, so a
// measurement means something only while nothing else runs: tests that
// use it do not run in parallel.
package testheap

import "runtime"

// Live collects garbage and returns the memory statistics: HeapAlloc is
// then what the live heap holds, HeapInuse and StackInuse the spans and
// stacks in use. It collects twice: the first collection only moves what
// sync.Pools hold to their victim caches, the second frees it.
func Live() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// Allocs counts allocations from the moment Count made it.
type Allocs struct{ objects, bytes uint64 }

// Count collects garbage (so that a collection owed by earlier work does
// not fall into the measurement) and starts counting.
func Count() Allocs {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Allocs{objects: m.Mallocs, bytes: m.TotalAlloc}
}

// Since returns the heap objects and bytes allocated, by every goroutine,
// since a was made. It collects nothing.
func (a Allocs) Since() (objects, bytes uint64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs - a.objects, m.TotalAlloc - a.bytes
}
