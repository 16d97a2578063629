package orchestrator

import (
	"slices"
	"time"

	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// Task is a task row as the orchestrator reads and writes it: the state row plus the
// three fields this package needs state.Task to gain (see the package documentation,
// "Fields for cluster/state"). They live here until cluster/state has them; then Task
// becomes an alias of state.Task and the code reading t.SpecHash, t.NotBefore and
// t.Restarts stays as it is.
type Task struct {
	*state.Task
	// SpecHash is TaskSpecHash of the spec the task was made from. It tells whether a
	// task is out of date by content, not by version: a change of replicas does not
	// restart anything, a rollback finds the old tasks up to date again, and changes
	// that arrive faster than the orchestrator runs are judged correctly. Empty (rows
	// written before the field existed) falls back to comparing SpecVersion.
	SpecHash string
	// NotBefore is when the agent may start the task at the earliest: the restart
	// delay. The task is placed at once, so the node can prepare it meanwhile.
	NotBefore time.Time
	// Restarts is the restart supervisor's memory for the task's slot, handed from
	// each task to its replacement. Keeping it in the replicated row (Swarm keeps it in
	// the leader's memory) is what makes max_attempts survive a leader change and the
	// history reaper.
	Restarts Restarts
}

// Restarts counts the restarts of one slot (or one node's task of a global service)
// since its spec last changed.
type Restarts struct {
	// Count is the number of restarts; it is what max_attempts is checked against
	// when the restart policy has no window.
	Count uint64 `json:"count,omitempty"`
	// Recent holds the times of the latest restarts, oldest first, at most
	// max_attempts of them and none older than the window. It is kept only when the
	// policy has both max_attempts and a window.
	Recent []time.Time `json:"recent,omitempty"`
}

func (r Restarts) clone() Restarts {
	return Restarts{Count: r.Count, Recent: slices.Clone(r.Recent)}
}

// Node is a node row plus the one field this package needs state.NodeStatus to gain.
type Node struct {
	*state.Node
	// StatusSince is when Status.State last changed, set by whoever proposes the
	// transition (the leader's heartbeat monitor for ready -> down). The down grace
	// period and orphaning count from it. Zero means unknown: a down node is then
	// treated as having been down for longer than any grace period, which is what a
	// leader that just took over and never saw the node up should do.
	StatusSince time.Time
}

// WrapTasks wraps state rows, for callers whose rows do not carry the new fields yet.
func WrapTasks(tasks []*state.Task) []*Task {
	out := make([]*Task, len(tasks))
	for i, t := range tasks {
		out[i] = &Task{Task: t}
	}
	return out
}

// WrapNodes wraps state rows, for callers whose rows do not carry the new field yet.
func WrapNodes(nodes []*state.Node) []Node {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		out[i] = Node{Node: n}
	}
	return out
}

// TaskSpecHash hashes the part of a service's spec that its tasks are made from. It
// leaves out what only the orchestrator reads: the replica count, the update and
// rollback configs, the restart policy and the service's own labels. Changing those
// must not restart containers (Swarm restarts them for a new restart policy; berth
// does not). The agent should label containers with this hash (io.berth.spec-hash),
// so that its drift check and the orchestrator agree on what "changed" means.
func TaskSpecHash(s *spec.Service) string {
	c := *s // shallow: only fields of the Deploy value copy are replaced below
	c.Deploy.Replicas = nil
	c.Deploy.UpdateConfig = nil
	c.Deploy.RollbackConfig = nil
	c.Deploy.RestartPolicy = nil
	c.Deploy.Labels = nil
	return c.Hash()
}
