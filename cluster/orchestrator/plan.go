package orchestrator

import (
	"time"

	"github.com/berthd/berth/cluster/model"
)

// Plan is what one service needs written: everything the FSM applies is in it (ids,
// timestamps, node assignments), so applying it is deterministic. Plans of many
// services go into one raft entry; each is applied on its own (see Stale).
//
// How the FSM applies a plan, in this order:
//
//  1. Stale check: if the service is gone or its SpecVersion differs from
//     Plan.SpecVersion, the plan is skipped whole. It was computed from a spec that no
//     longer holds; the orchestrator runs again on the new one. A plan with
//     SpecVersion 0 (Pass.RemoveService) is the other way round: it is for a service
//     that no longer exists, and is skipped if the service exists.
//  2. Service: when set, UpdateStatus is replaced; when Rollback is set, Spec and
//     PreviousSpec are swapped and SpecVersion grows by one (see ServiceUpdate).
//  3. Create: the rows are inserted as they are.
//  4. Update: each TaskUpdate is applied to the task with its ID, if it still exists
//     (see TaskUpdate for the rules, which make stale updates harmless).
//  5. Delete: the tasks are deleted; a task that no longer exists is skipped.
//
// A task appears at most once across Create, Update and Delete.
type Plan struct {
	ServiceID string
	// SpecVersion is the service's spec version the plan was computed from.
	SpecVersion uint64
	// Create holds new tasks: desired state running (complete for jobs), observed
	// state assigned with a node, or pending with the scheduler's reason in
	// Status.Err. Global tasks name their node even while pending.
	Create []*model.Task
	// Update holds changes to existing tasks, sorted by task ID.
	Update []TaskUpdate
	// Delete lists tasks to delete (history beyond the cap, removed tasks that have
	// stopped), sorted.
	Delete []string
	// Service is the change to the service row, if any.
	Service *ServiceUpdate
	// NextCheck is the earliest time at which running the orchestrator again on
	// unchanged state would decide something new (a grace period, restart window,
	// update delay, monitor period or timeout ends). Zero: nothing is due; only a
	// change of state needs a new run. The time of the run itself (not after it):
	// the plan holds only part of what the service needs (Options.MaxNewTasks), run
	// again as soon as it is applied.
	NextCheck time.Time
}

// Empty reports whether the plan writes nothing (NextCheck aside).
func (p *Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0 && p.Service == nil
}

// Tasks counts the task rows the plan writes.
func (p *Plan) Tasks() int { return len(p.Create) + len(p.Update) + len(p.Delete) }

// TaskUpdate changes an existing task. Each field is applied only if it moves the task
// forward, so a plan computed before an agent's status report, or applied twice, never
// undoes anything:
//
//   - DesiredState (when not empty) is set if it comes after the current desired state
//     in TaskState order (running < complete < shutdown < remove).
//   - NodeID and Status with State assigned assign a pending task: applied only if
//     the task's observed state is still before assigned and its NodeID is empty or
//     the same (global tasks name their node while pending).
//   - Status with State pending refreshes a pending task's reason: applied only if the
//     observed state is not after pending.
//   - Status with State orphaned follows state.WriteTxn.SetTaskStatus: applied unless
//     the observed state is already past it.
//
// UpdatedAt becomes the task's UpdatedAt when anything was applied.
type TaskUpdate struct {
	ID           string            `json:"id"`
	DesiredState model.TaskState   `json:"desired_state,omitempty"`
	NodeID       string            `json:"node_id,omitempty"`
	Status       *model.TaskStatus `json:"status,omitempty"`
	// Networks are the addresses of a task that is put on a node and holds none yet
	// (it waited for a free one); the leader's address book fills them in.
	Networks  []model.Attachment `json:"networks,omitempty"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// ServiceUpdate changes the service row.
type ServiceUpdate struct {
	// UpdateStatus replaces the service's update status.
	UpdateStatus model.UpdateStatus `json:"update_status"`
	// Rollback swaps Spec and PreviousSpec and adds one to SpecVersion: the automatic
	// rollback of a failed update. `service rollback` is the same write proposed by
	// the API, with UpdateStatus {rollback_started, "manually requested rollback",
	// StartedAt: now}; the orchestrator then drives it like this one.
	Rollback bool `json:"rollback,omitempty"`
}
