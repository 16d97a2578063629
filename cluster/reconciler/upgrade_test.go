package reconciler_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/internal/memcluster"
)

// A state an older build wrote, whose services have no VIPs: a new leader gives them
// theirs before it places anything, without a new spec version, and the tasks it
// then places hold none of those addresses.
func TestLeaderGivesOlderServicesVIPs(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyStore{st: st}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := f.ApplyLeader(ctx, store.CmdNodeUpsert, memcluster.Node("node-1", nil)); err != nil {
		t.Fatal(err)
	}
	cmd, err := control.StackCommand(&api.StackDeployRequest{Stack: load(t, "old", `
services:
  web:
    image: nginx:1
    ports:
      - "8080:80"
    deploy:
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
	// What an older build wrote: the service without VIPs, no ingress network.
	svc, err := st.ReadTxn().ServiceByName(nil, "old_web")
	if err != nil {
		t.Fatal(err)
	}
	ingress, err := store.IngressNetwork(st.ReadTxn())
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(st.ReadTxn().Index()+1, func(tx *state.WriteTxn) error {
		bare := svc.Copy()
		bare.Endpoint = state.Endpoint{}
		if err := tx.UpsertService(bare); err != nil {
			return err
		}
		node, err := tx.Node(nil, "node-1")
		if err != nil {
			return err
		}
		bareNode := node.Copy()
		bareNode.Networks = nil
		if err := tx.UpsertNode(bareNode); err != nil {
			return err
		}
		return tx.DeleteNetwork(ingress.ID)
	})
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- reconciler.Run(ctx, reconciler.Config{Store: f}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tx := st.ReadTxn()
		got, err := tx.ServiceByName(nil, "old_web")
		if err != nil {
			t.Fatal(err)
		}
		tasks, _ := tx.TasksByService(nil, got.ID)
		var held []string
		for _, task := range tasks {
			for _, a := range task.Networks {
				held = append(held, a.Addr)
			}
		}
		// The /29 has five addresses: the VIP takes one, four tasks get the others.
		if len(got.Endpoint.VIPs) == 2 && len(held) == 8 {
			if got.SpecVersion != svc.SpecVersion {
				t.Errorf("spec version %d, was %d: the VIPs replaced tasks", got.SpecVersion, svc.SpecVersion)
			}
			for _, v := range got.Endpoint.VIPs {
				if slices.Contains(held, v.Addr) {
					t.Errorf("VIP %s is a task's address too (%v)", v.Addr, held)
				}
			}
			node, _ := tx.Node(nil, "node-1")
			if len(node.Networks) != 1 || slices.Contains(held, node.Networks[0].Addr) {
				t.Errorf("node endpoints %+v (tasks hold %v)", node.Networks, held)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIPs %+v, task addresses %v", got.Endpoint.VIPs, held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("reconciler: %v", err)
	}
}
