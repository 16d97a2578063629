package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
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
	task   *model.Task
	gone   bool
	wake   chan struct{}
	exitCh chan executor.Exit
	// stopCh is closed once the task no longer wants to run, to cancel a
	// preparation under way (an image pull can take minutes).
	stopCh     chan struct{}
	stopClosed bool

	// The rest belongs to the run goroutine.
	phase   phase
	rt      *api.TaskRuntime
	created bool // the container exists
	exit    *executor.Exit
	health  *healthState
	// unhealthy: it failed its health check, which was reported instead of its exit.
	unhealthy bool
	// onTheWay: the reporter counts this task as on its way to running.
	onTheWay bool
	// seen is when the agent first saw the task, what its start is timed from.
	seen time.Time
}

func newRunner(a *Agent, id string) *runner {
	return &runner{a: a, id: id, wake: make(chan struct{}, 1), exitCh: make(chan executor.Exit, 1),
		stopCh: make(chan struct{}), seen: time.Now()}
}

// wantsRun: the managers want the task running (or, for jobs, run to completion).
func wantsRun(t *model.Task) bool {
	return !t.Status.State.Terminal() &&
		(t.DesiredState == model.TaskRunning || t.DesiredState == model.TaskComplete)
}

func (r *runner) update(t *model.Task) {
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

func (r *runner) current() (*model.Task, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.task, r.gone
}

func (r *runner) report(st model.TaskStatus) {
	st.Timestamp = r.a.cfg.Now().UTC()
	r.a.rep.report(r.id, st)
}

// track tells the reporter whether the task is on its way to running: wanted,
// and neither started nor rejected yet.
func (r *runner) track() {
	t, gone := r.current()
	on := !gone && t != nil && wantsRun(t) && (r.phase == phaseNew || r.phase == phaseCreated)
	if on != r.onTheWay {
		r.onTheWay = on
		r.a.rep.starting(on)
	}
}

// run drives the task through its phases (phase.go) until ctx ends or the task
// leaves the node.
func (r *runner) run(ctx context.Context) {
	defer func() {
		if r.onTheWay {
			r.onTheWay = false
			r.a.rep.starting(false)
		}
	}()
	r.phase = r.firstPhase()
	for {
		r.track()
		t, gone := r.current()
		n := nextWait
		switch {
		case gone:
			r.remove(ctx, true)
			return
		case t == nil:
			// An adopted container waits for the first look at the tasks.
		case !wantsRun(t):
			r.leave(ctx, t)
		default:
			n = r.step(ctx, t)
		}
		switch n {
		case nextQuit:
			return
		case nextAgain:
			continue
		}
		r.track()
		if !r.wait(ctx) {
			return
		}
	}
}

// wait waits for a wake-up, the container's exit or the health check's timer; false
// when ctx ended.
func (r *runner) wait(ctx context.Context) bool {
	var healthC <-chan time.Time
	if r.health != nil && r.exit == nil && r.phase != phaseStopped {
		healthC = r.health.timer.C
	}
	select {
	case <-ctx.Done():
		r.stopHealth()
		return false
	case <-r.wake:
	case ex := <-r.exitCh:
		if r.exit == nil {
			r.exit = &ex
		}
		r.stopHealth()
	case <-healthC:
		r.checkHealth(ctx)
	}
	return true
}

// leave takes a task the managers no longer want running out: stopped while its
// status is not terminal, removed once it is.
func (r *runner) leave(ctx context.Context, t *model.Task) {
	if !t.Status.State.Terminal() {
		r.stop(ctx, t)
	} else {
		r.remove(ctx, false)
	}
}

func wantsRunNow(r *runner) bool {
	t, gone := r.current()
	return !gone && t != nil && wantsRun(t)
}

// stop stops the container, if it runs, and reports the task shut down. A running
// task on a network is drained first.
func (r *runner) stop(ctx context.Context, t *model.Task) {
	if r.phase == phaseStopped {
		return
	}
	r.stopHealth()
	if r.containerRuns() && len(t.Networks) > 0 && r.phase != phaseDrained {
		if !r.drain(ctx) {
			return
		}
		r.enter(phaseDrained)
	}
	if r.containerRuns() {
		if err := r.a.cfg.Executor.Stop(ctx, r.id); err != nil {
			if ctx.Err() == nil {
				r.a.cfg.Logger.Warn("agent: stopping the container failed", "task", r.id, "error", err)
			}
			return
		}
	}
	r.enter(phaseStopped)
	if !t.Status.State.Terminal() {
		r.report(model.TaskStatus{State: model.TaskShutdown, Message: "shutdown"})
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
	if r.phase != phaseRemoved {
		r.stopHealth()
		if r.containerRuns() {
			if err := r.a.cfg.Executor.Stop(ctx, r.id); err != nil && ctx.Err() == nil {
				r.a.cfg.Logger.Warn("agent: stopping the container failed", "task", r.id, "error", err)
			}
		}
		if !r.removeContainer(ctx) {
			return
		}
		r.cleanupFiles(ctx)
		r.enter(phaseRemoved)
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
	r.created = false
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
func exitStatus(code int) model.TaskStatus {
	if code == 0 {
		return model.TaskStatus{State: model.TaskComplete, Message: "finished"}
	}
	return model.TaskStatus{State: model.TaskFailed, Message: "started",
		Err: fmt.Sprintf("task: non-zero exit (%d)", code), ExitCode: code}
}

// errOutdated says why an outdated task is rejected.
var errOutdated = errors.New("the service's spec changed twice since this task was made; its replacement will run")
