package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
)

// A manager left alone by the loss of the others' disks is restarted with
// ForceNewCluster: it leads alone, with every entry it had, and takes writes.
func TestForceNewClusterKeepsTheState(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	leader := c.waitLeader()
	for i := range 20 {
		if _, err := leader.Apply(ctx, command.CmdNodeUpsert, node(fmt.Sprintf("n%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The survivor has them all once the leader's last write reached it.
	survivor := "m3"
	if c.node(survivor) == leader {
		survivor = "m2"
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.node(survivor).AppliedIndex() < leader.AppliedIndex() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		c.stop(id)
	}
	c.config.ForceNewCluster = true
	c.start(survivor, false)
	c.config.ForceNewCluster = false
	s := c.waitLeader()
	if s != c.node(survivor) {
		t.Fatal("another node leads")
	}
	servers, err := s.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != survivor {
		t.Fatalf("raft configuration after the recovery: %+v, %v; want %s alone", servers, err, survivor)
	}
	nodes, err := s.State().ReadTxn().Nodes(nil)
	if err != nil || len(nodes) != 20 {
		t.Fatalf("the recovered state has %d nodes (%v), want the 20 written", len(nodes), err)
	}
	if _, err := s.Apply(ctx, command.CmdNodeUpsert, node("after")); err != nil {
		t.Fatalf("a write after the recovery: %v", err)
	}
}
