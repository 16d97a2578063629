package orchestrator

import (
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Seed scenario: a global service on 3 nodes has 3 tasks; a 4th node joins and gets
// one; one is drained and loses it. replicas is ignored.
func TestGlobalFollowsNodes(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("agent", mode(spec.ModeGlobal), replicas(1))
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b", "c"}) || c.running(svc.ID) != 3 {
		t.Fatalf("nodes = %v (running %d), want a, b, c", got, c.running(svc.ID))
	}
	for _, task := range c.live(svc.ID) {
		if task.Slot != 0 || task.Name() != "web_agent."+task.NodeID {
			t.Errorf("global task %s: slot %d, name %s", task.ID, task.Slot, task.Name())
		}
	}

	c.addNode("d")
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].NodeID != "d" || p.Create[0].Status.State != model.TaskAssigned {
		t.Fatalf("join: creates %v, want one assigned task on d", statuses(p.Create))
	}
	c.converge()
	if c.running(svc.ID) != 4 {
		t.Errorf("running = %d after join, want 4", c.running(svc.ID))
	}

	c.setAvailability("b", model.AvailabilityDrain)
	p = c.plan(svc.ID)
	if len(p.Create) != 0 || len(p.Update) != 1 || p.Update[0].DesiredState != model.TaskShutdown {
		t.Fatalf("drain: %v creates, updates %+v; want b's task shut down only", statuses(p.Create), p.Update)
	}
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Errorf("nodes after drain = %v, want a, c, d", got)
	}

	// Back to active: a new task; the stopped one stays as history.
	c.setAvailability("b", model.AvailabilityActive)
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("nodes after reactivation = %v, want all four", got)
	}
}

func TestGlobalConstraintLabels(t *testing.T) {
	c := newCluster(t)
	c.addNode("a", withLabels("os", "linux"))
	c.addNode("b")
	c.addNode("c")
	svc := c.addService("agent", mode(spec.ModeGlobal), constraints("node.labels.os == linux"))
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("nodes = %v, want a only", got)
	}
	c.setLabel("c", "os", "linux")
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("nodes after labelling c = %v, want a, c", got)
	}
	c.setLabel("a", "os", "")
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"c"}) {
		t.Errorf("nodes after unlabelling a = %v, want c", got)
	}
}

func TestGlobalNodeStates(t *testing.T) {
	const grace = 30 * time.Second
	c := newCluster(t)
	c.opts.NodeDownGrace = grace
	for _, id := range []string{"a", "b", "c", "d"} {
		c.addNode(id)
	}
	svc := c.addService("agent", mode(spec.ModeGlobal))
	c.converge()

	c.setAvailability("a", model.AvailabilityPause) // keeps its task
	c.setNodeState("b", model.NodeUnknown)          // a new leader has not heard from it: keeps
	c.setNodeState("c", model.NodeDown)             // loses it after the grace period
	if p := c.plan(svc.ID); !p.Empty() {
		t.Fatalf("plan %+v, want nothing within the grace period", p)
	}
	c.advance(grace)
	p := c.plan(svc.ID)
	if len(p.Update) != 1 || c.tasks[p.Update[0].ID].NodeID != "c" || p.Update[0].DesiredState != model.TaskShutdown || len(p.Create) != 0 {
		t.Fatalf("after grace: updates %+v creates %v; want c's task shut down", p.Update, statuses(p.Create))
	}
	c.converge()

	// c comes back: a new task; its old one (still "running" in the rows, since no
	// agent reported) is left to stop.
	c.setNodeState("c", model.NodeReady)
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("nodes = %v, want all four", got)
	}
	// A paused node gets no task when it has none.
	c.addNode("e", func(n *model.Node) { n.Availability = model.AvailabilityPause })
	c.converge()
	if got := c.perNode(svc.ID); got["e"] != 0 {
		t.Errorf("paused new node got a task")
	}
}

func TestGlobalNodeRemoved(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id)
	}
	svc := c.addService("agent", mode(spec.ModeGlobal))
	c.converge()
	delete(c.nodes, "b")
	p := c.plan(svc.ID)
	if len(p.Update) != 1 || p.Update[0].DesiredState != model.TaskRemove || p.Update[0].Status.State != model.TaskOrphaned {
		t.Fatalf("updates %+v, want b's task removed and orphaned", p.Update)
	}
	p = c.plan(svc.ID)
	if len(p.Delete) != 1 {
		t.Errorf("second pass deletes %v, want b's task", p.Delete)
	}
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a"}) {
		t.Errorf("nodes = %v", got)
	}
}

// A removed node that comes back with the same ID gets a task again.
func TestGlobalNodeBackWithSameID(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("agent", mode(spec.ModeGlobal))
	c.converge()
	saved := c.nodes["a"]
	delete(c.nodes, "a")
	c.pass()
	c.nodes["a"] = saved
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a"}) || c.running(svc.ID) != 1 {
		t.Errorf("nodes %v, running %d; want a task on a again", got, c.running(svc.ID))
	}
}

// A node that qualifies but lacks room gets a task that stays pending with the reason
// (and its node), and is assigned once there is room.
func TestGlobalPendingForResources(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	c.addNode("small", func(n *model.Node) { n.Resources.NanoCPUs = 1e9 })
	svc := c.addService("agent", mode(spec.ModeGlobal), reserveCPU(2e9))
	c.converge()
	var pending *model.Task
	for _, task := range c.live(svc.ID) {
		if task.NodeID == "small" {
			pending = task
		}
	}
	if pending == nil || pending.Status.State != model.TaskPending || pending.Status.Err != "insufficient resources (cpu)" {
		t.Fatalf("task on small = %+v, want pending for cpu", pending)
	}
	c.nodes["small"].Resources.NanoCPUs = 4e9
	c.converge()
	if got := c.tasks[pending.ID]; got.Status.State != model.TaskRunning {
		t.Errorf("task on small is %s after the node grew, want running", got.Status.State)
	}
}

func TestGlobalJobRunsOncePerNode(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id)
	}
	svc := c.addService("migrate", mode(spec.ModeGlobalJob))
	p := c.plan(svc.ID)
	for _, task := range p.Create {
		if task.DesiredState != model.TaskComplete {
			t.Errorf("job task desired %s, want complete", task.DesiredState)
		}
	}
	c.converge()
	for _, task := range c.live(svc.ID) {
		c.fail(task.ID, 0)
	}
	c.converge()
	if n := len(c.tasks); n != 2 {
		t.Errorf("tasks = %d after completion, want the 2 completed ones and no rerun", n)
	}
	c.addNode("c")
	c.converge()
	if got := c.perNode(svc.ID); got["c"] != 1 || len(c.tasks) != 3 {
		t.Errorf("new node: %v, %d tasks; want one task run on c", got, len(c.tasks))
	}
}

func TestAllowedNodes(t *testing.T) {
	c := newCluster(t)
	c.addNode("a", withLabels("os", "linux"))
	c.addNode("b", withLabels("os", "linux"))
	c.addNode("c")
	c.setAvailability("b", model.AvailabilityPause)
	svc := c.addService("agent", mode(spec.ModeGlobal), constraints("node.labels.os == linux"), reserveCPU(64e9))
	_, infos, _ := c.rows()
	if got := AllowedNodes(infos, svc, c.opts, c.now); !slices.Equal(got, []string{"a"}) {
		t.Errorf("allowed %v, want [a]: b is paused, c lacks the label, a lacks room but qualifies", got)
	}
}
