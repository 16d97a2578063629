package orchestrator

import (
	"testing"

	"github.com/berthd/berth/spec"
)

// A service asking for a hundred million replicas is planned in batches: each run
// makes at most MaxNewTasks tasks (the memory of a run follows what it makes, never
// what is asked for) and asks to run again at once; the next runs carry on.
func TestScaleUpIsBatched(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	c.opts.MaxReplicas = spec.MaxReplicasCeiling // a limit raised as far as it goes
	svc := c.addService("huge", replicas(100_000_000))
	made := 0
	for pass := 1; pass <= 3; pass++ {
		p := c.plan(svc.ID)
		if len(p.Create) != DefaultMaxNewTasks {
			t.Fatalf("pass %d creates %d tasks, want a batch of %d", pass, len(p.Create), DefaultMaxNewTasks)
		}
		if !p.NextCheck.Equal(c.now) {
			t.Fatalf("pass %d: NextCheck = %v, want %v (run again at once)", pass, p.NextCheck, c.now)
		}
		made += len(p.Create)
		if n := len(c.live(svc.ID)); n != made {
			t.Fatalf("after pass %d the service has %d tasks, want %d", pass, n, made)
		}
	}
	// The slots are the lowest free numbers, batch after batch.
	for i, task := range c.live(svc.ID) {
		if task.Slot != uint64(i+1) {
			t.Fatalf("task %d has slot %d, want %d", i, task.Slot, i+1)
		}
	}
}

// A batch counts the tasks the run made before scaling up (refills of failed slots):
// together they stay within MaxNewTasks; once the service has all it asks for, no
// run asks for another.
func TestScaleUpBatchCountsRefills(t *testing.T) {
	c := newCluster(t)
	c.opts.MaxNewTasks = 4
	c.addNode("a")
	svc := c.addService("api", replicas(7), restartPolicyOf("any", 0, 0, 0))
	p := c.plan(svc.ID)
	if len(p.Create) != 4 || !p.NextCheck.Equal(c.now) {
		t.Fatalf("first pass: %d creates, NextCheck %v; want 4 and a run at once", len(p.Create), p.NextCheck)
	}
	c.agents()
	c.fail(p.Create[0].ID, 1)
	c.fail(p.Create[1].ID, 1)
	p = c.plan(svc.ID)
	if len(p.Create) != 4 || !p.NextCheck.Equal(c.now) {
		t.Fatalf("second pass: %d creates, NextCheck %v; want 2 refills + 2 new and a run at once", len(p.Create), p.NextCheck)
	}
	p = c.plan(svc.ID)
	if len(p.Create) != 1 || !p.NextCheck.IsZero() {
		t.Fatalf("third pass: %d creates, NextCheck %v; want the last task and nothing left to do", len(p.Create), p.NextCheck)
	}
	if n := len(c.live(svc.ID)); n != 7 {
		t.Fatalf("live tasks = %d, want 7", n)
	}
}

// A service stored above the cluster's limit (by a build that had none) runs as many
// tasks as the limit allows, and no more runs are asked for once it does.
func TestReplicasCappedAtTheClusterLimit(t *testing.T) {
	c := newCluster(t)
	c.opts.MaxReplicas = 2500
	c.opts.MaxNewTasks = 1024
	c.addNode("a")
	svc := c.addService("huge", replicas(100_000_000))
	for pass, want := range []int{1024, 1024, 452, 0} {
		p := c.plan(svc.ID)
		if len(p.Create) != want {
			t.Fatalf("pass %d creates %d tasks, want %d", pass+1, len(p.Create), want)
		}
		if more := !p.NextCheck.IsZero(); more != (pass < 2) {
			t.Fatalf("pass %d: NextCheck = %v, want a run at once only while tasks are missing", pass+1, p.NextCheck)
		}
	}
	if n := len(c.live(svc.ID)); n != 2500 {
		t.Fatalf("the service has %d tasks, want the limit, 2500", n)
	}
}
