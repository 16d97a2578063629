package agent

import (
	"context"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/runtime/executor"
)

// phase is where a task is in its life on this node (see the package documentation).
// A runner holds one: step runs what a phase does, transitions says where it may go.
type phase int

const (
	// phaseNew: nothing made yet, or a container left from before a restart that
	// never started (made again).
	phaseNew phase = iota
	// phaseCreated: the container exists; it starts once the task's NotBefore passed.
	phaseCreated
	// phaseAdopted: a container that had started, found when the agent started.
	phaseAdopted
	// phaseRunning: started by this agent, or adopted and looked at.
	phaseRunning
	// phaseExited: the container exited, and the exit was reported (or, before it,
	// the failed health check).
	phaseExited
	// phaseRejected: preparing or starting failed, and it was reported.
	phaseRejected
	// phaseDrained: no longer wanted, it waited out the drain delay; its stop is
	// under way (tried again when it fails).
	phaseDrained
	// phaseStopped: no longer wanted, its container stopped, reported shut down.
	phaseStopped
	// phaseRemoved: terminal, its container, sandbox and files removed.
	phaseRemoved
)

// next says what the run loop does after a phase's step.
type next int

const (
	nextWait  next = iota // wait for a wake-up, an exit or the health check
	nextAgain             // look again at once
	nextQuit              // ctx ended
)

// transitions is the task's state machine: the phases each phase may go to. A row
// lists first the way to running, taken while the managers want the task running
// (runner.step), then the way out (drained, stopped, removed), taken once they no
// longer do (runner.leave).
var transitions = [...]struct {
	name string
	to   []phase
}{
	phaseNew:      {"new", []phase{phaseCreated, phaseRejected, phaseStopped, phaseRemoved}},
	phaseCreated:  {"created", []phase{phaseRunning, phaseRejected, phaseStopped, phaseRemoved}},
	phaseAdopted:  {"adopted", []phase{phaseRunning, phaseExited, phaseDrained, phaseStopped, phaseRemoved}},
	phaseRunning:  {"running", []phase{phaseExited, phaseDrained, phaseStopped, phaseRemoved}},
	phaseExited:   {"exited", []phase{phaseStopped, phaseRemoved}},
	phaseRejected: {"rejected", []phase{phaseStopped, phaseRemoved}},
	phaseDrained:  {"drained", []phase{phaseStopped, phaseRemoved}},
	phaseStopped:  {"stopped", []phase{phaseRemoved}},
	phaseRemoved:  {"removed", nil},
}

func (p phase) String() string { return transitions[p].name }

// enter moves the runner to phase p. A move the table does not list is a bug in
// the runner: it is logged, not hidden.
func (r *runner) enter(p phase) {
	if !slices.Contains(transitions[r.phase].to, p) {
		r.a.cfg.Logger.Error("agent: task phase change not in the table", "task", r.id, "from", r.phase, "to", p)
	}
	r.a.cfg.Metrics.entered(r.phase, p, r.seen)
	r.phase = p
}

// step runs the phase's step towards running, for a task the managers want running.
// The phases after running only wait.
func (r *runner) step(ctx context.Context, t *model.Task) next {
	switch r.phase {
	case phaseNew:
		return r.create(ctx, t)
	case phaseCreated:
		return r.start(ctx, t)
	case phaseAdopted:
		return r.checkAdopted(ctx, t)
	case phaseRunning:
		return r.reportExit()
	}
	return nextWait
}

// firstPhase is the phase a runner starts in: new, or, for a container found when
// the agent started, the one its state says (noting its exit, if it exited).
func (r *runner) firstPhase() phase {
	c := r.adopted
	if c == nil {
		return phaseNew
	}
	r.created = true
	switch c.State {
	case executor.StateRunning:
		return phaseAdopted
	case executor.StateStopped:
		r.exit = &executor.Exit{TaskID: c.TaskID, Code: c.ExitCode, At: c.ExitedAt}
		return phaseAdopted
	}
	// Created but never started before a restart: made again.
	return phaseNew
}

// create prepares the task and creates its container; a container left from before
// a restart is removed first, as its files may be gone with a reboot.
func (r *runner) create(ctx context.Context, t *model.Task) next {
	if r.created {
		if !r.removeContainer(ctx) {
			r.enter(phaseRejected)
			r.report(model.TaskStatus{State: model.TaskRejected, Message: "preparing",
				Err: "could not remove the container left from before the daemon restarted"})
			return nextAgain
		}
		r.adopted = nil
	}
	if err := r.prepare(ctx, t); err != nil {
		if ctx.Err() != nil {
			return nextQuit
		}
		if !wantsRunNow(r) {
			return nextAgain
		}
		r.a.cfg.Logger.Warn("agent: task rejected", "task", r.id, "error", err)
		r.enter(phaseRejected)
		r.report(model.TaskStatus{State: model.TaskRejected, Message: "preparing", Err: err.Error()})
		r.cleanupFiles(ctx)
		return nextAgain
	}
	r.enter(phaseCreated)
	return nextAgain
}

// start starts the container once the task's NotBefore (the restart delay) passed.
func (r *runner) start(ctx context.Context, t *model.Task) next {
	if wait := t.NotBefore.Sub(r.a.cfg.Now()); wait > 0 {
		// The restart delay: look again when it is over.
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return nextQuit
		case <-r.wake:
		case <-timer.C:
		}
		return nextAgain
	}
	if err := r.a.cfg.Executor.Start(ctx, r.id); err != nil {
		if ctx.Err() != nil {
			return nextQuit
		}
		r.a.cfg.Logger.Warn("agent: task failed to start", "task", r.id, "error", err)
		r.enter(phaseRejected)
		r.report(model.TaskStatus{State: model.TaskFailed, Message: "starting", Err: err.Error()})
		return nextAgain
	}
	r.enter(phaseRunning)
	r.startHealth()
	if r.health != nil {
		r.report(model.TaskStatus{State: model.TaskStarting, Message: "starting: waiting for the health check"})
	} else {
		r.report(model.TaskStatus{State: model.TaskRunning, Message: "started"})
	}
	return nextWait
}

// checkAdopted fetches an adopted running container's runtime once, for its health
// check. One that exited is reported as any exit.
func (r *runner) checkAdopted(ctx context.Context, t *model.Task) next {
	if r.exit != nil {
		return r.reportExit()
	}
	r.enter(phaseRunning)
	if rt, err := r.a.cfg.API.TaskRuntime(ctx, r.id); err == nil {
		r.rt = rt
		r.startHealth()
	}
	if r.health == nil && t.Status.State.Before(model.TaskRunning) {
		r.report(model.TaskStatus{State: model.TaskRunning, Message: "started"})
	}
	return nextAgain
}

// reportExit reports the container's exit, once it came; an unhealthy task was
// reported failed already.
func (r *runner) reportExit() next {
	if r.exit == nil {
		return nextWait
	}
	if !r.unhealthy {
		r.report(exitStatus(r.exit.Code))
	}
	r.enter(phaseExited)
	return nextWait
}

// containerRuns: the container was started and has not exited or been stopped.
func (r *runner) containerRuns() bool {
	switch r.phase {
	case phaseAdopted, phaseRunning, phaseDrained:
		return r.created && r.exit == nil
	}
	return false
}
