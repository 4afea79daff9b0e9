package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits of reading a config file. The size limit cannot be a key of the
// file it limits; the command line sets it (--max-config-size).
const (
	DefaultMaxFileSize = 64 << 20         // 64 MiB
	DefaultReadTimeout = 10 * time.Second // a regular file on a local disk takes milliseconds
	// maxStuckReads bounds the reads that timed out and are still blocked
	// in the kernel (a hung network mount): each holds a goroutine and a
	// file descriptor until the read returns.
	maxStuckReads = 8
)

// ReadLimits bounds the reading of a config file. Zero fields take the
// defaults.
type ReadLimits struct {
	MaxSize int64         // bytes; a larger file is refused without being read
	Timeout time.Duration // a read that takes longer is abandoned
}

func (l ReadLimits) withDefaults() ReadLimits {
	if l.MaxSize <= 0 {
		l.MaxSize = DefaultMaxFileSize
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultReadTimeout
	}
	return l
}

// Errors of ReadFile, wrapped in *fs.PathError with the file's path.
var (
	ErrNotRegular  = errors.New("not a regular file")
	ErrTooLarge    = errors.New("file too large")
	ErrReadTimeout = errors.New("read timed out")
	ErrStuckReads  = errors.New("too many earlier reads of config files are still blocked")
)

// stuckReads counts the reads that timed out and have not returned yet.
var stuckReads atomic.Int32

// readRegular does the reading for ReadFile; tests replace it to simulate a
// read that blocks.
var readRegular = readRegularFile

// ReadFile reads a config file as os.ReadFile does, with the defences a
// hot-reloaded file needs against what the path may point at:
//
//   - only a regular file is read, after following symlinks: a FIFO would
//     block the reader forever, /dev/zero would fill memory, and opening
//     some devices has side effects, so their type is checked before they
//     are opened (and again on the opened file, in case the path was
//     swapped in between);
//   - a file larger than lim.MaxSize is refused, by its size before
//     reading and by what was read (a file that grows while read);
//   - a read that takes longer than lim.Timeout is abandoned with
//     ErrReadTimeout. The blocked read goes on in its goroutine until the
//     kernel returns; the caller does not wait for it, so a later read is
//     not held up by an earlier stuck one. At most maxStuckReads may be
//     pending; beyond that ReadFile fails at once with ErrStuckReads rather
//     than pile up goroutines.
//
// Errors are *fs.PathError, so errors.Is(err, fs.ErrNotExist) works as with
// os.ReadFile.
func ReadFile(path string, lim ReadLimits) ([]byte, error) {
	lim = lim.withDefaults()
	if stuckReads.Load() >= maxStuckReads {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrStuckReads}
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	// state: 0 the read is running, 1 the caller gave up on it, 2 it
	// delivered its result. Whoever moves it from 0 decides who counts the
	// read as stuck.
	var state atomic.Int32
	go func() {
		data, err := readRegular(path, lim.MaxSize)
		done <- result{data, err}
		if !state.CompareAndSwap(0, 2) {
			stuckReads.Add(-1) // the caller timed out and counted it
		}
	}()
	timer := time.NewTimer(lim.Timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.data, r.err
	case <-timer.C:
		if state.CompareAndSwap(0, 1) {
			stuckReads.Add(1)
			return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w after %s", ErrReadTimeout, lim.Timeout)}
		}
		r := <-done // it finished just as the timer fired
		return r.data, r.err
	}
}

func readRegularFile(path string, maxSize int64) ([]byte, error) {
	// os.Stat follows symlinks: the type checked is the target's.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkFileInfo(path, fi, maxSize); err != nil {
		return nil, err
	}
	// O_NONBLOCK: if the path became a FIFO since the Stat, opening it
	// must not wait for a writer; the type is checked again below.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkFileInfo(path, fi, maxSize); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than the limit of %s", ErrTooLarge, byteSize(maxSize))}
	}
	return data, nil
}

func checkFileInfo(path string, fi fs.FileInfo, maxSize int64) error {
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, fileKind(fi.Mode()))}
	}
	if fi.Size() > maxSize {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: %d bytes, more than the limit of %s", ErrTooLarge, fi.Size(), byteSize(maxSize))}
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// byteSize writes n in bytes, with MiB or KiB when it is a whole number of
// them.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d bytes (%d KiB)", n, n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
