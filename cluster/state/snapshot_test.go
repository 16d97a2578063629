package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berthd/berth/cluster/model"
	"io"
	"reflect"
	"strings"
	"testing"
)

// populate fills every table with rows whose every field is set, over several
// raft indexes, and returns the rows as the store holds them.
func populate(t *testing.T, s *Store) map[string][]row {
	t.Helper()
	f := &filler{}
	var index uint64 = 100
	next := func() uint64 { index += 3; return index }
	commit(t, s, next(), func(w *WriteTxn) error { return w.UpsertCluster(full[model.Cluster](f)) })
	for i := range 3 {
		commit(t, s, next(), func(w *WriteTxn) error {
			n := full[model.Node](f)
			if i == 2 {
				n.ManagerStatus = nil // a worker
			}
			if err := w.UpsertNode(n); err != nil {
				return err
			}
			if err := w.UpsertSource(full[model.Source](f)); err != nil {
				return err
			}
			if err := w.UpsertStack(full[model.Stack](f)); err != nil {
				return err
			}
			if err := w.UpsertService(full[model.Service](f)); err != nil {
				return err
			}
			if err := w.UpsertTasks([]*model.Task{full[model.Task](f), full[model.Task](f)}); err != nil {
				return err
			}
			if err := w.UpsertNetwork(full[model.Network](f)); err != nil {
				return err
			}
			if err := w.UpsertSecret(full[model.Secret](f)); err != nil {
				return err
			}
			if err := w.UpsertConfig(full[model.Config](f)); err != nil {
				return err
			}
			return w.UpsertVolume(full[model.Volume](f))
		})
	}
	// Updates, so that CreateIndex and ModifyIndex differ, and a delete, so
	// that a table index is ahead of every row.
	r := s.ReadTxn()
	nodes, _ := r.Nodes(nil)
	tasks, _ := r.Tasks(nil)
	commit(t, s, next(), func(w *WriteTxn) error {
		if err := w.SetNodeLabels(nodes[0].ID, map[string]string{"zone": "b"}, nil); err != nil {
			return err
		}
		_, err := w.SetTaskStatus(tasks[0].ID, model.TaskStatus{State: model.TaskOrphaned, Message: "node gone"})
		return err
	})
	commit(t, s, next(), func(w *WriteTxn) error { return w.DeleteTask(tasks[1].ID) })
	return dump(t, s.ReadTxn())
}

// dump reads every row of every table.
func dump(t *testing.T, r *ReadTxn) map[string][]row {
	t.Helper()
	out := make(map[string][]row)
	for _, table := range Tables() {
		if table == TableTasks {
			tasks, err := r.Tasks(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, task := range tasks {
				out[table] = append(out[table], task)
			}
			continue
		}
		it, err := r.txn.Get(table, indexID)
		if err != nil {
			t.Fatal(err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out[table] = append(out[table], raw.(row))
		}
	}
	return out
}

func indexes(r *ReadTxn) map[string]uint64 {
	out := make(map[string]uint64)
	for _, table := range Tables() {
		out[table] = r.Index(table)
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := newStore(t)
	want := populate(t, s)
	for _, table := range Tables() {
		if len(want[table]) == 0 {
			t.Fatalf("table %s not populated", table)
		}
	}
	wantIdx := indexes(s.ReadTxn())

	snap := s.Snapshot()
	if snap.Index() != s.ReadTxn().Index() {
		t.Errorf("Snapshot.Index() = %d, want %d", snap.Index(), s.ReadTxn().Index())
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, restored.ReadTxn())
	for _, table := range Tables() {
		if !reflect.DeepEqual(got[table], want[table]) {
			t.Errorf("table %s differs after restore:\n got %s\nwant %s", table, show(got[table]), show(want[table]))
		}
	}
	if gotIdx := indexes(restored.ReadTxn()); !reflect.DeepEqual(gotIdx, wantIdx) {
		t.Errorf("table indexes: got %v, want %v", gotIdx, wantIdx)
	}
	if restored.ReadTxn().Index(TableTasks) <= maxModify(want[TableTasks]) {
		t.Error("the task table's index should be ahead of its rows (a delete was the last write)")
	}

	// Persisting the restored store gives the same bytes: nothing was lost or
	// reordered, and the encoding is deterministic.
	var again bytes.Buffer
	if err := restored.Snapshot().Persist(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("persist(restore(persist(s))) != persist(s)")
	}

	// The restored store is a working store: secondary indexes were rebuilt
	// and writes go on from the restored indexes.
	r := restored.ReadTxn()
	for _, n := range want[TableNodes] {
		if got, err := r.NodeByHostname(nil, n.(*model.Node).Hostname); err != nil || got.ID != n.Key() {
			t.Errorf("NodeByHostname after restore: %v, %v", got, err)
		}
	}
	sec := want[TableSecrets][0].(*model.Secret)
	if got, err := r.Secret(nil, sec.Name); err != nil || !bytes.Equal(got.Data, sec.Data) {
		t.Errorf("Secret after restore: %v, %v", got, err)
	}
	next := r.Index() + 1
	commit(t, restored, next, func(w *WriteTxn) error { return w.DeleteNode(want[TableNodes][0].Key()) })
	if restored.ReadTxn().Index(TableNodes) != next {
		t.Error("writes after restore do not move the index")
	}
	// The original is untouched by writes to the restored store.
	if _, err := s.ReadTxn().Node(nil, want[TableNodes][0].Key()); err != nil {
		t.Error(err)
	}
}

// show renders rows as JSON for failure messages (test data only: it
// includes secret data).
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func maxModify(rs []row) uint64 {
	var m uint64
	for _, r := range rs {
		m = max(m, r.RowMeta().ModifyIndex)
	}
	return m
}

func TestSnapshotIsolation(t *testing.T) {
	s := newStore(t)
	addNode(t, s, 1, "before")
	snap := s.Snapshot()
	addNode(t, s, 2, "after")
	commit(t, s, 3, func(w *WriteTxn) error { return w.SetNodeAvailability("before", model.AvailabilityDrain) })

	r := snap.ReadTxn()
	if _, err := r.Node(nil, "after"); !errors.Is(err, ErrNotFound) {
		t.Errorf("snapshot sees a later insert: %v", err)
	}
	if n, _ := r.Node(nil, "before"); n.Availability != model.AvailabilityActive {
		t.Error("snapshot sees a later update")
	}
	if snap.Index() != 1 {
		t.Errorf("snapshot index = %d, want 1", snap.Index())
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "after") || strings.Contains(buf.String(), "drain") {
		t.Error("persisted snapshot holds a later write")
	}
	restored, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if nodes, _ := restored.ReadTxn().Nodes(nil); len(nodes) != 1 || restored.ReadTxn().Index() != 1 {
		t.Errorf("restored %d nodes at index %d", len(nodes), restored.ReadTxn().Index())
	}
}

func TestRestoreEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := newStore(t).Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	s, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if s.ReadTxn().Index() != 0 {
		t.Error("empty store restored with an index")
	}
}

func TestRestoreRefuses(t *testing.T) {
	s := newStore(t)
	populate(t, s)
	var buf bytes.Buffer
	if err := s.Snapshot().Persist(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	lines := strings.SplitAfter(good, "\n")
	tests := []struct {
		name, in string
		want     string
	}{
		{"empty", "", "truncated"},
		{"other format", `{"format":"swarm","version":1}` + "\n", "format"},
		{"newer version", `{"format":"berth-state","version":2}` + "\n", "format 2, this berth reads formats up to 1: upgrade this manager's binary"},
		{"version zero", `{"format":"berth-state","version":0}` + "\n", "not a version berth ever wrote"},
		{"no end record", strings.Join(lines[:len(lines)-2], ""), "truncated"},
		{"cut inside a row", good[:len(good)/2], ""},
		{"cut after a section header", lines[0] + `{"table":"nodes","rows":2}` + "\n", "truncated"},
		{"unknown table", lines[0] + `{"table":"pods","rows":0}` + "\n" + `{"end":true}` + "\n", "unknown table"},
		{"table twice", lines[0] + `{"table":"nodes","rows":0}` + "\n" + `{"table":"nodes","rows":0}` + "\n", "twice"},
		{"invalid row", lines[0] + `{"table":"nodes","rows":1}` + "\n" + `{"id":"n1"}` + "\n" + `{"end":true}` + "\n", "invalid"},
		{"duplicate row", lines[0] + `{"table":"volumes","rows":2}` + "\n" +
			`{"id":"v","node":"n","name":"a"}` + "\n" + `{"id":"v","node":"n","name":"b"}` + "\n" + `{"end":true}` + "\n", "twice"},
		{"index of unknown table", lines[0] + `{"table":"index","rows":1}` + "\n" +
			`{"table":"pods","index":3}` + "\n" + `{"end":true}` + "\n", "unknown table"},
		{"data after end", good + `{"table":"nodes","rows":0}` + "\n", "after the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restore(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("restored")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
			if newer := tc.name == "newer version"; errors.Is(err, ErrNewerSnapshot) != newer {
				t.Errorf("errors.Is(err, ErrNewerSnapshot) = %v, want %v", !newer, newer)
			}
		})
	}
	// Any truncation fails.
	for n := 0; n < len(good)-1; n += 997 {
		if _, err := Restore(strings.NewReader(good[:n])); err == nil {
			t.Fatalf("restored a snapshot cut at byte %d of %d", n, len(good))
		}
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, io.ErrShortWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestPersistReportsWriteErrors(t *testing.T) {
	s := newStore(t)
	populate(t, s)
	if err := s.Snapshot().Persist(&errWriter{n: 10}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("err = %v", err)
	}
}

func ExampleSnapshot_Persist() {
	s, _ := New()
	_ = s.Update(7, func(w *WriteTxn) error {
		return w.UpsertVolume(&model.Volume{ID: "v1", Node: "n1", Name: "pgdata", Driver: "local"})
	})
	var buf bytes.Buffer
	_ = s.Snapshot().Persist(&buf)
	fmt.Print(buf.String())
	// Output:
	// {"format":"berth-state","version":1}
	// {"table":"cluster","rows":0}
	// {"table":"nodes","rows":0}
	// {"table":"sources","rows":0}
	// {"table":"stacks","rows":0}
	// {"table":"services","rows":0}
	// {"table":"tasks","rows":0}
	// {"table":"networks","rows":0}
	// {"table":"secrets","rows":0}
	// {"table":"configs","rows":0}
	// {"table":"volumes","rows":1}
	// {"create_index":7,"modify_index":7,"id":"v1","node":"n1","name":"pgdata","driver":"local"}
	// {"table":"index","rows":1}
	// {"table":"volumes","index":7}
	// {"end":true}
}
