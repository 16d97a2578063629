package orchestrator

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// slot is one place a service runs a task: slot number num of a replicated service, or
// node of a global one. Its tasks are its history; at most one of them is meant to run,
// except during a start-first update, when the new one runs beside the old.
type slot struct {
	num  uint64
	node string
	// tasks are the stored tasks, oldest first.
	tasks []*model.Task
	// live are the tasks meant to run and not yet stopped, oldest first, after this
	// run's decisions (new tasks included). The last one is the slot's current task.
	live []*model.Task
	// refill, when set, asks for a new task in the slot.
	refill *refill
	// removed: every task is told to go away (scale down, node removed).
	removed bool
	// finished: the slot's last task ended and is not to be replaced (the restart
	// policy says no, or a job task completed).
	finished bool
	// waiting: the slot's last task was told to stop and a replacement waits for it
	// to have stopped (stop-first update).
	waiting bool
}

// refill describes the task a slot needs.
type refill struct {
	restarts  model.Restarts
	notBefore time.Time
}

func (s *slot) current() *model.Task {
	if len(s.live) == 0 {
		return nil
	}
	return s.live[len(s.live)-1]
}

// group sorts the service's tasks into slots: by slot number for replicated services,
// by node for global ones. Tasks that belong to the other kind (a global task in a
// replicated service) are returned apart.
func (r *run) group() (slots []*slot, foreign []*model.Task) {
	byKey := make(map[string]*slot)
	byNum := make(map[uint64]*slot)
	for _, t := range r.tasks {
		var s *slot
		switch {
		case r.global && t.Slot == 0 && t.NodeID != "":
			if s = byKey[t.NodeID]; s == nil {
				s = &slot{node: t.NodeID}
				byKey[t.NodeID] = s
				slots = append(slots, s)
			}
		case !r.global && t.Slot > 0:
			if s = byNum[t.Slot]; s == nil {
				s = &slot{num: t.Slot}
				byNum[t.Slot] = s
				slots = append(slots, s)
			}
		default:
			foreign = append(foreign, t)
			continue
		}
		s.tasks = append(s.tasks, t)
	}
	for _, s := range slots {
		slices.SortFunc(s.tasks, older)
		s.removed = !slices.ContainsFunc(s.tasks, func(t *model.Task) bool { return t.DesiredState.Before(model.TaskRemove) })
	}
	sortSlots(slots)
	return slots, foreign
}

func sortSlots(slots []*slot) {
	slices.SortFunc(slots, func(a, b *slot) int { return cmp.Or(cmp.Compare(a.num, b.num), strings.Compare(a.node, b.node)) })
}

// processSlot applies the rules that look at one slot alone: the restart supervisor,
// node health and constraints, and the end of a start-first replacement. It leaves
// s.live, s.refill, s.finished and s.waiting set for the mode's reconciler.
func (r *run) processSlot(s *slot) {
	if s.removed || len(s.tasks) == 0 {
		return
	}
	last := len(s.tasks) - 1
	for i, t := range s.tasks {
		if !liveDesired(t.DesiredState) {
			continue
		}
		if !t.Status.State.Terminal() {
			s.live = append(s.live, t)
			continue
		}
		if r.job && t.Status.State == model.TaskComplete {
			// A job task is done. Done with the current spec, the slot is finished;
			// with an older one, the job runs again (the slot is vacated below).
			if i == last && r.clean(t) {
				s.finished = true
			}
			continue
		}
		if i < last {
			// An older task that ended after a newer one took the slot over (the old
			// task of a start-first update): nothing to restart.
			r.setDesired(t, model.TaskShutdown)
			continue
		}
		r.supervise(s, t)
	}

	r.checkNodes(s)

	// Start-first: once the newest task runs, the ones it replaces stop.
	if n := len(s.live); n > 1 {
		if cur := s.live[n-1]; !r.isCreated(cur) && cur.Status.State == model.TaskRunning {
			for _, t := range s.live[:n-1] {
				r.setDesired(t, model.TaskShutdown)
			}
			s.live = s.live[n-1:]
		}
	}

	if len(s.live) == 0 && s.refill == nil && !s.finished {
		r.vacate(s)
	}
}

// vacate handles a slot that has nothing to run and no decision yet: its last task was
// told to stop (the first half of a stop-first update, a node loss of a global task) or
// a job must run again. The slot is refilled once that task has stopped, so that old
// and new never run together; a task that cannot report (its node is down or gone) or
// that has not stopped within the update step timeout is not waited for.
func (r *run) vacate(s *slot) {
	var t *model.Task
	for i := len(s.tasks) - 1; i >= 0; i-- {
		if r.desired(s.tasks[i]).Before(model.TaskRemove) {
			t = s.tasks[i]
			break
		}
	}
	if t == nil {
		return
	}
	changed := t.UpdatedAt
	if r.touched(t) {
		changed = r.now
	}
	deadline := changed.Add(r.p.opts.UpdateStepTimeout)
	if r.stopped(t) || r.unreachable(t) || !deadline.After(r.now) {
		s.refill = &refill{restarts: r.carry(t)}
		return
	}
	s.waiting = true
	r.wake(deadline)
}
