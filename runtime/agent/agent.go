package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/runtime/executor"
)

// API is what the agent uses of the managers, for its own node: the node is the one
// of the agent's certificate, never one it names.
type API interface {
	// NodeTasks returns the tasks assigned to the node (blocking query).
	NodeTasks(ctx context.Context, q api.Query) ([]*model.Task, api.QueryMeta, error)
	// TaskRuntime returns what a task of the node needs to run.
	TaskRuntime(ctx context.Context, taskID string) (*api.TaskRuntime, error)
	// ReportTaskStatus reports on tasks of the node.
	ReportTaskStatus(ctx context.Context, reports []api.TaskStatusReport) error
	// NodeNetworkView returns the node's view of the cluster's networks (blocking
	// query).
	NodeNetworkView(ctx context.Context, q api.Query) (*api.NetworkView, api.QueryMeta, error)
}

// Executor runs containers (runtime/executor on containerd).
type Executor interface {
	EnsureImage(ctx context.Context, ref string) error
	Create(ctx context.Context, c executor.Container) error
	Start(ctx context.Context, taskID string) error
	Stop(ctx context.Context, taskID string) error
	Remove(ctx context.Context, taskID string) error
	List(ctx context.Context) ([]executor.Info, error)
	Exits(ctx context.Context) (<-chan executor.Exit, error)
	Exec(ctx context.Context, taskID string, argv []string) (int, []byte, error)
	RemoveLogs(taskID string) error
	ReleaseVolumes(ctx context.Context) error
}

// Network gives tasks their network namespaces (netstack).
type Network interface {
	Setup(ctx context.Context, taskID, hostname string, atts []netstack.Attachment, ports []netstack.PortMapping, opts ...netstack.SetupOption) (netstack.Sandbox, error)
	// Sandbox is where Setup makes the task's sandbox.
	Sandbox(taskID string) netstack.Sandbox
	Teardown(ctx context.Context, taskID string) error
	Sandboxes(ctx context.Context) ([]string, error)
	// Apply programs the node's share of the cluster's networks (the overlay's
	// forwarding entries, DNS, VIPs, the routing mesh) from a whole view.
	Apply(ctx context.Context, v netstack.View) error
}

// Config is what an Agent needs. Zero fields get defaults.
type Config struct {
	API      API
	Executor Executor
	Network  Network
	NodeID   string
	// RunDir holds each task's secret and config tmpfs, under RunDir/<task ID>:
	// outside the node's data dir, so that nothing of a secret is ever under the
	// node's persistent state, not even a mount point's content.
	RunDir string
	Logger *slog.Logger
	// Metrics counts starts, failures and their timings (nil: not counted).
	Metrics *Metrics
	// Now is the clock (time.Now).
	Now func() time.Time
	// Wait bounds one blocking query (30s).
	Wait time.Duration
	// ReportDelay is how long reports gather before they are sent (50ms): a few
	// containers starting together cost one raft entry, not one each.
	ReportDelay time.Duration
	// NetworkRetry is the first delay before the network watch or a failed
	// Apply is tried again (1s); it doubles up to 30s.
	NetworkRetry time.Duration
	// DrainDelay is how long a running task on a network keeps running after
	// the managers asked it to stop, before its stop signal (2s): the time for
	// the other nodes to take it out of DNS and the VIPs (see drain). At 5,000
	// nodes with 500 on the task's network (bench/netview, BENCHMARKS.md), the
	// nodes on it had the view without the task 0.3 - 1.1 s after a scale-down
	// (p50; p99 0.7 - 2.2 s), on 2 cores that also ran the 5,000 simulated
	// agents decoding their views; the manager's own part of a change is about
	// 0.2 s of CPU. 2 s covers the medians and most p99s measured there, and the
	// manager's part many times over; it costs a rolling update 2 s per task.
	DrainDelay time.Duration
}

// Agent is the node agent.
type Agent struct {
	cfg Config
	rep *reporter

	mu      sync.Mutex
	runners map[string]*runner // by task ID
	wg      sync.WaitGroup
}

// New returns an agent; Run runs it.
func New(cfg Config) (*Agent, error) {
	switch {
	case cfg.API == nil:
		return nil, errors.New("agent: no API")
	case cfg.Executor == nil:
		return nil, errors.New("agent: no executor")
	case cfg.RunDir == "":
		return nil, errors.New("agent: no run dir")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.ReportDelay <= 0 {
		cfg.ReportDelay = 50 * time.Millisecond
	}
	if cfg.NetworkRetry <= 0 {
		cfg.NetworkRetry = time.Second
	}
	if cfg.DrainDelay <= 0 {
		cfg.DrainDelay = 2 * time.Second
	}
	a := &Agent{cfg: cfg, runners: map[string]*runner{}}
	a.rep = newReporter(cfg.API, cfg.ReportDelay, cfg.Logger)
	return a, nil
}

// Run runs the agent until ctx is done. Containers keep running when it returns: a
// restarted agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.wg.Wait()
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.rep.run(ctx)
	}()
	adopted, err := a.subscribe(ctx)
	if err != nil {
		return err
	}
	a.adopt(ctx, adopted)
	if a.cfg.Network != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.watchNetwork(ctx)
		}()
	}

	var index uint64
	for ctx.Err() == nil {
		tasks, meta, err := a.cfg.API.NodeTasks(ctx, api.Query{Index: index, Wait: a.cfg.Wait})
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			a.cfg.Logger.Warn("agent: watching the node's tasks failed; retrying", "error", err)
			index = 0
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		index = meta.Index
		a.converge(ctx, tasks)
	}
	return nil
}

// subscribe starts routing the executor's exit events to runners, and lists the
// containers there are now. The subscription comes first, so that no exit falls
// between the listing and the events. A broken event stream is resubscribed, and a
// fresh listing reports the exits missed meanwhile.
func (a *Agent) subscribe(ctx context.Context) ([]executor.Info, error) {
	exits, err := a.cfg.Executor.Exits(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent: subscribe to container exits: %w", err)
	}
	list, err := a.cfg.Executor.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent: list containers: %w", err)
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			for ex := range exits {
				a.exited(ex)
			}
			for ctx.Err() == nil {
				if !sleep(ctx, time.Second) {
					return
				}
				if exits, err = a.cfg.Executor.Exits(ctx); err == nil {
					break
				}
				a.cfg.Logger.Warn("agent: container exit events lost; retrying", "error", err)
			}
			if ctx.Err() != nil {
				return
			}
			if list, err := a.cfg.Executor.List(ctx); err == nil {
				for _, c := range list {
					if c.State == executor.StateStopped {
						a.exited(executor.Exit{TaskID: c.TaskID, Code: c.ExitCode, At: c.ExitedAt})
					}
				}
			}
		}
	}()
	return list, nil
}

// adopt gives every container found at start a runner that knows it, before the
// first look at the tasks decides what to do with it.
func (a *Agent) adopt(ctx context.Context, list []executor.Info) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range list {
		info := c
		r := a.newRunner(ctx, c.TaskID)
		r.adopted = &info
		a.cfg.Logger.Info("agent: adopting container", "task", c.TaskID, "state", c.State)
	}
}

// converge hands every task of the node to its runner, and stops the runners of
// tasks no longer assigned here.
func (a *Agent) converge(ctx context.Context, tasks []*model.Task) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if t.Status.State.Before(model.TaskAssigned) {
			continue
		}
		seen[t.ID] = true
		r := a.runners[t.ID]
		if r == nil {
			if t.Status.State.Terminal() {
				// Nothing of it on this node (the agent removed it before a
				// restart): there is nothing to do.
				continue
			}
			r = a.newRunner(ctx, t.ID)
		}
		r.update(t)
	}
	for id, r := range a.runners {
		if !seen[id] {
			r.forget()
		}
	}
}

func (a *Agent) newRunner(ctx context.Context, id string) *runner {
	r := newRunner(a, id)
	a.runners[id] = r
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		r.run(ctx)
		a.mu.Lock()
		if a.runners[id] == r {
			delete(a.runners, id)
		}
		a.mu.Unlock()
	}()
	return r
}

func (a *Agent) exited(ex executor.Exit) {
	a.mu.Lock()
	r := a.runners[ex.TaskID]
	a.mu.Unlock()
	if r != nil {
		r.exited(ex)
	}
}

// taskDir is where a task's secret and config files live on the node.
func (a *Agent) taskDir(id string) string { return filepath.Join(a.cfg.RunDir, id) }

// Cleanup removes every container, sandbox and file the agent made: what `berth
// leave` does after the agent stopped.
func Cleanup(ctx context.Context, ex Executor, nw Network, runDir string) error {
	var errs []error
	list, err := ex.List(ctx)
	if err != nil {
		return fmt.Errorf("agent: list containers: %w", err)
	}
	for _, c := range list {
		if err := ex.Stop(ctx, c.TaskID); err != nil {
			errs = append(errs, err)
		}
		if err := ex.Remove(ctx, c.TaskID); err != nil {
			errs = append(errs, err)
		}
		if err := ex.RemoveLogs(c.TaskID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ex.ReleaseVolumes(ctx); err != nil {
		errs = append(errs, err)
	}
	if nw != nil {
		ids, err := nw.Sandboxes(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range ids {
			if err := nw.Teardown(ctx, id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(runDir, "*"))
	for _, d := range dirs {
		if err := removeTaskFiles(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(runDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
