package dirwatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/applier/dirwatch"
	"github.com/berthd/berth/internal/syncbuf"
	"github.com/berthd/berth/internal/testenv"
)

// deadline bounds every wait; tests never assert how fast something happens.
const deadline = 10 * time.Second

// recorder counts onChange calls, noting for each whether its probe file existed then.
// The probe is the fence: changes that should not count are made first, then the probe is
// written, and the calls seen up to the one that sees the probe are exactly the calls the
// earlier changes caused, because Watch handles events in order.
type recorder struct {
	probe string
	mu    sync.Mutex
	calls []bool
	block chan struct{} // when set, the first call waits for it to close
}

func newRecorder(dir string) *recorder {
	return &recorder{probe: filepath.Join(dir, "zz-fence.yaml")}
}

func (r *recorder) onChange() {
	_, err := os.Stat(r.probe)
	r.mu.Lock()
	r.calls = append(r.calls, err == nil)
	first := len(r.calls) == 1
	r.mu.Unlock()
	if first && r.block != nil {
		<-r.block
	}
}

func (r *recorder) snapshot() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) count() int { return len(r.snapshot()) }

// fence writes the probe and returns the calls up to the first one that saw it.
func (r *recorder) fence(t *testing.T) []bool {
	t.Helper()
	writeFile(t, r.probe, "fence")
	waitFor(t, "a call after the fence", func() bool { return slices.Contains(r.snapshot(), true) })
	calls := r.snapshot()
	return calls[:slices.Index(calls, true)+1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", deadline, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// start runs Watch until the test ends and returns once its watches are in place; done
// receives what Watch returns.
func start(t *testing.T, dir string, debounce time.Duration, onChange func(), opts ...dirwatch.Option) (cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	finished := make(chan struct{})
	opts = append(opts, dirwatch.WithReady(func() { close(ready) }))
	go func() {
		errc <- dirwatch.Watch(ctx, dir, debounce, onChange, opts...)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(deadline):
			t.Errorf("Watch did not return within %s of cancel", deadline)
		}
	})
	select {
	case <-ready:
	case <-finished:
		t.Fatalf("Watch returned before it was ready: %v", <-errc)
	case <-time.After(deadline):
		t.Fatalf("Watch not ready within %s", deadline)
	}
	return cancel, errc
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendFile makes exactly one write to an existing file, so exactly one inotify event.
func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestWatchOneWriteOneCall(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "compose.yaml")
	writeFile(t, target, "services: {}\n")
	rec := newRecorder(dir)
	start(t, dir, 50*time.Millisecond, rec.onChange)

	appendFile(t, target, "# edited\n")
	waitFor(t, "the call for the write", func() bool { return rec.count() >= 1 })

	if got, want := rec.fence(t), []bool{false, true}; !slices.Equal(got, want) {
		t.Errorf("calls (true = after the fence) = %v, want %v: one write must cause one call", got, want)
	}
}

func TestWatchBurstOneCall(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "compose.yaml")
	writeFile(t, target, "services: {}\n")
	rec := newRecorder(dir)
	start(t, dir, 100*time.Millisecond, rec.onChange)

	for i := range 20 {
		appendFile(t, target, "# line "+strconv.Itoa(i)+"\n")
	}
	waitFor(t, "the call for the burst", func() bool { return rec.count() >= 1 })

	if got, want := rec.fence(t), []bool{false, true}; !slices.Equal(got, want) {
		t.Errorf("calls (true = after the fence) = %v, want %v: 20 quick writes must cause one call", got, want)
	}
}

// An editor's save touches temporaries before and after the one real change. Each step is
// left quiet for longer than the debounce, so a temporary counted as a change would show
// up as a call of its own.
func TestWatchEditorSaveOneCall(t *testing.T) {
	const debounce = 100 * time.Millisecond
	tests := []struct {
		name   string
		before []func(t *testing.T, dir, target string) // temporaries, one quiet step each
		save   func(t *testing.T, dir, target string)   // the real change
		after  []func(t *testing.T, dir, target string) // cleanup of temporaries
	}{
		{
			name: "vim: write a temporary then rename it over the file",
			before: []func(t *testing.T, dir, target string){
				func(t *testing.T, dir, target string) { writeFile(t, filepath.Join(dir, ".compose.yaml.swp"), "swap") },
				func(t *testing.T, dir, target string) {
					writeFile(t, filepath.Join(dir, "4913"), "")
					must(t, os.Remove(filepath.Join(dir, "4913")))
				},
				func(t *testing.T, dir, target string) { writeFile(t, filepath.Join(dir, ".compose.yaml.swx"), "swap") },
				func(t *testing.T, dir, target string) { writeFile(t, target+"~", "services: {web: {}}\n") },
			},
			save: func(t *testing.T, dir, target string) { must(t, os.Rename(target+"~", target)) },
			after: []func(t *testing.T, dir, target string){
				func(t *testing.T, dir, target string) { must(t, os.Remove(filepath.Join(dir, ".compose.yaml.swp"))) },
				func(t *testing.T, dir, target string) { must(t, os.Remove(filepath.Join(dir, ".compose.yaml.swx"))) },
			},
		},
		{
			name: "emacs: lock, auto-save, then keep a backup and write the file",
			before: []func(t *testing.T, dir, target string){
				func(t *testing.T, dir, target string) {
					must(t, os.Symlink("user@host.1234:1", filepath.Join(dir, ".#compose.yaml")))
				},
				func(t *testing.T, dir, target string) { writeFile(t, filepath.Join(dir, "#compose.yaml#"), "draft") },
			},
			save: func(t *testing.T, dir, target string) {
				must(t, os.Rename(target, target+"~"))
				writeFile(t, target, "services: {web: {}}\n")
			},
			after: []func(t *testing.T, dir, target string){
				func(t *testing.T, dir, target string) { must(t, os.Remove(filepath.Join(dir, "#compose.yaml#"))) },
				func(t *testing.T, dir, target string) { must(t, os.Remove(filepath.Join(dir, ".#compose.yaml"))) },
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "compose.yaml")
			writeFile(t, target, "services: {}\n")
			rec := newRecorder(dir)
			start(t, dir, debounce, rec.onChange)

			for _, step := range tt.before {
				step(t, dir, target)
				time.Sleep(3 * debounce)
			}
			tt.save(t, dir, target)
			waitFor(t, "the call for the save", func() bool { return rec.count() >= 1 })
			for _, step := range tt.after {
				step(t, dir, target)
				time.Sleep(3 * debounce)
			}

			if got, want := rec.fence(t), []bool{false, true}; !slices.Equal(got, want) {
				t.Errorf("calls (true = after the fence) = %v, want %v: a save must cause exactly one call", got, want)
			}
			if got, err := os.ReadFile(target); err != nil || string(got) != "services: {web: {}}\n" {
				t.Errorf("after the save %s holds %q (%v), want the new content", target, got, err)
			}
		})
	}
}

func TestWatchIgnoresHidden(t *testing.T) {
	const debounce = 50 * time.Millisecond
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".git", "index"), "index")
	writeFile(t, filepath.Join(dir, "web", ".cache", "state"), "state")
	rec := newRecorder(dir)
	start(t, dir, debounce, rec.onChange)

	steps := []func(){
		func() { writeFile(t, filepath.Join(dir, ".git", "index"), "index 2") },
		func() { writeFile(t, filepath.Join(dir, ".git", "objects", "ab", "cdef"), "object") },
		func() { writeFile(t, filepath.Join(dir, ".env"), "A=1") },
		func() { writeFile(t, filepath.Join(dir, "web", ".cache", "state"), "state 2") },
		func() { writeFile(t, filepath.Join(dir, "web", ".compose.yaml.swp"), "swap") },
		func() { writeFile(t, filepath.Join(dir, ".hidden", "deep", "compose.yaml"), "services: {}") },
		func() { writeFile(t, filepath.Join(dir, ".hidden", "deep", "more.yaml"), "services: {}") },
	}
	for _, step := range steps {
		step()
		time.Sleep(3 * debounce)
	}

	if got, want := rec.fence(t), []bool{true}; !slices.Equal(got, want) {
		t.Errorf("calls (true = after the fence) = %v, want %v: hidden files and folders must not cause calls", got, want)
	}
}

// Hiding a folder (a common way to switch a stack off) must stop its subfolders from
// counting: the kernel keeps watching them under their old, visible names.
func TestWatchFolderRenamedHidden(t *testing.T) {
	const debounce = 50 * time.Millisecond
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "web", "conf", "nginx.conf"), "x")
	rec := newRecorder(dir)
	start(t, dir, debounce, rec.onChange)

	must(t, os.Rename(filepath.Join(dir, "web"), filepath.Join(dir, ".web-disabled")))
	waitFor(t, "the call for hiding the folder", func() bool { return rec.count() >= 1 })
	writeFile(t, filepath.Join(dir, ".web-disabled", "conf", "nginx.conf"), "y")
	time.Sleep(3 * debounce)
	writeFile(t, filepath.Join(dir, ".web-disabled", "compose.yaml"), "y")
	time.Sleep(3 * debounce)

	if got, want := rec.fence(t), []bool{false, true}; !slices.Equal(got, want) {
		t.Errorf("calls (true = after the fence) = %v, want %v: changes in a folder renamed hidden must not cause calls", got, want)
	}
}

func TestWatchFollowsSubfolders(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(dir)
	start(t, dir, 50*time.Millisecond, rec.onChange)

	// Each step must cause a call of its own; a step in an unwatched folder would not.
	steps := []struct {
		name string
		do   func()
	}{
		{"mkdir -p a/b", func() { must(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)) }},
		{"write in a folder made by mkdir -p", func() { writeFile(t, filepath.Join(dir, "a", "b", "compose.yaml"), "x") }},
		{"rename the folder", func() { must(t, os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "z"))) }},
		{"write in the renamed folder", func() { writeFile(t, filepath.Join(dir, "z", "b", "stack.yml"), "x") }},
		{"move a folder in from outside", func() {
			outside := filepath.Join(t.TempDir(), "moved")
			writeFile(t, filepath.Join(outside, "sub", "compose.yaml"), "x")
			must(t, os.Rename(outside, filepath.Join(dir, "moved")))
		}},
		{"write in the moved-in folder", func() { writeFile(t, filepath.Join(dir, "moved", "sub", "other.yaml"), "x") }},
		{"remove a folder", func() { must(t, os.RemoveAll(filepath.Join(dir, "z"))) }},
		{"recreate it", func() { writeFile(t, filepath.Join(dir, "z", "b", "compose.yaml"), "x") }},
		{"write in the recreated folder", func() { writeFile(t, filepath.Join(dir, "z", "b", "again.yaml"), "x") }},
	}
	for i, step := range steps {
		step.do()
		waitFor(t, "the call for step "+strconv.Quote(step.name), func() bool { return rec.count() >= i+1 })
	}
}

func TestWatchContinuousChangesDoNotStarve(t *testing.T) {
	const (
		debounce = 50 * time.Millisecond
		maxDelay = 200 * time.Millisecond
	)
	dir := t.TempDir()
	target := filepath.Join(dir, "compose.yaml")
	writeFile(t, target, "services: {}\n")
	rec := newRecorder(dir)
	start(t, dir, debounce, rec.onChange, dirwatch.WithMaxDelay(maxDelay))

	tick := time.NewTicker(debounce / 2)
	defer tick.Stop()
	for end := time.Now().Add(5 * maxDelay); time.Now().Before(end); <-tick.C {
		appendFile(t, target, "#\n")
	}
	// Starved, the stream would get only the one call after it ends.
	waitFor(t, "at least 2 calls for a stream of changes lasting 5 × max delay", func() bool { return rec.count() >= 2 })
}

func TestWatchReturnsNilOnCancel(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(dir)
	cancel, done := start(t, dir, 50*time.Millisecond, rec.onChange)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	case <-time.After(deadline):
		t.Fatalf("Watch did not return within %s of cancel", deadline)
	}
}

func TestWatchDirRemoved(t *testing.T) {
	tests := []struct {
		name   string
		remove func(dir string) error
	}{
		{"removed", os.RemoveAll},
		{"renamed away", func(dir string) error { return os.Rename(dir, dir+"-old") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "stacks")
			writeFile(t, filepath.Join(dir, "web", "compose.yaml"), "services: {}")
			rec := newRecorder(dir)
			_, done := start(t, dir, 50*time.Millisecond, rec.onChange)

			must(t, tt.remove(dir))
			select {
			case err := <-done:
				if !errors.Is(err, dirwatch.ErrDirRemoved) {
					t.Fatalf("Watch = %v, want an error wrapping ErrDirRemoved", err)
				}
				if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "re-add the source") {
					t.Errorf("Watch = %q, want it to name %s and say to re-add the source", err, dir)
				}
			case <-time.After(deadline):
				t.Fatalf("Watch did not return within %s of the directory going away", deadline)
			}
		})
	}
}

func TestWatchSymlinkedDir(t *testing.T) {
	real := t.TempDir()
	target := filepath.Join(real, "compose.yaml")
	writeFile(t, target, "services: {}\n")
	link := filepath.Join(t.TempDir(), "stacks")
	must(t, os.Symlink(real, link))
	rec := newRecorder(real)
	start(t, link, 50*time.Millisecond, rec.onChange)

	appendFile(t, filepath.Join(link, "compose.yaml"), "# edited\n")
	waitFor(t, "a call for a write through the symlinked directory", func() bool { return rec.count() >= 1 })
}

func TestWatchInvalidArguments(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	writeFile(t, file, "services: {}")
	tests := []struct {
		name     string
		dir      string
		debounce time.Duration
		opts     []dirwatch.Option
		want     string
	}{
		{"zero debounce", dir, 0, nil, "debounce must be positive"},
		{"max delay below debounce", dir, time.Second, []dirwatch.Option{dirwatch.WithMaxDelay(time.Millisecond)}, "WithMaxDelay"},
		{"missing dir", filepath.Join(dir, "nope"), time.Second, nil, "no such file"},
		{"dir is a file", file, time.Second, nil, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dirwatch.Watch(t.Context(), tt.dir, tt.debounce, func() { t.Error("onChange called") }, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("Watch = %v, want an error naming %s and containing %q", err, tt.dir, tt.want)
			}
		})
	}
}

// The kernel queue overflows for real: the first onChange blocks Watch while far more
// events than the queue holds pile up.
func TestWatchSurvivesOverflow(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		testenv.Unavailable(t, fmt.Sprintf("no inotify queue limit to overflow: %v", err))
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || limit > 1<<16 {
		testenv.Unavailable(t, fmt.Sprintf("inotify queue limit %q too large to overflow quickly (Debian's default is 16384)", raw))
	}

	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeFile(t, a, "")
	writeFile(t, b, "")
	rec := newRecorder(dir)
	rec.block = make(chan struct{})
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	start(t, dir, 20*time.Millisecond, rec.onChange, dirwatch.WithLogger(logger))

	appendFile(t, a, "x")
	waitFor(t, "the first call, which blocks", func() bool { return rec.count() >= 1 })
	fa, err := os.OpenFile(a, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer fa.Close()
	fb, err := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer fb.Close()
	// Alternating files keeps the kernel from merging consecutive identical events; the
	// extra covers what fsnotify holds in its own read buffer.
	for range limit + 8192 {
		_, err := fa.WriteString("x")
		must(t, err)
		_, err = fb.WriteString("x")
		must(t, err)
	}
	close(rec.block)

	waitFor(t, "the overflow to be logged", func() bool { return strings.Contains(logs.String(), "not seen") })
	calls := rec.fence(t)
	if len(calls) < 2 {
		t.Errorf("calls (true = after the fence) = %v, want the blocked call, then the fence's", calls)
	}
}
