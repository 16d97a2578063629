package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/hashicorp/go-memdb"
)

func task(id, svc string, slot uint64, node string, st model.TaskState) *model.Task {
	return &model.Task{ID: id, ServiceID: svc, Slot: slot, NodeID: node, DesiredState: model.TaskRunning,
		Status: model.TaskStatus{State: st}}
}

func taskIDs(ts []*model.Task, err error) []string {
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	return ids(ts, func(t *model.Task) string { return t.ID })
}

// fired reports whether a watch set's channels fired, without waiting long: the
// channels under test are closed by Commit before it returns.
func fired(ws memdb.WatchSet) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	return ws.WatchCtx(ctx) == nil
}

func TestTaskSnapshotIsolation(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error {
		return w.UpsertTasks([]*model.Task{task("a", "s1", 1, "n1", model.TaskAssigned), task("b", "s1", 2, "n2", model.TaskAssigned)})
	})
	before := s.ReadTxn()
	snap := s.Snapshot()
	commit(t, s, 2, func(w *WriteTxn) error {
		if _, err := w.ReportTaskStatus("n1", "a", model.TaskStatus{State: model.TaskRunning}); err != nil {
			return err
		}
		moved := task("b", "s1", 3, "n1", model.TaskAssigned)
		if err := w.UpsertTask(moved); err != nil {
			return err
		}
		if err := w.UpsertTask(task("c", "s2", 1, "n2", model.TaskAssigned)); err != nil {
			return err
		}
		return w.DeleteTask("a")
	})
	for name, r := range map[string]*ReadTxn{"read txn": before, "snapshot": snap.ReadTxn()} {
		for _, c := range []struct {
			what      string
			got, want []string
		}{
			{"Tasks", taskIDs(r.Tasks(nil)), []string{"a", "b"}},
			{"TasksByService s1", taskIDs(r.TasksByService(nil, "s1")), []string{"a", "b"}},
			{"TasksBySlot s1/2", taskIDs(r.TasksBySlot(nil, "s1", 2)), []string{"b"}},
			{"TasksBySlot s1/3", taskIDs(r.TasksBySlot(nil, "s1", 3)), nil},
			{"TasksByNode n1", taskIDs(r.TasksByNode(nil, "n1")), []string{"a"}},
			{"TasksByNode n2", taskIDs(r.TasksByNode(nil, "n2")), []string{"b"}},
			{"TasksByService s2", taskIDs(r.TasksByService(nil, "s2")), nil},
		} {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("%s: %s = %v, want %v", name, c.what, c.got, c.want)
			}
		}
		if a, err := r.Task(nil, "a"); err != nil || a.Status.State != model.TaskAssigned {
			t.Errorf("%s: task a = %+v, %v", name, a, err)
		}
		if got := r.Index(TableTasks); got != 1 {
			t.Errorf("%s: task table index %d, want 1", name, got)
		}
		if got := r.NodeTasksIndex("n1"); got != 1 {
			t.Errorf("%s: NodeTasksIndex(n1) = %d, want 1", name, got)
		}
	}
	now := s.ReadTxn()
	if got := taskIDs(now.TasksByNode(nil, "n1")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after the commit TasksByNode(n1) = %v", got)
	}
	if got := taskIDs(now.TasksByNode(nil, "n2")); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after the commit TasksByNode(n2) = %v", got)
	}
	if got := taskIDs(now.TasksBySlot(nil, "s1", 3)); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after the commit TasksBySlot(s1, 3) = %v", got)
	}
	if _, err := now.Task(nil, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted task: %v", err)
	}
}

func TestTaskWriteAbort(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertTask(task("a", "s1", 1, "n1", model.TaskAssigned)) })
	w := s.WriteTxn(2)
	if err := w.UpsertTask(task("b", "s1", 2, "n1", model.TaskAssigned)); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteTask("a"); err != nil {
		t.Fatal(err)
	}
	// The transaction sees its own writes.
	if got := taskIDs(w.TasksByNode(nil, "n1")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("inside the transaction TasksByNode(n1) = %v", got)
	}
	w.Abort()
	if _, err := w.Tasks(nil); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("read after abort: %v", err)
	}
	if err := w.UpsertTask(task("c", "s1", 3, "n1", model.TaskAssigned)); !errors.Is(err, ErrTxnClosed) {
		t.Errorf("write after abort: %v", err)
	}
	r := s.ReadTxn()
	if got := taskIDs(r.Tasks(nil)); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after abort Tasks = %v", got)
	}
	if got := taskIDs(r.TasksByNode(nil, "n1")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after abort TasksByNode(n1) = %v", got)
	}
	if r.Index(TableTasks) != 1 || r.NodeTasksIndex("n1") != 1 {
		t.Errorf("after abort indexes %d and %d, want 1", r.Index(TableTasks), r.NodeTasksIndex("n1"))
	}
	// The next transaction starts from the committed table, not the aborted one.
	commit(t, s, 3, func(w *WriteTxn) error { return w.UpsertTask(task("d", "s1", 4, "n2", model.TaskAssigned)) })
	if got := taskIDs(s.ReadTxn().Tasks(nil)); !slices.Equal(got, []string{"a", "d"}) {
		t.Errorf("after the next commit Tasks = %v", got)
	}
}

func TestTaskIndexSemantics(t *testing.T) {
	s := newStore(t)
	commit(t, s, 10, func(w *WriteTxn) error {
		return w.UpsertTasks([]*model.Task{task("a", "s1", 1, "n1", model.TaskAssigned), task("b", "s1", 2, "n2", model.TaskAssigned)})
	})
	commit(t, s, 11, func(w *WriteTxn) error {
		return w.UpsertNode(&model.Node{ID: "x", Hostname: "x", Role: model.RoleWorker,
			Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}})
	})
	// A status report on n1's task moves n1's index, not n2's.
	commit(t, s, 12, func(w *WriteTxn) error {
		_, err := w.ReportTaskStatus("n1", "a", model.TaskStatus{State: model.TaskRunning})
		return err
	})
	r := s.ReadTxn()
	a, _ := r.Task(nil, "a")
	if a.CreateIndex != 10 || a.ModifyIndex != 12 {
		t.Errorf("task a Meta %+v, want created at 10, modified at 12", a.Meta)
	}
	if r.Index(TableTasks) != 12 || r.NodeTasksIndex("n1") != 12 || r.NodeTasksIndex("n2") != 10 || r.NodeTasksIndex("x") != 0 {
		t.Errorf("indexes: table %d, n1 %d, n2 %d, x %d", r.Index(TableTasks), r.NodeTasksIndex("n1"),
			r.NodeTasksIndex("n2"), r.NodeTasksIndex("x"))
	}
	// Moving a task moves both nodes; deleting one moves its node even though no
	// row carries the index.
	commit(t, s, 13, func(w *WriteTxn) error { return w.UpsertTask(task("b", "s1", 2, "n3", model.TaskAssigned)) })
	commit(t, s, 14, func(w *WriteTxn) error { return w.DeleteTask("a") })
	r = s.ReadTxn()
	for node, want := range map[string]uint64{"n1": 14, "n2": 13, "n3": 13} {
		if got := r.NodeTasksIndex(node); got != want {
			t.Errorf("NodeTasksIndex(%s) = %d, want %d", node, got, want)
		}
	}
	// A failed write or a report that does not apply moves nothing.
	commit(t, s, 15, func(w *WriteTxn) error {
		if applied, err := w.ReportTaskStatus("n1", "b", model.TaskStatus{State: model.TaskRunning}); applied || err != nil {
			return fmt.Errorf("report from the wrong node: applied %v, %v", applied, err)
		}
		if err := w.DeleteTask("missing"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete of a missing task: %v", err)
		}
		return nil
	})
	if r := s.ReadTxn(); r.Index(TableTasks) != 14 || r.NodeTasksIndex("n3") != 13 {
		t.Errorf("after writes that changed nothing: table %d, n3 %d", r.Index(TableTasks), r.NodeTasksIndex("n3"))
	}
	// Restore keeps the rows' Meta and rebuilds the nodes' indexes from them.
	restored := roundTrip(t, s)
	if got := restored.ReadTxn().NodeTasksIndex("n3"); got != 13 {
		t.Errorf("restored NodeTasksIndex(n3) = %d, want 13", got)
	}
}

func TestTasksByNodeWatchesOneNode(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error {
		return w.UpsertTasks([]*model.Task{task("a", "s1", 1, "n1", model.TaskAssigned), task("b", "s1", 2, "n2", model.TaskAssigned)})
	})
	watch := func(node string) memdb.WatchSet {
		ws := memdb.NewWatchSet()
		if _, err := s.ReadTxn().TasksByNode(ws, node); err != nil {
			t.Fatal(err)
		}
		return ws
	}
	ws1, ws2, ws3 := watch("n1"), watch("n2"), watch("n3")
	commit(t, s, 2, func(w *WriteTxn) error {
		_, err := w.ReportTaskStatus("n2", "b", model.TaskStatus{State: model.TaskRunning})
		return err
	})
	// Writes elsewhere in the store wake no agent either.
	commit(t, s, 3, func(w *WriteTxn) error { return w.UpsertService(&model.Service{ID: "s1", Name: "st_web", Stack: "st"}) })
	if fired(ws1) || fired(ws3) {
		t.Error("a write to n2's task woke the watchers of n1 or n3")
	}
	if !fired(ws2) {
		t.Error("a write to n2's task did not wake n2's watcher")
	}
	// A task assigned to n3 wakes n3.
	commit(t, s, 4, func(w *WriteTxn) error { return w.UpsertTask(task("c", "s1", 3, "n3", model.TaskAssigned)) })
	if !fired(ws3) || fired(ws1) {
		t.Errorf("assignment to n3: n3 woke %v, n1 woke %v", fired(ws3), fired(ws1))
	}
	// A reader whose view predates a commit, watching only after the commit, must
	// not wait for a change it already missed.
	stale := s.ReadTxn()
	commit(t, s, 5, func(w *WriteTxn) error { return w.DeleteTask("a") })
	ws := memdb.NewWatchSet()
	if _, err := stale.TasksByNode(ws, "n1"); err != nil {
		t.Fatal(err)
	}
	if !fired(ws) {
		t.Error("a watch registered after the change it missed does not fire")
	}
}

func TestTasksByNodeBlockingQuery(t *testing.T) {
	s := newStore(t)
	commit(t, s, 1, func(w *WriteTxn) error { return w.UpsertTask(task("a", "s1", 1, "n1", model.TaskAssigned)) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	type result struct {
		index uint64
		ids   []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		res.index, res.err = s.Blocking(ctx, 1, nil, func(r *ReadTxn, ws memdb.WatchSet) (uint64, error) {
			tasks, err := r.TasksByNode(ws, "n1")
			res.ids = taskIDs(tasks, err)
			return r.NodeTasksIndex("n1"), err
		})
		done <- res
	}()
	commit(t, s, 2, func(w *WriteTxn) error { return w.UpsertTask(task("b", "s1", 2, "n2", model.TaskAssigned)) })
	select {
	case res := <-done:
		t.Fatalf("a write to n2 answered n1's query: %+v", res)
	case <-time.After(20 * time.Millisecond):
	}
	commit(t, s, 3, func(w *WriteTxn) error { return w.DeleteTask("a") })
	res := <-done
	if res.err != nil || res.index != 3 || res.ids != nil {
		t.Errorf("after the delete: %+v", res)
	}
}

// roundTrip persists s and restores it.
func roundTrip(t *testing.T, s *Store) *Store {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTaskTableAgainstModel runs random task writes, in transactions that commit or
// abort, against a map, and checks every lister, the Meta of every row, the node
// indexes, and that a feed consumer that applies the changes ends with the same
// table.
func TestTaskTableAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	s := newStore(t)
	feed := s.Feed(1 << 20)
	defer feed.Close()
	committed := map[string]*model.Task{} // committed rows, by ID
	nodeIdx := map[string]uint64{}        // committed node indexes
	mirror := map[string]*model.Task{}    // what the feed consumer sees
	nodes := []string{"", "n1", "n2", "n3", "n4"}
	services := []string{"s1", "s2", "s10"}
	states := []model.TaskState{model.TaskPending, model.TaskAssigned, model.TaskRunning, model.TaskShutdown}
	var idx uint64
	for round := range 300 {
		idx++
		w := s.WriteTxn(idx)
		next := maps.Clone(committed)
		nextIdx := maps.Clone(nodeIdx)
		touch := func(node string) {
			if node != "" {
				nextIdx[node] = idx
			}
		}
		for range rng.IntN(40) {
			id := fmt.Sprintf("t%03d", rng.IntN(150))
			cur := next[id]
			switch op := rng.IntN(10); {
			case op < 5:
				row := task(id, services[rng.IntN(len(services))], uint64(rng.IntN(4)), nodes[rng.IntN(len(nodes))],
					states[rng.IntN(len(states))])
				if err := w.UpsertTask(row); err != nil {
					t.Fatal(err)
				}
				row.CreateIndex, row.ModifyIndex = idx, idx
				if cur != nil {
					row.CreateIndex = cur.CreateIndex
					touch(cur.NodeID)
				}
				touch(row.NodeID)
				next[id] = row
			case op < 8:
				st := model.TaskStatus{State: states[rng.IntN(len(states))], Message: fmt.Sprint(round)}
				node := nodes[rng.IntN(len(nodes))]
				applied, err := w.ReportTaskStatus(node, id, st)
				if err != nil {
					t.Fatal(err)
				}
				want := cur != nil && cur.NodeID == node && !cur.Status.State.Before(model.TaskAssigned) && !st.State.Before(cur.Status.State)
				if applied != want {
					t.Fatalf("report %s from %q: applied %v, want %v", id, node, applied, want)
				}
				if applied {
					row := *cur
					row.Status, row.ModifyIndex = st, idx
					next[id] = &row
					touch(row.NodeID)
				}
			default:
				err := w.DeleteTask(id)
				if (err == nil) != (cur != nil) {
					t.Fatalf("delete %s: %v", id, err)
				}
				if cur != nil {
					touch(cur.NodeID)
					delete(next, id)
				}
			}
		}
		checkTasks(t, &w.ReadTxn, next, nextIdx, nodes, services)
		if rng.IntN(5) == 0 {
			w.Abort()
			idx--
		} else {
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			committed, nodeIdx = next, nextIdx
		}
		checkTasks(t, s.ReadTxn(), committed, nodeIdx, nodes, services)
		evs, lost := feed.Take()
		if lost {
			t.Fatal("feed lost changes")
		}
		for _, ev := range evs {
			for _, c := range ev.Changes {
				before, _ := c.Before.(*model.Task)
				after, _ := c.After.(*model.Task)
				if before != nil && mirror[before.ID] != before {
					t.Fatalf("change of %s: Before is not the row the consumer had", before.ID)
				}
				if after != nil {
					mirror[after.ID] = after
				} else {
					delete(mirror, before.ID)
				}
			}
		}
		if !maps.Equal(mirror, currentRows(t, s)) {
			t.Fatalf("round %d: the feed consumer's table differs from the store's", round)
		}
	}
}

func currentRows(t *testing.T, s *Store) map[string]*model.Task {
	t.Helper()
	out := map[string]*model.Task{}
	all, err := s.ReadTxn().Tasks(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range all {
		out[task.ID] = task
	}
	return out
}

// checkTasks compares a read transaction's view of the task table with the committed.
func checkTasks(t *testing.T, r *ReadTxn, committed map[string]*model.Task, nodeIdx map[string]uint64, nodes, services []string) {
	t.Helper()
	sorted := slices.SortedFunc(maps.Values(committed), func(a, b *model.Task) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	pick := func(keep func(*model.Task) bool) []string {
		var out []string
		for _, task := range sorted {
			if keep(task) {
				out = append(out, task.ID)
			}
		}
		return out
	}
	all, err := r.Tasks(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(committed) {
		t.Fatalf("Tasks: %d rows, want %d", len(all), len(committed))
	}
	for i, got := range all {
		want := sorted[i]
		if got.ID != want.ID || got.ServiceID != want.ServiceID || got.Slot != want.Slot || got.NodeID != want.NodeID ||
			got.Status != want.Status || got.Meta != want.Meta {
			t.Fatalf("task %s = %+v, want %+v", want.ID, got, want)
		}
	}
	for _, svc := range services {
		var want []string
		for slot := range uint64(4) {
			bySlot := pick(func(t *model.Task) bool { return t.ServiceID == svc && t.Slot == slot })
			if got := taskIDs(r.TasksBySlot(nil, svc, slot)); !slices.Equal(got, bySlot) {
				t.Fatalf("TasksBySlot(%s, %d) = %v, want %v", svc, slot, got, bySlot)
			}
			want = append(want, bySlot...)
		}
		if got := taskIDs(r.TasksByService(nil, svc)); !slices.Equal(got, want) {
			t.Fatalf("TasksByService(%s) = %v, want %v", svc, got, want)
		}
	}
	for _, node := range nodes[1:] {
		want := pick(func(t *model.Task) bool { return t.NodeID == node })
		if got := taskIDs(r.TasksByNode(nil, node)); !slices.Equal(got, want) {
			t.Fatalf("TasksByNode(%s) = %v, want %v", node, got, want)
		}
		if got := r.NodeTasksIndex(node); got != nodeIdx[node] {
			t.Fatalf("NodeTasksIndex(%s) = %d, want %d", node, got, nodeIdx[node])
		}
	}
}

func TestIDKeyOrdersAsStrings(t *testing.T) {
	ids := []string{"", "a", "a0", "a00", "ab", "b", "0", "z", "s10", "s2", model.NewID(), model.NewID(),
		strings.Repeat("z", MaxIDLength), strings.Repeat("z", MaxIDLength-1) + "y", strings.Repeat("a", 9)}
	for _, a := range ids {
		ka, ok := idKeyOf(a)
		if !ok {
			t.Fatalf("idKeyOf(%q) refused an ID of %d bytes", a, len(a))
		}
		for _, b := range ids {
			kb, _ := idKeyOf(b)
			if got, want := ka.compare(kb), strings.Compare(a, b); got != want {
				t.Errorf("compare(%q, %q) = %d, strings say %d", a, b, got, want)
			}
		}
	}
	if _, ok := idKeyOf(strings.Repeat("x", MaxIDLength+1)); ok {
		t.Errorf("idKeyOf took an ID longer than %d bytes", MaxIDLength)
	}
}

func TestTaskIDLongerThanKeyIsRefused(t *testing.T) {
	long := strings.Repeat("x", MaxIDLength+1)
	s := newStore(t)
	for _, tc := range []struct {
		row   *model.Task
		field string
	}{
		{task(long, "s1", 1, "n1", model.TaskAssigned), "id"},
		{task("t1", long, 1, "n1", model.TaskAssigned), "service id"},
		{task("t1", "s1", 1, long, model.TaskAssigned), "node id"},
	} {
		w := s.WriteTxn(1)
		err := w.UpsertTask(tc.row)
		w.Abort()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field+` "`+long+`" is longer than`) {
			t.Errorf("%s too long: error %v, want ErrInvalid naming the field", tc.field, err)
		}
	}
	r := s.ReadTxn()
	if _, err := r.Task(nil, long); !errors.Is(err, ErrNotFound) {
		t.Errorf("Task(too long ID) = %v, want ErrNotFound", err)
	}
	if ts, err := r.TasksByNode(nil, long); err != nil || len(ts) != 0 {
		t.Errorf("TasksByNode(too long ID) = %v, %v; want none", ts, err)
	}
}
