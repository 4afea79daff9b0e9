// Package configwatch watches the gateway's config file and says when its
// content changed. It is the process's business, not the schema's: config
// reads and checks a file, `gateway run` decides when to read it again.
package configwatch

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"gateway/config"
)

// Watcher calls a function when the content of a config file changes.
//
// It watches the file's directory rather than the file: editors that write a
// new file and rename it over the old one, `mv`, and Kubernetes ConfigMap
// volumes (config.yaml -> ..data/config.yaml, with ..data an atomically
// swapped symlink) all replace the inode, and a watch on the old inode would
// go silent after the first change. When the file is a symlink, the directory
// of its resolved target is watched as well, so that in-place writes to the
// target are seen.
//
// Relevant events restart a debounce timer; when it expires the file is read
// and its content hash compared with the last one, and onChange is called
// only when the content differs (a `touch`, or a rename that puts the same
// bytes back, does not reload).
type Watcher struct {
	path     string // absolute path of the watched file, as given (not resolved)
	dir      string // directory of path
	base     string // file name of path
	debounce time.Duration
	limits   config.ReadLimits
	onChange func()

	fs   *fsnotify.Watcher
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// Owned by the loop goroutine after New returns.
	targetDir string      // directory of the symlink target when outside dir, else ""
	last      fingerprint // content of the file at the last check
}

// fingerprint identifies the content of the file; a missing or unreadable
// file has ok == false.
type fingerprint struct {
	ok  bool
	sum [sha256.Size]byte
}

// New starts watching path. onChange is called on the Watcher's own
// goroutine, once per settled change, debounce after the last relevant file
// event; calls never overlap. onChange must not call Close (Close waits for
// the goroutine that is running onChange). The file is read for its
// fingerprint with config.ReadFile and lim, so that a path swapped to a FIFO or a
// device, or a read that hangs, cannot stop the watcher for longer than
// lim's timeout; a file that cannot be read counts as one content, and a
// change to it is reported (the reload then says what is wrong).
func New(path string, debounce time.Duration, lim config.ReadLimits, onChange func()) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	w := &Watcher{
		path:     abs,
		dir:      filepath.Dir(abs),
		base:     filepath.Base(abs),
		debounce: max(debounce, 0),
		limits:   lim,
		onChange: onChange,
		fs:       fw,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if err := fw.Add(w.dir); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", w.dir, err)
	}
	w.last = w.read()
	w.followTarget()
	go w.loop()
	return w, nil
}

// Close stops the watcher and waits for its goroutine (and any onChange call
// in progress) to finish. It is safe to call more than once.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		err = w.fs.Close()
	})
	return err
}

func (w *Watcher) loop() {
	defer close(w.done)
	// The timer is created stopped; fire is nil while no check is pending so
	// that the select does not wait on it.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var fire <-chan time.Time
	arm := func() {
		timer.Reset(w.debounce)
		fire = timer.C
	}
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				arm()
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflowed event queue may have swallowed the event that
			// mattered; checking the content costs one read.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				arm()
			}
		case <-fire:
			fire = nil
			w.followTarget()
			if fp := w.read(); fp != w.last {
				w.last = fp
				w.onChange()
			}
		}
	}
}

// relevant reports whether ev may have changed the file's content: an event
// on the file's name, on a Kubernetes atomic-writer entry (..data,
// ..2026_01_01...), or anywhere in the symlink target's directory. Other
// files of a busy directory must not keep postponing the debounce timer.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	if w.targetDir != "" && dir == w.targetDir {
		return true
	}
	return name == w.base || strings.HasPrefix(name, "..")
}

// followTarget keeps an extra watch on the directory of the file's symlink
// target when that is not the file's own directory, and moves it when the
// target changes. Errors are ignored: the target may not exist (yet), and
// the directory watch still sees symlink swaps.
func (w *Watcher) followTarget() {
	dir := ""
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		if d := filepath.Dir(real); d != w.dir {
			dir = d
		}
	}
	if dir == w.targetDir {
		return
	}
	if w.targetDir != "" {
		_ = w.fs.Remove(w.targetDir) // already gone when the directory was deleted
	}
	w.targetDir = ""
	if dir != "" && w.fs.Add(dir) == nil {
		w.targetDir = dir
	}
}

func (w *Watcher) read() fingerprint {
	data, err := config.ReadFile(w.path, w.limits)
	if err != nil {
		return fingerprint{}
	}
	return fingerprint{ok: true, sum: sha256.Sum256(data)}
}
