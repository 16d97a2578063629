package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/state"
)

// fsm applies raft entries to the replicated state. Only it mutates the state.
type fsm struct {
	logger *slog.Logger
	mu     sync.RWMutex // guards the pointer: Restore swaps in a fresh store
	state  *state.Store
	// applied is the index of the last entry applied to the state. Raft's own
	// AppliedIndex moves when entries are handed to the FSM, before they are applied,
	// so a reader waiting for its write must look here.
	applied atomic.Uint64
	// onHalt learns why the FSM stopped applying (halt); released ends the wait of
	// a halted Apply when the store closes.
	onHalt   func(error)
	halted   atomic.Pointer[error]
	released chan struct{}
	release  sync.Once
}

func newFSM(logger *slog.Logger, onHalt func(error)) (*fsm, error) {
	st, err := state.New()
	if err != nil {
		return nil, err
	}
	return &fsm{logger: logger, state: st, onHalt: onHalt, released: make(chan struct{})}, nil
}

// State returns the current state store. After a restore it is a new store; callers that
// block on the old one get state.ErrAbandoned and should call State again.
func (f *fsm) State() *state.Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state
}

// Apply applies one entry and returns nil or the error, which raft hands back to the
// proposer through ApplyFuture.Response. An entry of an unknown command type halts the
// FSM: skipping it would make this manager's state differ from the others'.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	if err := f.Halted(); err != nil {
		return err
	}
	t := command.Type(l.Data[0])
	if !t.Known() {
		err := f.halt(&command.UnknownEntryError{Index: l.Index, Type: t})
		// Raft's apply loop waits here until the store closes, so that neither this
		// entry nor a later one is applied, and no snapshot says they were: the
		// upgraded binary applies them from the log.
		<-f.released
		return err
	}
	err := f.State().Update(l.Index, func(tx *state.WriteTxn) error { return command.Apply(tx, l.Data) })
	f.applied.Store(l.Index)
	if err != nil {
		// The proposer's user reads it: what was refused, not where in the log.
		f.logger.Debug("raft entry refused", "type", t, "index", l.Index, "err", err)
		return err
	}
	return nil
}

// halt stops the FSM for good (until the process restarts) and tells the daemon.
func (f *fsm) halt(err error) error {
	if f.halted.CompareAndSwap(nil, &err) {
		f.logger.Error("this manager stopped applying the raft log", "error", err)
		if f.onHalt != nil {
			f.onHalt(err)
		}
	}
	return err
}

// Halted is why the FSM stopped applying entries, or nil.
func (f *fsm) Halted() error {
	if p := f.halted.Load(); p != nil {
		return *p
	}
	return nil
}

// unblock lets a halted Apply return, for raft's shutdown.
func (f *fsm) unblock() { f.release.Do(func() { close(f.released) }) }

// Snapshot is O(1): a memdb snapshot; the encoding happens in Persist, off the apply path.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Halted(); err != nil {
		return nil, err
	}
	return &fsmSnapshot{snap: f.State().Snapshot()}, nil
}

// Restore replaces the state with a fresh store built from the snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := state.Restore(rc)
	if errors.Is(err, state.ErrNewerSnapshot) {
		// Not waited on as Apply does: raft restores the last snapshot while it
		// starts, before the store can close, and then fails to start.
		return f.halt(err)
	}
	if err != nil {
		return fmt.Errorf("restore state from snapshot: %w", err)
	}
	f.mu.Lock()
	old := f.state
	f.state = st
	f.mu.Unlock()
	// The snapshot's own index is not handed to Restore; the last write it holds is
	// the best lower bound, and the entries raft applies next move it on.
	f.applied.Store(st.ReadTxn().Index())
	old.Abandon()
	return nil
}

type fsmSnapshot struct {
	snap *state.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
