package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The gateway is a long-running server whose live heap is mostly its
// compiled config: garbage comes from connections and reloads, not from
// requests. Go's default GOGC=100 collects every time the heap doubles,
// which for a small live heap means a collection every few thousand
// requests. A higher GOGC trades memory for CPU; a soft memory limit taken
// from the container keeps that trade from running into the OOM killer.
// GOGC and GOMEMLIMIT in the environment always win.
const (
	defaultGCPercent = 200
	// memoryLimitShare of the cgroup's memory.max becomes the soft limit,
	// leaving room for what the Go runtime does not count (stacks of
	// goroutines in syscalls, the kernel's socket buffers are not ours).
	memoryLimitShare = 0.9
)

// cgroupMemoryFiles are where a container's memory limit is read: cgroup
// v2 first, then v1.
var cgroupMemoryFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// runtimeSettings are the GC settings the process runs with and where
// they came from, for the startup log line.
type runtimeSettings struct {
	GCPercent   int
	GCSource    string // "GOGC" or "default"
	MemoryLimit int64  // bytes; math.MaxInt64 when none
	LimitSource string // "GOMEMLIMIT", "cgroup <file>" or "none"
}

// applyRuntimeDefaults sets GOGC and GOMEMLIMIT when the environment does
// not, and reports what is in effect.
func applyRuntimeDefaults(getenv func(string) string, cgroupFiles []string) runtimeSettings {
	var s runtimeSettings
	if v := getenv("GOGC"); v != "" {
		s.GCSource = "GOGC"
		s.GCPercent = debug.SetGCPercent(-1) // read back what the runtime parsed
		debug.SetGCPercent(s.GCPercent)
	} else {
		s.GCSource = "default"
		s.GCPercent = defaultGCPercent
		debug.SetGCPercent(defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		s.LimitSource = "GOMEMLIMIT"
		s.MemoryLimit = debug.SetMemoryLimit(-1)
		return s
	}
	s.LimitSource, s.MemoryLimit = "none", math.MaxInt64
	for _, f := range cgroupFiles {
		limit, ok := readCgroupLimit(f)
		if !ok {
			continue
		}
		s.LimitSource = "cgroup " + f
		s.MemoryLimit = int64(float64(limit) * memoryLimitShare)
		debug.SetMemoryLimit(s.MemoryLimit)
		break
	}
	return s
}

// readCgroupLimit reads a memory limit file: a number of bytes, or "max"
// (v2) / a huge number (v1, the page-rounded maximum) for no limit.
func readCgroupLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<60 {
		return 0, false
	}
	return v, true
}
