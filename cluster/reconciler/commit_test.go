package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
)

// flakyStore commits through the FSM's own apply on one state store. It fails the
// first failPlan plan-apply entries it is given, as a raft that times out would, and
// commits before, when set, just before the first plan-apply entry: another
// proposer's entry that raft ordered ahead of a plan the leader had in flight.
type flakyStore struct {
	st *state.Store

	mu       sync.Mutex
	failPlan int
	before   func() error
}

func (f *flakyStore) State() *state.Store           { return f.st }
func (f *flakyStore) Barrier(_ time.Duration) error { return nil }

func (f *flakyStore) ApplyLeader(_ context.Context, t command.Type, body any) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t == command.CmdPlanApply && f.failPlan > 0 {
		f.failPlan--
		return 0, errors.New("timed out enqueuing operation")
	}
	if t == command.CmdPlanApply && f.before != nil {
		first := f.before
		f.before = nil
		if err := first(); err != nil {
			return 0, err
		}
	}
	if err := command.Simulate(f.st, t, body); err != nil {
		return 0, err
	}
	return f.st.ReadTxn().Index(), nil
}

// newFlakyStore returns a flakyStore on a fresh state holding node-1.
func newFlakyStore(t *testing.T) *flakyStore {
	t.Helper()
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyStore{st: st}
	f.must(t, command.CmdNodeUpsert, memcluster.Node("node-1", nil))
	return f
}

func (f *flakyStore) must(t *testing.T, ct command.Type, body any) {
	t.Helper()
	if _, err := f.ApplyLeader(context.Background(), ct, body); err != nil {
		t.Fatal(err)
	}
}

// stackCommand is the stack deploy entry of a Compose file, as the API makes it.
func stackCommand(t *testing.T, name, yaml string) *command.StackDeploy {
	t.Helper()
	cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: load(t, name, yaml)}, model.NewID)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// reconcile runs the reconciler on f until the test ends, and fails the test if it
// stopped for another reason than the end.
func reconcile(t *testing.T, f *flakyStore) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, reconciler.Config{Store: f}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("reconciler: %v", err)
		}
	})
}

// within polls fn on the state until it returns nil, and fails the test with its
// last error when d passes first.
func within(t *testing.T, d time.Duration, st *state.Store, fn func(tx *state.ReadTxn) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn(st.ReadTxn())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A plan whose commit fails gives its tasks addresses that nothing holds: the retry
// must not find them taken. The /29 has exactly the five addresses the five tasks need
// (dnsrr: no VIP takes one).
func TestFailedCommitReleasesAddresses(t *testing.T) {
	f := newFlakyStore(t)
	f.failPlan = 1
	f.must(t, command.CmdStackDeploy, stackCommand(t, "small", `
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
`))
	reconcile(t, f)
	within(t, 10*time.Second, f.st, func(tx *state.ReadTxn) error {
		tasks, err := tx.Tasks(nil)
		if err != nil {
			return err
		}
		addressed, why := 0, ""
		for _, task := range tasks {
			if len(task.Networks) == 1 && task.Status.State == model.TaskAssigned {
				addressed++
			} else if task.Status.Err != "" {
				why = task.Status.Err
			}
		}
		if addressed != 5 {
			return fmt.Errorf("after the failed commit, %d of %d tasks have an address and a node (%s)", addressed, len(tasks), why)
		}
		return nil
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPlan != 0 {
		t.Error("no plan commit failed: the test tested nothing")
	}
}
