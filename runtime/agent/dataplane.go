package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/runtime/executor"
)

// DataPlaneConfig is what a node's data plane needs.
type DataPlaneConfig struct {
	// DataDir is the node's data dir: volumes, logs and sandboxes live under it.
	DataDir string
	// RunDir holds the tasks' secret and config tmpfs mounts (default
	// /run/berth/<namespace>).
	RunDir string
	// Containerd is containerd's socket, Namespace the containerd namespace of
	// berth's containers and images (executor's defaults when empty).
	Containerd string
	Namespace  string
	// LogDriver is the absolute path of the binary the containerd shim runs as
	// the tasks' log driver: berth's own executable.
	LogDriver string
	// RegistryConfig is a docker config.json with registry credentials.
	RegistryConfig string
	Logger         *slog.Logger
	// Metrics counts what the node's agents do (nil: not counted).
	Metrics *Metrics
}

// DataPlane is a node's data plane: the executor on containerd, netstack and the
// agent that drives them. What berth's daemon runs on every node.
type DataPlane struct {
	cfg DataPlaneConfig
	ex  *executor.Executor
	nw  *netstack.Netstack
}

// NewDataPlane connects to containerd and prepares netstack. It fails when
// containerd does not answer, saying where it looked.
func NewDataPlane(ctx context.Context, cfg DataPlaneConfig) (*DataPlane, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = executor.DefaultNamespace
	}
	if cfg.RunDir == "" {
		cfg.RunDir = filepath.Join("/run/berth", cfg.Namespace)
	}
	opts := []executor.Option{executor.WithRoot(cfg.DataDir), executor.WithLogger(cfg.Logger)}
	if cfg.Containerd != "" {
		opts = append(opts, executor.WithAddress(cfg.Containerd))
	}
	opts = append(opts, executor.WithNamespace(cfg.Namespace))
	if cfg.LogDriver != "" {
		opts = append(opts, executor.WithLogDriver(cfg.LogDriver))
	}
	if cfg.RegistryConfig != "" {
		opts = append(opts, executor.WithRegistryConfig(cfg.RegistryConfig))
	}
	ex, err := executor.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	if err := ex.Ping(ctx); err != nil {
		ex.Close()
		return nil, err
	}
	nw, err := netstack.New(ctx, netstack.WithRoot(cfg.DataDir), netstack.WithLogger(cfg.Logger))
	if err != nil {
		ex.Close()
		return nil, fmt.Errorf("network: %w", err)
	}
	return &DataPlane{cfg: cfg, ex: ex, nw: nw}, nil
}

// Close stops netstack's relays of published ports over IPv6, which the next
// daemon starts again, and releases the connection to containerd. Containers keep
// running.
func (d *DataPlane) Close() error {
	d.nw.Close()
	return d.ex.Close()
}

// RunAgent runs the node's agent with the managers' API until ctx is done.
func (d *DataPlane) RunAgent(ctx context.Context, a API, nodeID string) error {
	ag, err := New(Config{API: a, Executor: d.ex, Network: d.nw, NodeID: nodeID, RunDir: d.cfg.RunDir,
		Logger: d.cfg.Logger, Metrics: d.cfg.Metrics})
	if err != nil {
		return err
	}
	return ag.Run(ctx)
}

// Cleanup removes every container, sandbox and task file of the node, and the
// networks' bridges and rules: what leaving the cluster leaves behind is the named
// volumes (the data, as Docker keeps it) and the images.
func (d *DataPlane) Cleanup(ctx context.Context) error {
	// An empty view takes what the cluster's networks gave the node itself, with
	// no task of its own: its ingress address and bridge, the routing mesh's rules.
	return errors.Join(Cleanup(ctx, d.ex, d.nw, d.cfg.RunDir), d.nw.Apply(ctx, netstack.View{}), d.nw.Prune(ctx))
}

// LoadImage imports an image archive.
func (d *DataPlane) LoadImage(ctx context.Context, r io.Reader) ([]string, error) {
	return d.ex.ImportImage(ctx, r)
}

// TaskLogs streams a task's logs from this node.
func (d *DataPlane) TaskLogs(ctx context.Context, taskID string, o api.LogOptions, w io.Writer) error {
	ro := executor.LogOptions{Tail: o.Tail, Follow: o.Follow, Timestamps: o.Timestamps, Since: o.Since, Until: o.Until,
		Stdout: o.Stream == "stdout", Stderr: o.Stream == "stderr"}
	err := d.ex.Logs(ctx, taskID, ro, w)
	if errors.Is(err, executor.ErrNotFound) || errors.Is(err, executor.ErrInvalid) {
		return fmt.Errorf("%w: %v", state.ErrNotFound, err)
	}
	return err
}
