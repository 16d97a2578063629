package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
)

// An entry of a command type this berth does not know (written by a newer leader) is
// not skipped: the FSM stops before it, says so, and the entry is still there to apply
// when the manager restarts.
func TestUnknownEntryHaltsTheFSM(t *testing.T) {
	c := newTestCluster(t, 1)
	halts := make(chan error, 2)
	c.config.OnHalt = func(err error) { halts <- err }
	c.stop("m1")
	c.start("m1", true)
	s := c.waitLeader()
	ctx := context.Background()
	before, err := s.Apply(ctx, command.CmdNodeUpsert, node("n1"))
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, before)
	// Past the leader's gate, as a newer leader would write it. Its future is not
	// waited on: it answers once the entry is applied, which it never is.
	s.raft.Apply([]byte{250, '{', '}'}, 0)
	unknown := wantHalt(t, halts)
	if !errors.Is(s.Halted(), command.ErrUnknown) {
		t.Errorf("Halted() = %v, want the unknown entry", s.Halted())
	}
	// Nothing after it is applied either: a write waits, and fails once the store
	// lets go for a shutdown.
	written := make(chan error, 1)
	go func() {
		_, err := s.Apply(ctx, command.CmdNodeUpsert, node("n2"))
		written <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); s.LastIndex() <= unknown.Index; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write after the unknown entry was not logged within 10s")
		}
	}
	if got := s.StateIndex(); got != before {
		t.Errorf("state index %d, want %d: something after the unknown entry was applied", got, before)
	}
	if _, err := s.State().ReadTxn().Node(nil, "n2"); err == nil {
		t.Error("n2, written after the unknown entry, is in the state")
	}
	s.Unblock()
	select {
	case err := <-written:
		if !errors.Is(err, command.ErrUnknown) {
			t.Errorf("the write after the unknown entry: %v, want the halt", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write after the unknown entry still waits after Unblock")
	}

	// A restart of the same binary meets the same entry: it was never skipped.
	c.stop("m1")
	c.start("m1", true)
	if again := wantHalt(t, halts); *again != *unknown {
		t.Errorf("after a restart: %v, want %v", again, unknown)
	}
}

// wantHalt waits (bounded) for the FSM to halt on an entry of type 250.
func wantHalt(t *testing.T, halts <-chan error) *command.UnknownEntryError {
	t.Helper()
	select {
	case err := <-halts:
		var ue *command.UnknownEntryError
		if !errors.As(err, &ue) || ue.Type != 250 {
			t.Fatalf("halted with %v, want an entry of type 250", err)
		}
		want := fmt.Sprintf("raft entry %d is command 250, which this berth (protocol %d) does not know: upgrade this manager's binary",
			ue.Index, command.Version)
		if err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
		return ue
	case <-time.After(10 * time.Second):
		t.Fatal("the FSM did not halt on the unknown entry within 10s")
		return nil
	}
}

// The gate's managers are raft's members with what their node rows say they run; a
// member without a row is passed over (no manager enters raft before its row), and a
// row without an engine speaks protocol 1.
func TestManagersCarryTheirProtocol(t *testing.T) {
	c := newTestCluster(t, 1)
	s := c.waitLeader()
	if got, err := s.managers(); err != nil || len(got) != 0 {
		t.Fatalf("before any row: %+v %v, want no manager", got, err)
	}
	ctx := context.Background()
	m1 := node("m1")
	idx, err := s.Apply(ctx, command.CmdNodeUpsert, m1)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, idx)
	if got, err := s.managers(); err != nil || len(got) != 1 || got[0] != (command.Manager{Name: "host-m1"}) || got[0].Speaks() != 1 {
		t.Fatalf("a row without an engine: %+v %v, want host-m1 speaking protocol 1", got, err)
	}
	idx, err = s.Apply(ctx, command.CmdNodeStatus, command.NodeStatusUpdate{ID: "m1", Status: m1.Status,
		Engine: model.NodeEngine{Version: "v1.2.3", Protocol: 7}})
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, idx)
	want := command.Manager{Name: "host-m1", Berth: "v1.2.3", Protocol: 7}
	if got, err := s.managers(); err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("after the report: %+v %v, want %+v", got, err, want)
	}
	// A status change without an engine (the down monitor's) keeps the report.
	idx, err = s.Apply(ctx, command.CmdNodeStatus, command.NodeStatusUpdate{ID: "m1", Status: model.NodeStatus{State: model.NodeDown}})
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, idx)
	if got, _ := s.managers(); got[0] != want {
		t.Errorf("after a status change: %+v, want %+v", got[0], want)
	}
}
