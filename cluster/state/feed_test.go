package state

import (
	"github.com/berthd/berth/cluster/model"
	"testing"
	"time"
)

func TestFeedDeliversChangesInOrder(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	task := func(id, state string) *model.Task {
		return &model.Task{ID: id, ServiceID: "svc", Slot: 1, DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskState(state)}}
	}
	// Written before the feed opens: not delivered.
	if err := s.Update(1, func(w *WriteTxn) error { return w.UpsertTask(task("a", "pending")) }); err != nil {
		t.Fatal(err)
	}
	f := s.Feed(100)
	defer f.Close()
	if err := s.Update(2, func(w *WriteTxn) error {
		if err := w.UpsertTask(task("a", "assigned")); err != nil {
			return err
		}
		// Written twice in one transaction: one change, first Before, last After.
		if err := w.UpsertTask(task("b", "pending")); err != nil {
			return err
		}
		return w.UpsertTask(task("b", "assigned"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(3, func(w *WriteTxn) error { return w.DeleteTask("a") }); err != nil {
		t.Fatal(err)
	}
	// A transaction that writes nothing delivers nothing.
	if err := s.Update(4, func(w *WriteTxn) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Notify():
	default:
		t.Fatal("no notification")
	}
	evs, lost := f.Take()
	if lost || len(evs) != 2 || evs[0].Index != 2 || evs[1].Index != 3 {
		t.Fatalf("events %+v lost %v", evs, lost)
	}
	byID := map[string]Change{}
	for _, c := range evs[0].Changes {
		byID[c.After.(*model.Task).ID] = c
	}
	if a := byID["a"]; a.Before.(*model.Task).Status.State != model.TaskPending || a.After.(*model.Task).Status.State != model.TaskAssigned {
		t.Errorf("change of a: %+v", a)
	}
	if b := byID["b"]; b.Before != nil || b.After.(*model.Task).Status.State != model.TaskAssigned {
		t.Errorf("change of b: %+v", b)
	}
	if c := evs[1].Changes[0]; c.Table != TableTasks || c.After != nil || c.Before.(*model.Task).ID != "a" {
		t.Errorf("delete: %+v", c)
	}
}

func TestFeedReportsLossAndStopsWhenClosed(t *testing.T) {
	s, _ := New()
	f := s.Feed(3)
	for i := range 5 {
		if err := s.Update(uint64(i+1), func(w *WriteTxn) error {
			return w.UpsertTask(&model.Task{ID: string(rune('a' + i)), ServiceID: "svc", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskNew}})
		}); err != nil {
			t.Fatal(err)
		}
	}
	evs, lost := f.Take()
	if !lost || len(evs) == 0 || evs[len(evs)-1].Index != 5 {
		t.Fatalf("after overflow: %d events, lost %v", len(evs), lost)
	}
	f.Close()
	if s.nfeeds.Load() != 0 {
		t.Fatal("closed feed still registered")
	}
	if w := s.WriteTxn(9); w.tracking {
		t.Error("a write without feeds tracks changes")
	} else {
		w.Abort()
	}
}

func TestReportTaskStatus(t *testing.T) {
	s, _ := New()
	at := func(sec int) model.TaskStatus {
		return model.TaskStatus{State: model.TaskRunning, Timestamp: time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC)}
	}
	if err := s.Update(1, func(w *WriteTxn) error {
		return w.UpsertTasks([]*model.Task{
			{ID: "mine", ServiceID: "s", NodeID: "n1", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned}},
			{ID: "other", ServiceID: "s", NodeID: "n2", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned}},
			{ID: "pending", ServiceID: "s", NodeID: "n1", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskPending}},
			{ID: "done", ServiceID: "s", NodeID: "n1", DesiredState: model.TaskShutdown, Status: model.TaskStatus{State: model.TaskShutdown}},
		})
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		st   model.TaskStatus
		want bool
	}{
		{"mine", at(1), true},
		{"other", at(1), false},   // not this node's
		{"pending", at(1), false}, // not on the node yet
		{"missing", at(1), false}, // gone
		{"done", at(1), false},    // backwards
		{"mine", model.TaskStatus{State: model.TaskFailed, ExitCode: 1, Timestamp: at(2).Timestamp}, true},
	} {
		var applied bool
		err := s.Update(2, func(w *WriteTxn) error {
			var err error
			applied, err = w.ReportTaskStatus("n1", tc.id, tc.st)
			return err
		})
		if err != nil || applied != tc.want {
			t.Errorf("report %s %s: applied %v, err %v; want applied %v", tc.id, tc.st.State, applied, err, tc.want)
		}
	}
	got, _ := s.ReadTxn().Task(nil, "mine")
	if got.Status.State != model.TaskFailed || !got.UpdatedAt.Equal(at(2).Timestamp) {
		t.Errorf("mine = %+v", got)
	}
}
