package logdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/syncbuf"
)

func TestArgsRoundTrip(t *testing.T) {
	cfg := Config{Dir: "/var/lib/berth/logs/t1", MaxSize: 1234, MaxFiles: 5}
	var argv []string
	// The shim flattens the query map in whatever order it iterates it.
	for k, v := range Args(cfg) {
		argv = append(argv, k, v)
	}
	if !Invoked(argv) {
		t.Fatalf("Invoked(%q) = false", argv)
	}
	got, err := ParseArgs(argv)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Fatalf("ParseArgs = %+v, want %+v", got, cfg)
	}
	if Invoked([]string{"-test.run", "X"}) {
		t.Fatal("a test binary's own flags were taken for a driver command line")
	}
	if _, err := ParseArgs([]string{ArgMarker, "1", ArgDir, "relative"}); err == nil {
		t.Fatal("relative dir: want an error")
	}
	if d := Args(Config{Dir: "/x"}); d[ArgMaxSize] != fmt.Sprint(DefaultMaxSize) || d[ArgMaxFiles] != fmt.Sprint(DefaultMaxFiles) {
		t.Fatalf("defaults: %v", d)
	}
}

func readRecords(t *testing.T, name string) []Record {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var rs []Record
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var r Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("%s: line %q: %v", name, l, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestWriterRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(Config{Dir: dir, MaxSize: 400, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := w.WriteLine(Stdout, time.Unix(int64(i), 0).UTC(), []byte(fmt.Sprintf("line %02d", i)), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, _ := e.Info()
		if info.Size() > 400 {
			t.Errorf("%s is %d bytes, over the 400-byte limit", e.Name(), info.Size())
		}
	}
	if strings.Join(names, " ") != "container.log container.log.1 container.log.2" {
		t.Fatalf("files after rotation: %v", names)
	}
	// The newest lines are in the current file, the ones before in .1, and so on; the
	// oldest fell off.
	cur := readRecords(t, filepath.Join(dir, FileName))
	prev := readRecords(t, filepath.Join(dir, FileName+".1"))
	if cur[len(cur)-1].Line != "line 39" || prev[len(prev)-1].Line != fmt.Sprintf("line %02d", 39-len(cur)) {
		t.Fatalf("current ends %q, .1 ends %q", cur[len(cur)-1].Line, prev[len(prev)-1].Line)
	}
	old := readRecords(t, filepath.Join(dir, FileName+".2"))
	if old[0].Line == "line 00" {
		t.Fatal("the oldest lines were kept beyond MaxFiles")
	}

	// Reading renders the lines across files in order, and Tail counts from the end.
	var all bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{}, &all); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(all.String(), "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("lines out of order: %q then %q", lines[i-1], lines[i])
		}
	}
	var tail bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{Tail: 3}, &tail); err != nil {
		t.Fatal(err)
	}
	if tail.String() != "line 37\nline 38\nline 39\n" {
		t.Fatalf("tail 3 = %q", tail.String())
	}
}

func TestWriterAppendsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	for _, l := range []string{"before", "after"} {
		w, err := NewWriter(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteLine(Stdout, time.Now(), []byte(l), false); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	var out bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "before\nafter\n" {
		t.Fatalf("got %q", out.String())
	}
}

type memLines struct {
	mu      sync.Mutex
	records []Record
}

func (m *memLines) WriteLine(stream string, t time.Time, line []byte, partial bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, Record{Time: t, Stream: stream, Line: string(line), Partial: partial})
	return nil
}

func TestCopySplitsLines(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	in := "one\ntwo\n\n" + long + "\nlast without newline"
	var m memLines
	if err := Copy(&m, Stderr, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range m.records {
		if r.Stream != Stderr {
			t.Fatalf("stream %q", r.Stream)
		}
		got = append(got, fmt.Sprintf("%d/%v", len(r.Line), r.Partial))
	}
	want := []string{"3/false", "3/false", "0/false", fmt.Sprintf("%d/true", maxLine), "10/false", "20/false"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("records %v, want %v", got, want)
	}

	// Rendering joins the partial record back onto its continuation.
	dir := t.TempDir()
	w, err := NewWriter(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := Copy(w, Stdout, strings.NewReader(long+"\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var out bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != long+"\n" {
		t.Fatalf("rendered %d bytes, want %d", out.Len(), len(long)+1)
	}
}

func TestReadFiltersStreams(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.WriteLine(Stdout, t0, []byte("out1"), false)
	w.WriteLine(Stderr, t0.Add(time.Second), []byte("err1"), false)
	w.WriteLine(Stdout, t0.Add(2*time.Second), []byte("out2"), false)
	w.Close()
	for _, c := range []struct {
		o    ReadOptions
		want string
	}{
		{ReadOptions{}, "out1\nerr1\nout2\n"},
		{ReadOptions{Stdout: true}, "out1\nout2\n"},
		{ReadOptions{Stderr: true}, "err1\n"},
		{ReadOptions{Since: t0.Add(time.Second)}, "err1\nout2\n"},
		{ReadOptions{Until: t0.Add(time.Second)}, "out1\nerr1\n"},
		{ReadOptions{Since: t0.Add(time.Second), Until: t0.Add(time.Second)}, "err1\n"},
		// Following ends once Until has passed.
		{ReadOptions{Until: t0.Add(time.Second), Follow: true}, "out1\nerr1\n"},
		{ReadOptions{Tail: 1, Stderr: true, Timestamps: true}, "2026-01-01T00:00:01Z err1\n"},
	} {
		var out bytes.Buffer
		if err := Read(context.Background(), dir, c.o, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("%+v: got %q, want %q", c.o, out.String(), c.want)
		}
	}
}

func TestReadFollowsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(Config{Dir: dir, MaxSize: 200, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteLine(Stdout, time.Now(), []byte("first"), false)

	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- Read(ctx, dir, ReadOptions{Follow: true}, &out) }()

	var want strings.Builder
	want.WriteString("first\n")
	// Enough lines for several rotations, written slowly enough that the follower sees
	// each file before it is rotated twice.
	for i := range 12 {
		l := fmt.Sprintf("followed %02d", i)
		want.WriteString(l + "\n")
		if err := w.WriteLine(Stdout, time.Now(), []byte(l), false); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			waitFor(t, func() bool { return strings.HasSuffix(out.String(), l+"\n") })
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatalf("followed:\n%s\nwant:\n%s", out.String(), want.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFindPrefersTheDedicatedDriver(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sibling   os.FileMode // 0: none
		dedicated bool
	}{
		{"no driver beside berth", 0, false},
		{"driver beside berth", 0o755, true},
		{"driver beside berth, not executable", 0o644, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "berth")
			if tc.sibling != 0 {
				if err := os.WriteFile(filepath.Join(dir, BinaryName), []byte("#!/bin/true\n"), tc.sibling); err != nil {
					t.Fatal(err)
				}
			}
			got, dedicated := Find(exe)
			want := exe
			if tc.dedicated {
				want = filepath.Join(dir, BinaryName)
			}
			if got != want || dedicated != tc.dedicated {
				t.Errorf("Find(%q) = %q, %v; want %q, %v", exe, got, dedicated, want, tc.dedicated)
			}
		})
	}
}
