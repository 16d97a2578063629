package orchestrator

import (
	"slices"
	"strconv"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Defaults of update_config and rollback_config, Docker's.
const (
	DefaultUpdateParallelism = 1
	DefaultUpdateMonitor     = 5 * time.Second
)

// Update orders and failure actions, as written in the compose file.
const (
	orderStopFirst  = "stop-first"
	orderStartFirst = "start-first"
	actionPause     = "pause"
	actionContinue  = "continue"
	actionRollback  = "rollback"
)

// Update status messages, Swarm's.
const (
	msgUpdating          = "update in progress"
	msgUpdateCompleted   = "update completed"
	msgRollbackCompleted = "rollback completed"
)

// updateConfig is an update_config or rollback_config with the defaults filled in.
type updateConfig struct {
	parallelism     int // 0: all at once
	delay           time.Duration
	monitor         time.Duration
	failureAction   string
	maxFailureRatio float64
	order           string
}

func updateConfigFor(s *spec.Service, rollback bool) updateConfig {
	c := updateConfig{parallelism: DefaultUpdateParallelism, monitor: DefaultUpdateMonitor,
		failureAction: actionPause, order: orderStopFirst}
	u := s.Deploy.UpdateConfig
	if rollback {
		u = s.Deploy.RollbackConfig
	}
	if u == nil {
		return c
	}
	if u.Parallelism != nil {
		c.parallelism = int(min(*u.Parallelism, uint64(maxSlots)))
	}
	c.delay = time.Duration(u.Delay)
	if u.Monitor > 0 {
		c.monitor = time.Duration(u.Monitor)
	}
	if u.FailureAction != "" {
		c.failureAction = u.FailureAction
	}
	c.maxFailureRatio = u.MaxFailureRatio
	if u.Order != "" {
		c.order = u.Order
	}
	return c
}

func (r *run) rollingBack() bool {
	switch r.us.State {
	case model.UpdateRollbackStarted, model.UpdateRollbackPaused, model.UpdateRollbackCompleted:
		return true
	}
	return false
}

func (r *run) updateActive() bool {
	return r.us.State == model.UpdateUpdating || r.us.State == model.UpdateRollbackStarted
}

// updateTask reports whether t was made by the running update (or rollback): made from
// the current spec since the update started.
func (r *run) updateTask(t *model.Task) bool {
	return r.clean(t) && !t.CreatedAt.Before(r.us.StartedAt)
}

// startDeadline is when a new task that is not running yet counts as stuck.
func (r *run) startDeadline(t *model.Task) time.Time {
	return later(t.CreatedAt, t.NotBefore).Add(r.p.opts.UpdateStepTimeout)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkUpdate counts the failures of the running update or rollback and takes the
// failure action when there are too many, or when the update has run out of time. A
// task counts as failed when it was made by the update and ended (failed, rejected,
// or exited although it was meant to keep running) or did not start within the step
// timeout. Failures count until the update completes, and the update completes only a
// monitor period after its last task started: so every task is watched for at least
// the monitor period, and earlier ones for longer (Swarm watches each for exactly
// the monitor period, a timer the state cannot hold).
//
// It returns true when the decision is a rollback: the plan is then the swap alone,
// and the next run works from the restored spec.
func (r *run) checkUpdate() bool {
	if r.job || !r.updateActive() {
		return false
	}
	cfg := updateConfigFor(r.spec, r.rollingBack())
	var failed *model.Task
	failures := 0
	slots := make(map[string]struct{})
	for _, t := range r.tasks {
		if t.DesiredState.Before(model.TaskRemove) {
			slots[slotKey(t)] = struct{}{}
		}
		if !r.updateTask(t) {
			continue
		}
		fail := false
		switch t.Status.State {
		case model.TaskFailed, model.TaskRejected, model.TaskComplete:
			fail = true
		default:
			if liveDesired(t.DesiredState) && t.Status.State.Before(model.TaskRunning) {
				if d := r.startDeadline(t); !d.After(r.now) {
					fail = true
				} else {
					r.wake(d)
				}
			}
		}
		if fail {
			failures++
			if failed == nil || older(t, failed) < 0 {
				failed = t
			}
		}
	}
	timedOut := false
	if d := r.p.opts.UpdateTimeout; d > 0 && !r.us.StartedAt.IsZero() {
		end := r.us.StartedAt.Add(d)
		timedOut = !end.After(r.now)
		r.wake(end)
	}
	ratio := float64(failures) / float64(max(1, len(slots)))
	if !timedOut && (failures == 0 || ratio <= cfg.maxFailureRatio) {
		return false
	}
	what := "update"
	if r.rollingBack() {
		what = "rollback"
	}
	because := "due to failure or early termination of task " + taskName(r.svc, failed)
	if timedOut {
		because = "after running for more than " + r.p.opts.UpdateTimeout.String()
	}
	switch {
	case cfg.failureAction == actionContinue && !timedOut:
		return false
	case cfg.failureAction == actionRollback && !r.rollingBack() && r.svc.PreviousSpec != nil:
		r.plan.Service = &ServiceUpdate{Rollback: true, UpdateStatus: model.UpdateStatus{
			State: model.UpdateRollbackStarted, Message: "update rolled back " + because, StartedAt: r.now}}
		return true
	}
	paused := model.UpdatePaused
	if r.rollingBack() {
		paused = model.UpdateRollbackPaused
	}
	r.us = model.UpdateStatus{State: paused, Message: what + " paused " + because, StartedAt: r.us.StartedAt}
	return false
}

func slotKey(t *model.Task) string {
	if t.Slot > 0 {
		return strconv.FormatUint(t.Slot, 10)
	}
	return "node:" + t.NodeID
}

func taskName(svc *model.Service, t *model.Task) string {
	if t == nil {
		return "(unknown)"
	}
	n := *t
	if n.ServiceName == "" {
		n.ServiceName = svc.Name
	}
	return n.ID + " (" + n.Name() + ")"
}

// updateStep takes the next step of a rolling update or rollback, from the state
// alone:
//
//   - An update starts when some slot runs a task of an older spec and no update is
//     recorded (whoever changes a spec clears UpdateStatus: see the package
//     documentation). Paused and completed updates take no step.
//   - Each slot is updated once per update: a slot counts as done once it has a task
//     of the current spec made since the update started, whatever became of it.
//   - A batch is in flight while one of its slots waits for its old task to stop or
//     for its new task to start (running, ended, or stuck past the step timeout).
//     The next batch of parallelism slots starts when none is in flight and the delay
//     has passed since the last of them started.
//   - The update completes when no slot is left, none is in flight, and the monitor
//     period has passed since the last task started.
//
// Jobs do not roll: a new spec runs the job again on every slot at once. e is the
// global service's node eligibility (nil for replicated services): a global slot
// whose node takes no new task (paused, unknown state) is skipped.
func (r *run) updateStep(slots []*slot, e *eligibility) {
	if r.job {
		r.rerunJob(slots, e)
		return
	}
	// updatable reports whether s runs a task of an older spec that can be replaced
	// now: a global task on a node that takes no new task (paused, state unknown)
	// waits until it does.
	updatable := func(s *slot) bool {
		cur := s.current()
		return !s.removed && cur != nil && !r.clean(cur) && (e == nil || e.allows(s.node))
	}
	switch r.us.State {
	case "":
		if !slices.ContainsFunc(slots, updatable) {
			return
		}
		r.us = model.UpdateStatus{State: model.UpdateUpdating, Message: msgUpdating, StartedAt: r.now}
	case model.UpdateUpdating, model.UpdateRollbackStarted:
	default:
		return
	}
	cfg := updateConfigFor(r.spec, r.rollingBack())

	var todo []*slot
	inFlight := false
	var lastStart time.Time
	for _, s := range slots {
		if s.removed {
			continue
		}
		if s.waiting {
			inFlight = true
			continue
		}
		if t := r.firstUpdateTask(s); t != nil {
			at, settled := r.settled(t)
			if !settled {
				inFlight = true
				continue
			}
			lastStart = later(lastStart, at)
			continue
		}
		if updatable(s) {
			todo = append(todo, s)
		}
	}
	if inFlight {
		return
	}
	if len(todo) == 0 {
		if end := lastStart.Add(cfg.monitor); end.After(r.now) {
			r.wake(end)
			return
		}
		st, msg := model.UpdateCompleted, msgUpdateCompleted
		if r.rollingBack() {
			st, msg = model.UpdateRollbackCompleted, msgRollbackCompleted
		}
		r.us = model.UpdateStatus{State: st, Message: msg, StartedAt: r.us.StartedAt, CompletedAt: r.now}
		return
	}
	if !lastStart.IsZero() {
		if next := lastStart.Add(cfg.delay); next.After(r.now) {
			r.wake(next)
			return
		}
	}
	// Slots whose task does not run go first: replacing them costs no availability.
	slices.SortStableFunc(todo, func(a, b *slot) int {
		return boolFirst(a.current().Status.State != model.TaskRunning, b.current().Status.State != model.TaskRunning)
	})
	if cfg.parallelism > 0 && len(todo) > cfg.parallelism {
		todo = todo[:cfg.parallelism]
	}
	for _, s := range todo {
		r.updateSlot(s, cfg.order)
	}
}

// firstUpdateTask is the first task the update made in s, or nil.
func (r *run) firstUpdateTask(s *slot) *model.Task {
	for _, t := range s.tasks {
		if r.updateTask(t) {
			return t
		}
	}
	for _, t := range s.live {
		if r.isCreated(t) {
			return t
		}
	}
	return nil
}

// settled reports whether an update's new task has started (or ended, or is stuck
// past the step timeout, or was given up on), and since when.
func (r *run) settled(t *model.Task) (time.Time, bool) {
	if r.isCreated(t) {
		r.wake(r.startDeadline(t))
		return time.Time{}, false
	}
	at := t.Status.Timestamp
	if at.IsZero() {
		at = t.UpdatedAt
	}
	st := r.status(t)
	switch {
	case st == model.TaskRunning || st.Terminal():
		return at, true
	case !liveDesired(r.desired(t)):
		return at, true
	}
	d := r.startDeadline(t)
	if !d.After(r.now) {
		return d, true
	}
	r.wake(d)
	return time.Time{}, false
}

// updateSlot replaces the current task of s with one of the current spec. Start-first
// starts the new task beside the old one, which stops once the new one runs
// (processSlot). Stop-first tells the old one to stop and makes the new one once it
// has (vacate), or at once if the old one never reached a node.
func (r *run) updateSlot(s *slot, order string) {
	cur := s.current()
	if order == orderStartFirst && !r.stopped(cur) {
		r.wake(r.startDeadline(r.newTask(s, refill{})))
		return
	}
	for _, t := range s.live {
		r.setDesired(t, model.TaskShutdown)
	}
	s.live = nil
	if r.stopped(cur) {
		r.wake(r.startDeadline(r.newTask(s, refill{})))
		return
	}
	s.waiting = true
	r.wake(r.now.Add(r.p.opts.UpdateStepTimeout))
}

// rerunJob runs a job again, on every slot at once, when its spec changed: tasks of an
// older spec still running are stopped and replaced.
func (r *run) rerunJob(slots []*slot, e *eligibility) {
	for _, s := range slots {
		cur := s.current()
		if s.removed || cur == nil || r.clean(cur) || (e != nil && !e.allows(s.node)) {
			continue
		}
		r.updateSlot(s, orderStopFirst)
	}
}
