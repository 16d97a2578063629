package orchestrator

import (
	"testing"

	"github.com/berthd/berth/cluster/model"
)

// TestNodeJustDownLosesItsReplicatedTasksAtOnce: with the default options, the pass that
// first sees a node Down replaces its replicated tasks on the other nodes, as Swarm
// does; the heartbeat's down deadline was the grace.
func TestNodeJustDownLosesItsReplicatedTasksAtOnce(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(6))
	c.converge()
	var onA []*model.Task
	for _, task := range c.live(svc.ID) {
		if task.NodeID == "a" {
			onA = append(onA, task)
		}
	}
	if len(onA) == 0 {
		t.Fatalf("no task on node a: %v", statuses(c.live(svc.ID)))
	}

	c.setNodeState("a", model.NodeDown) // at c.now: the pass runs in the same instant
	p := c.plan(svc.ID)

	stopped := map[string]bool{}
	for _, u := range p.Update {
		if u.DesiredState == model.TaskShutdown {
			stopped[u.ID] = true
		}
	}
	replaced := map[uint64]bool{}
	for _, n := range p.Create {
		if n.NodeID != "" && n.NodeID != "a" {
			replaced[n.Slot] = true
		}
	}
	for _, task := range onA {
		if !stopped[task.ID] || !replaced[task.Slot] {
			t.Errorf("task %s (slot %d) on the down node: shut down %v, replaced on another node %v; want both in the first pass",
				task.ID, task.Slot, stopped[task.ID], replaced[task.Slot])
		}
	}
	if len(p.Create) != len(onA) {
		t.Errorf("created %v; want one replacement for each of the %d tasks of node a", statuses(p.Create), len(onA))
	}
}
