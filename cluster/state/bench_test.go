package state

import (
	"bytes"
	"fmt"
	"github.com/berthd/berth/cluster/model"
	"io"
	"testing"
	"time"
)

const (
	benchTasks = 100_000
	benchBatch = 1_000
)

// benchTaskSet is 100,000 tasks shaped like a real cluster's: 1,000 services
// of 100 replicas over 100 nodes, each task on one overlay network.
func benchTaskSet() []*model.Task {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tasks := make([]*model.Task, benchTasks)
	for i := range tasks {
		svc := i / 100
		tasks[i] = &model.Task{
			ID:           fmt.Sprintf("%025x", i*2654435761),
			ServiceID:    fmt.Sprintf("svc%022d", svc),
			ServiceName:  fmt.Sprintf("stack%d_svc%d", svc/10, svc),
			Slot:         uint64(i%100 + 1),
			NodeID:       fmt.Sprintf("node%021d", i%100),
			SpecVersion:  3,
			DesiredState: model.TaskRunning,
			Status:       model.TaskStatus{State: model.TaskRunning, Message: "started", Timestamp: t0},
			Networks: []model.Attachment{{Network: fmt.Sprintf("net%022d", svc/10),
				Addr: fmt.Sprintf("10.%d.%d.%d/16", svc/10, (i/250)%250, i%250+2), MAC: "02:42:0a:00:00:02"}},
			ContainerID: fmt.Sprintf("%025x", i*2654435761),
			CreatedAt:   t0,
			UpdatedAt:   t0,
		}
	}
	return tasks
}

func loadTasks(b *testing.B, s *Store, tasks []*model.Task) {
	for i := 0; i < len(tasks); i += benchBatch {
		w := s.WriteTxn(uint64(i/benchBatch + 1))
		if err := w.UpsertTasks(tasks[i : i+benchBatch]); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTasks100k measures what a scheduler pass and a raft snapshot of a
// 100,000-task cluster cost. "upsert+persist" is the headline: upsert in
// batches of 1,000 (one raft entry each), then snapshot and persist.
func BenchmarkTasks100k(b *testing.B) {
	tasks := benchTaskSet()

	b.Run("upsert+persist", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, _ := New()
			loadTasks(b, s, tasks)
			if err := s.Snapshot().Persist(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchTasks, "ns/task")
	})

	b.Run("upsert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s, _ := New()
			loadTasks(b, s, tasks)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchTasks, "ns/task")
	})

	s, _ := New()
	loadTasks(b, s, tasks)

	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Snapshot()
		}
	})

	var persisted bytes.Buffer
	if err := s.Snapshot().Persist(&persisted); err != nil {
		b.Fatal(err)
	}

	b.Run("persist", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Snapshot().Persist(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(persisted.Len()), "bytes")
	})

	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Restore(bytes.NewReader(persisted.Bytes())); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTaskWrites measures the FSM's two hot writes on a store that already
// holds 300,000 tasks over 5,000 nodes, in entries of 1,024 rows as the scheduler and
// the agents' status batcher write them: placing new tasks (PutTasks) and reporting
// them running (ReportTaskStatus). B/op per row is what drives the GC.
func BenchmarkTaskWrites(b *testing.B) {
	const (
		preload = 300_000
		nodes   = 5_000
		batch   = 1_024
	)
	// Services of 1,000 replicas, placed in slot order, as the orchestrator does.
	var seq int
	newTasks := func(n int) []*model.Task {
		tasks := make([]*model.Task, n)
		for i := range tasks {
			seq++
			tasks[i] = &model.Task{ID: model.NewID(), ServiceID: fmt.Sprintf("svc%d", seq/1000), Slot: uint64(seq%1000 + 1),
				NodeID: fmt.Sprintf("node-%05d", (seq*7919)%nodes), DesiredState: model.TaskRunning,
				Status: model.TaskStatus{State: model.TaskAssigned}}
		}
		return tasks
	}
	s, _ := New()
	var index uint64
	put := func(tasks []*model.Task) {
		for i := 0; i < len(tasks); i += batch {
			index++
			w := s.WriteTxn(index)
			if err := w.PutTasks(tasks[i:min(i+batch, len(tasks))]); err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	put(newTasks(preload))
	b.Run("place", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			tasks := newTasks(batch)
			b.StartTimer()
			put(tasks)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batch, "ns/row")
	})
	all, _ := s.ReadTxn().Tasks(nil)
	b.Run("report", func(b *testing.B) {
		b.ReportAllocs()
		st := model.TaskStatus{State: model.TaskRunning, Message: "started"}
		next := 0
		for b.Loop() {
			index++
			w := s.WriteTxn(index)
			for range batch {
				t := all[next%len(all)]
				next += 7919
				if _, err := w.ReportTaskStatus(t.NodeID, t.ID, st); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batch, "ns/row")
	})
}
