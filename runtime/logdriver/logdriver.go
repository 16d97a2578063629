// Package logdriver is berth's container log driver and the reader of what it writes.
//
// containerd's shim starts the driver for each task through a binary:// log URI
// (cio.BinaryIO): the driver reads the container's stdout and stderr from file descriptors
// 3 and 4, says it is ready by writing to and closing descriptor 5, and writes every line
// as one JSON object to <dir>/container.log, rotating it by size. Because the shim, not
// berth, is its parent, logs keep being written while the berth daemon restarts.
//
// The shim passes the URI's query as argv in pairs ("key value"), in no fixed order, and
// an environment of only CONTAINER_ID and CONTAINER_NAMESPACE. So the driver is recognised
// by a marker pair anywhere in argv (see Invoked), not by a subcommand name:
//
//	func main() {
//		if logdriver.Invoked(os.Args[1:]) {
//			os.Exit(logdriver.Main())
//		}
//		...
//	}
package logdriver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// BinaryName is the dedicated driver's executable (cmd/berth-logdriver), which the
// daemon looks for beside its own.
const BinaryName = "berth-logdriver"

// Find returns the driver for a daemon whose executable is exe: BinaryName in exe's
// directory when it is there, else exe itself, which runs Main when Invoked. The shim
// starts a driver per container, and berth's own executable takes some 15 ms of CPU
// to start, the dedicated one about a millisecond.
func Find(exe string) (path string, dedicated bool) {
	p := filepath.Join(filepath.Dir(exe), BinaryName)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p, true
	}
	return exe, false
}

// Argument keys of the driver's command line.
const (
	ArgMarker   = "--berth-log-driver"
	ArgDir      = "--dir"
	ArgMaxSize  = "--max-size"
	ArgMaxFiles = "--max-files"
)

// markerValue versions the argument set, so that a future berth can tell an old driver's
// command line from its own.
const markerValue = "1"

// Defaults for a task's log files: 10 MiB each, the current one and two rotated ones.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 3
)

// maxLine is the longest line written as one record; longer ones are split into records
// marked partial, so one runaway line cannot hold the driver's memory.
const maxLine = 16 << 10

// drainAfterTerm bounds how long the driver keeps reading after the shim's SIGTERM: the
// shim sends it when the task is deleted, after the container is gone, so the pipes are
// at their end or nearly.
const drainAfterTerm = 5 * time.Second

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Config is what a driver process is told through its arguments.
type Config struct {
	Dir      string
	MaxSize  int64
	MaxFiles int
}

// Args is the query of the binary:// URI that starts a driver with cfg; zero sizes take
// the defaults.
func Args(cfg Config) map[string]string {
	cfg = cfg.withDefaults()
	return map[string]string{
		ArgMarker:   markerValue,
		ArgDir:      cfg.Dir,
		ArgMaxSize:  strconv.FormatInt(cfg.MaxSize, 10),
		ArgMaxFiles: strconv.Itoa(cfg.MaxFiles),
	}
}

func (c Config) withDefaults() Config {
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxFiles <= 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	return c
}

// Invoked tells whether args (os.Args[1:]) are a log driver's command line.
func Invoked(args []string) bool {
	_, ok := pairs(args)[ArgMarker]
	return ok
}

func pairs(args []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		m[args[i]] = args[i+1]
	}
	return m
}

// ParseArgs reads a driver's command line.
func ParseArgs(args []string) (Config, error) {
	p := pairs(args)
	if p[ArgMarker] != markerValue {
		return Config{}, fmt.Errorf("logdriver: %s %q: want %q", ArgMarker, p[ArgMarker], markerValue)
	}
	cfg := Config{Dir: p[ArgDir]}
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return Config{}, fmt.Errorf("logdriver: %s %q must be an absolute path", ArgDir, cfg.Dir)
	}
	var err error
	if v := p[ArgMaxSize]; v != "" {
		if cfg.MaxSize, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Config{}, fmt.Errorf("logdriver: %s: %w", ArgMaxSize, err)
		}
	}
	if v := p[ArgMaxFiles]; v != "" {
		if cfg.MaxFiles, err = strconv.Atoi(v); err != nil {
			return Config{}, fmt.Errorf("logdriver: %s: %w", ArgMaxFiles, err)
		}
	}
	return cfg.withDefaults(), nil
}

// Main runs the driver as the shim starts it and returns the process exit code. Errors go
// to stderr, which the shim discards; the driver then still drains the container's
// output, because a container writing to a pipe that nobody reads would block or die.
func Main() int {
	for fd := 3; fd <= 5; fd++ {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) != nil {
			fmt.Fprintln(os.Stderr, "logdriver: descriptors 3, 4 and 5 are not open: containerd's shim runs this, for berth's tasks")
			return 2
		}
	}
	stdout := os.NewFile(3, "container-stdout")
	stderr := os.NewFile(4, "container-stderr")
	ready := os.NewFile(5, "ready")

	var sink lineWriter = discard{}
	cfg, err := ParseArgs(os.Args[1:])
	if err == nil {
		var w *Writer
		if w, err = NewWriter(cfg); err == nil {
			defer w.Close()
			sink = w
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}

	// Until the container is gone the shim may signal us; keep reading until the pipes
	// end, but not forever.
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-terms
		time.Sleep(drainAfterTerm)
		os.Exit(0)
	}()

	if _, werr := ready.Write([]byte{0}); werr != nil {
		fmt.Fprintln(os.Stderr, "logdriver: ready:", werr)
	}
	ready.Close()

	var wg sync.WaitGroup
	for _, s := range []struct {
		r    io.Reader
		name string
	}{{stdout, Stdout}, {stderr, Stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Copy(sink, s.name, s.r); err != nil {
				fmt.Fprintln(os.Stderr, "logdriver:", s.name+":", err)
			}
		}()
	}
	wg.Wait()
	if err != nil {
		return 1
	}
	return 0
}

type lineWriter interface {
	WriteLine(stream string, t time.Time, line []byte, partial bool) error
}

type discard struct{}

func (discard) WriteLine(string, time.Time, []byte, bool) error { return nil }

// Copy reads r to its end and writes each line of it to w as a record of stream. A write
// error does not stop the reading, so that the container never blocks on its output; the
// first one is returned at the end.
func Copy(w lineWriter, stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLine)
	var firstErr error
	for {
		line, err := br.ReadSlice('\n')
		partial := errors.Is(err, bufio.ErrBufferFull)
		if n := len(line); n > 0 {
			if line[n-1] == '\n' {
				line = line[:n-1]
			}
			if werr := w.WriteLine(stream, time.Now().UTC(), line, partial); werr != nil && firstErr == nil {
				firstErr = werr
			}
		}
		if err != nil && !partial {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return firstErr
			}
			if firstErr == nil {
				firstErr = err
			}
			return firstErr
		}
	}
}
