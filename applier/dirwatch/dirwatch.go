// Package dirwatch turns changes under a folder into debounced "something changed" calls,
// for sources that are a plain directory on a manager (berth source add NAME --dir PATH).
//
// The watcher only says that something changed, never what: the caller rescans the whole
// folder, which is what makes it safe to coalesce a burst of changes into one call and to
// treat a lost-events overflow as just another change.
//
// Hidden files and folders (a name starting with '.') and editor temporaries are not
// changes, so an editor's "write a temporary, rename it over the file" save, a .git folder
// or a swap file opened next to a stack do not trigger a sync of their own.
//
// When the watched directory itself is removed or moved away, Watch returns an error
// wrapping [ErrDirRemoved] instead of waiting for it to come back: a folder that reappears
// may be something else entirely, so the user re-adds the source on purpose.
package dirwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ErrDirRemoved is wrapped by the error Watch returns when the watched directory was
// removed or moved away.
var ErrDirRemoved = errors.New("watched directory was removed or moved away")

// Option configures Watch.
type Option func(*options)

type options struct {
	maxDelay time.Duration
	logger   *slog.Logger
	ready    func()
}

// WithMaxDelay bounds how long a continuous stream of changes can postpone onChange: once
// a burst is this old, onChange runs even though the tree is not quiet yet. The default
// is 10 × debounce.
func WithMaxDelay(d time.Duration) Option {
	return func(o *options) { o.maxDelay = d }
}

// WithLogger sets where Watch logs; by default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithReady sets a function Watch calls once every existing folder is watched, before any
// onChange. A caller does its first full sync there: a change made after that sync starts
// is then sure to cause an onChange.
func WithReady(fn func()) Option {
	return func(o *options) { o.ready = fn }
}

// Watch calls onChange once per burst of changes under dir (recursively: new subfolders are
// watched as they appear, removed ones dropped), after the tree has been quiet for debounce,
// or once the burst is WithMaxDelay old, so a steady stream of changes cannot starve it.
// onChange runs on Watch's goroutine, so calls never overlap; changes made while it runs
// lead to one more call after it returns.
// It returns when ctx ends (nil) or when the watch cannot continue (error naming dir).
func Watch(ctx context.Context, dir string, debounce time.Duration, onChange func(), opts ...Option) error {
	if debounce <= 0 {
		return fmt.Errorf("watch %s: debounce must be positive, got %s", dir, debounce)
	}
	o := options{maxDelay: 10 * debounce, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxDelay < debounce {
		return fmt.Errorf("watch %s: max delay %s is shorter than debounce %s: raise it with WithMaxDelay", dir, o.maxDelay, debounce)
	}

	// Events name paths under the resolved root, so a --dir that is a symlink still works.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("watch %s: not a directory", dir)
	}

	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return limitError(dir, err)
	}
	w := &watcher{dir: dir, root: filepath.Clean(root), fsw: fsw, log: o.logger, dirs: map[string]struct{}{}}
	defer func() {
		if err := fsw.Close(); err != nil {
			w.log.Warn("closing directory watch", "dir", dir, "err", err)
		}
	}()

	if err := w.addTree(w.root); err != nil {
		return err
	}
	if o.ready != nil {
		o.ready()
	}
	return w.run(ctx, debounce, o.maxDelay, onChange)
}

type watcher struct {
	dir  string // as the caller named it, for messages
	root string
	fsw  *fsnotify.Watcher
	log  *slog.Logger
	// dirs are the folders watched, to drop a moved folder's subtree: the kernel keeps
	// watching it under its old name.
	dirs map[string]struct{}
}

func (w *watcher) run(ctx context.Context, debounce, maxDelay time.Duration, onChange func()) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		pending    bool
		burstStart time.Time
	)
	for {
		var changed bool
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			pending = false
			w.log.Debug("directory changed", "dir", w.dir)
			onChange()
			continue
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return fmt.Errorf("watch %s: event stream closed", w.dir)
			}
			var err error
			if changed, err = w.handleEvent(ev); err != nil {
				return err
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return fmt.Errorf("watch %s: event stream closed", w.dir)
			}
			if changed, err = w.handleError(err); err != nil {
				return err
			}
		}
		if !changed {
			continue
		}
		now := time.Now()
		if !pending {
			pending = true
			burstStart = now
		}
		timer.Reset(min(debounce, burstStart.Add(maxDelay).Sub(now)))
	}
}

// handleEvent reports whether ev is a change worth a sync, watching the folders it adds.
func (w *watcher) handleEvent(ev fsnotify.Event) (bool, error) {
	name := filepath.Clean(ev.Name)
	if name == w.root {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			return false, w.removedError()
		}
		return true, nil
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.drop(name)
	}
	if w.ignored(name) {
		return false, nil
	}
	w.log.Debug("change", "path", name, "op", ev.Op.String())
	if ev.Has(fsnotify.Create) {
		if info, err := os.Lstat(name); err == nil && info.IsDir() {
			// Its subfolders may have been made before its watch was in place (mkdir -p).
			if err := w.addTree(name); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// handleError reports whether err stands for a change, or returns the error that ends the
// watch.
func (w *watcher) handleError(err error) (bool, error) {
	switch {
	case errors.Is(err, fsnotify.ErrEventOverflow):
		w.log.Warn("too many changes at once, some were not seen: syncing the whole directory", "dir", w.dir)
		// Folders made during the overflow went unseen and so unwatched.
		if err := w.rescan(); err != nil {
			return false, err
		}
		return true, nil
	case errors.Is(err, syscall.EINVAL):
		// fsnotify unwatching a moved folder that the kernel already dropped because it was
		// deleted right after: nothing is left to unwatch.
		w.log.Debug("stale watch", "dir", w.dir, "err", err)
		return false, nil
	default:
		return false, fmt.Errorf("watch %s: %w", w.dir, err)
	}
}

// addTree watches dir and every folder under it that is not ignored.
func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return w.walkError(path, err)
		}
		if !d.IsDir() {
			return nil
		}
		if path != w.root && w.ignored(path) {
			return fs.SkipDir
		}
		if err := w.fsw.Add(path); err != nil {
			return w.walkError(path, err)
		}
		w.dirs[path] = struct{}{}
		return nil
	})
}

func (w *watcher) walkError(path string, err error) error {
	if path == w.root {
		if errors.Is(err, fs.ErrNotExist) {
			return w.removedError()
		}
		return limitError(w.dir, err)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		// Gone (or replaced by a file) while being watched: that is an event of its own.
		return fs.SkipDir
	case errors.Is(err, fs.ErrPermission):
		// Reading the source fails on it too, and says so; the rest stays watched.
		w.log.Warn("cannot watch folder", "dir", w.dir, "path", path, "err", err)
		return fs.SkipDir
	default:
		return limitError(path, err)
	}
}

// rescan watches the tree again from scratch, unwatching folders that are gone.
func (w *watcher) rescan() error {
	old := w.dirs
	w.dirs = map[string]struct{}{}
	if err := w.addTree(w.root); err != nil {
		return err
	}
	for d := range old {
		if _, ok := w.dirs[d]; !ok {
			w.unwatch(d)
		}
	}
	return nil
}

// drop unwatches path and everything under it, if path was a watched folder.
func (w *watcher) drop(path string) {
	if _, ok := w.dirs[path]; !ok {
		return
	}
	prefix := path + string(filepath.Separator)
	for d := range w.dirs {
		if d == path || strings.HasPrefix(d, prefix) {
			delete(w.dirs, d)
			w.unwatch(d)
		}
	}
}

func (w *watcher) unwatch(path string) {
	// The kernel already dropped the watches of deleted folders: only moved ones remain.
	err := w.fsw.Remove(path)
	if err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) && !errors.Is(err, syscall.EINVAL) {
		w.log.Warn("cannot unwatch folder", "dir", w.dir, "path", path, "err", err)
	}
}

func (w *watcher) removedError() error {
	return fmt.Errorf("watch %s: %w: re-add the source", w.dir, ErrDirRemoved)
}

// ignored reports whether path, under the root, is hidden or an editor temporary, or lies
// in such a folder.
func (w *watcher) ignored(path string) bool {
	rel, err := filepath.Rel(w.root, path)
	if err != nil {
		return false
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if ignoredName(part) {
			return true
		}
	}
	return false
}

func ignoredName(name string) bool {
	switch {
	case name == "." || name == "..":
		return false
	case strings.HasPrefix(name, "."):
		// Hidden, which also covers Vim swap files (.name.swp) and Emacs locks (.#name).
		return true
	case strings.HasSuffix(name, "~"),
		strings.HasSuffix(name, ".swp"), strings.HasSuffix(name, ".swx"),
		name == "4913":
		// Backups and temporaries editors write next to the file they save; Vim creates and
		// deletes 4913 to probe whether it may write in the folder.
		return true
	case len(name) > 2 && strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#"):
		// Emacs auto-save files.
		return true
	}
	return false
}

// limitError names the kernel setting to raise when inotify runs out of watches or
// instances, which users otherwise meet as a bare "no space left on device".
func limitError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("watch %s: out of inotify watches: raise fs.inotify.max_user_watches (sysctl -w fs.inotify.max_user_watches=524288): %w", path, err)
	case errors.Is(err, syscall.EMFILE):
		return fmt.Errorf("watch %s: too many inotify instances or open files: raise fs.inotify.max_user_instances or the open-file limit: %w", path, err)
	default:
		return fmt.Errorf("watch %s: %w", path, err)
	}
}
