package reconciler_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// A state an older build wrote, whose services have no VIPs: a new leader gives them
// theirs before it places anything, without a new spec version, and the tasks it
// then places hold none of those addresses.
func TestLeaderGivesOlderServicesVIPs(t *testing.T) {
	f := newFlakyStore(t)
	f.must(t, command.CmdStackDeploy, stackCommand(t, "old", `
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
`))
	// What an older build wrote: the service without VIPs, no ingress network.
	tx := f.st.ReadTxn()
	svc, err := tx.ServiceByName(nil, "old_web")
	if err != nil {
		t.Fatal(err)
	}
	ingress, err := command.IngressNetwork(tx)
	if err != nil {
		t.Fatal(err)
	}
	node, err := tx.Node(nil, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	err = f.st.Update(tx.Index()+1, func(tx *state.WriteTxn) error {
		bare := svc.Copy()
		bare.Endpoint = model.Endpoint{}
		bareNode := node.Copy()
		bareNode.Networks = nil
		if err := tx.UpsertService(bare); err != nil {
			return err
		}
		if err := tx.UpsertNode(bareNode); err != nil {
			return err
		}
		return tx.DeleteNetwork(ingress.ID)
	})
	if err != nil {
		t.Fatal(err)
	}

	reconcile(t, f)
	within(t, 10*time.Second, f.st, func(tx *state.ReadTxn) error {
		got, err := tx.ServiceByName(nil, "old_web")
		if err != nil {
			return err
		}
		tasks, _ := tx.TasksByService(nil, got.ID)
		var held []string
		for _, task := range tasks {
			for _, a := range task.Networks {
				held = append(held, a.Addr)
			}
		}
		// The /29 has five addresses: the VIP takes one, four tasks get the others.
		if len(got.Endpoint.VIPs) != 2 || len(held) != 8 {
			return fmt.Errorf("VIPs %+v, task addresses %v", got.Endpoint.VIPs, held)
		}
		if got.SpecVersion != svc.SpecVersion {
			t.Errorf("spec version %d, was %d: the VIPs replaced tasks", got.SpecVersion, svc.SpecVersion)
		}
		for _, v := range got.Endpoint.VIPs {
			if slices.Contains(held, v.Addr) {
				t.Errorf("VIP %s is a task's address too (%v)", v.Addr, held)
			}
		}
		if n, _ := tx.Node(nil, "node-1"); len(n.Networks) != 1 || slices.Contains(held, n.Networks[0].Addr) {
			t.Errorf("node endpoints %+v (tasks hold %v)", n.Networks, held)
		}
		return nil
	})
}
