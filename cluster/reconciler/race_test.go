package reconciler_test

import (
	"context"
	"errors"
	"slices"
	"strings"
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

// racingStore commits through the FSM's own apply on one state store, and commits
// another entry just before the first plan-apply entry: a stack write that raft
// ordered ahead of a plan the leader had in flight.
type racingStore struct {
	st *state.Store

	mu     sync.Mutex
	before func() error
}

func (r *racingStore) State() *state.Store           { return r.st }
func (r *racingStore) Barrier(_ time.Duration) error { return nil }

func (r *racingStore) ApplyLeader(_ context.Context, t store.CommandType, body any) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t == store.CmdPlanApply && r.before != nil {
		first := r.before
		r.before = nil
		if err := first(); err != nil {
			return 0, err
		}
	}
	if err := store.Simulate(r.st, t, body); err != nil {
		return 0, err
	}
	return r.st.ReadTxn().Index(), nil
}

func stackCommand(t *testing.T, name, yaml string) *store.StackDeploy {
	t.Helper()
	cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: load(t, name, yaml)}, state.NewID)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A plan that gives a task the address a VIP took while the plan was in flight is
// skipped by the FSM; the leader sees the VIP land on an address it gave, reads its
// view anew and plans again around the VIP. The /29 has five addresses: the dnsrr
// service's five tasks take them all in the first plan, and the other stack's VIP
// takes the highest first.
func TestPlanMeetingANewVIPIsPlannedAgain(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	r := &racingStore{st: st}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.ApplyLeader(ctx, store.CmdNodeUpsert, memcluster.Node("node-1", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ApplyLeader(ctx, store.CmdStackDeploy, stackCommand(t, "small", `
services:
  web:
    image: nginx:1
    deploy:
      endpoint_mode: dnsrr
      replicas: 5
networks:
  default:
    name: small
    ipam:
      config:
        - subnet: 10.77.0.0/29
`)); err != nil {
		t.Fatal(err)
	}
	r.before = func() error {
		return store.Simulate(st, store.CmdStackDeploy, stackCommand(t, "other", `
services:
  api:
    image: nginx:1
    networks: [shared]
    deploy:
      replicas: 0
networks:
  shared:
    name: small
    external: true
`))
	}
	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, reconciler.Config{Store: r}) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		tx := st.ReadTxn()
		web, err := tx.ServiceByName(nil, "small_web")
		if err != nil {
			t.Fatal(err)
		}
		api, apiErr := tx.ServiceByName(nil, "other_api")
		tasks, _ := tx.TasksByService(nil, web.ID)
		var held []string
		pending := ""
		for _, task := range tasks {
			for _, a := range task.Networks {
				held = append(held, a.Addr)
			}
			if task.Status.State == state.TaskPending {
				pending = task.Status.Err
			}
		}
		if apiErr == nil && len(held) == 4 && strings.Contains(pending, "every address of subnet 10.77.0.0/29 is taken") {
			if vip := api.Endpoint.VIPs; len(vip) != 1 || vip[0].Addr != "10.77.0.6/29" || slices.Contains(held, vip[0].Addr) {
				t.Errorf("VIP %+v, tasks hold %v", vip, held)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks hold %v, pending %q (other_api: %v)", held, pending, apiErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	if r.before != nil {
		t.Error("no stack write raced a plan: the test tested nothing")
	}
	r.mu.Unlock()
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("reconciler: %v", err)
	}
}
