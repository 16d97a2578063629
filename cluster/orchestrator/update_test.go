package orchestrator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// upToDate counts the service's live tasks made from its current spec.
func (c *cluster) upToDate(svcID string) int {
	hash := TaskSpecHash(&c.svcs[svcID].Spec)
	n := 0
	for _, t := range c.live(svcID) {
		if t.SpecHash == hash {
			n++
		}
	}
	return n
}

func newImage(s *spec.Service) { s.Image = "busybox:2" }

// step converges, then moves time to the earliest NextCheck, and reports whether there
// was one.
func (c *cluster) step() bool {
	c.converge()
	var next time.Time
	for _, p := range c.plans {
		if !p.NextCheck.IsZero() && (next.IsZero() || p.NextCheck.Before(next)) {
			next = p.NextCheck
		}
	}
	if next.IsZero() {
		return false
	}
	c.now = next
	return true
}

func TestRollingUpdateStopFirst(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3), updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](1), Delay: spec.Duration(10 * time.Second)}))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	start := c.now

	p := c.plan(svc.ID)
	if p.Service == nil || p.Service.UpdateStatus.State != model.UpdateUpdating || !p.Service.UpdateStatus.StartedAt.Equal(start) {
		t.Fatalf("first pass service update %+v, want updating since now", p.Service)
	}
	if len(p.Create) != 0 || len(p.Update) != 1 || p.Update[0].DesiredState != model.TaskShutdown {
		t.Fatalf("first pass: %d creates, updates %+v; want one old task told to stop, nothing new yet", len(p.Create), p.Update)
	}
	// Stop-first: the new task is made only once the old one has stopped.
	if p := c.plan(svc.ID); !p.Empty() {
		t.Fatalf("while the old task stops: plan %+v, want nothing", p)
	}
	c.agents()
	p = c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Slot != 1 {
		t.Fatalf("after the old task stopped: creates %v, want slot 1 refilled", statuses(p.Create))
	}

	// Stop-first: never two tasks of a slot running at once.
	c.check = func() {
		for slot := uint64(1); slot <= 3; slot++ {
			n := 0
			for _, task := range c.slotTasks(svc.ID, slot) {
				if task.Status.State == model.TaskRunning {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("slot %d runs %d tasks at once", slot, n)
			}
		}
	}
	steps := 0
	for c.step() {
		steps++
		if r := c.running(svc.ID); r < 2 {
			t.Fatalf("step %d: running = %d, more than parallelism (1) slots down", steps, r)
		}
		if steps > 50 {
			t.Fatal("update did not end")
		}
	}
	st := c.svcs[svc.ID].UpdateStatus
	if st.State != model.UpdateCompleted || st.Message != msgUpdateCompleted || !st.StartedAt.Equal(start) || st.CompletedAt.IsZero() {
		t.Errorf("update status = %+v, want completed", st)
	}
	if c.upToDate(svc.ID) != 3 || c.running(svc.ID) != 3 {
		t.Errorf("up to date %d, running %d; want 3 and 3", c.upToDate(svc.ID), c.running(svc.ID))
	}
	// Two delays of 10 s between three batches, plus the monitor period at the end.
	if took := st.CompletedAt.Sub(start); took < 20*time.Second+DefaultUpdateMonitor {
		t.Errorf("update took %v, less than its delays and monitor", took)
	}
	for slot := uint64(1); slot <= 3; slot++ {
		if n := len(c.slotTasks(svc.ID, slot)); n != 2 {
			t.Errorf("slot %d has %d tasks, want the old one as history and the new one", slot, n)
		}
	}
}

func TestRollingUpdateStartFirst(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3), updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](2), Order: orderStartFirst}))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	p := c.plan(svc.ID)
	if len(p.Create) != 2 || len(p.Update) != 0 {
		t.Fatalf("start-first: %d creates, %d updates; want 2 new tasks beside the old ones", len(p.Create), len(p.Update))
	}
	c.agents() // the new ones run
	p = c.plan(svc.ID)
	if len(p.Update) != 2 {
		t.Fatalf("once the new tasks run: updates %+v, want the 2 old ones shut down", p.Update)
	}
	for _, u := range p.Update {
		if u.DesiredState != model.TaskShutdown || c.tasks[u.ID].SpecHash == TaskSpecHash(&c.svcs[svc.ID].Spec) {
			t.Errorf("update %+v, want an old task shut down", u)
		}
	}
	for c.step() {
		if r := c.running(svc.ID); r < 3 {
			t.Fatalf("running = %d during a start-first update, want never below 3", r)
		}
	}
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted || c.upToDate(svc.ID) != 3 {
		t.Errorf("state %s, up to date %d", st, c.upToDate(svc.ID))
	}
}

func TestRollingUpdateParallelismZeroIsAllAtOnce(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(4), updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](0)}))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	if p := c.plan(svc.ID); len(p.Update) != 4 {
		t.Errorf("updates %d, want all 4 tasks at once", len(p.Update))
	}
}

// failTasksOfSpec makes every running task of the service's current spec fail.
func (c *cluster) failTasksOfSpec(svcID string) int {
	hash := TaskSpecHash(&c.svcs[svcID].Spec)
	n := 0
	for _, task := range c.live(svcID) {
		if task.SpecHash == hash && task.Status.State == model.TaskRunning {
			c.fail(task.ID, 1)
			n++
		}
	}
	return n
}

// Seed scenario: with failure_action rollback, new tasks failing within the monitor
// period roll the service back to its previous spec; the tasks the update had not
// reached are left alone.
func TestRollingUpdateFailureRollsBack(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(4),
		updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](1), Delay: spec.Duration(10 * time.Second),
			FailureAction: actionRollback, Monitor: spec.Duration(30 * time.Second)}),
		rollbackConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](0)}))
	c.converge()
	goodSpec := c.svcs[svc.ID].Spec
	goodHash := TaskSpecHash(&goodSpec)
	original := map[uint64]string{}
	for _, task := range c.live(svc.ID) {
		original[task.Slot] = task.ID
	}

	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "broken:1" })
	c.converge() // slot 1 replaced by a task of the broken spec, running
	if c.upToDate(svc.ID) != 1 {
		t.Fatalf("up to date = %d, want the first batch of 1", c.upToDate(svc.ID))
	}
	c.advance(3 * time.Second) // within the monitor period
	if c.failTasksOfSpec(svc.ID) != 1 {
		t.Fatal("no new task to fail")
	}
	p := c.plan(svc.ID)
	if p.Service == nil || !p.Service.Rollback || p.Service.UpdateStatus.State != model.UpdateRollbackStarted {
		t.Fatalf("service update %+v, want the rollback swap", p.Service)
	}
	if msg := p.Service.UpdateStatus.Message; !strings.HasPrefix(msg, "update rolled back due to failure or early termination of task ") {
		t.Errorf("message %q", msg)
	}
	if len(p.Create)+len(p.Update)+len(p.Delete) != 0 {
		t.Errorf("the rollback plan also writes tasks: %+v", p)
	}
	got := c.svcs[svc.ID]
	if got.Spec.Image != "busybox:1" || got.PreviousSpec.Image != "broken:1" || got.SpecVersion != 3 {
		t.Fatalf("after the swap: image %s, previous %s, version %d", got.Spec.Image, got.PreviousSpec.Image, got.SpecVersion)
	}

	c.settle(time.Hour)
	st := c.svcs[svc.ID].UpdateStatus
	if st.State != model.UpdateRollbackCompleted || st.Message != msgRollbackCompleted {
		t.Errorf("status = %+v, want rollback completed", st)
	}
	if c.running(svc.ID) != 4 || c.upToDate(svc.ID) != 4 || TaskSpecHash(&c.svcs[svc.ID].Spec) != goodHash {
		t.Errorf("running %d, on the restored spec %d; want 4 and 4", c.running(svc.ID), c.upToDate(svc.ID))
	}
	// The slots the update never reached kept their original tasks.
	for slot := uint64(2); slot <= 4; slot++ {
		if task := c.tasks[original[slot]]; task == nil || task.Status.State != model.TaskRunning || !liveDesired(task.DesiredState) {
			t.Errorf("slot %d: original task %s was disturbed", slot, original[slot])
		}
	}
}

func TestRollingUpdateFailurePauses(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(3), restartPolicyOf(spec.RestartNone, 0, 0, 0),
		updateConfigOf(spec.UpdateConfig{Delay: spec.Duration(10 * time.Second)}))
	c.converge()
	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "broken:1" })
	c.converge()
	c.failTasksOfSpec(svc.ID)
	c.settle(time.Hour)
	st := c.svcs[svc.ID].UpdateStatus
	if st.State != model.UpdatePaused || !strings.HasPrefix(st.Message, "update paused due to failure or early termination of task ") {
		t.Fatalf("status = %+v, want paused", st)
	}
	// Paused: the other slots keep their old tasks; nothing more happens.
	if c.running(svc.ID) != 2 || c.upToDate(svc.ID) != 0 {
		t.Errorf("running %d, up to date %d; want 2 old ones running", c.running(svc.ID), c.upToDate(svc.ID))
	}
	if p := c.plan(svc.ID); !p.Empty() {
		t.Errorf("paused update plans %+v", p)
	}
	// A new spec clears the status and starts over.
	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:3" })
	c.settle(time.Hour)
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted || c.upToDate(svc.ID) != 3 {
		t.Errorf("after a fixed spec: state %s, up to date %d", st, c.upToDate(svc.ID))
	}
}

func TestRollingUpdateContinueWithinRatio(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(4), restartPolicyOf(spec.RestartNone, 0, 0, 0),
		updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](1), Delay: spec.Duration(10 * time.Second), MaxFailureRatio: 0.3}))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	c.converge()
	c.failTasksOfSpec(svc.ID) // 1 failure of 4 slots: 0.25 <= 0.3
	c.settle(time.Hour)
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted {
		t.Errorf("state %s, want completed: one failure in four is within the ratio", st)
	}
	if c.upToDate(svc.ID) != 3 || c.running(svc.ID) != 3 {
		t.Errorf("up to date %d, running %d; want 3 (the failed slot is finished)", c.upToDate(svc.ID), c.running(svc.ID))
	}
}

// A new task that never starts (here: nothing satisfies the new constraint) counts as
// a failure after the step timeout, so the update cannot wait forever; start-first
// kept the old task running meanwhile.
func TestRollingUpdateStepTimeout(t *testing.T) {
	c := newCluster(t)
	c.opts.UpdateStepTimeout = time.Minute
	c.addNode("a")
	svc := c.addService("api", replicas(2), updateConfigOf(spec.UpdateConfig{Order: orderStartFirst}))
	c.converge()
	c.updateSpec(svc.ID, constraints("node.labels.zone == nowhere"))
	start := c.now
	p := c.plan(svc.ID)
	if len(p.Create) != 1 || p.Create[0].Status.State != model.TaskPending {
		t.Fatalf("creates %v, want one pending new task", statuses(p.Create))
	}
	if !p.NextCheck.Equal(start.Add(time.Minute)) {
		t.Errorf("NextCheck = %v, want the step timeout at %v", p.NextCheck, start.Add(time.Minute))
	}
	c.settle(time.Hour)
	st := c.svcs[svc.ID].UpdateStatus
	if st.State != model.UpdatePaused {
		t.Errorf("status %+v, want paused after the step timeout", st)
	}
	if c.running(svc.ID) != 2 {
		t.Errorf("running = %d, want the 2 old tasks still running", c.running(svc.ID))
	}
}

func TestUpdateTimeout(t *testing.T) {
	c := newCluster(t)
	c.opts.UpdateTimeout = 2 * time.Minute
	c.addNode("a")
	svc := c.addService("api", replicas(3), updateConfigOf(spec.UpdateConfig{Parallelism: ptr[uint64](1), Delay: spec.Duration(time.Hour)}))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	c.settle(time.Hour)
	st := c.svcs[svc.ID].UpdateStatus
	if st.State != model.UpdatePaused || st.Message != "update paused after running for more than 2m0s" {
		t.Errorf("status %+v, want paused by the timeout", st)
	}
	if c.upToDate(svc.ID) != 1 {
		t.Errorf("up to date = %d, want only the first batch", c.upToDate(svc.ID))
	}
}

// `service rollback`: the API swaps the specs and records rollback_started; the
// orchestrator drives it with rollback_config and leaves tasks of the restored spec
// alone.
func TestExplicitRollback(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id)
	}
	svc := c.addService("api", replicas(2))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	c.settle(time.Hour)
	if c.svcs[svc.ID].UpdateStatus.State != model.UpdateCompleted {
		t.Fatal("update did not complete")
	}
	updated := c.live(svc.ID)

	// What the API proposes for `service rollback`.
	c.apply(Plan{ServiceID: svc.ID, SpecVersion: c.svcs[svc.ID].SpecVersion, Service: &ServiceUpdate{Rollback: true,
		UpdateStatus: model.UpdateStatus{State: model.UpdateRollbackStarted, Message: "manually requested rollback", StartedAt: c.now}}})
	c.settle(time.Hour)
	s := c.svcs[svc.ID]
	if s.Spec.Image != "busybox:1" || s.UpdateStatus.State != model.UpdateRollbackCompleted {
		t.Errorf("image %s, state %s; want busybox:1 rolled back", s.Spec.Image, s.UpdateStatus.State)
	}
	if c.upToDate(svc.ID) != 2 {
		t.Errorf("up to date = %d, want 2", c.upToDate(svc.ID))
	}
	for _, task := range updated {
		if liveDesired(c.tasks[task.ID].DesiredState) {
			t.Errorf("task %s of the rolled back spec still meant to run", task.ID)
		}
	}
}

// A stale plan (computed before a spec change) is not applied: the FSM checks the spec
// version.
func TestStalePlanSkipped(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(1))
	nodes, infos, tasks := c.rows()
	p := NewPass(nodes, infos, c.opts, c.now, c.newID).Reconcile(c.svcs[svc.ID], tasks)
	c.updateSpec(svc.ID, replicas(2))
	c.apply(p)
	if len(c.tasks) != 0 {
		t.Errorf("stale plan applied")
	}
	if p.SpecVersion != 1 {
		t.Errorf("plan spec version %d", p.SpecVersion)
	}
}

func TestGlobalRollingUpdate(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id)
	}
	svc := c.addService("agent", mode(spec.ModeGlobal))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	for c.step() {
		if r := c.running(svc.ID); r < 2 {
			t.Fatalf("running = %d, more than one node without its agent", r)
		}
	}
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted || c.upToDate(svc.ID) != 3 {
		t.Errorf("state %s, up to date %d", st, c.upToDate(svc.ID))
	}
	if got := c.nodesOf(svc.ID); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("nodes = %v", got)
	}
}

// A global task on a paused node cannot be replaced (the node takes no new task): the
// update leaves it and does not even start for it alone; once the node is active
// again, an update brings it up to date.
func TestGlobalUpdateWaitsForPausedNode(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b"} {
		c.addNode(id)
	}
	svc := c.addService("agent", mode(spec.ModeGlobal))
	c.converge()
	c.setAvailability("b", model.AvailabilityPause)
	c.updateSpec(svc.ID, newImage)
	c.settle(time.Hour)
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted || c.upToDate(svc.ID) != 1 || c.running(svc.ID) != 2 {
		t.Fatalf("state %s, up to date %d, running %d; want completed with b's old task left running",
			st, c.upToDate(svc.ID), c.running(svc.ID))
	}
	// What the FSM does for a new spec: the update status is cleared. With only the
	// paused node's task out of date, no update starts.
	c.svcs[svc.ID].UpdateStatus = model.UpdateStatus{}
	if p := c.plan(svc.ID); !p.Empty() {
		t.Errorf("plan %+v, want no update started for a paused node alone", p)
	}
	c.setAvailability("b", model.AvailabilityActive)
	c.settle(time.Hour)
	if st := c.svcs[svc.ID].UpdateStatus.State; st != model.UpdateCompleted || c.upToDate(svc.ID) != 2 {
		t.Errorf("after b is active: state %s, up to date %d; want completed, 2", st, c.upToDate(svc.ID))
	}
}

// The constraint enforcer judges a task by the spec it was made from: during an update
// that changes the constraints, old tasks are replaced at the update's pace, not all at
// once, unless they break their own constraints.
func TestEnforcerJudgesTasksByTheirOwnSpec(t *testing.T) {
	c := newCluster(t)
	for _, id := range []string{"a", "b", "c"} {
		c.addNode(id, withLabels("os", "linux"))
	}
	svc := c.addService("api", replicas(3), maxPerNode(1), constraints("node.labels.os == linux"),
		updateConfigOf(spec.UpdateConfig{Delay: spec.Duration(time.Hour)}))
	c.converge()
	c.addNode("d", withLabels("os", "linux", "disk", "ssd"))
	c.updateSpec(svc.ID, constraints("node.labels.os == linux", "node.labels.disk == ssd"))
	c.converge()
	if c.upToDate(svc.ID) != 1 || c.running(svc.ID) != 3 {
		t.Fatalf("up to date %d, running %d; want one batch done and the old tasks kept", c.upToDate(svc.ID), c.running(svc.ID))
	}
	// An old task whose node loses the label its own spec asks for is replaced now.
	var victim *model.Task
	for _, task := range c.live(svc.ID) {
		if task.NodeID != "d" {
			victim = task
			break
		}
	}
	c.setLabel(victim.NodeID, "os", "")
	p := c.plan(svc.ID)
	if len(p.Update) != 1 || p.Update[0].ID != victim.ID || p.Update[0].DesiredState != model.TaskShutdown || len(p.Create) != 1 {
		t.Errorf("plan: updates %+v, creates %v; want %s replaced", p.Update, statuses(p.Create), victim.ID)
	}
}

// Each task records the image it was made from: after an update and a rollback, the
// history's rows of both specs still say which image they ran (`service ps`).
func TestTasksKeepTheirImage(t *testing.T) {
	c := newCluster(t)
	c.addNode("a")
	svc := c.addService("api", replicas(2))
	c.converge()
	c.updateSpec(svc.ID, newImage)
	c.settle(time.Hour)
	c.updateSpec(svc.ID, func(s *spec.Service) { s.Image = "busybox:1" })
	c.settle(time.Hour)
	images := map[string]int{}
	for _, task := range c.tasks {
		images[task.Image]++
	}
	if len(c.tasks) != 6 || images["busybox:1"] != 4 || images["busybox:2"] != 2 {
		t.Errorf("%d tasks with images %v, want 4 of busybox:1 and 2 of busybox:2", len(c.tasks), images)
	}
}
