package control

import (
	"context"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// NodeTasks returns the tasks assigned to a node (by ID, hostname or unique ID
// prefix), by ID: the agent's watch. The answer's index is the highest modify index
// of those tasks, so a blocking query wakes only when one of this node's tasks is
// created or changes, not on every write to the task table: with thousands of nodes
// watching, a write must not wake them all. The deletion of a task (the reaper's, once
// the agent reported it stopped) does not answer a blocking query on its own.
func (c *Control) NodeTasks(ctx context.Context, nodeRef string, q api.Query) ([]*state.Task, api.QueryMeta, error) {
	n, err := resolveNode(c.st.State().ReadTxn(), nodeRef)
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var out []*state.Task
	idx, err := c.blocking(ctx, q, nil, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		tasks, err := tx.TasksByNode(ws, n.ID)
		if err != nil {
			return 0, err
		}
		out = tasks
		var idx uint64
		for _, t := range tasks {
			idx = max(idx, t.ModifyIndex)
		}
		return idx, nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	if out == nil {
		out = []*state.Task{}
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// reportable lists the states an agent may report: what it observes of a task from the
// moment it sees it. Pending and assigned are the scheduler's, remove a desired state,
// orphaned the orchestrator's verdict on a lost node.
func reportable(s state.TaskState) bool {
	switch s {
	case state.TaskAccepted, state.TaskPreparing, state.TaskStarting, state.TaskRunning,
		state.TaskComplete, state.TaskShutdown, state.TaskFailed, state.TaskRejected:
		return true
	}
	return false
}

// ReportTaskStatus records an agent's reports about tasks of its node (nodeID comes
// from the agent's certificate). Reports of many agents are written together, in few
// raft entries; each is applied only if its task is still assigned to that node and
// the state moves forward (state.WriteTxn.ReportTaskStatus). It returns once the
// reports are committed.
func (c *Control) ReportTaskStatus(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error {
	if len(reports) == 0 {
		return nil
	}
	batch := make([]store.TaskStatusReport, len(reports))
	for i, r := range reports {
		if r.TaskID == "" {
			return badRequest("report %d names no task", i+1)
		}
		if !reportable(r.Status.State) {
			return badRequest("task %s: an agent cannot report state %q", r.TaskID, r.Status.State)
		}
		batch[i] = store.TaskStatusReport{NodeID: nodeID, TaskID: r.TaskID, Status: r.Status}
	}
	return c.reports.submit(ctx, batch)
}

// batcher writes task status reports in group commits: while one entry is being
// written, the reports that arrive wait and go together into the next, up to max
// reports per entry. Raft batches concurrent entries on disk too, but each entry is
// still a write transaction on every manager; a thousand agents reporting at once
// cost one.
type batcher struct {
	c   *Control
	max int

	mu       sync.Mutex
	queue    []submission
	flushing bool
}

type submission struct {
	reports []store.TaskStatusReport
	done    chan error
}

func newBatcher(c *Control, max int) *batcher { return &batcher{c: c, max: max} }

func (b *batcher) submit(ctx context.Context, reports []store.TaskStatusReport) error {
	done := make(chan error, 1)
	b.mu.Lock()
	b.queue = append(b.queue, submission{reports, done})
	if !b.flushing {
		b.flushing = true
		// Its own goroutine: the first caller's context must not bound the others'
		// writes.
		go b.flush()
	}
	b.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) flush() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(b.queue) && (n == 0 || size+len(b.queue[n].reports) <= b.max) {
			size += len(b.queue[n].reports)
			n++
		}
		subs := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()

		all := make([]store.TaskStatusReport, 0, size)
		for _, s := range subs {
			all = append(all, s.reports...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.c.timeout)
		_, err := b.c.st.Apply(ctx, store.CmdTaskStatus, &store.TaskStatusBatch{Reports: all})
		cancel()
		if err != nil {
			b.c.logger.Warn("could not record task status reports", "reports", len(all), "error", err)
		}
		for _, s := range subs {
			s.done <- err
		}
	}
}
