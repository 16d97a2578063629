// Package clustertest runs real berth daemons for process tests and benchmarks: it
// builds the binary, starts daemons on 127.0.0.1 with their own data dirs, sockets
// and logs, drives them with the real CLI, and kills them. Every wait is bounded.
package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// Build compiles cmd/berth, and the log driver its daemon finds beside it, into dir
// and returns berth's path. The binary has the simagent build tag: its daemons take
// --sim-agent, which process tests and benchmarks use for nodes that run nothing.
func Build(ctx context.Context, dir string) (string, error) {
	return buildIn(ctx, "", dir)
}

// buildIn is Build of the module in src ("": the current directory's).
func buildIn(ctx context.Context, src, dir string) (string, error) {
	bin := filepath.Join(dir, "berth")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "simagent", "-o", dir+string(filepath.Separator),
		"github.com/berthd/berth/cmd/berth", "github.com/berthd/berth/cmd/berth-logdriver")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build berth: %w\n%s", err, out)
	}
	return bin, nil
}

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	var (
		ports []int
		lns   []net.Listener
	)
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Daemon is one `berth daemon` process and everything it owns.
type Daemon struct {
	Name    string
	Bin     string
	DataDir string
	Socket  string
	Addr    string // 127.0.0.1:port
	LogPath string
	// Args are extra daemon flags (test tuning).
	Args []string
	// Wrap runs the daemon through another program, argv before berth's own, e.g.
	// nsenter --net=PATH to start it in a node's network namespace.
	Wrap []string
	// Detach lets the daemon outlive the process that started it (its own session,
	// no death signal): a lab that a person starts and stops with two commands.
	Detach bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	last   *os.ProcessState
}

// NewDaemon lays out a daemon under root: root/<name>/data, root/<name>.sock,
// root/<name>.log. Nothing runs until Start.
func NewDaemon(bin, root, name string, port int, args ...string) *Daemon {
	return &Daemon{
		Name:    name,
		Bin:     bin,
		DataDir: filepath.Join(root, name, "data"),
		Socket:  filepath.Join(root, name+".sock"),
		Addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		LogPath: filepath.Join(root, name+".log"),
		Args:    args,
	}
}

// Host is the daemon's -H value.
func (d *Daemon) Host() string { return "unix://" + d.Socket }

// Client is an API client on the daemon's socket.
func (d *Daemon) Client() *api.Client {
	c, err := api.New(d.Host())
	if err != nil {
		panic(err) // the host is always well formed
	}
	return c
}

// forkThread runs the functions sent to it on one OS thread that never exits: the
// process's, not a test's, so it is made once.
var forkThread = sync.OnceValue(func() chan<- func() {
	ch := make(chan func())
	go func() {
		// Never unlocked: the thread lives as long as the process.
		runtime.LockOSThread()
		for f := range ch {
			f()
		}
	}()
	return ch
})

// startFromLastingThread starts cmd from forkThread. The kernel sends a child its
// Pdeathsig when the thread that forked it exits, not the process; a goroutine that
// locked its thread and returned without unlocking it (a namespace entered for a
// moment, osthread.Throwaway) makes the runtime end that thread, which would kill
// every daemon forked from it.
func startFromLastingThread(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	forkThread() <- func() { errc <- cmd.Start() }
	return <-errc
}

// Start runs the daemon and waits (up to 15s) until its socket answers.
func (d *Daemon) Start(ctx context.Context) error {
	d.mu.Lock()
	if d.cmd != nil {
		d.mu.Unlock()
		return fmt.Errorf("%s is already running", d.Name)
	}
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	args := append([]string{"daemon", "--data-dir", d.DataDir, "--socket", d.Socket,
		"--listen-addr", d.Addr, "--hostname", d.Name}, d.Args...)
	argv := append(append(slices.Clip(d.Wrap), d.Bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The daemon dies with the test process, even when that is killed, unless it
	// is meant to outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if d.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := startFromLastingThread(cmd); err != nil {
		logf.Close()
		d.mu.Unlock()
		return fmt.Errorf("start %s: %w", d.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()

	c := d.Client()
	err = Eventually(ctx, 15*time.Second, func() error {
		select {
		case <-exited:
			return Permanent(fmt.Errorf("%s exited during start:\n%s", d.Name, d.LogTail(20)))
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := c.Info(cctx)
		return err
	})
	if err != nil {
		_ = d.Kill()
		return fmt.Errorf("%s did not come up: %w", d.Name, err)
	}
	return nil
}

// Running reports whether the process runs.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Pid is the running process's ID, 0 when it does not run.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Kill sends SIGKILL (kill -9) and waits for the process to go.
func (d *Daemon) Kill() error { return d.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits up to 15s for a clean exit, then kills.
func (d *Daemon) Stop() error {
	if err := d.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		_ = d.Kill()
		return err
	}
	return nil
}

func (d *Daemon) signal(sig syscall.Signal, wait time.Duration) error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		return fmt.Errorf("%s did not exit within %s of %s", d.Name, wait, sig)
	}
	d.mu.Lock()
	d.cmd, d.last = nil, cmd.ProcessState
	d.mu.Unlock()
	return nil
}

// ExitCode is the exit status of the last run stopped by Stop or Kill (-1 for a
// signal, or if none was).
func (d *Daemon) ExitCode() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		return -1
	}
	return d.last.ExitCode()
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Result is one CLI run.
type Result struct {
	Args           []string
	Code           int
	Stdout, Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("$ berth %s\n(exit %d)\n%s%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Err is nil when the command succeeded.
func (r Result) Err() error {
	if r.Code == 0 {
		return nil
	}
	return fmt.Errorf("berth %s: exit %d: %s", strings.Join(r.Args, " "), r.Code, strings.TrimSpace(r.Stderr))
}

// CLI runs `berth -H <daemon> args...` with stdin, bounded by 60s.
func (d *Daemon) CLI(ctx context.Context, stdin string, args ...string) Result {
	return RunCLI(ctx, d.Binary(), stdin, append([]string{"-H", d.Host()}, args...)...)
}

// Binary is the berth the daemon runs (or will at its next Start), and its CLI.
func (d *Daemon) Binary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Bin
}

// SetBinary makes the daemon's next Start, and its CLI from now on, run bin: another
// build of berth, for upgrade tests.
func (d *Daemon) SetBinary(bin string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Bin = bin
}

// RunCLI runs the berth binary.
func RunCLI(ctx context.Context, bin, stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			stderr.WriteString(err.Error())
		}
	}
	return Result{Args: args, Code: code, Stdout: stdout.String(), Stderr: stderr.String()}
}

// permanent stops Eventually at once.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps an error that Eventually must not retry.
func Permanent(err error) error { return permanent{err} }

// Eventually calls fn every 100ms until it returns nil, returns a Permanent error, or
// d passes; then it returns fn's last error.
func Eventually(ctx context.Context, d time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ScanFiles reads every regular file under root and reports which contain any of
// needles (as raw bytes).
func ScanFiles(root string, needles map[string][]byte) (found map[string][]string, scanned int, err error) {
	found = map[string][]string{}
	err = filepath.WalkDir(root, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		scanned++
		for name, needle := range needles {
			if bytes.Contains(data, needle) {
				found[name] = append(found[name], path)
			}
		}
		return nil
	})
	return found, scanned, err
}

// StartManagers starts n daemons under root, inits a cluster on the first and joins
// the others as managers, waiting until every manager sees n raft voters.
func StartManagers(ctx context.Context, bin, root string, n int, args ...string) ([]*Daemon, error) {
	ports, err := FreePorts(n)
	if err != nil {
		return nil, err
	}
	var ds []*Daemon
	fail := func(err error) ([]*Daemon, error) {
		for _, d := range ds {
			_ = d.Kill()
		}
		return nil, err
	}
	for i := range n {
		d := NewDaemon(bin, root, fmt.Sprintf("manager-%d", i+1), ports[i], args...)
		ds = append(ds, d)
		if err := d.Start(ctx); err != nil {
			return fail(err)
		}
	}
	init, err := ds[0].Client().Init(ctx, api.InitRequest{})
	if err != nil {
		return fail(fmt.Errorf("init: %w", err))
	}
	for _, d := range ds[1:] {
		if _, err := d.Client().Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.ManagerToken}); err != nil {
			return fail(fmt.Errorf("join %s: %w", d.Name, err))
		}
	}
	for _, d := range ds {
		err := Eventually(ctx, 30*time.Second, func() error {
			info, err := d.Client().Info(ctx)
			if err != nil {
				return err
			}
			if info.Managers != n || info.Leader == nil {
				return fmt.Errorf("%s sees %d managers, leader %v", d.Name, info.Managers, info.Leader)
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	return ds, nil
}

// AllReady waits (up to a minute) until the manager behind c sees n nodes Ready.
func AllReady(ctx context.Context, c *api.Client, n int) error {
	return Eventually(ctx, time.Minute, func() error {
		nodes, _, err := c.Nodes(ctx, api.Query{})
		if err != nil {
			return err
		}
		ready := 0
		for _, nd := range nodes {
			if nd.Status.State == model.NodeReady {
				ready++
			}
		}
		if ready != n {
			return fmt.Errorf("%d of %d nodes ready", ready, n)
		}
		return nil
	})
}

// Leader returns the daemon that leads, as d sees it.
func Leader(ctx context.Context, ds []*Daemon, via *Daemon) (*Daemon, error) {
	info, err := via.Client().Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Leader == nil {
		return nil, errors.New("no leader")
	}
	for _, d := range ds {
		if d.Addr == info.Leader.Addr {
			return d, nil
		}
	}
	return nil, fmt.Errorf("leader %s is none of the daemons", info.Leader.Addr)
}
