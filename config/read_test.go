package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loadWithin runs LoadFile and fails the test, instead of hanging it, when
// the load does not return within a generous bound (it returns at once when
// it works; the bound only turns a hang into a failure).
func loadWithin(t *testing.T, path string, lim ReadLimits) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := LoadFile(path, lim)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("loading %s did not return", path)
		return nil
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, syscall.Mkfifo(path, 0o600))
}

// A config symlinked to a FIFO used to block the reader forever (and with
// it every later reload); devices and directories are refused as well.
func TestLoadOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	link := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.Symlink(fifo, link))

	for _, c := range []struct{ path, kind string }{
		{link, "a named pipe"},
		{fifo, "a named pipe"},
		// /dev/null would load as an empty file; /dev/zero (not read here:
		// the old code filled memory with it) is the same kind of file.
		{"/dev/null", "a character device"},
		{dir, "a directory"},
	} {
		err := loadWithin(t, c.path, ReadLimits{})
		require.ErrorIs(t, err, ErrNotRegular, c.path)
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, c.path, pe.Path)
		require.Contains(t, err.Error(), c.kind)
	}

	// A symlink to a regular file is fine: that is how Kubernetes mounts
	// a ConfigMap.
	real := filepath.Join(dir, "real.yaml")
	require.NoError(t, os.WriteFile(real, []byte(minimal), 0o600))
	require.NoError(t, os.Remove(link))
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, loadWithin(t, link, ReadLimits{}))
}

func TestLoadSizeLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	doc := minimal + "#" + strings.Repeat("x", 2000) + "\n"
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))

	require.NoError(t, loadWithin(t, path, ReadLimits{MaxSize: int64(len(doc))}), "a file of exactly the limit loads")
	err := loadWithin(t, path, ReadLimits{MaxSize: int64(len(doc)) - 1})
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "more than the limit of")
	require.NotContains(t, err.Error(), "xxxx", "the content is not echoed")

	require.Equal(t, int64(64<<20), ReadLimits{}.withDefaults().MaxSize, "the default is 64 MiB")
}

// A file that grows past the limit between the size check and the read is
// cut off by the read itself.
func TestReadStopsAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("#\n", 1000)), 0o600))
	data, err := readRegularFile(path, 2000)
	require.NoError(t, err)
	require.Len(t, data, 2000)
	_, err = readRegularFile(path, 1999)
	require.ErrorIs(t, err, ErrTooLarge)
}

// blockReads makes every read block until the returned release is called,
// as a read from a hung network mount does.
func blockReads(t *testing.T) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	readRegular = func(path string, maxSize int64) ([]byte, error) {
		<-gate
		return readRegularFile(path, maxSize)
	}
	var once bool
	release = func() {
		if !once {
			once = true
			close(gate)
		}
	}
	t.Cleanup(func() {
		release()
		readRegular = readRegularFile
		require.Eventually(t, func() bool { return stuckReads.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
	})
	return release
}

// A read that hangs is abandoned after the timeout, and it does not hold up
// the reads after it: each later load returns on its own timeout. Past
// maxStuckReads pending reads, loads fail at once rather than pile up
// goroutines; when the stuck reads return, reading works again.
func TestStuckReadDoesNotBlockLaterReads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	release := blockReads(t)

	lim := ReadLimits{Timeout: 20 * time.Millisecond}
	for i := range maxStuckReads {
		err := loadWithin(t, path, lim)
		require.ErrorIs(t, err, ErrReadTimeout, "read %d", i)
		require.Contains(t, err.Error(), "read timed out after 20ms")
	}
	require.Equal(t, int32(maxStuckReads), stuckReads.Load())
	err := loadWithin(t, path, ReadLimits{Timeout: time.Hour})
	require.ErrorIs(t, err, ErrStuckReads, "no new read while too many are stuck")

	release()
	require.Eventually(t, func() bool { return stuckReads.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, loadWithin(t, path, lim))
}

func TestReadErrorsAreUsable(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"), ReadLimits{})
	require.True(t, errors.Is(err, fs.ErrNotExist), "got %v", err)
}
