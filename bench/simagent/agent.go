// Package simagent simulates berth agents for tests and benchmarks. An Agent plays
// one node through the same API a real agent uses (its tasks by blocking query,
// batched status reports, heartbeats): it "starts" the tasks assigned to its node by reporting them running, and stops the
// ones told to stop. Tests can make tasks fail on start or exit later. A Fleet plays
// thousands of nodes at once in process, from the state's change feed, for the C1M
// benchmark. `berth daemon --sim-agent` runs an Agent in place of the real one in a
// binary built with -tags simagent (internal/clustertest builds that one), so that
// berth's own binary does not link this package.
package simagent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// API is what an agent uses of the managers, for its own node: the node is the one of
// the agent's certificate, never one it names.
type API interface {
	// Heartbeat tells the leader the node is alive.
	Heartbeat(ctx context.Context) error
	// NodeTasks returns the tasks assigned to the node (blocking query).
	NodeTasks(ctx context.Context, q api.Query) ([]*model.Task, api.QueryMeta, error)
	// ReportTaskStatus reports on tasks of the node.
	ReportTaskStatus(ctx context.Context, reports []api.TaskStatusReport) error
}

// Outcome is what happens to a task the agent starts: it runs (the zero Outcome), or
// it exits at once with ExitCode (0 completes it, anything else fails it).
type Outcome struct {
	Exit     bool
	ExitCode int
}

// Config is what an Agent needs. Zero fields get defaults.
type Config struct {
	API    API
	NodeID string
	Logger *slog.Logger
	// Now is the clock (time.Now), for reports' timestamps and NotBefore.
	Now func() time.Time
	// HeartbeatPeriod: 0 sends no heartbeats (the test manages node status).
	HeartbeatPeriod time.Duration
	// Start decides the outcome of starting a task; nil runs every task (jobs run
	// and complete).
	Start func(t *model.Task) Outcome
	// Prepare, when set, says whether a task can be prepared (its image pulled):
	// an error rejects the task with its text as soon as the node has it, before
	// its NotBefore, as the real agent does.
	Prepare func(t *model.Task) error
	// Wait bounds one blocking query (30s).
	Wait time.Duration
}

// Agent is one simulated node agent.
type Agent struct {
	cfg  Config
	kick chan struct{}

	mu    sync.Mutex
	exits map[string]int // task ID -> exit code, for running tasks told to exit
}

// New returns an agent; Run runs it.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	return &Agent{cfg: cfg, kick: make(chan struct{}, 1), exits: map[string]int{}}
}

// Exit makes a running task exit with code (0 completes it, others fail it), as if
// its container had stopped on its own.
func (a *Agent) Exit(taskID string, code int) {
	a.mu.Lock()
	a.exits[taskID] = code
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.HeartbeatPeriod > 0 {
		go a.heartbeats(ctx)
	}
	var index uint64
	for ctx.Err() == nil {
		wait := a.cfg.Wait
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			select {
			case <-a.kick:
				cancel()
			case <-done:
			}
		}()
		tasks, meta, err := a.cfg.API.NodeTasks(qctx, api.Query{Index: index, Wait: wait})
		close(done)
		kicked := qctx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if kicked {
			// Ask again at once: something changed on the node itself.
			index = 0
			continue
		}
		if err != nil {
			a.cfg.Logger.Debug("simulated agent: watch failed", "node", a.cfg.NodeID, "error", err)
			index = 0
			if !sleep(ctx, 200*time.Millisecond) {
				return nil
			}
			continue
		}
		index = meta.Index
		reports, next := a.converge(tasks)
		if len(reports) > 0 {
			if err := a.cfg.API.ReportTaskStatus(ctx, reports); err != nil {
				a.cfg.Logger.Debug("simulated agent: report failed", "node", a.cfg.NodeID, "error", err)
				index = 0
				if !sleep(ctx, 200*time.Millisecond) {
					return nil
				}
			}
			continue
		}
		if !next.IsZero() {
			// A task waits for its restart delay: look again when it ends.
			go func(d time.Duration) {
				if sleep(ctx, d) {
					select {
					case a.kick <- struct{}{}:
					default:
					}
				}
			}(max(next.Sub(a.cfg.Now()), time.Millisecond))
		}
	}
	return nil
}

// converge decides the reports for the node's tasks, and when to look again for tasks
// waiting for their NotBefore.
func (a *Agent) converge(tasks []*model.Task) (reports []api.TaskStatusReport, next time.Time) {
	now := a.cfg.Now().UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range tasks {
		st := t.Status.State
		if st.Before(model.TaskAssigned) || st.Terminal() {
			delete(a.exits, t.ID)
			continue
		}
		report := func(s model.TaskStatus) {
			s.Timestamp = now
			reports = append(reports, api.TaskStatusReport{TaskID: t.ID, Status: s})
		}
		switch {
		case t.DesiredState != model.TaskRunning && t.DesiredState != model.TaskComplete:
			report(model.TaskStatus{State: model.TaskShutdown, Message: "shutdown"})
		case st == model.TaskRunning:
			if code, ok := a.exits[t.ID]; ok {
				delete(a.exits, t.ID)
				report(exited(code))
			}
		case a.rejects(t) != nil:
			report(model.TaskStatus{State: model.TaskRejected, Message: "preparing", Err: a.rejects(t).Error()})
		case now.Before(t.NotBefore):
			if next.IsZero() || t.NotBefore.Before(next) {
				next = t.NotBefore
			}
		default:
			var out Outcome
			if a.cfg.Start != nil {
				out = a.cfg.Start(t)
			}
			switch {
			case out.Exit:
				report(exited(out.ExitCode))
			case t.DesiredState == model.TaskComplete:
				report(exited(0))
			default:
				report(model.TaskStatus{State: model.TaskRunning, Message: "started"})
			}
		}
	}
	return reports, next
}

// rejects is why t cannot be prepared, or nil; tasks already started are past that.
func (a *Agent) rejects(t *model.Task) error {
	if a.cfg.Prepare == nil || !t.Status.State.Before(model.TaskStarting) {
		return nil
	}
	return a.cfg.Prepare(t)
}

// exited is the status of a task whose container exited with code, in Swarm's words.
func exited(code int) model.TaskStatus {
	if code == 0 {
		return model.TaskStatus{State: model.TaskComplete, Message: "finished"}
	}
	return model.TaskStatus{State: model.TaskFailed, Message: "started",
		Err: fmt.Sprintf("task: non-zero exit (%d)", code), ExitCode: code}
}

func (a *Agent) heartbeats(ctx context.Context) {
	for {
		if err := a.cfg.API.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			a.cfg.Logger.Debug("simulated agent: heartbeat failed", "node", a.cfg.NodeID, "error", err)
		}
		if !sleep(ctx, a.cfg.HeartbeatPeriod) {
			return
		}
	}
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
