package logdriver

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// FileName is the current log file of a task's log directory; rotated files carry a
// suffix, .1 the newest.
const FileName = "container.log"

// Record is one line of a log file.
type Record struct {
	Time    time.Time `json:"t"`
	Stream  string    `json:"s"`
	Line    string    `json:"l"`
	Partial bool      `json:"p,omitempty"`
}

// Writer appends records to <dir>/container.log and rotates it when the next record would
// take it past MaxSize, keeping MaxFiles files in all. It is safe for concurrent use.
type Writer struct {
	cfg    Config
	mu     sync.Mutex
	f      *os.File // nil after a failed rotation: the next write opens it again
	size   int64
	closed bool
}

// NewWriter opens (appending) or creates the current log file in cfg.Dir, making the
// directory if needed.
func NewWriter(cfg Config) (*Writer, error) {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("logdriver: %w", err)
	}
	w := &Writer{cfg: cfg}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(filepath.Join(w.cfg.Dir, FileName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("logdriver: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logdriver: %w", err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// WriteLine appends one record.
func (w *Writer) WriteLine(stream string, t time.Time, line []byte, partial bool) error {
	b, err := json.Marshal(Record{Time: t, Stream: stream, Line: string(line), Partial: partial})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("logdriver: writer is closed")
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if w.size > 0 && w.size+int64(len(b)) > w.cfg.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("logdriver: %w", err)
	}
	return nil
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("logdriver: rotate: %w", err)
	}
	w.f = nil
	base := filepath.Join(w.cfg.Dir, FileName)
	name := func(i int) string {
		if i == 0 {
			return base
		}
		return base + "." + strconv.Itoa(i)
	}
	if w.cfg.MaxFiles <= 1 {
		if err := os.Remove(base); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("logdriver: rotate: %w", err)
		}
		return w.open()
	}
	for i := w.cfg.MaxFiles - 2; i >= 0; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("logdriver: rotate: %w", err)
		}
	}
	return w.open()
}

// Close closes the current file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
