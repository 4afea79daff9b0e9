package configwatch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"gateway/config"
)

const testDebounce = 150 * time.Millisecond

// startWatcher watches path and returns the callback counter.
func startWatcher(t *testing.T, path string) *atomic.Int32 {
	t.Helper()
	var calls atomic.Int32
	w, err := New(path, testDebounce, config.ReadLimits{}, func() { calls.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return &calls
}

// requireCallsSettle waits for exactly want callbacks: they must arrive, and
// no further one may follow within a few debounce periods.
func requireCallsSettle(t *testing.T, calls *atomic.Int32, want int32) {
	t.Helper()
	require.Eventually(t, func() bool { return calls.Load() >= want }, 3*time.Second, 10*time.Millisecond)
	time.Sleep(4 * testDebounce)
	require.Equal(t, want, calls.Load())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestWatcherInPlaceWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")
	calls := startWatcher(t, path)

	writeFile(t, path, "revision: b\n")
	requireCallsSettle(t, calls, 1)
}

func TestWatcherNotBeforeDebounce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")
	calls := startWatcher(t, path)

	writeFile(t, path, "revision: b\n")
	time.Sleep(testDebounce / 3)
	require.Zero(t, calls.Load(), "fired before the debounce expired")
	requireCallsSettle(t, calls, 1)
}

func TestWatcherRenameOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")
	calls := startWatcher(t, path)

	// What editors and `mv` do: a new file, then rename(2) over the old one.
	tmp := filepath.Join(dir, ".config.yaml.swp")
	writeFile(t, tmp, "revision: b\n")
	require.NoError(t, os.Rename(tmp, path))
	requireCallsSettle(t, calls, 1)
}

func TestWatcherKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// The layout of a ConfigMap volume: config.yaml -> ..data/config.yaml,
	// ..data -> ..<timestamp>, the timestamped directory holding the data.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026_01"), 0o755))
	writeFile(t, filepath.Join(dir, "..2026_01", "config.yaml"), "revision: a\n")
	require.NoError(t, os.Symlink("..2026_01", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "config.yaml"), path))
	calls := startWatcher(t, path)

	// The kubelet's atomic writer: a new timestamped directory, a temporary
	// symlink to it renamed over ..data, then the old directory removed.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026_02"), 0o755))
	writeFile(t, filepath.Join(dir, "..2026_02", "config.yaml"), "revision: b\n")
	require.NoError(t, os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2026_01")))
	requireCallsSettle(t, calls, 1)

	// And again, to show that the watch survived the first swap.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "..2026_03"), 0o755))
	writeFile(t, filepath.Join(dir, "..2026_03", "config.yaml"), "revision: c\n")
	require.NoError(t, os.Symlink("..2026_03", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2026_02")))
	requireCallsSettle(t, calls, 2)
}

func TestWatcherSymlinkToOtherDirectory(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	target := filepath.Join(other, "real.yaml")
	writeFile(t, target, "revision: a\n")
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(target, path))
	calls := startWatcher(t, path)

	// An in-place write to the target makes no event in the link's directory.
	writeFile(t, target, "revision: b\n")
	requireCallsSettle(t, calls, 1)
}

func TestWatcherBurstFiresOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")
	calls := startWatcher(t, path)

	for i := range 10 {
		writeFile(t, path, fmt.Sprintf("revision: burst-%d\n", i))
		time.Sleep(testDebounce / 10)
	}
	requireCallsSettle(t, calls, 1)
}

func TestWatcherIgnoresUnchangedContentAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")
	calls := startWatcher(t, path)

	writeFile(t, path, "revision: a\n")                         // same bytes
	writeFile(t, filepath.Join(dir, "other.yaml"), "unrelated") // another file
	now := time.Now()
	require.NoError(t, os.Chtimes(path, now, now)) // touch
	time.Sleep(4 * testDebounce)
	require.Zero(t, calls.Load())
}

func TestWatcherFileAppearsLater(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	calls := startWatcher(t, path)

	writeFile(t, path, "revision: a\n")
	requireCallsSettle(t, calls, 1)
}

// watcherGoroutines counts the goroutines that run Watcher or fsnotify
// code. Counting all goroutines would be upset by other tests of the
// package running in parallel.
func watcherGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "gateway/configwatch.(*Watcher)") || strings.Contains(g, "github.com/fsnotify/fsnotify") {
			count++
		}
	}
	return count
}

func TestWatcherCloseStopsGoroutines(t *testing.T) {
	before := watcherGoroutines()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, "revision: a\n")

	var calls atomic.Int32
	w, err := New(path, testDebounce, config.ReadLimits{}, func() { calls.Add(1) })
	require.NoError(t, err)
	require.Greater(t, watcherGoroutines(), before, "the watcher runs goroutines")
	writeFile(t, path, "revision: b\n") // leave a debounce pending
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Close is a no-op")

	require.Eventually(t, func() bool { return watcherGoroutines() <= before }, 2*time.Second, 10*time.Millisecond,
		"watcher goroutines: before %d, after %d", before, watcherGoroutines())
	time.Sleep(2 * testDebounce)
	require.Zero(t, calls.Load(), "callback after Close")
}

func TestNewWatcherMissingDirectory(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "nope", "config.yaml"), testDebounce, config.ReadLimits{}, func() {})
	require.Error(t, err)
}

// The watcher reads the file for its fingerprint: a file swapped for a FIFO
// used to block the watcher's goroutine forever, so that no later change
// was ever reloaded (and Close hung).
func TestWatcherSurvivesFIFO(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	writeFile(t, real, "revision: a\n")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	path := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.Symlink(real, path))

	var calls atomic.Int32
	w, err := New(path, testDebounce, config.ReadLimits{}, func() { calls.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() {
		closed := make(chan struct{})
		go func() { _ = w.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Error("Close hung: the watcher goroutine is stuck")
		}
	})

	swapSymlink(t, path, fifo)
	requireCallsSettle(t, &calls, 1) // the content became unreadable: the reload says why

	writeFile(t, real, "revision: b\n")
	swapSymlink(t, path, real)
	requireCallsSettle(t, &calls, 2)
}

func swapSymlink(t *testing.T, link, target string) {
	t.Helper()
	tmp := link + ".tmp"
	require.NoError(t, os.Symlink(target, tmp))
	require.NoError(t, os.Rename(tmp, link))
}
