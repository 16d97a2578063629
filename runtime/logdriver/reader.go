package logdriver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// followPoll is how often a followed log is checked for new lines. Polling keeps the
// reader independent of the driver process, which may belong to an earlier berth.
const followPoll = 200 * time.Millisecond

// ReadOptions select what Read renders.
type ReadOptions struct {
	// Tail keeps only the last Tail lines that exist when reading starts; 0 means all.
	Tail int
	// Since drops lines written before it, Until those written after it.
	Since, Until time.Time
	// Follow keeps reading new lines until the context is done.
	Follow bool
	// Stdout and Stderr select streams; neither set means both.
	Stdout, Stderr bool
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
}

func (o ReadOptions) wants(r Record) bool {
	if o.Stdout != o.Stderr {
		if (r.Stream == Stdout) != o.Stdout {
			return false
		}
	}
	return (o.Since.IsZero() || !r.Time.Before(o.Since)) && (o.Until.IsZero() || !r.Time.After(o.Until))
}

// ended reports whether a followed log has nothing more to show: Until has passed.
func (o ReadOptions) ended(now time.Time) bool {
	return !o.Until.IsZero() && now.After(o.Until)
}

// Read renders the log records of dir as plain lines to w. With Follow it returns nil when
// ctx is done.
func Read(ctx context.Context, dir string, o ReadOptions, w io.Writer) error {
	base := filepath.Join(dir, FileName)
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// Rotated files oldest first, then the current one. Once opened, a file can be read
	// to its end even if the driver rotates it meanwhile.
	names, err := logFiles(base)
	if err != nil {
		return err
	}
	for _, name := range names {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		files = append(files, f)
	}

	out := bufio.NewWriter(w)
	var ring []Record
	emit := func(r Record) error {
		if !o.wants(r) {
			return nil
		}
		if o.Tail > 0 {
			if len(ring) == o.Tail {
				ring = ring[1:]
			}
			ring = append(ring, r)
			return nil
		}
		return render(out, r, o.Timestamps)
	}
	var current *tailer
	for i, f := range files {
		t := &tailer{f: f}
		if err := t.next(emit); err != nil {
			return err
		}
		if i == len(files)-1 && f.Name() == base {
			current = t
		}
	}
	for _, r := range ring {
		if err := render(out, r, o.Timestamps); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil || !o.Follow {
		return err
	}

	direct := func(r Record) error {
		if !o.wants(r) {
			return nil
		}
		return render(out, r, o.Timestamps)
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// Read once more after Until passes: lines written before it may be unread.
		ended := o.ended(time.Now())
		if current != nil {
			if err := current.next(direct); err != nil {
				return err
			}
		}
		// A rotation (or the first file appearing) shows as a different file at base:
		// finish the old one, then go on with the new.
		st, err := os.Stat(base)
		if err == nil && (current == nil || !sameFile(current.f, st)) {
			f, err := os.Open(base)
			if err == nil {
				if current != nil {
					if err := current.next(direct); err != nil {
						f.Close()
						return err
					}
				}
				files = append(files, f)
				current = &tailer{f: f}
				if err := current.next(direct); err != nil {
					return err
				}
			}
		}
		if err := out.Flush(); err != nil || ended {
			return err
		}
	}
}

// logFiles lists base's rotated files, oldest (highest suffix) first, then base itself.
func logFiles(base string) ([]string, error) {
	matches, err := filepath.Glob(base + ".*")
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	type rotated struct {
		name string
		n    int
	}
	var rs []rotated
	for _, m := range matches {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, base+".")); err == nil && n > 0 {
			rs = append(rs, rotated{m, n})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n })
	names := make([]string, 0, len(rs)+1)
	for _, r := range rs {
		names = append(names, r.name)
	}
	return append(names, base), nil
}

func sameFile(f *os.File, st os.FileInfo) bool {
	fst, err := f.Stat()
	return err == nil && os.SameFile(fst, st)
}

// tailer reads whole records from a file that may still be growing, keeping a trailing
// incomplete line for the next call.
type tailer struct {
	f       *os.File
	pending []byte
}

func (t *tailer) next(fn func(Record) error) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := t.f.Read(buf)
		t.pending = append(t.pending, buf[:n]...)
		for {
			i := bytes.IndexByte(t.pending, '\n')
			if i < 0 {
				break
			}
			line := t.pending[:i]
			t.pending = t.pending[i+1:]
			var r Record
			// A line that does not parse (a torn write after a crash) is skipped rather
			// than ending the whole read.
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			if ferr := fn(r); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
	}
}

func render(w *bufio.Writer, r Record, timestamps bool) error {
	if timestamps {
		w.WriteString(r.Time.Format(time.RFC3339Nano))
		w.WriteByte(' ')
	}
	w.WriteString(r.Line)
	if r.Partial {
		return nil
	}
	return w.WriteByte('\n')
}
