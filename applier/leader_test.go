package applier_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/memcluster"
)

// entry is a raft entry: a command and its body.
type entry struct {
	t    command.Type
	body any
}

// fakeLeader is a leading manager whose state has not yet applied the entries in
// pending, committed in the previous term; Barrier applies them, as raft's does.
type fakeLeader struct {
	st      *state.Store
	mu      sync.Mutex
	pending []entry
	syncs   chan *command.SourceSync // the syncs the applier writes
}

func newFakeLeader(st *state.Store, pending ...entry) *fakeLeader {
	return &fakeLeader{st: st, pending: pending, syncs: make(chan *command.SourceSync, 16)}
}

func (l *fakeLeader) State() *state.Store { return l.st }

func (l *fakeLeader) ApplyLeader(_ context.Context, t command.Type, body any) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := command.Simulate(l.st, t, body); err != nil {
		return 0, err
	}
	if s, ok := body.(*command.SourceSync); ok {
		l.syncs <- s
	}
	return l.st.ReadTxn().Index(), nil
}

func (l *fakeLeader) Barrier(time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.pending {
		if err := command.Simulate(l.st, e.t, e.body); err != nil {
			return err
		}
	}
	l.pending = nil
	return nil
}

// lead runs the applier on l until it writes a sync, and returns that sync.
func (l *fakeLeader) lead(t *testing.T, dir string) *command.SourceSync {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- applier.Run(ctx, applier.Config{Cluster: memcluster.ApplierCluster{Store: l}, Dir: dir})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("applier: %v", err)
		}
	}()
	select {
	case s := <-l.syncs:
		return s
	case err := <-done:
		t.Fatalf("the applier stopped before it synced: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the applier wrote no sync in 30s")
	}
	return nil
}

// A new leader syncs from the state the previous leader left, not from a state that
// has not applied the previous term's last entries yet.
func TestNewLeaderSyncsOnceItHasCaughtUp(t *testing.T) {
	repo := gittest.New(t)
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:1")})
	first := repo.Commit("web 1").String()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	old := newFakeLeader(st)
	add := &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Branch: "main", Path: "stacks", Prune: true}}
	if _, err := old.ApplyLeader(context.Background(), command.CmdSourceAdd, add); err != nil {
		t.Fatal(err)
	}
	if s := old.lead(t, t.TempDir()); s.Record.Revision != first {
		t.Fatalf("the old leader synced %+v, want %s applied", s.Record, first)
	}

	// The old leader answers request 1 by applying the next revision; the new
	// leader's state is behind those entries and request 2, made after them.
	behind := st.Fork()
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:2")})
	second := repo.Commit("web 2").String()
	request := entry{command.CmdSourceUpdate, &command.SourceUpdate{Name: "infra", RequestSync: true}}
	if _, err := old.ApplyLeader(context.Background(), request.t, request.body); err != nil {
		t.Fatal(err)
	}
	applied := old.lead(t, t.TempDir())
	if applied.Record.Revision != second || applied.Record.Result != model.SyncApplied {
		t.Fatalf("the old leader synced %+v, want %s applied", applied.Record, second)
	}

	next := newFakeLeader(behind, request, entry{command.CmdSourceSync, applied}, request)
	got := next.lead(t, t.TempDir())
	if got.Record.Revision != second || got.Record.Result != model.SyncUnchanged || got.Answered != 2 {
		t.Errorf("the new leader's first sync: %s %.7s answering request %d; want %.7s unchanged answering request 2 (it decided before its state had caught up)",
			got.Record.Result, got.Record.Revision, got.Answered, second)
	}
}
