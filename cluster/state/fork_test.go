package state

import (
	"errors"
	"github.com/berthd/berth/cluster/model"
	"testing"
)

// A fork starts as the committed state and then neither side sees the other's writes,
// task table included (it is persistent, and shared until written).
func TestForkGoesItsOwnWay(t *testing.T) {
	s := newStore(t)
	node := func(id string) *model.Node {
		return &model.Node{ID: id, Hostname: id, Role: model.RoleWorker, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}
	}
	task := func(id string) *model.Task {
		return &model.Task{ID: id, ServiceID: "svc", Slot: 1, NodeID: "n1", DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: model.TaskRunning}}
	}
	commit(t, s, 1, func(w *WriteTxn) error {
		if err := w.UpsertNode(node("n1")); err != nil {
			return err
		}
		return w.UpsertTask(task("t1"))
	})
	f := s.Fork()
	if _, err := f.ReadTxn().Task(nil, "t1"); err != nil {
		t.Fatalf("the fork does not see a committed task: %v", err)
	}
	commit(t, f, 2, func(w *WriteTxn) error {
		if err := w.UpsertNode(node("fork-node")); err != nil {
			return err
		}
		if err := w.DeleteTask("t1"); err != nil {
			return err
		}
		return w.UpsertTask(task("fork-task"))
	})
	commit(t, s, 2, func(w *WriteTxn) error { return w.UpsertTask(task("real-task")) })

	for _, c := range []struct {
		name      string
		st        *Store
		seen, not []string
	}{
		{"original", s, []string{"t1", "real-task"}, []string{"fork-task"}},
		{"fork", f, []string{"fork-task"}, []string{"t1", "real-task"}},
	} {
		tx := c.st.ReadTxn()
		for _, id := range c.seen {
			if _, err := tx.Task(nil, id); err != nil {
				t.Errorf("%s: task %s: %v", c.name, id, err)
			}
		}
		for _, id := range c.not {
			if _, err := tx.Task(nil, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: task %s: %v, want not found", c.name, id, err)
			}
		}
		if n, _ := tx.TasksByNode(nil, "n1"); len(n) != len(c.seen) {
			t.Errorf("%s: %d tasks by node n1, want %d", c.name, len(n), len(c.seen))
		}
	}
	if _, err := s.ReadTxn().Node(nil, "fork-node"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the original sees the fork's node: %v", err)
	}
}
