package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/internal/memcluster"
)

// flakyStore commits through the FSM's own apply on one state store, and fails the
// first plan-apply entries it is given, as a raft that times out would.
type flakyStore struct {
	st *state.Store

	mu       sync.Mutex
	failPlan int
}

func (f *flakyStore) State() *state.Store           { return f.st }
func (f *flakyStore) Barrier(_ time.Duration) error { return nil }

func (f *flakyStore) ApplyLeader(_ context.Context, t store.CommandType, body any) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t == store.CmdPlanApply && f.failPlan > 0 {
		f.failPlan--
		return 0, errors.New("timed out enqueuing operation")
	}
	if err := store.Simulate(f.st, t, body); err != nil {
		return 0, err
	}
	return f.st.ReadTxn().Index(), nil
}

// A plan whose commit fails gives its tasks addresses that nothing holds: the retry
// must not find them taken. The /29 has exactly the five addresses the five tasks need
// (dnsrr: no VIP takes one).
func TestFailedCommitReleasesAddresses(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyStore{st: st, failPlan: 1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.ApplyLeader(ctx, store.CmdNodeUpsert, memcluster.Node("node-1", nil)); err != nil {
		t.Fatal(err)
	}
	cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: load(t, "small", `
services:
  web:
    image: nginx:1
    deploy:
      endpoint_mode: dnsrr
      replicas: 5
networks:
  default:
    ipam:
      config:
        - subnet: 10.77.0.0/29
`)}, state.NewID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ApplyLeader(ctx, store.CmdStackDeploy, cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, reconciler.Config{Store: f}) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, err := st.ReadTxn().Tasks(nil)
		if err != nil {
			t.Fatal(err)
		}
		addressed, why := 0, ""
		for _, task := range tasks {
			if len(task.Networks) == 1 && task.Status.State == state.TaskAssigned {
				addressed++
			} else if task.Status.Err != "" {
				why = task.Status.Err
			}
		}
		if addressed == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the failed commit, %d of %d tasks have an address and a node (%s)", addressed, len(tasks), why)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.mu.Lock()
	if f.failPlan != 0 {
		t.Error("no plan commit failed: the test tested nothing")
	}
	f.mu.Unlock()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(fmt.Errorf("reconciler: %w", err))
	}
}
