package model

// TaskState is a task's state. Observed states only move forward, in the
// order of the constants (Swarm's order); desired states use the same values
// (running, shutdown, remove, complete for jobs).
type TaskState string

// Task states, in order.
const (
	TaskNew       TaskState = "new"
	TaskPending   TaskState = "pending"   // waiting for the scheduler
	TaskAssigned  TaskState = "assigned"  // given to a node
	TaskAccepted  TaskState = "accepted"  // the node's agent saw it
	TaskPreparing TaskState = "preparing" // pulling the image, making the namespace
	TaskStarting  TaskState = "starting"
	TaskRunning   TaskState = "running"
	TaskComplete  TaskState = "complete" // exited 0
	TaskShutdown  TaskState = "shutdown" // stopped on purpose
	TaskFailed    TaskState = "failed"
	TaskRejected  TaskState = "rejected" // the node could not run it
	TaskRemove    TaskState = "remove"   // desired state: delete once stopped
	TaskOrphaned  TaskState = "orphaned" // its node has been gone too long
)

// TaskStates lists every state in order.
func TaskStates() []TaskState {
	return []TaskState{TaskNew, TaskPending, TaskAssigned, TaskAccepted, TaskPreparing,
		TaskStarting, TaskRunning, TaskComplete, TaskShutdown, TaskFailed, TaskRejected,
		TaskRemove, TaskOrphaned}
}

// rank is the position of s in TaskStates, or -1 for an unknown state. A switch
// rather than a map so that the order is a constant, not package state.
func (s TaskState) rank() int {
	switch s {
	case TaskNew:
		return 0
	case TaskPending:
		return 1
	case TaskAssigned:
		return 2
	case TaskAccepted:
		return 3
	case TaskPreparing:
		return 4
	case TaskStarting:
		return 5
	case TaskRunning:
		return 6
	case TaskComplete:
		return 7
	case TaskShutdown:
		return 8
	case TaskFailed:
		return 9
	case TaskRejected:
		return 10
	case TaskRemove:
		return 11
	case TaskOrphaned:
		return 12
	}
	return -1
}

// Valid reports whether s is a known state.
func (s TaskState) Valid() bool { return s.rank() >= 0 }

// Compare returns -1, 0 or +1 as s comes before, is, or comes after o.
// Unknown states sort before every known one.
func (s TaskState) Compare(o TaskState) int {
	a, b := s.rank(), o.rank()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether s comes before o.
func (s TaskState) Before(o TaskState) bool { return s.Compare(o) < 0 }

// After reports whether s comes after o.
func (s TaskState) After(o TaskState) bool { return s.Compare(o) > 0 }

// Terminal reports whether a task in state s has stopped for good: every
// state after running is terminal.
func (s TaskState) Terminal() bool { return s.After(TaskRunning) }
