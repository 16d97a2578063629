package state

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// WriteTxn is a write transaction for one raft entry. It embeds ReadTxn: its
// reads see its own writes. Nothing is visible to other readers before Commit.
//
// Every write stores a deep copy of its argument, with Meta set from the
// transaction's raft index (see the package documentation), and validates it
// first: a write that returns an error has changed nothing. Deletes of missing
// rows return ErrNotFound. No write cascades: deleting a service leaves its
// tasks to the reaper, deleting a node leaves its tasks to the orchestrator.
type WriteTxn struct {
	ReadTxn
	index uint64
	// touched lists the tables the transaction wrote (a few at most).
	touched []string
	// restoring turns off Meta and table-index bookkeeping: Restore writes
	// rows and indexes exactly as they were persisted.
	restoring bool
	// owner marks the task table nodes this transaction copied, which it may
	// change in place (btree.go).
	owner *owner
	// touchedNodes are the nodes whose tasks the transaction changed: Commit
	// wakes their watchers.
	touchedNodes map[string]struct{}
	// tracking: the transaction records its changes for the store's feeds
	// (see record). deleted: it deleted a row.
	tracking bool
	changes  []Change
	changeAt map[changeKey]int
	deleted  bool
}

type changeKey struct{ table, key string }

// row is what every table's row type implements.
type row interface {
	RowMeta() *model.Meta
	Key() string
}

// RaftIndex is the raft index the transaction writes at. (Index, from
// ReadTxn, is the index of the tables as the transaction sees them.)
func (w *WriteTxn) RaftIndex() uint64 { return w.index }

// Commit makes the transaction's writes visible, moves the table index of
// every table it wrote to the transaction's raft index, and wakes the watchers
// of what changed. After Commit the transaction is closed.
func (w *WriteTxn) Commit() error {
	if w.txn == nil {
		return fmt.Errorf("state: commit: %w", ErrTxnClosed)
	}
	for _, table := range w.touched {
		raw, err := w.txn.First(tableIndex, indexID, table)
		if err != nil {
			w.Abort()
			return fmt.Errorf("state: commit: read index of %s: %w", table, err)
		}
		// Raft indexes only grow; keeping the maximum makes a stray older
		// index unable to move a table backwards, which would make blocked
		// readers miss a change.
		if raw != nil && raw.(*tableIndexRow).Index >= w.index {
			continue
		}
		if err := w.txn.Insert(tableIndex, &tableIndexRow{Table: table, Index: w.index}); err != nil {
			w.Abort()
			return fmt.Errorf("state: commit: write index of %s: %w", table, err)
		}
	}
	s := w.store
	s.rootMu.Lock()
	w.txn.Commit()
	s.tasks = w.tasks
	s.rootMu.Unlock()
	w.txn = nil
	s.wakeNodes(w.touchedNodes)
	if w.tracking && len(w.touched) > 0 {
		s.publish(w.index, w.changes)
	}
	s.writeMu.Unlock()
	return nil
}

// Abort drops the transaction's writes. It is a no-op on a closed
// transaction, so it can always be deferred.
func (w *WriteTxn) Abort() {
	if w.txn != nil {
		w.txn.Abort()
		w.txn = nil
		w.store.writeMu.Unlock()
	}
}

// record notes a change for the feeds. A row changed twice keeps one place, that of
// its last change, with its first Before. Finding the earlier change takes a map,
// built only once a transaction may change a row twice: before that, a row is new to
// the transaction unless it was written at the transaction's index or deleted in it.
func (w *WriteTxn) record(table, key string, before, after any) {
	if !w.tracking {
		return
	}
	k := changeKey{table, key}
	again := w.changeAt != nil || w.deleted
	if r, ok := before.(row); ok && r.RowMeta().ModifyIndex == w.index {
		again = true
	}
	if again {
		if w.changeAt == nil {
			w.changeAt = make(map[changeKey]int, len(w.changes)+1)
			for i, c := range w.changes {
				w.changeAt[changeKey{c.Table, rowName(rowOf(c))}] = i
			}
		}
		if i, ok := w.changeAt[k]; ok {
			before = w.changes[i].Before
			w.changes[i] = Change{}
		}
		w.changeAt[k] = len(w.changes)
	}
	if after == nil {
		w.deleted = true
	}
	w.changes = append(w.changes, Change{Table: table, Before: before, After: after})
}

// rowOf is the row a change is about.
func rowOf(c Change) any {
	if c.After != nil {
		return c.After
	}
	return c.Before
}

func (w *WriteTxn) writable(table, key string) error {
	if w.txn == nil {
		return fmt.Errorf("state: %s %q: %w", table, key, ErrTxnClosed)
	}
	if w.index == 0 && !w.restoring {
		return fmt.Errorf("state: %s %q: write transaction opened without a raft index: %w", table, key, ErrInvalid)
	}
	return nil
}

func (w *WriteTxn) touch(table string) {
	if w.restoring || slices.Contains(w.touched, table) {
		return
	}
	w.touched = append(w.touched, table)
}

// put validates obj, checks its unique keys and inserts it. obj must be a
// private copy: it is stored as it is.
func (w *WriteTxn) put(table string, obj row) error {
	if err := w.writable(table, obj.Key()); err != nil {
		return err
	}
	if err := validate(obj); err != nil {
		return fmt.Errorf("state: %s %q: %w: %w", table, obj.Key(), ErrInvalid, err)
	}
	return w.insert(table, obj)
}

// insert is put for a row already validated.
func (w *WriteTxn) insert(table string, obj row) error { return w.insertOver(table, obj, nil) }

// insertOver is insert for a row that replaces existing, when the caller just read
// it (nil: look it up): the hot paths (task status reports, plan updates) then look
// the row up once, not twice.
func (w *WriteTxn) insertOver(table string, obj row, existing row) error {
	k := obj.Key()
	if err := w.writable(table, k); err != nil {
		return err
	}
	if t, ok := obj.(*model.Task); ok {
		w.putTask(t)
		return nil
	}
	if err := w.checkUnique(table, obj); err != nil {
		return err
	}
	if !w.restoring {
		if existing == nil {
			raw, err := w.txn.First(table, indexID, k)
			if err != nil {
				return fmt.Errorf("state: %s %q: %w", table, k, err)
			}
			if raw != nil {
				existing = raw.(row)
			}
		}
		m := obj.RowMeta()
		m.CreateIndex = w.index
		if existing != nil {
			m.CreateIndex = existing.RowMeta().CreateIndex
		}
		m.ModifyIndex = w.index
	}
	if err := w.txn.Insert(table, obj); err != nil {
		return fmt.Errorf("state: %s %q: %w", table, k, err)
	}
	w.touch(table)
	if existing == nil {
		// A nil interface, not a nil *T, for the feed's readers.
		w.record(table, k, nil, obj)
	} else {
		w.record(table, k, existing, obj)
	}
	return nil
}

// putTask stores a validated task row, which the transaction now owns. The row
// it replaces is found by the store rather than taken from the caller, so that
// the secondary indexes cannot be corrupted by a stale one.
func (w *WriteTxn) putTask(t *model.Task) {
	old, replaced := w.tasks.put(w.owner, t)
	if !w.restoring {
		// t is private to the transaction until Commit: setting its Meta after
		// storing it spares a second lookup. (old may be t itself, handed over
		// twice.)
		created := w.index
		if replaced {
			created = old.CreateIndex
		}
		t.CreateIndex, t.ModifyIndex = created, w.index
	}
	if replaced {
		if old.NodeID != t.NodeID {
			w.touchNode(old.NodeID, old)
		}
		w.touchNode(t.NodeID, t)
		w.record(TableTasks, t.ID, old, t)
	} else {
		w.touchNode(t.NodeID, t)
		w.record(TableTasks, t.ID, nil, t)
	}
	w.touch(TableTasks)
}

// touchNode moves the task index of node, which t is or was on.
func (w *WriteTxn) touchNode(node string, t *model.Task) {
	if node == "" {
		return
	}
	if w.restoring {
		// Deleted tasks are not in a snapshot: their latest row is the best
		// lower bound.
		if cur, _ := w.tasks.nodeIndex.get(node); t.ModifyIndex > cur {
			w.tasks.nodeIndex.set(w.owner, node, t.ModifyIndex)
		}
		return
	}
	if _, ok := w.touchedNodes[node]; ok {
		return
	}
	if w.touchedNodes == nil {
		w.touchedNodes = make(map[string]struct{})
	}
	w.touchedNodes[node] = struct{}{}
	w.tasks.nodeIndex.set(w.owner, node, w.index)
}

// checkUnique refuses a row whose unique secondary key another row holds.
// memdb does not: an insert would silently take the index entry over and
// leave the other row unreachable by that index.
func (w *WriteTxn) checkUnique(table string, obj row) error {
	var index, what string
	var args []any
	switch o := obj.(type) {
	case *model.Cluster:
		// The cluster is a singleton: another ID means another cluster.
		raw, err := w.txn.First(TableCluster, indexID)
		if err != nil {
			return fmt.Errorf("state: %s %q: %w", table, o.ID, err)
		}
		if raw != nil && raw.(*model.Cluster).ID != o.ID {
			return fmt.Errorf("state: %s %q: the store already holds cluster %q: %w",
				table, o.ID, raw.(*model.Cluster).ID, ErrConflict)
		}
		return nil
	case *model.Node:
		index, what, args = indexHostname, "hostname", []any{o.Hostname}
	case *model.Service:
		index, what, args = indexName, "name", []any{o.Name}
	case *model.Network:
		index, what, args = indexName, "name", []any{o.Name}
	case *model.Secret:
		index, what, args = indexName, "name and version", []any{o.Name, o.Version}
	case *model.Config:
		index, what, args = indexName, "name and version", []any{o.Name, o.Version}
	case *model.Volume:
		index, what, args = indexNodeName, "node and name", []any{o.Node, o.Name}
	default:
		return nil
	}
	raw, err := w.txn.First(table, index, args...)
	if err != nil {
		return fmt.Errorf("state: %s %q: %w", table, obj.Key(), err)
	}
	if raw != nil && raw.(row).Key() != obj.Key() {
		return fmt.Errorf("state: %s %q: %s %q already belongs to %q: %w",
			table, obj.Key(), what, key(args), raw.(row).Key(), ErrConflict)
	}
	return nil
}

// del deletes the row of table with the given primary key.
func (w *WriteTxn) del(table, k string) error {
	if err := w.writable(table, k); err != nil {
		return err
	}
	if table == TableTasks {
		old, ok := w.tasks.del(w.owner, k)
		if !ok {
			return fmt.Errorf("state: delete %s %q: %w", table, k, ErrNotFound)
		}
		w.touchNode(old.NodeID, old)
		w.touch(table)
		w.record(table, k, old, nil)
		return nil
	}
	raw, err := w.txn.First(table, indexID, k)
	if err != nil {
		return fmt.Errorf("state: delete %s %q: %w", table, k, err)
	}
	if raw == nil {
		return fmt.Errorf("state: delete %s %q: %w", table, k, ErrNotFound)
	}
	if err := w.txn.Delete(table, raw); err != nil {
		return fmt.Errorf("state: delete %s %q: %w", table, k, err)
	}
	w.touch(table)
	w.record(table, k, raw, nil)
	return nil
}

// nilRow is the error for a nil argument.
func nilRow(table string) error {
	return fmt.Errorf("state: %s: nil row: %w", table, ErrInvalid)
}

// ---------------------------------------------------------------------------
// Upserts and deletes, one pair per table.

// UpsertCluster writes the cluster row. There is one: writing a row with
// another ID than the stored one fails with ErrConflict.
func (w *WriteTxn) UpsertCluster(c *model.Cluster) error {
	if c == nil {
		return nilRow(TableCluster)
	}
	return w.put(TableCluster, c.Copy())
}

// DeleteCluster deletes the cluster row.
func (w *WriteTxn) DeleteCluster(id string) error { return w.del(TableCluster, id) }

// UpsertNode writes a node. Hostnames are unique.
func (w *WriteTxn) UpsertNode(n *model.Node) error {
	if n == nil {
		return nilRow(TableNodes)
	}
	return w.put(TableNodes, n.Copy())
}

// DeleteNode deletes a node.
func (w *WriteTxn) DeleteNode(id string) error { return w.del(TableNodes, id) }

// UpsertSource writes a source, keeping only the last SourceHistoryLimit
// records of its history.
func (w *WriteTxn) UpsertSource(s *model.Source) error {
	if s == nil {
		return nilRow(TableSources)
	}
	c := s.Copy()
	if n := len(c.History); n > model.SourceHistoryLimit {
		c.History = c.History[n-model.SourceHistoryLimit:]
	}
	return w.put(TableSources, c)
}

// DeleteSource deletes a source.
func (w *WriteTxn) DeleteSource(name string) error { return w.del(TableSources, name) }

// UpsertStack writes a stack. The content of the spec's secrets and configs
// is not stored (it lives in the Secret and Config tables).
func (w *WriteTxn) UpsertStack(s *model.Stack) error {
	if s == nil {
		return nilRow(TableStacks)
	}
	c := s.Copy()
	if c.Spec != nil {
		for _, sec := range c.Spec.Secrets {
			if sec != nil {
				sec.Data = nil
			}
		}
		for _, cfg := range c.Spec.Configs {
			if cfg != nil {
				cfg.Data = nil
			}
		}
	}
	return w.put(TableStacks, c)
}

// DeleteStack deletes a stack (not its services).
func (w *WriteTxn) DeleteStack(name string) error { return w.del(TableStacks, name) }

// UpsertService writes a service. Names are unique.
func (w *WriteTxn) UpsertService(s *model.Service) error {
	if s == nil {
		return nilRow(TableServices)
	}
	return w.put(TableServices, s.Copy())
}

// DeleteService deletes a service (not its tasks).
func (w *WriteTxn) DeleteService(id string) error { return w.del(TableServices, id) }

// UpsertTask writes a task.
func (w *WriteTxn) UpsertTask(t *model.Task) error {
	if t == nil {
		return nilRow(TableTasks)
	}
	return w.put(TableTasks, t.Copy())
}

// UpsertTasks writes a batch of tasks (the scheduler's assignments, the
// agents' status reports). The whole batch is validated first, so an invalid
// task fails the call before any task is written.
func (w *WriteTxn) UpsertTasks(tasks []*model.Task) error {
	copies := make([]*model.Task, len(tasks))
	for i, t := range tasks {
		if t == nil {
			return fmt.Errorf("state: %s: batch entry %d: nil row: %w", TableTasks, i, ErrInvalid)
		}
		if err := validateTask(t); err != nil {
			return fmt.Errorf("state: %s %q: %w: %w", TableTasks, t.ID, ErrInvalid, err)
		}
		copies[i] = t.Copy()
	}
	for _, t := range copies {
		if err := w.insert(TableTasks, t); err != nil {
			return err
		}
	}
	return nil
}

// PutTasks writes a batch of tasks that the caller hands over: they are stored as
// they are, without the copy UpsertTasks makes, so the caller must not touch them
// afterwards. It is for the FSM, whose rows come fresh from decoding a raft entry,
// where a million-task cluster would otherwise pay for a copy it never needs. The
// whole batch is validated first.
func (w *WriteTxn) PutTasks(tasks []*model.Task) error {
	for i, t := range tasks {
		if t == nil {
			return fmt.Errorf("state: %s: batch entry %d: nil row: %w", TableTasks, i, ErrInvalid)
		}
		if err := validateTask(t); err != nil {
			return fmt.Errorf("state: %s %q: %w: %w", TableTasks, t.ID, ErrInvalid, err)
		}
	}
	for _, t := range tasks {
		if err := w.insert(TableTasks, t); err != nil {
			return err
		}
	}
	return nil
}

// PutTask is PutTasks for one task.
func (w *WriteTxn) PutTask(t *model.Task) error {
	if t == nil {
		return nilRow(TableTasks)
	}
	return w.put(TableTasks, t)
}

// DeleteTask deletes a task.
func (w *WriteTxn) DeleteTask(id string) error { return w.del(TableTasks, id) }

// DeleteTasks deletes a batch of tasks (the reaper's). Every task must exist;
// the first missing one fails the call with ErrNotFound before anything is
// deleted. Repeated IDs are deleted once.
func (w *WriteTxn) DeleteTasks(ids []string) error {
	seen := make(map[string]struct{}, len(ids))
	unique := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		unique = append(unique, id)
		if _, err := w.Task(nil, id); err != nil {
			return fmt.Errorf("state: delete: %w", err)
		}
	}
	for _, id := range unique {
		if err := w.del(TableTasks, id); err != nil {
			return err
		}
	}
	return nil
}

// UpsertNetwork writes a network. Names are unique.
func (w *WriteTxn) UpsertNetwork(n *model.Network) error {
	if n == nil {
		return nilRow(TableNetworks)
	}
	return w.put(TableNetworks, n.Copy())
}

// DeleteNetwork deletes a network.
func (w *WriteTxn) DeleteNetwork(id string) error { return w.del(TableNetworks, id) }

// UpsertSecret writes one version of a secret. (Name, Version) is unique.
func (w *WriteTxn) UpsertSecret(s *model.Secret) error {
	if s == nil {
		return nilRow(TableSecrets)
	}
	return w.put(TableSecrets, s.Copy())
}

// DeleteSecret deletes one version of a secret, by ID.
func (w *WriteTxn) DeleteSecret(id string) error { return w.del(TableSecrets, id) }

// UpsertConfig writes one version of a config. (Name, Version) is unique.
func (w *WriteTxn) UpsertConfig(c *model.Config) error {
	if c == nil {
		return nilRow(TableConfigs)
	}
	return w.put(TableConfigs, c.Copy())
}

// DeleteConfig deletes one version of a config, by ID.
func (w *WriteTxn) DeleteConfig(id string) error { return w.del(TableConfigs, id) }

// UpsertVolume writes a volume record. (Node, Name) is unique.
func (w *WriteTxn) UpsertVolume(v *model.Volume) error {
	if v == nil {
		return nilRow(TableVolumes)
	}
	return w.put(TableVolumes, v.Copy())
}

// DeleteVolume deletes a volume record.
func (w *WriteTxn) DeleteVolume(id string) error { return w.del(TableVolumes, id) }

// ---------------------------------------------------------------------------
// Targeted writes: the FSM commands that change a field or two of a row.

// SetNodeLabels adds (or overwrites) the labels in add, then deletes the keys
// in remove, like `node update --label-add/--label-rm`. Removing a label the
// node does not have is not an error.
func (w *WriteTxn) SetNodeLabels(id string, add map[string]string, remove []string) error {
	for k := range add {
		if k == "" {
			return fmt.Errorf("state: %s %q: %w: empty label key", TableNodes, id, ErrInvalid)
		}
	}
	n, err := w.Node(nil, id)
	if err != nil {
		return err
	}
	c := n.Copy()
	if len(add) > 0 && c.Labels == nil {
		c.Labels = make(map[string]string, len(add))
	}
	for k, v := range add {
		c.Labels[k] = v
	}
	for _, k := range remove {
		delete(c.Labels, k)
	}
	return w.put(TableNodes, c)
}

// SetNodeAvailability sets a node's availability.
func (w *WriteTxn) SetNodeAvailability(id string, a model.NodeAvailability) error {
	if !a.Valid() {
		return fmt.Errorf("state: %s %q: %w: unknown availability %q", TableNodes, id, ErrInvalid, a)
	}
	n, err := w.Node(nil, id)
	if err != nil {
		return err
	}
	c := n.Copy()
	c.Availability = a
	return w.put(TableNodes, c)
}

// SetNodeRole changes a node's role (`node promote|demote`). A manager gets a
// ManagerStatus with the node's address as its raft address; a worker loses
// it. Reachability is written as "reachable": what readers show is worked
// out from raft and heartbeats when they answer.
func (w *WriteTxn) SetNodeRole(id string, role model.NodeRole) error {
	if !role.Valid() {
		return fmt.Errorf("state: %s %q: %w: unknown role %q", TableNodes, id, ErrInvalid, role)
	}
	n, err := w.Node(nil, id)
	if err != nil {
		return err
	}
	c := n.Copy()
	c.Role = role
	switch {
	case role == model.RoleWorker:
		c.ManagerStatus = nil
	case c.ManagerStatus == nil:
		c.ManagerStatus = &model.ManagerStatus{Reachability: model.ReachabilityReachable, Addr: c.Addr}
	}
	return w.put(TableNodes, c)
}

// SetNodeStatus sets a node's observed status (the leader writes only
// transitions, such as ready -> down).
func (w *WriteTxn) SetNodeStatus(id string, st model.NodeStatus) error {
	if !st.State.Valid() {
		return fmt.Errorf("state: %s %q: %w: unknown node state %q", TableNodes, id, ErrInvalid, st.State)
	}
	n, err := w.Node(nil, id)
	if err != nil {
		return err
	}
	c := n.Copy()
	c.Status = st
	return w.put(TableNodes, c)
}

// SetNodeEngine records the berth a node reports it runs.
func (w *WriteTxn) SetNodeEngine(id string, e model.NodeEngine) error {
	n, err := w.Node(nil, id)
	if err != nil {
		return err
	}
	c := n.Copy()
	c.Engine = e
	return w.put(TableNodes, c)
}

// SetTaskStatus records a task's observed status. Observed states only move
// forward: a report older than the stored state (a status update that lost a
// race with a later one) is ignored, and applied is false. A report in the
// same state is applied (its message may be new). UpdatedAt becomes the
// report's timestamp when that is later.
func (w *WriteTxn) SetTaskStatus(id string, st model.TaskStatus) (applied bool, err error) {
	if !st.State.Valid() {
		return false, fmt.Errorf("state: %s %q: %w: unknown task state %q", TableTasks, id, ErrInvalid, st.State)
	}
	t, err := w.Task(nil, id)
	if err != nil {
		return false, err
	}
	if st.State.Before(t.Status.State) {
		return false, nil
	}
	// A shallow copy: the slices it shares with t are not changed, here or
	// anywhere, once stored.
	c := new(model.Task)
	*c = *t
	c.Status = st
	if st.Timestamp.After(c.UpdatedAt) {
		c.UpdatedAt = st.Timestamp
	}
	if err := w.put(TableTasks, c); err != nil {
		return false, err
	}
	return true, nil
}

// ReportTaskStatus records a status reported by the agent of node nodeID, with
// SetTaskStatus's forward-only rule. A report is ignored (applied is false, no
// error) when the task is gone, is not assigned to that node, or has not reached
// the node yet (its observed state is before assigned: a pending global task names
// its node, but the node's agent has nothing to run). Agents report
// asynchronously and their reports can arrive after the orchestrator moved on;
// none of that is an error.
func (w *WriteTxn) ReportTaskStatus(nodeID, id string, st model.TaskStatus) (applied bool, err error) {
	if !st.State.Valid() {
		return false, fmt.Errorf("state: %s %q: %w: unknown task state %q", TableTasks, id, ErrInvalid, st.State)
	}
	if err := w.writable(TableTasks, id); err != nil {
		return false, err
	}
	// The hot path of a million-task cluster: one search finds the row and
	// stores its successor (keys unchanged, so byID alone).
	var prev, next *model.Task
	w.tasks.byID.update(w.owner, id, func(t *model.Task) (*model.Task, bool) {
		if t.NodeID != nodeID || t.Status.State.Before(model.TaskAssigned) || st.State.Before(t.Status.State) {
			return t, false
		}
		// A shallow copy, as in SetTaskStatus.
		c := new(model.Task)
		*c = *t
		c.Status = st
		if st.Timestamp.After(c.UpdatedAt) {
			c.UpdatedAt = st.Timestamp
		}
		if err = validateTask(c); err != nil {
			return t, false
		}
		c.ModifyIndex = w.index
		prev, next = t, c
		return c, true
	})
	if err != nil {
		return false, fmt.Errorf("state: %s %q: %w: %w", TableTasks, id, ErrInvalid, err)
	}
	if next == nil {
		return false, nil
	}
	w.touchNode(next.NodeID, next)
	w.record(TableTasks, id, prev, next)
	w.touch(TableTasks)
	return true, nil
}

// ReplaceTask writes next over cur, the task row the caller just read (the FSM's
// plan updates): next is stored as it is and must not be touched afterwards; its
// Meta is set as for every write.
func (w *WriteTxn) ReplaceTask(cur, next *model.Task) error {
	if cur == nil || next == nil || cur.ID != next.ID {
		return fmt.Errorf("state: %s: replace needs the current row and a row of the same ID: %w", TableTasks, ErrInvalid)
	}
	if err := validateTask(next); err != nil {
		return fmt.Errorf("state: %s %q: %w: %w", TableTasks, next.ID, ErrInvalid, err)
	}
	return w.insertOver(TableTasks, next, cur)
}

// ---------------------------------------------------------------------------
// Validation

// validate reports what is wrong with a row, in words.
func validate(r row) error {
	switch r := r.(type) {
	case *model.Cluster:
		return validateCluster(r)
	case *model.Node:
		return validateNode(r)
	case *model.Source:
		return validateSource(r)
	case *model.Stack:
		return validateStack(r)
	case *model.Service:
		return validateService(r)
	case *model.Task:
		return validateTask(r)
	case *model.Network:
		return validateNetwork(r)
	case *model.Secret:
		return validateSecret(r)
	case *model.Config:
		return validateConfig(r)
	case *model.Volume:
		return validateVolume(r)
	}
	return fmt.Errorf("a %T is not a row", r)
}

// problems joins the non-nil errors into one, on one line: these messages end
// up in API answers and logs, where errors.Join's newlines read badly.
func problems(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// keyField checks a field that an index is built on: memdb cannot index an
// empty string, and a NUL byte would collide with the index's terminator.
func keyField(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty", name)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte", name)
	}
	return nil
}

// idField checks the ID of a task, service or node: the task table holds them
// inline (idKey).
func idField(name, v string) error {
	if len(v) > MaxIDLength {
		return fmt.Errorf("%s %q is longer than %d bytes", name, v, MaxIDLength)
	}
	return keyField(name, v)
}

func optionalIDField(name, v string) error {
	if v == "" {
		return nil
	}
	return idField(name, v)
}

func optionalKeyField(name, v string) error {
	if v == "" {
		return nil
	}
	return keyField(name, v)
}

func validateCluster(c *model.Cluster) error { return keyField("id", c.ID) }

func validateNode(n *model.Node) error {
	var reach error
	if n.ManagerStatus != nil {
		reach = known("reachability", n.ManagerStatus.Reachability)
	}
	return problems(idField("id", n.ID), keyField("hostname", n.Hostname),
		known("role", n.Role), known("availability", n.Availability),
		known("node state", n.Status.State), reach)
}

func validateSource(s *model.Source) error {
	return problems(keyField("name", s.Name), known("kind", s.Kind), known("sync status", s.Status))
}

func validateStack(s *model.Stack) error {
	var specName error
	if s.Spec != nil && s.Spec.Name != "" && s.Spec.Name != s.Name {
		specName = fmt.Errorf("spec is for stack %q", s.Spec.Name)
	}
	return problems(keyField("name", s.Name), optionalKeyField("source", s.Source), specName)
}

func validateService(s *model.Service) error {
	var name error
	if s.Spec.Name != "" && s.Name != spec.FullName(s.Stack, s.Spec.Name) {
		name = fmt.Errorf("name %q is not %q", s.Name, spec.FullName(s.Stack, s.Spec.Name))
	}
	return problems(idField("id", s.ID), keyField("name", s.Name), optionalKeyField("stack", s.Stack),
		name, known("update state", s.UpdateStatus.State))
}

func validateTask(t *model.Task) error {
	return problems(idField("id", t.ID), idField("service id", t.ServiceID),
		optionalIDField("node id", t.NodeID),
		known("desired state", t.DesiredState), known("task state", t.Status.State))
}

func validateNetwork(n *model.Network) error {
	return problems(keyField("id", n.ID), keyField("name", n.Name))
}

func validateSecret(s *model.Secret) error {
	return problems(keyField("id", s.ID), keyField("name", s.Name), version(s.Version))
}

func validateConfig(c *model.Config) error {
	return problems(keyField("id", c.ID), keyField("name", c.Name), version(c.Version))
}

func version(v uint64) error {
	if v == 0 {
		return errors.New("version is 0 (versions start at 1)")
	}
	return nil
}

// known checks an enumerated value.
func known[E interface {
	~string
	Valid() bool
}](what string, v E) error {
	if v.Valid() {
		return nil
	}
	return fmt.Errorf("unknown %s %q", what, string(v))
}

func validateVolume(v *model.Volume) error {
	return problems(keyField("id", v.ID), keyField("node", v.Node), keyField("name", v.Name))
}
