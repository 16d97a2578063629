package orchestrator

import (
	"github.com/berthd/berth/cluster/model"
)

// reap trims task history. Per slot (per node for global services) it keeps at most
// TaskHistoryLimit tasks that are no longer meant to run, deleting the oldest first,
// but never:
//   - a task that has not stopped (its agent still needs the row to stop it),
//   - a task this run changes (one write per task per plan),
//   - the slot's newest task: it is the slot's record of why nothing runs there (a
//     finished slot) and carries the restart count, so deleting it would restart
//     what the policy said to leave alone.
//
// Tasks told to go away (desired state remove: scaled down, node removed, service
// deleted) are deleted as soon as they have stopped, whatever the limit.
func (r *run) reap(slots []*slot, foreign []*model.Task) {
	limit := r.p.opts.TaskHistoryLimit
	for _, s := range slots {
		if len(s.tasks) == 0 {
			continue
		}
		newest := s.tasks[len(s.tasks)-1]
		var history []*model.Task
		for _, t := range s.tasks {
			d := r.desired(t)
			switch {
			case d == model.TaskRemove:
				if r.deletable(t) {
					r.remove(t)
				}
			case liveDesired(d) && !r.status(t).Terminal():
				// still meant to run
			default:
				history = append(history, t)
			}
		}
		if limit < 0 {
			continue
		}
		excess := len(history) - limit
		for _, t := range history {
			if excess <= 0 {
				break
			}
			if t != newest && r.deletable(t) {
				r.remove(t)
				excess--
			}
		}
	}
	for _, t := range foreign {
		// A task of the other mode's kind (no slot, or no node): the service's mode
		// changed under it. It goes away like a removed one.
		r.setDesired(t, model.TaskRemove)
	}
	r.reapRemoved(foreign)
}

// reapRemoved deletes the tasks told to go away once they have stopped.
func (r *run) reapRemoved(tasks []*model.Task) {
	for _, t := range tasks {
		if r.desired(t) == model.TaskRemove && r.deletable(t) {
			r.remove(t)
		}
	}
}

// deletable reports whether t may be deleted in this plan.
func (r *run) deletable(t *model.Task) bool {
	_, gone := r.deleted[t.ID]
	return !gone && !r.touched(t) && !r.isCreated(t) && r.stopped(t)
}
