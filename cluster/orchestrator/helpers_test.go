package orchestrator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

// t0 is the instant every test starts at.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// cluster is an in-memory cluster for tests: rows as the FSM would hold them, plans
// applied with the rules documented on Plan, and agents that start and stop tasks.
type cluster struct {
	t     testing.TB
	now   time.Time
	opts  Options
	nodes map[string]*model.Node
	svcs  map[string]*model.Service
	tasks map[string]*model.Task
	ids   int
	// plans are the last pass's plans, by service ID.
	plans map[string]Plan
	// check, when set, is called after every pass and every round of the agents.
	check func()
	// reject, when set, is the error an agent rejects a task with ("" to run it).
	// Like the real agent, it rejects while preparing, before the task's NotBefore.
	reject func(*model.Task) string
}

func newCluster(t testing.TB) *cluster {
	return &cluster{t: t, now: t0, opts: DefaultOptions(), nodes: map[string]*model.Node{},
		svcs: map[string]*model.Service{}, tasks: map[string]*model.Task{}}
}

// newID makes deterministic task IDs.
func (c *cluster) newID() string {
	c.ids++
	return fmt.Sprintf("task-%04d", c.ids)
}

func (c *cluster) advance(d time.Duration) { c.now = c.now.Add(d) }

// addNode adds a ready, active linux/amd64 worker with 4 CPUs and 8 GiB.
func (c *cluster) addNode(id string, mods ...func(*model.Node)) *model.Node {
	n := &model.Node{ID: id, Hostname: "host-" + id, Role: model.RoleWorker,
		Availability: model.AvailabilityActive, Platform: model.Platform{OS: "linux", Arch: "amd64"},
		Resources: model.NodeResources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		Status:    model.NodeStatus{State: model.NodeReady, Timestamp: c.now}}
	for _, m := range mods {
		m(n)
	}
	c.nodes[id] = n
	return n
}

func withLabels(kv ...string) func(*model.Node) {
	return func(n *model.Node) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

func (c *cluster) setAvailability(id string, a model.NodeAvailability) {
	c.nodes[id].Availability = a
}

func (c *cluster) setLabel(id, k, v string) {
	n := c.nodes[id]
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if v == "" {
		delete(n.Labels, k)
	} else {
		n.Labels[k] = v
	}
}

// setNodeState records a status transition at the current time.
func (c *cluster) setNodeState(id string, s model.NodeState) {
	c.nodes[id].Status.State = s
	c.nodes[id].Status.Timestamp = c.now
}

// addService adds a service at spec version 1.
func (c *cluster) addService(name string, mods ...func(*spec.Service)) *model.Service {
	s := service(name, mods...)
	svc := &model.Service{ID: "svc-" + name, Name: "web_" + name, Stack: "web", Spec: *s, SpecVersion: 1}
	c.svcs[svc.ID] = svc
	return svc
}

// service returns a replicated service spec changed by mods.
func service(name string, mods ...func(*spec.Service)) *spec.Service {
	s := &spec.Service{Name: name, Image: "busybox:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip"}}
	for _, m := range mods {
		m(s)
	}
	return s
}

func replicas(n uint64) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Replicas = &n }
}

func mode(m string) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Mode = m }
}

func constraints(cs ...string) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Placement.Constraints = cs }
}

func maxPerNode(m uint64) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Placement.MaxReplicasPerNode = m }
}

func reserveCPU(cpus spec.NanoCPUs) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Resources.Reservations = &spec.Resource{CPUs: cpus} }
}

func restartPolicyOf(cond string, delay time.Duration, maxAttempts uint64, window time.Duration) func(*spec.Service) {
	return func(s *spec.Service) {
		d, w := spec.Duration(delay), spec.Duration(window)
		rp := &spec.RestartPolicy{Condition: cond, Delay: &d}
		if maxAttempts > 0 {
			rp.MaxAttempts = &maxAttempts
		}
		if window > 0 {
			rp.Window = &w
		}
		s.Deploy.RestartPolicy = rp
	}
}

func updateConfigOf(u spec.UpdateConfig) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.UpdateConfig = &u }
}

func rollbackConfigOf(u spec.UpdateConfig) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.RollbackConfig = &u }
}

func ptr[T any](v T) *T { return &v }

// updateSpec changes a service's spec as the API would: previous spec kept, version
// bumped, update status cleared.
func (c *cluster) updateSpec(id string, mods ...func(*spec.Service)) {
	svc := c.svcs[id]
	prev := svc.Spec
	svc.PreviousSpec = &prev
	next := prev
	for _, m := range mods {
		m(&next)
	}
	svc.Spec = next
	svc.SpecVersion++
	svc.UpdateStatus = model.UpdateStatus{}
}

// rows returns the stored state as Reconcile's input: nodes, the scheduler's view of
// them, and every task.
func (c *cluster) rows() ([]*model.Node, []scheduler.NodeInfo, []*model.Task) {
	ids := slices.Sorted(maps.Keys(c.nodes))
	nodes := make([]*model.Node, 0, len(ids))
	for _, id := range ids {
		nodes = append(nodes, c.nodes[id])
	}
	tasks := c.sortedTasks()
	lookup := func(id string) *spec.Service {
		if s := c.svcs[id]; s != nil {
			return &s.Spec
		}
		return nil
	}
	return nodes, scheduler.NodeInfosFromState(nodes, tasks, lookup), tasks
}

func (c *cluster) sortedTasks() []*model.Task {
	out := slices.Collect(maps.Values(c.tasks))
	slices.SortFunc(out, func(a, b *model.Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// pass reconciles every service in one pass and applies the plans.
func (c *cluster) pass() map[string]Plan {
	nodes, infos, tasks := c.rows()
	p := NewPass(nodes, infos, c.opts, c.now, c.newID)
	plans := map[string]Plan{}
	for _, id := range slices.Sorted(maps.Keys(c.svcs)) {
		var mine []*model.Task
		for _, t := range tasks {
			if t.ServiceID == id {
				mine = append(mine, t)
			}
		}
		plans[id] = p.Reconcile(c.svcs[id], mine)
	}
	for _, id := range slices.Sorted(maps.Keys(plans)) {
		c.apply(plans[id])
	}
	c.plans = plans
	if c.check != nil {
		c.check()
	}
	return plans
}

// plan runs one pass and returns the plan of one service.
func (c *cluster) plan(svcID string) Plan { return c.pass()[svcID] }

// apply applies a plan with the FSM rules documented on Plan and TaskUpdate.
func (c *cluster) apply(p Plan) {
	svc := c.svcs[p.ServiceID]
	switch {
	case p.SpecVersion == 0 && svc != nil:
		return // a removed service's plan, and the service exists again
	case p.SpecVersion != 0 && (svc == nil || svc.SpecVersion != p.SpecVersion):
		return // stale
	}
	if u := p.Service; u != nil {
		if u.Rollback {
			cur := svc.Spec
			svc.Spec = *svc.PreviousSpec
			svc.PreviousSpec = &cur
			svc.SpecVersion++
		}
		svc.UpdateStatus = u.UpdateStatus
	}
	for _, t := range p.Create {
		if _, dup := c.tasks[t.ID]; dup {
			c.t.Fatalf("plan creates task %s twice", t.ID)
		}
		c.tasks[t.ID] = t.Copy()
	}
	for _, u := range p.Update {
		t := c.tasks[u.ID]
		if t == nil {
			continue
		}
		row := *t // rows are immutable once stored: change a copy
		changed := false
		if u.DesiredState != "" && u.DesiredState.After(row.DesiredState) {
			row.DesiredState, changed = u.DesiredState, true
		}
		if st := u.Status; st != nil {
			switch st.State {
			case model.TaskAssigned:
				if row.Status.State.Before(model.TaskAssigned) && (row.NodeID == "" || row.NodeID == u.NodeID) {
					row.NodeID, row.Status, changed = u.NodeID, *st, true
				}
			case model.TaskPending:
				if !row.Status.State.After(model.TaskPending) {
					row.Status, changed = *st, true
				}
			default:
				if !st.State.Before(row.Status.State) {
					row.Status, changed = *st, true
				}
			}
		}
		if changed {
			row.UpdatedAt = u.UpdatedAt
			c.tasks[u.ID] = &row
		}
	}
	for _, id := range p.Delete {
		delete(c.tasks, id)
	}
}

// agents plays every ready node's agent: tasks meant to run start (from their
// NotBefore on), tasks told to stop stop.
func (c *cluster) agents() (changed bool) {
	for _, t := range c.sortedTasks() {
		n := c.nodes[t.NodeID]
		if n == nil || n.Status.State != model.NodeReady || t.Status.State.Before(model.TaskAssigned) || t.Status.State.Terminal() {
			continue
		}
		switch {
		case !liveDesired(t.DesiredState):
			c.report(t, model.TaskStatus{State: model.TaskShutdown, Message: "shutdown"})
			changed = true
		case c.reject != nil && c.reject(t) != "":
			c.report(t, model.TaskStatus{State: model.TaskRejected, Message: "preparing", Err: c.reject(t)})
			changed = true
		case t.Status.State != model.TaskRunning && !c.now.Before(t.NotBefore):
			c.report(t, model.TaskStatus{State: model.TaskRunning, Message: "started"})
			changed = true
		}
	}
	if c.check != nil {
		c.check()
	}
	return changed
}

// report records an agent's status report.
func (c *cluster) report(t *model.Task, st model.TaskStatus) {
	st.Timestamp = c.now
	row := *t
	row.Status = st
	row.UpdatedAt = c.now
	c.tasks[t.ID] = &row
}

// fail makes a task exit with the given code (0 completes it).
func (c *cluster) fail(id string, code int) {
	t := c.tasks[id]
	if t == nil {
		c.t.Fatalf("no task %s", id)
	}
	st := model.TaskStatus{State: model.TaskFailed, Err: "task: non-zero exit (" + fmt.Sprint(code) + ")", ExitCode: code}
	if code == 0 {
		st = model.TaskStatus{State: model.TaskComplete, Message: "finished"}
	}
	c.report(t, st)
}

// converge alternates passes and agents until nothing changes, without moving time.
func (c *cluster) converge() {
	for range 100 {
		plans := c.pass()
		quiet := true
		for _, p := range plans {
			if !p.Empty() {
				quiet = false
			}
		}
		if !c.agents() && quiet {
			return
		}
	}
	c.t.Fatal("cluster did not converge in 100 rounds")
}

// settle converges, then jumps to the earliest NextCheck and converges again, until
// no check is due or limit has passed.
func (c *cluster) settle(limit time.Duration) {
	end := c.now.Add(limit)
	for range 1000 {
		c.converge()
		var next time.Time
		for _, p := range c.plans {
			if !p.NextCheck.IsZero() && (next.IsZero() || p.NextCheck.Before(next)) {
				next = p.NextCheck
			}
		}
		if next.IsZero() || next.After(end) {
			return
		}
		c.now = next
	}
	c.t.Fatal("cluster did not settle")
}

// Views of the state.

// live returns the service's tasks meant to run and not stopped, by slot then node.
func (c *cluster) live(svcID string) []*model.Task {
	var out []*model.Task
	for _, t := range c.sortedTasks() {
		if t.ServiceID == svcID && liveDesired(t.DesiredState) && !t.Status.State.Terminal() {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *model.Task) int {
		if a.Slot != b.Slot {
			return int(a.Slot) - int(b.Slot)
		}
		return strings.Compare(a.NodeID, b.NodeID)
	})
	return out
}

// running counts the service's tasks that run and are meant to: `service ls`'s
// numerator.
func (c *cluster) running(svcID string) int {
	n := 0
	for _, t := range c.live(svcID) {
		if t.Status.State == model.TaskRunning {
			n++
		}
	}
	return n
}

// nodesOf lists the nodes of the service's live tasks, sorted, "" for pending ones.
func (c *cluster) nodesOf(svcID string) []string {
	var out []string
	for _, t := range c.live(svcID) {
		out = append(out, t.NodeID)
	}
	slices.Sort(out)
	return out
}

func (c *cluster) perNode(svcID string) map[string]int {
	out := map[string]int{}
	for _, t := range c.live(svcID) {
		out[t.NodeID]++
	}
	return out
}

func (c *cluster) slotTasks(svcID string, slot uint64) []*model.Task {
	var out []*model.Task
	for _, t := range c.tasks {
		if t.ServiceID == svcID && t.Slot == slot {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, older)
	return out
}

// statuses summarizes live tasks as "slot:node:state" strings.
func statuses(ts []*model.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%d:%s:%s", t.Slot, t.NodeID, t.Status.State))
	}
	return out
}

func counter() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("id-%d", n)
	}
}
