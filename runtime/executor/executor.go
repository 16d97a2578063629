// Package executor is berth's one facade over containerd: images, containers, tasks,
// mounts, exits, exec and logs. Nothing else in berth imports the containerd client.
//
// A berth task is one containerd container in the executor's namespace (default "berth"),
// whose id is the task id and whose labels (io.berth.task, .task-name, .stack, .service,
// .spec-hash) let a restarted agent find and re-adopt it (List). Node-local state lives
// under the root directory:
//
//	<root>/volumes/<name>/_data             named volumes (<stack>_<volume>); kept
//	<root>/anonymous/<task id>/<n>          anonymous volumes; removed with the task
//	<root>/logs/<task id>/container.log*    task output; kept until RemoveLogs. The
//	                                        folder is made by the task's first start,
//	                                        and marks a container as started once
//
// Methods take the context first and return errors that wrap ErrNotFound, ErrInvalid,
// ErrNotRunning or ErrUnavailable where a caller would branch on them (errors.Is).
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/berthd/berth/runtime/logdriver"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"golang.org/x/sync/singleflight"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no such container, task or image.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request or the service spec cannot be run; the message names the
	// field.
	ErrInvalid = errors.New("invalid")
	// ErrNotRunning: the operation needs a running task.
	ErrNotRunning = errors.New("task is not running")
	// ErrUnavailable: containerd does not answer.
	ErrUnavailable = errors.New("containerd unavailable")
	// ErrInitUnavailable: the service asks for init and no static init binary was found.
	ErrInitUnavailable = errors.New("no init binary available")
)

// Defaults.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "berth"
	DefaultRoot        = "/var/lib/berth"
	DefaultSnapshotter = "overlayfs"
)

// Executor runs berth tasks on one containerd. It is safe for concurrent use.
type Executor struct {
	client      *client.Client
	ns          string
	root        string
	snapshotter string
	log         *slog.Logger

	registryConfig string
	logDriver      string
	logCfg         logdriver.Config
	initBinary     string

	pulls singleflight.Group
	// unpacked are the images (by target digest) seen unpacked for the snapshotter.
	unpacked sync.Map
	// fresh holds the containers (by task ID) this Executor created and has not
	// started yet: Start knows they have no task, and asks containerd nothing
	// before making one.
	fresh sync.Map
	// initOnce finds the init binary the first time a service asks for one.
	initOnce sync.Once
	initPath string
	initErr  error
	// volumeMu orders the mounts and unmounts of volumes with driver_opts with the
	// creation and removal of the containers that count as their users.
	volumeMu sync.Mutex
}

type options struct {
	address, namespace, root, snapshotter string
	logger                                *slog.Logger
	registryConfig                        string
	logDriver                             string
	logCfg                                logdriver.Config
	initBinary                            string
}

// Option configures New.
type Option func(*options)

// WithAddress sets containerd's socket (default DefaultAddress).
func WithAddress(addr string) Option { return func(o *options) { o.address = addr } }

// WithNamespace sets the containerd namespace of berth's containers (default "berth").
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithRoot sets the node's data directory (default /var/lib/berth), under which volumes
// and logs live.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithSnapshotter sets the snapshotter that images are unpacked for and containers use
// (default overlayfs).
func WithSnapshotter(name string) Option { return func(o *options) { o.snapshotter = name } }

// WithRegistryConfig names a docker config.json that gives registry credentials for
// pulls: "auths", and the credential helpers of "credHelpers" and "credsStore" (run as
// docker-credential-<name> from PATH). It is read at each pull, so new credentials
// apply without a restart.
func WithRegistryConfig(path string) Option { return func(o *options) { o.registryConfig = path } }

// WithLogDriver sets the binary that containerd's shim runs to write each task's output
// (see package logdriver): usually berth's own executable, whose main calls
// logdriver.Main when logdriver.Invoked(os.Args[1:]). It gets no positional arguments:
// the shim passes only key/value pairs, in no fixed order. Without a log driver, task
// output is discarded and Logs finds nothing.
func WithLogDriver(binary string) Option { return func(o *options) { o.logDriver = binary } }

// WithLogRotation sets the size at which a task's log file is rotated and how many files
// are kept in all (default 10 MiB and 3): the node's, which a service's logging:
// max-size and max-file override for its tasks.
func WithLogRotation(maxSize int64, maxFiles int) Option {
	return func(o *options) { o.logCfg.MaxSize, o.logCfg.MaxFiles = maxSize, maxFiles }
}

// WithInitBinary sets the statically linked init (tini-static, docker-init) that services
// with `init: true` run as their pid 1. By default tini-static or docker-init is looked up
// on PATH.
func WithInitBinary(path string) Option { return func(o *options) { o.initBinary = path } }

// New makes an executor. It does not contact containerd (the client connects lazily):
// call Ping to know whether containerd answers.
func New(ctx context.Context, opts ...Option) (*Executor, error) {
	o := options{
		address:     DefaultAddress,
		namespace:   DefaultNamespace,
		root:        DefaultRoot,
		snapshotter: DefaultSnapshotter,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if err := identifiers.Validate(o.namespace); err != nil {
		return nil, fmt.Errorf("executor: namespace %q: %w: %v", o.namespace, ErrInvalid, err)
	}
	if !filepath.IsAbs(o.root) {
		return nil, fmt.Errorf("executor: root %q: %w: must be an absolute path", o.root, ErrInvalid)
	}
	if o.logDriver != "" {
		if !filepath.IsAbs(o.logDriver) {
			return nil, fmt.Errorf("executor: log driver %q: %w: must be an absolute path", o.logDriver, ErrInvalid)
		}
		if _, err := os.Stat(o.logDriver); err != nil {
			return nil, fmt.Errorf("executor: log driver: %w: %v", ErrInvalid, err)
		}
	}
	for _, d := range []string{o.root, filepath.Join(o.root, "volumes"), filepath.Join(o.root, "logs"), filepath.Join(o.root, "anonymous")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	c, err := client.New(o.address, client.WithDefaultNamespace(o.namespace))
	if err != nil {
		return nil, fmt.Errorf("executor: containerd at %s: %w: %v", o.address, ErrUnavailable, err)
	}
	e := &Executor{
		client:         c,
		ns:             o.namespace,
		root:           o.root,
		snapshotter:    o.snapshotter,
		log:            o.logger.With("component", "executor", "namespace", o.namespace),
		registryConfig: o.registryConfig,
		logDriver:      o.logDriver,
		logCfg:         o.logCfg,
		initBinary:     o.initBinary,
	}
	if e.logDriver == "" {
		e.log.Warn("no log driver configured: task output is discarded")
	}
	return e, nil
}

// Ping checks that containerd answers. containerd's dialer keeps retrying a socket that
// does not exist until ctx ends (or 10s), so give ctx the patience you want.
func (e *Executor) Ping(ctx context.Context) error {
	if _, err := e.client.Version(e.nsctx(ctx)); err != nil {
		return fmt.Errorf("executor: ping containerd: %w: %v", ErrUnavailable, err)
	}
	return nil
}

// Close releases the connection to containerd. Running tasks are not touched.
func (e *Executor) Close() error { return e.client.Close() }

func (e *Executor) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.ns)
}

func (e *Executor) logDir(taskID string) string { return filepath.Join(e.root, "logs", taskID) }

func (e *Executor) anonymousDir(taskID string) string {
	return filepath.Join(e.root, "anonymous", taskID)
}

// VolumeDir is the host directory of a node-local named volume (e.g. "web_data").
func (e *Executor) VolumeDir(name string) string {
	return filepath.Join(e.root, "volumes", name, "_data")
}

// wrap adds context to a containerd error and maps containerd's error kinds onto the
// executor's sentinels.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("executor: %s: %w: %v", msg, ErrNotFound, err)
	case errdefs.IsInvalidArgument(err):
		return fmt.Errorf("executor: %s: %w: %v", msg, ErrInvalid, err)
	case errdefs.IsUnavailable(err):
		return fmt.Errorf("executor: %s: %w: %v", msg, ErrUnavailable, err)
	}
	return fmt.Errorf("executor: %s: %w", msg, err)
}

var taskIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// checkTaskID refuses ids that are not containerd identifiers or that could escape the
// log and volume directories they name.
func checkTaskID(id string) error {
	if !taskIDPattern.MatchString(id) || identifiers.Validate(id) != nil {
		return fmt.Errorf("executor: task id %q: %w: want letters, digits, '_', '.', '-', at most 76", id, ErrInvalid)
	}
	return nil
}

// cappedBuffer keeps the first max bytes written and drops the rest, reporting success so
// that the writer never blocks or fails on chatty output.
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
