package orchestrator

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

func TestReplicatedCreatesOneTaskPerSlot(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3))
	p := c.plan(svc.ID)
	if len(p.Create) != 3 || len(p.Update) != 0 || len(p.Delete) != 0 || p.Service != nil {
		t.Fatalf("plan = %d creates, %d updates, %d deletes, service %v; want 3 creates only",
			len(p.Create), len(p.Update), len(p.Delete), p.Service)
	}
	hash := TaskSpecHash(&svc.Spec)
	for i, task := range p.Create {
		want := model.Task{ID: task.ID, ServiceID: svc.ID, ServiceName: "web_api", Slot: uint64(i + 1),
			NodeID: task.NodeID, SpecVersion: 1, DesiredState: model.TaskRunning,
			Status:    model.TaskStatus{State: model.TaskAssigned, Message: msgAssigned, Timestamp: t0},
			CreatedAt: t0, UpdatedAt: t0, Image: "busybox:1"}
		want.SpecHash = hash
		if !reflect.DeepEqual(*task, want) {
			t.Errorf("task %d = %+v, want %+v", i, *task, want)
		}
	}
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("nodes = %v, want one task on each", got)
	}
	c.converge()
	if n := c.running(svc.ID); n != 3 {
		t.Errorf("running = %d, want 3", n)
	}
	if p := c.plan(svc.ID); !p.Empty() {
		t.Errorf("converged service still plans %+v", p)
	}
}

// Seed scenario: replicas 5, max_replicas_per_node 1 on 3 nodes: 3 assigned, 2 pending
// with the scheduler's reason; 2 more nodes and the same pending tasks are placed.
func TestReplicatedMaxPerNodePendingThenPlaced(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(5), maxPerNode(1))
	c.converge()
	live := c.live(svc.ID)
	want := []string{"1:a:running", "2:b:running", "3:c:running", "4::pending", "5::pending"}
	if got := statuses(live); !slices.Equal(got, want) {
		t.Fatalf("tasks = %v, want %v", got, want)
	}
	const reason = "no suitable node (max replicas per node limit reached on 3 nodes)"
	pending := map[uint64]string{}
	for _, task := range live[3:] {
		if task.Status.Err != reason {
			t.Errorf("slot %d: reason %q, want %q", task.Slot, task.Status.Err, reason)
		}
		pending[task.Slot] = task.ID
	}
	// Asking again changes nothing: the reason is the same.
	if p := c.plan(svc.ID); !p.Empty() {
		t.Errorf("second pass plans %+v, want nothing", p)
	}

	c.addNode("d")
	c.addNode("e")
	p := c.plan(svc.ID)
	if len(p.Create) != 0 || len(p.Update) != 2 {
		t.Fatalf("after adding nodes: %d creates, %d updates; want the 2 pending tasks assigned", len(p.Create), len(p.Update))
	}
	for _, u := range p.Update {
		if u.Status == nil || u.Status.State != model.TaskAssigned || u.NodeID == "" {
			t.Errorf("update %+v, want an assignment", u)
		}
	}
	c.converge()
	if n := c.running(svc.ID); n != 5 {
		t.Errorf("running = %d, want 5/5", n)
	}
	for slot, id := range pending {
		if task := c.tasks[id]; task == nil || task.Slot != slot || task.Status.State != model.TaskRunning {
			t.Errorf("pending task %s of slot %d was not the one placed", id, slot)
		}
	}
	if got := c.perNode(svc.ID); len(got) != 5 {
		t.Errorf("per node = %v, want one on each of 5 nodes", got)
	}
}

// Seed scenario: `node.labels.os == linux` with no labelled node stays pending with the
// scheduler's reason; adding the label places it.
func TestReplicatedConstraintPendingThenLabelAdded(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(2), constraints("node.labels.os == linux"))
	c.converge()
	const reason = "no suitable node (constraint node.labels.os == linux not satisfied on 3 nodes)"
	for _, task := range c.live(svc.ID) {
		if task.Status.State != model.TaskPending || task.Status.Err != reason || task.NodeID != "" {
			t.Errorf("task %s: %s %q on %q, want pending with %q", task.ID, task.Status.State, task.Status.Err, task.NodeID, reason)
		}
	}
	c.setLabel("b", "os", "linux")
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"b", "b"}) {
		t.Errorf("nodes = %v, want both on the labelled node b", got)
	}
	if n := c.running(svc.ID); n != 2 {
		t.Errorf("running = %d, want 2", n)
	}
}

// Seed scenario: scale down takes from the most crowded nodes first, ties by highest
// slot.
func TestReplicatedScaleDownMostCrowdedFirst(t *testing.T) {
	tests := []struct {
		name    string
		layout  map[uint64]string // slot -> node ("" pending, "-" ended)
		want    uint64
		removed []uint64
	}{
		{
			name:    "crowded node first then ties by highest slot",
			layout:  map[uint64]string{1: "a", 2: "a", 3: "a", 4: "b", 5: "c", 6: "c"},
			want:    3,
			removed: []uint64{2, 3, 6},
		},
		{
			name:    "slots that run nothing go first",
			layout:  map[uint64]string{1: "a", 2: "a", 3: "", 4: "-", 5: "b"},
			want:    3,
			removed: []uint64{3, 4},
		},
		{
			name:    "balanced: highest slots",
			layout:  map[uint64]string{1: "a", 2: "b", 3: "c", 4: "a", 5: "b", 6: "c"},
			want:    4,
			removed: []uint64{5, 6},
		},
		{
			name:    "to zero",
			layout:  map[uint64]string{1: "a", 2: "b"},
			want:    0,
			removed: []uint64{1, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			for _, id := range []string{"a", "b", "c"} {
				c.addNode(id)
			}
			svc := c.addService("api", replicas(tt.want), restartPolicyOf(spec.RestartNone, 0, 0, 0))
			for slot, node := range tt.layout {
				task := c.stateTask(svc, slot, node, model.TaskRunning)
				switch node {
				case "":
					task.Status = model.TaskStatus{State: model.TaskPending, Err: "no suitable node"}
				case "-":
					task.NodeID = "a"
					task.Status = model.TaskStatus{State: model.TaskFailed, ExitCode: 1}
				}
			}
			p := c.plan(svc.ID)
			var removed []uint64
			for _, u := range p.Update {
				if u.DesiredState == model.TaskRemove {
					removed = append(removed, c.tasks[u.ID].Slot)
				}
			}
			slices.Sort(removed)
			if !slices.Equal(removed, tt.removed) || len(p.Create) != 0 {
				t.Errorf("removed slots %v (creates %d), want %v", removed, len(p.Create), tt.removed)
			}
		})
	}
}

// stateTask stores a task of svc in slot on node with the given observed state, made
// from the service's current spec at t0.
func (c *cluster) stateTask(svc *model.Service, slot uint64, node string, st model.TaskState) *model.Task {
	task := &model.Task{ID: c.newID(), ServiceID: svc.ID, ServiceName: svc.Name, Slot: slot, NodeID: node,
		SpecVersion: svc.SpecVersion, DesiredState: model.TaskRunning,
		Status: model.TaskStatus{State: st, Timestamp: c.now}, CreatedAt: c.now, UpdatedAt: c.now}
	task.SpecHash = TaskSpecHash(&svc.Spec)
	c.tasks[task.ID] = task
	return task
}

func TestReplicatedScaleDownThenUpReusesSlots(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(5))
	c.converge()
	c.updateSpec(svc.ID, replicas(2))
	c.converge()
	if n := len(c.live(svc.ID)); n != 2 {
		t.Fatalf("live = %d, want 2", n)
	}
	// The removed tasks stopped and were deleted, history and all.
	if n := len(c.tasks); n != 2 {
		t.Errorf("tasks stored = %d, want 2 (removed ones reaped)", n)
	}
	kept := map[uint64]bool{}
	for _, task := range c.live(svc.ID) {
		kept[task.Slot] = true
	}
	c.updateSpec(svc.ID, replicas(4))
	c.converge()
	var slots []uint64
	for _, task := range c.live(svc.ID) {
		slots = append(slots, task.Slot)
	}
	if !slices.Equal(slots, []uint64{1, 2, 3, 4}) {
		t.Errorf("slots = %v, want 1..4 (lowest free numbers reused)", slots)
	}
	// A change of replicas alone is no update: nothing restarted, no update status.
	if st := c.svcs[svc.ID].UpdateStatus; st.State != "" {
		t.Errorf("update status %q after scaling, want none", st.State)
	}
}

func TestReplicatedNodeAvailability(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3))
	c.converge()
	onB := c.live(svc.ID)[1]
	if onB.NodeID != "b" {
		t.Fatalf("slot 2 on %s, want b", onB.NodeID)
	}

	// Pause keeps the task and places nothing new there.
	c.setAvailability("b", model.AvailabilityPause)
	if p := c.plan(svc.ID); !p.Empty() {
		t.Fatalf("pause planned %+v, want nothing", p)
	}
	c.updateSpec(svc.ID, replicas(4))
	c.converge()
	if got := c.perNode(svc.ID); got["b"] != 1 || got["a"]+got["c"] != 3 {
		t.Errorf("per node after scale up with b paused = %v, want b keeping 1 and no new task there", got)
	}

	// Drain moves it: the old task stops, a new one in the same slot runs elsewhere.
	c.setAvailability("b", model.AvailabilityDrain)
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Slot != onB.Slot || p.Create[0].NodeID == "b" {
		t.Fatalf("drain created %v, want one task in slot %d off node b", statuses(p.Create), onB.Slot)
	}
	if len(p.Update) != 1 || p.Update[0].ID != onB.ID || p.Update[0].DesiredState != model.TaskShutdown {
		t.Errorf("drain updates %+v, want task %s shut down", p.Update, onB.ID)
	}
	if p.Create[0].Restarts.Count != 0 || !p.Create[0].NotBefore.IsZero() {
		t.Errorf("a move off a drained node is not a restart: %+v", p.Create[0])
	}
	c.converge()
	if got := c.perNode(svc.ID); got["b"] != 0 || c.running(svc.ID) != 4 {
		t.Errorf("per node after drain = %v, running %d; want none on b, 4 running", got, c.running(svc.ID))
	}
}

// The constraint enforcer: a running task whose node loses the label its constraint
// asks for is replaced on a node that has it.
func TestReplicatedConstraintEnforcer(t *testing.T) {
	c := newCluster(t)
	c.addNode("a", withLabels("os", "linux"))
	c.addNode("b", withLabels("os", "linux"))
	svc := c.addService("api", replicas(2), maxPerNode(1), constraints("node.labels.os == linux"))
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("nodes = %v", got)
	}
	c.addNode("c", withLabels("os", "linux"))
	c.setLabel("a", "os", "windows")
	// Paused does not protect from the enforcer.
	c.setAvailability("a", model.AvailabilityPause)
	c.converge()
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("nodes after the label changed = %v, want b and c", got)
	}
}

// Node down with a grace period set: nothing moves within it (the plan asks to be run
// again when it ends), then replicated tasks are replaced elsewhere; OrphanAfter later,
// the old tasks are marked orphaned and become history.
func TestReplicatedNodeDownGraceAndOrphan(t *testing.T) {
	const grace = 30 * time.Second
	c := newCluster(t)
	c.opts.NodeDownGrace = grace
	c.opts.OrphanAfter = time.Hour
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3))
	c.converge()
	old := c.live(svc.ID)[0] // on a
	c.setNodeState("a", model.NodeDown)
	down := c.now

	c.advance(10 * time.Second)
	p := c.plan(svc.ID)
	if !p.Empty() || !p.NextCheck.Equal(down.Add(grace)) {
		t.Fatalf("within grace: plan %+v, want nothing and NextCheck at %v", p, down.Add(grace))
	}

	c.now = down.Add(grace)
	p = c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Slot != old.Slot || p.Create[0].NodeID == "a" {
		t.Fatalf("after grace: creates %v, want slot %d replaced off node a", statuses(p.Create), old.Slot)
	}
	if len(p.Update) != 1 || p.Update[0].DesiredState != model.TaskShutdown || p.Update[0].Status != nil {
		t.Errorf("after grace: updates %+v, want the old task shut down, not yet orphaned", p.Update)
	}
	if !p.NextCheck.Equal(down.Add(time.Hour)) {
		t.Errorf("NextCheck = %v, want the orphan time %v", p.NextCheck, down.Add(time.Hour))
	}
	c.converge()
	if c.running(svc.ID) != 3 {
		t.Errorf("running = %d, want 3", c.running(svc.ID))
	}

	c.now = down.Add(time.Hour)
	p = c.plan(svc.ID)
	if len(p.Update) != 1 || p.Update[0].ID != old.ID || p.Update[0].Status == nil || p.Update[0].Status.State != model.TaskOrphaned {
		t.Errorf("after OrphanAfter: updates %+v, want %s orphaned", p.Update, old.ID)
	}
	if len(p.Create) != 0 {
		t.Errorf("orphaning created %v", statuses(p.Create))
	}
}

// A removed node's tasks are orphaned and replaced at once.
func TestReplicatedNodeRemoved(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(2))
	c.converge()
	old := c.live(svc.ID)[0]
	delete(c.nodes, old.NodeID)
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || len(p.Update) != 1 {
		t.Fatalf("plan: %d creates, %d updates; want 1 replacement, 1 update", len(p.Create), len(p.Update))
	}
	u := p.Update[0]
	if u.DesiredState != model.TaskShutdown || u.Status == nil || u.Status.State != model.TaskOrphaned {
		t.Errorf("update %+v, want shutdown and orphaned", u)
	}
	c.converge()
	if c.running(svc.ID) != 2 {
		t.Errorf("running = %d, want 2", c.running(svc.ID))
	}
}

// Services scheduled in one pass account for each other: the second one sees the
// reservations the first just made.
func TestPassAccountsForEarlierServices(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id) // 4 CPUs each
	}
	first := c.addService("first", replicas(2), reserveCPU(3e9))
	second := c.addService("second", replicas(2), reserveCPU(3e9))
	plans := c.pass()
	if got := statuses(plans[first.ID].Create); !slices.Equal(got, []string{"1:a:assigned", "2:b:assigned"}) {
		t.Errorf("first = %v", got)
	}
	for _, task := range plans[second.ID].Create {
		if task.Status.State != model.TaskPending || task.Status.Err != "no suitable node (insufficient resources (cpu) on 2 nodes)" {
			t.Errorf("second: %s %q, want pending for lack of cpu", task.Status.State, task.Status.Err)
		}
	}
}

// The same input gives the same plan, and Reconcile leaves its input alone.
func TestReconcileIsDeterministicAndPure(t *testing.T) {
	build := func() (*cluster, *model.Service) {
		c := newCluster(t)
		for _, id := range []string{"a", "b", "c", "d"} {
			c.addNode(id, withLabels("zone", id))
		}
		svc := c.addService("api", replicas(6), maxPerNode(2), func(s *spec.Service) {
			s.Deploy.Placement.Preferences = []spec.Preference{{Spread: "node.labels.zone"}}
		})
		c.converge()
		c.setAvailability("b", model.AvailabilityDrain)
		c.fail(c.live(svc.ID)[0].ID, 1)
		c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:2" }, replicas(5))
		return c, svc
	}
	c1, svc := build()
	c2, _ := build()
	nodes, infos, tasks := c1.rows()
	before := deepCopyTasks(tasks)
	svcBefore := c1.svcs[svc.ID].Copy()
	p1 := Reconcile(Input{Service: c1.svcs[svc.ID], Tasks: tasks, Nodes: nodes, NodeInfos: infos,
		Options: c1.opts, Now: c1.now, NewID: counter()})
	nodes2, infos2, tasks2 := c2.rows()
	p2 := Reconcile(Input{Service: c2.svcs[svc.ID], Tasks: tasks2, Nodes: nodes2, NodeInfos: infos2,
		Options: c2.opts, Now: c2.now, NewID: counter()})
	if !reflect.DeepEqual(p1, p2) {
		t.Errorf("plans differ:\n%+v\n%+v", p1, p2)
	}
	if p1.Empty() {
		t.Error("plan is empty; the scenario should need work")
	}
	if !reflect.DeepEqual(deepCopyTasks(tasks), before) || !reflect.DeepEqual(c1.svcs[svc.ID], svcBefore) {
		t.Error("Reconcile modified its input")
	}
}

func deepCopyTasks(ts []*model.Task) []model.Task {
	out := make([]model.Task, len(ts))
	for i, t := range ts {
		out[i] = *t.Copy()
	}
	return out
}

func TestRemoveService(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(2))
	c.converge()
	c.fail(c.live(svc.ID)[0].ID, 1)
	delete(c.svcs, svc.ID)
	nodes, infos, tasks := c.rows()
	p := NewPass(nodes, infos, c.opts, c.now, c.newID).RemoveService(svc.ID, tasks)
	if len(p.Create) != 0 || len(p.Delete) != 0 {
		t.Errorf("first pass: creates %d, deletes %v; want only desired-state changes", len(p.Create), p.Delete)
	}
	var ids []string
	for _, u := range p.Update {
		if u.DesiredState != model.TaskRemove {
			t.Errorf("update %+v, want remove", u)
		}
		ids = append(ids, u.ID)
	}
	if len(ids) != 2 {
		t.Errorf("updated %v, want both tasks", ids)
	}
	c.apply(p)
	c.agents()
	_, _, tasks = c.rows()
	p = NewPass(nodes, infos, c.opts, c.now, c.newID).RemoveService(svc.ID, tasks)
	if len(p.Delete) != 2 || len(p.Update) != 0 {
		t.Errorf("second pass deletes %v (updates %+v), want both, once stopped", p.Delete, p.Update)
	}
}

// Tasks of the other mode's kind (no slot in a replicated service) are removed.
func TestForeignTasksRemoved(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(1))
	stray := c.stateTask(svc, 0, "a", model.TaskRunning)
	p := c.plan(svc.ID)
	found := false
	for _, u := range p.Update {
		if u.ID == stray.ID && u.DesiredState == model.TaskRemove {
			found = true
		}
	}
	if !found {
		t.Errorf("updates %+v, want %s removed", p.Update, stray.ID)
	}
}

func TestTaskSpecHashIgnoresOrchestratorFields(t *testing.T) {
	base := service("api", replicas(1))
	same := service("api", replicas(7), restartPolicyOf(spec.RestartNone, 0, 3, 0),
		updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](2)}),
		rollbackConfigOf(spec.UpdateConfig{Order: orderStartFirst}),
		func(s *spec.Service) { s.Deploy.Labels = map[string]string{"team": "x"} })
	if TaskSpecHash(base) != TaskSpecHash(same) {
		t.Error("replicas, restart policy, update/rollback config or service labels changed the task hash")
	}
	for name, mod := range map[string]func(*spec.Service){
		"image":       func(s *spec.Service) { s.Image = "busybox:2" },
		"env":         func(s *spec.Service) { s.Environment = map[string]string{"A": "1"} },
		"constraints": constraints("node.role == worker"),
		"limits":      func(s *spec.Service) { s.Deploy.Resources.Limits = &spec.Resource{Pids: 10} },
	} {
		if TaskSpecHash(base) == TaskSpecHash(service("api", replicas(1), mod)) {
			t.Errorf("%s did not change the task hash", name)
		}
	}
	if base.Deploy.Replicas == nil || *same.Deploy.Replicas != 7 {
		t.Error("TaskSpecHash modified its argument")
	}
}

// scheduler reasons reach tasks verbatim; make sure the prefix is the scheduler's.
func TestPendingReasonIsTheSchedulers(t *testing.T) {
	c := newCluster(t)
	svc := c.addService("api", replicas(1))
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Status.Err != scheduler.ReasonNoNodes {
		t.Fatalf("no nodes: %+v", p.Create)
	}
	if !strings.HasPrefix(p.Create[0].Status.Err, "no suitable node") {
		t.Error("reason prefix")
	}
}
