package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/runtime/executor"
)

// runner owns one task on the node (see the package documentation). The watch loop
// and the exit router talk to it through update, forget and exited; everything else
// happens on its own goroutine.
type runner struct {
	a  *Agent
	id string
	// adopted is the container found when the agent started, nil otherwise.
	adopted *executor.Info

	mu     sync.Mutex
	task   *state.Task
	gone   bool
	wake   chan struct{}
	exitCh chan executor.Exit
	// stopCh is closed once the task no longer wants to run, to cancel a
	// preparation under way (an image pull can take minutes).
	stopCh     chan struct{}
	stopClosed bool

	// The rest belongs to the run goroutine.
	rt      *api.TaskRuntime
	created bool // the container exists
	started bool // it was started (it may have exited since)
	exit    *executor.Exit
	// exitReported and adoptChecked keep a wake-up from repeating work done once.
	exitReported bool
	adoptChecked bool
	rejected     bool // preparing or starting failed: the task is over for this node
	drained      bool // it waited out the drain delay before its stop
	stopped      bool
	removed      bool
	unhealthy    bool
	health       *healthState
	// onTheWay: the reporter counts this task as on its way to running.
	onTheWay bool
}

func newRunner(a *Agent, id string) *runner {
	return &runner{a: a, id: id, wake: make(chan struct{}, 1), exitCh: make(chan executor.Exit, 1),
		stopCh: make(chan struct{})}
}

// wantsRun: the managers want the task running (or, for jobs, run to completion).
func wantsRun(t *state.Task) bool {
	return !t.Status.State.Terminal() &&
		(t.DesiredState == state.TaskRunning || t.DesiredState == state.TaskComplete)
}

func (r *runner) update(t *state.Task) {
	r.mu.Lock()
	r.task = t
	if !wantsRun(t) && !r.stopClosed {
		close(r.stopCh)
		r.stopClosed = true
	}
	r.mu.Unlock()
	r.poke()
}

func (r *runner) forget() {
	r.mu.Lock()
	r.gone = true
	if !r.stopClosed {
		close(r.stopCh)
		r.stopClosed = true
	}
	r.mu.Unlock()
	r.poke()
}

func (r *runner) exited(ex executor.Exit) {
	select {
	case r.exitCh <- ex:
	default:
		// A second exit of the same container before the first was read: the
		// first one is what counts.
	}
}

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) current() (*state.Task, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.task, r.gone
}

func (r *runner) report(st state.TaskStatus) {
	st.Timestamp = r.a.cfg.Now().UTC()
	r.a.rep.report(r.id, st)
}

// track tells the reporter whether the task is on its way to running: wanted,
// and neither started nor rejected yet.
func (r *runner) track() {
	t, gone := r.current()
	on := !gone && t != nil && wantsRun(t) && !r.started && !r.rejected
	if on != r.onTheWay {
		r.onTheWay = on
		r.a.rep.starting(on)
	}
}

func (r *runner) run(ctx context.Context) {
	log := r.a.cfg.Logger.With("task", r.id)
	defer func() {
		if r.onTheWay {
			r.onTheWay = false
			r.a.rep.starting(false)
		}
	}()
	if c := r.adopted; c != nil {
		r.created = true
		switch c.State {
		case executor.StateRunning:
			r.started = true
		case executor.StateStopped:
			r.started = true
			r.exit = &executor.Exit{TaskID: c.TaskID, Code: c.ExitCode, At: c.ExitedAt}
		}
	}
	for {
		r.track()
		t, gone := r.current()
		switch {
		case gone:
			r.remove(ctx, true)
			return
		case t == nil:
			// An adopted container waits for the first look at the tasks.
		case !wantsRun(t):
			if !t.Status.State.Terminal() {
				r.stop(ctx, t)
			} else {
				r.remove(ctx, false)
			}
		case r.rejected:
			// Reported; the managers will move the task on.
		case !r.created || (r.adopted != nil && !r.started):
			if r.created {
				// Created but never started before a restart: its files may be
				// gone with a reboot, so it is made again.
				if !r.removeContainer(ctx) {
					r.rejected = true
					r.report(state.TaskStatus{State: state.TaskRejected, Message: "preparing",
						Err: "could not remove the container left from before the daemon restarted"})
					continue
				}
				r.adopted = nil
			}
			if err := r.prepare(ctx, t); err != nil {
				if ctx.Err() != nil {
					return
				}
				if !wantsRunNow(r) {
					continue
				}
				log.Warn("agent: task rejected", "error", err)
				r.rejected = true
				r.report(state.TaskStatus{State: state.TaskRejected, Message: "preparing", Err: err.Error()})
				r.cleanupFiles(ctx)
				continue
			}
			continue
		case !r.started:
			if wait := t.NotBefore.Sub(r.a.cfg.Now()); wait > 0 {
				// The restart delay: look again when it is over.
				timer := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-r.wake:
				case <-timer.C:
				}
				timer.Stop()
				continue
			}
			if err := r.a.cfg.Executor.Start(ctx, r.id); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("agent: task failed to start", "error", err)
				r.rejected = true
				r.report(state.TaskStatus{State: state.TaskFailed, Message: "starting", Err: err.Error()})
				continue
			}
			r.started = true
			r.startHealth()
			if r.health != nil {
				r.report(state.TaskStatus{State: state.TaskStarting, Message: "starting: waiting for the health check"})
			} else {
				r.report(state.TaskStatus{State: state.TaskRunning, Message: "started"})
			}
		case r.exit != nil:
			if !r.unhealthy && !r.exitReported {
				r.report(exitStatus(r.exit.Code))
			}
			r.exitReported = true
		case r.adopted != nil && !r.adoptChecked:
			// An adopted running container: fetch its runtime once, for its
			// health check.
			r.adoptChecked = true
			if rt, err := r.a.cfg.API.TaskRuntime(ctx, r.id); err == nil {
				r.rt = rt
				r.startHealth()
			}
			if r.health == nil && t.Status.State.Before(state.TaskRunning) {
				r.report(state.TaskStatus{State: state.TaskRunning, Message: "started"})
			}
			continue
		}

		r.track()
		var healthC <-chan time.Time
		if r.health != nil && r.exit == nil && !r.stopped {
			healthC = r.health.timer.C
		}
		select {
		case <-ctx.Done():
			r.stopHealth()
			return
		case <-r.wake:
		case ex := <-r.exitCh:
			if r.exit == nil {
				r.exit = &ex
			}
			r.stopHealth()
		case <-healthC:
			r.checkHealth(ctx)
		}
	}
}

func wantsRunNow(r *runner) bool {
	t, gone := r.current()
	return !gone && t != nil && wantsRun(t)
}

// stop stops the container, if it runs, and reports the task shut down. A running
// task on a network is drained first.
func (r *runner) stop(ctx context.Context, t *state.Task) {
	if r.stopped {
		return
	}
	r.stopHealth()
	if r.created && r.started && r.exit == nil && len(t.Networks) > 0 && !r.drained {
		if !r.drain(ctx) {
			return
		}
		r.drained = true
	}
	if r.created && r.started && r.exit == nil {
		if err := r.a.cfg.Executor.Stop(ctx, r.id); err != nil {
			if ctx.Err() == nil {
				r.a.cfg.Logger.Warn("agent: stopping the container failed", "task", r.id, "error", err)
			}
			return
		}
	}
	r.stopped = true
	if !t.Status.State.Terminal() {
		r.report(state.TaskStatus{State: state.TaskShutdown, Message: "shutdown"})
	}
}

// drain keeps a task that leaves DNS and its VIPs running for the drain delay
// before its stop signal. The managers take a task out of every node's network view
// (Endpoint.Ready) as soon as its desired state leaves running, but each node applies
// the view it is sent in its own time: stopping at once would refuse the connections
// that nodes which have not applied it yet still send. It ends early when the
// container exits; false when ctx ended.
func (r *runner) drain(ctx context.Context) bool {
	r.a.cfg.Logger.Info("agent: draining the task before its stop", "task", r.id, "delay", r.a.cfg.DrainDelay)
	timer := time.NewTimer(r.a.cfg.DrainDelay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case ex := <-r.exitCh:
		r.exit = &ex
		return true
	case <-timer.C:
		return true
	}
}

// remove removes the container, the sandbox and the files of a terminal task; its
// logs too once the task is gone from the node's list.
func (r *runner) remove(ctx context.Context, gone bool) {
	if !r.removed {
		r.stopHealth()
		if r.created && r.started && r.exit == nil && !r.stopped {
			if err := r.a.cfg.Executor.Stop(ctx, r.id); err != nil && ctx.Err() == nil {
				r.a.cfg.Logger.Warn("agent: stopping the container failed", "task", r.id, "error", err)
			}
		}
		if !r.removeContainer(ctx) {
			return
		}
		r.cleanupFiles(ctx)
		r.removed = true
	}
	if gone {
		if err := r.a.cfg.Executor.RemoveLogs(r.id); err != nil {
			r.a.cfg.Logger.Warn("agent: removing the task's logs failed", "task", r.id, "error", err)
		}
	}
}

func (r *runner) removeContainer(ctx context.Context) bool {
	if !r.created {
		return true
	}
	if err := r.a.cfg.Executor.Remove(ctx, r.id); err != nil {
		if ctx.Err() == nil {
			r.a.cfg.Logger.Warn("agent: removing the container failed", "task", r.id, "error", err)
		}
		return false
	}
	r.created, r.started = false, false
	return true
}

// cleanupFiles tears down the sandbox and the task's files (secrets tmpfs).
func (r *runner) cleanupFiles(ctx context.Context) {
	if nw := r.a.cfg.Network; nw != nil {
		if err := nw.Teardown(ctx, r.id); err != nil {
			r.a.cfg.Logger.Warn("agent: tearing down the task's network failed", "task", r.id, "error", err)
		}
	}
	if err := removeTaskFiles(r.a.taskDir(r.id)); err != nil {
		r.a.cfg.Logger.Warn("agent: removing the task's files failed", "task", r.id, "error", err)
	}
}

// exitStatus is the status of a task whose container exited with code, in Swarm's
// words.
func exitStatus(code int) state.TaskStatus {
	if code == 0 {
		return state.TaskStatus{State: state.TaskComplete, Message: "finished"}
	}
	return state.TaskStatus{State: state.TaskFailed, Message: "started",
		Err: fmt.Sprintf("task: non-zero exit (%d)", code), ExitCode: code}
}

// errOutdated says why an outdated task is rejected.
var errOutdated = errors.New("the service's spec changed twice since this task was made; its replacement will run")
