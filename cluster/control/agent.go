package control

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// NodeTasks returns the tasks assigned to a node (by ID, hostname or unique ID
// prefix), by ID: the agent's watch. The answer's index is the raft index of the last
// change to this node's tasks (state.ReadTxn.NodeTasksIndex), so a blocking query
// wakes only when one of them is created, changed or deleted, not on every write to
// the task table: with thousands of nodes watching, a write must not wake them all.
// The deletion matters to the agent: it removes the task's logs then.
func (c *Control) NodeTasks(ctx context.Context, nodeRef string, q api.Query) ([]*model.Task, api.QueryMeta, error) {
	n, err := resolveNode(c.st.State().ReadTxn(), nodeRef)
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var out []*model.Task
	idx, err := c.blocking(ctx, q, nil, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		tasks, err := tx.TasksByNode(ws, n.ID)
		if err != nil {
			return 0, err
		}
		out = tasks
		return tx.NodeTasksIndex(n.ID), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	if out == nil {
		out = []*model.Task{}
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// reportable lists the states an agent may report: what it observes of a task from the
// moment it sees it. Pending and assigned are the scheduler's, remove a desired state,
// orphaned the orchestrator's verdict on a lost node.
func reportable(s model.TaskState) bool {
	switch s {
	case model.TaskAccepted, model.TaskPreparing, model.TaskStarting, model.TaskRunning,
		model.TaskComplete, model.TaskShutdown, model.TaskFailed, model.TaskRejected:
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
	batch := make([]command.TaskStatusReport, len(reports))
	for i, r := range reports {
		if r.TaskID == "" {
			return badRequest("report %d names no task", i+1)
		}
		if !reportable(r.Status.State) {
			return badRequest("task %s: an agent cannot report state %q", r.TaskID, r.Status.State)
		}
		batch[i] = command.TaskStatusReport{NodeID: nodeID, TaskID: r.TaskID, Status: r.Status}
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
	reports []command.TaskStatusReport
	done    chan error
}

func newBatcher(c *Control, max int) *batcher { return &batcher{c: c, max: max} }

func (b *batcher) submit(ctx context.Context, reports []command.TaskStatusReport) error {
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

		all := make([]command.TaskStatusReport, 0, size)
		for _, s := range subs {
			all = append(all, s.reports...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.c.timeout)
		_, err := b.c.st.Apply(ctx, command.CmdTaskStatus, &command.TaskStatusBatch{Reports: all})
		cancel()
		if err != nil {
			b.c.logger.Warn("could not record task status reports", "reports", len(all), "error", err)
		}
		for _, s := range subs {
			s.done <- err
		}
	}
}

// TaskRuntime resolves what an agent needs to run a task. nodeID is the caller's
// node (from its certificate); a task assigned to another node is refused, so that a
// node receives only the secrets of its own tasks. An empty nodeID is the local
// socket, whose caller administers the node already.
func (c *Control) TaskRuntime(_ context.Context, nodeID, taskID string) (*api.TaskRuntime, error) {
	tx := c.st.State().ReadTxn()
	t, err := tx.Task(nil, taskID)
	if err != nil {
		return nil, err
	}
	if nodeID != "" && t.NodeID != nodeID {
		return nil, fmt.Errorf("%w: task %s is not assigned to node %s", ca.ErrForbidden, taskID, nodeID)
	}
	svc, err := tx.Service(nil, t.ServiceID)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", taskID, err)
	}
	sp, objects := &svc.Spec, svc.Objects
	switch {
	case t.SpecHash == "" || t.SpecHash == orchestrator.TaskHash(svc):
	case t.SpecHash == orchestrator.PreviousTaskHash(svc):
		sp, objects = svc.PreviousSpec, svc.PreviousObjects
	default:
		return nil, fmt.Errorf("%w: task %s was made from a spec service %s no longer has", api.ErrTaskOutdated, t.Name(), svc.Name)
	}
	out := &api.TaskRuntime{Task: t, Stack: svc.Stack, Spec: *sp}
	stack, err := command.ServiceStack(tx, svc, sp)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", taskID, err)
	}
	resolve := func(kind string, refs []spec.FileReference, objs map[string]*spec.FileObject,
		version func(name string, v uint64) ([]byte, error)) ([]api.RuntimeFile, error) {
		var files []api.RuntimeFile
		for _, r := range refs {
			o := objs[r.Source]
			if o == nil {
				return nil, fmt.Errorf("task %s: %s %s is not defined by stack %s", taskID, kind, r.Source, svc.Stack)
			}
			v, ok := objects[model.ObjectKey(kind, o.Name)]
			if !ok {
				return nil, fmt.Errorf("task %s: no version of %s %s is pinned", taskID, kind, o.Name)
			}
			data, err := version(o.Name, v)
			if err != nil {
				return nil, fmt.Errorf("task %s: %s %s version %d: %w", taskID, kind, o.Name, v, err)
			}
			files = append(files, api.RuntimeFile{FileReference: r, Name: o.Name, Version: v, Data: data})
		}
		return files, nil
	}
	secrets := map[string]*spec.FileObject{}
	for k, s := range stack.Secrets {
		secrets[k] = &s.FileObject
	}
	if out.Secrets, err = resolve(command.KindSecret, sp.Secrets, secrets, func(name string, v uint64) ([]byte, error) {
		s, err := tx.SecretVersion(nil, name, v)
		if err != nil {
			return nil, err
		}
		return s.Data, nil
	}); err != nil {
		return nil, err
	}
	configs := map[string]*spec.FileObject{}
	for k, cf := range stack.Configs {
		configs[k] = &cf.FileObject
	}
	if out.Configs, err = resolve(command.KindConfig, sp.Configs, configs, func(name string, v uint64) ([]byte, error) {
		cf, err := tx.ConfigVersion(nil, name, v)
		if err != nil {
			return nil, err
		}
		return cf.Data, nil
	}); err != nil {
		return nil, err
	}
	for _, m := range sp.Mounts {
		if m.Type != spec.MountVolume || m.Source == "" {
			continue
		}
		name := spec.FullName(svc.Stack, m.Source)
		if v := stack.Volumes[m.Source]; v != nil && v.Name != "" {
			name = v.Name
		}
		if out.Volumes == nil {
			out.Volumes = map[string]string{}
		}
		out.Volumes[m.Source] = name
	}
	for _, a := range t.Networks {
		n, err := tx.Network(nil, a.Network)
		if err != nil {
			return nil, fmt.Errorf("task %s: network %s: %w", taskID, a.Network, err)
		}
		out.Networks = append(out.Networks, n)
	}
	return out, nil
}

// ResolveTask finds a task by ID, unique ID prefix or name: `web_api.1` is the
// newest task of the slot, `web_api.<node ID>` that of a global service on the node.
func (c *Control) ResolveTask(ref string) (*model.Task, error) {
	if ref == "" {
		return nil, badRequest("no task given")
	}
	tx := c.st.State().ReadTxn()
	t, n, err := state.LookupRef(ref,
		func(id string) (*model.Task, error) { return tx.Task(nil, id) },
		func(name string) (*model.Task, error) { return taskByName(tx, name) },
		func() ([]*model.Task, error) { return tx.Tasks(nil) },
		func(t *model.Task) string { return t.ID })
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, &notFoundError{"task", ref}
	case n > 1:
		return nil, badRequest("task %q is ambiguous: %d task IDs start with it; give more of the ID", ref, n)
	}
	return t, nil
}

// taskByName resolves `<service>.<slot>` and `<service>.<node ID>`.
func taskByName(tx *state.ReadTxn, name string) (*model.Task, error) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return nil, state.ErrNotFound
	}
	svc, err := tx.ServiceByName(nil, name[:i])
	if err != nil {
		return nil, err
	}
	var tasks []*model.Task
	if slot, perr := strconv.ParseUint(name[i+1:], 10, 64); perr == nil {
		tasks, err = tx.TasksBySlot(nil, svc.ID, slot)
	} else {
		var all []*model.Task
		all, err = tx.TasksByService(nil, svc.ID)
		for _, t := range all {
			if t.Slot == 0 && t.NodeID == name[i+1:] {
				tasks = append(tasks, t)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	var newest *model.Task
	for _, t := range tasks {
		if newest == nil || t.CreateIndex > newest.CreateIndex {
			newest = t
		}
	}
	if newest == nil {
		return nil, state.ErrNotFound
	}
	return newest, nil
}
