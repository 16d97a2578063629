package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/hashicorp/go-memdb"
)

type blockResult struct {
	index uint64
	err   error
	runs  int
	nodes int
}

// block starts a blocking query for the nodes (reading them, so the watch set
// has fine-grained channels too) and returns a channel that reports each run
// and one for the result.
func block(ctx context.Context, s *Store, minIndex uint64, tables []string) (<-chan int, <-chan blockResult) {
	ran := make(chan int, 16)
	done := make(chan blockResult, 1)
	go func() {
		var res blockResult
		res.index, res.err = s.Blocking(ctx, minIndex, tables, func(txn *ReadTxn, ws memdb.WatchSet) (uint64, error) {
			nodes, err := txn.Nodes(ws)
			if err != nil {
				return 0, err
			}
			res.runs++
			res.nodes = len(nodes)
			ran <- res.runs
			return txn.Index(TableNodes), nil
		})
		done <- res
	}()
	return ran, done
}

func addNode(t *testing.T, s *Store, index uint64, id string) {
	t.Helper()
	commit(t, s, index, func(w *WriteTxn) error {
		return w.UpsertNode(&model.Node{ID: id, Hostname: id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeReady}})
	})
}

func TestBlocking(t *testing.T) {
	const patience = 5 * time.Second // only reached if the code under test is broken

	t.Run("wakes on a write to a watched table", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ran, done := block(ctx, s, 5, []string{TableNodes})
		<-ran // blocked after its first run
		addNode(t, s, 6, "n2")
		res := <-done
		if res.err != nil || res.index != 6 || res.runs != 2 || res.nodes != 2 {
			t.Errorf("result %+v, want index 6 after 2 runs with 2 nodes", res)
		}
	})

	t.Run("wakes on a delete", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ran, done := block(ctx, s, 5, []string{TableNodes})
		<-ran
		commit(t, s, 6, func(w *WriteTxn) error { return w.DeleteNode("n1") })
		if res := <-done; res.err != nil || res.index != 6 || res.nodes != 0 {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("wakes through the table index alone", func(t *testing.T) {
		// fn watches nothing itself: the tables argument is enough.
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ran := make(chan struct{}, 4)
		done := make(chan uint64, 1)
		go func() {
			idx, _ := s.Blocking(ctx, 5, []string{TableServices}, func(txn *ReadTxn, _ memdb.WatchSet) (uint64, error) {
				ran <- struct{}{}
				return txn.Index(TableServices, TableNodes), nil
			})
			done <- idx
		}()
		<-ran
		commit(t, s, 9, func(w *WriteTxn) error {
			return w.UpsertService(&model.Service{ID: "s", Name: "web_api", Stack: "web"})
		})
		if idx := <-done; idx != 9 {
			t.Errorf("index = %d, want 9", idx)
		}
	})

	t.Run("times out without a write", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		ran, done := block(ctx, s, 5, []string{TableNodes})
		<-ran
		// A write to a table nobody watches does not wake the query.
		commit(t, s, 6, func(w *WriteTxn) error { return w.UpsertNetwork(&model.Network{ID: "x", Name: "x"}) })
		res := <-done
		if res.err != nil || res.index != 5 || res.runs != 1 {
			t.Errorf("result %+v, want index 5 after 1 run and no error", res)
		}
	})

	t.Run("returns at once when the index is already past", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		for _, min := range []uint64{0, 4} {
			_, done := block(context.Background(), s, min, []string{TableNodes})
			if res := <-done; res.err != nil || res.index != 5 || res.runs != 1 {
				t.Errorf("minIndex %d: result %+v", min, res)
			}
		}
	})

	t.Run("never returns index 0", func(t *testing.T) {
		s := newStore(t)
		_, done := block(context.Background(), s, 0, []string{TableNodes})
		if res := <-done; res.index != 1 {
			t.Errorf("index = %d on an empty store, want 1", res.index)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithCancel(context.Background())
		ran, done := block(ctx, s, 5, []string{TableNodes})
		<-ran
		cancel()
		if res := <-done; !errors.Is(res.err, context.Canceled) || res.index != 5 {
			t.Errorf("result %+v, want context.Canceled", res)
		}
	})

	t.Run("abandoned", func(t *testing.T) {
		s := newStore(t)
		addNode(t, s, 5, "n1")
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		ran, done := block(ctx, s, 5, []string{TableNodes})
		<-ran
		s.Abandon()
		s.Abandon() // idempotent
		if res := <-done; !errors.Is(res.err, ErrAbandoned) {
			t.Errorf("result %+v, want ErrAbandoned", res)
		}
		if _, err := s.Blocking(ctx, 0, nil, func(*ReadTxn, memdb.WatchSet) (uint64, error) { return 1, nil }); !errors.Is(err, ErrAbandoned) {
			t.Errorf("query on an abandoned store: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Blocking(context.Background(), 0, []string{"nodez"}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown table: %v", err)
		}
		boom := errors.New("boom")
		_, err := s.Blocking(context.Background(), 3, []string{TableNodes}, func(*ReadTxn, memdb.WatchSet) (uint64, error) {
			return 0, boom
		})
		if !errors.Is(err, boom) {
			t.Errorf("fn error: %v", err)
		}
	})
}
