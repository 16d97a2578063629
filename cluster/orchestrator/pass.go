package orchestrator

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

// Pass is one reconciliation pass over the cluster: the nodes, the scheduler's view of
// them and the time, shared by the services reconciled in it. Reconcile records each
// service's placements in the NodeInfos (scheduler.Apply), so that the services of one
// pass account for each other's tasks. A Pass is not safe for concurrent use.
type Pass struct {
	now   time.Time
	opts  Options
	newID func() string

	nodes []*model.Node  // sorted by ID
	byID  map[string]int // index in nodes
	infos []scheduler.NodeInfo
	info  map[string]int // index in infos
	// holds are the services that must not place new tasks yet, and why (Hold).
	holds map[string]string
}

// Hold keeps the service from placing new tasks in this pass: they stay pending with
// reason (a stack it depends on is not running yet). What runs keeps running.
func (p *Pass) Hold(serviceID, reason string) {
	if p.holds == nil {
		p.holds = map[string]string{}
	}
	p.holds[serviceID] = reason
}

// NewPass prepares a pass. infos is the scheduler's view of the same nodes, usually
// scheduler.NodeInfosFromState over every task of the cluster; the pass writes to it.
// newID makes task IDs; it is called once per new task, in a deterministic order.
func NewPass(nodes []*model.Node, infos []scheduler.NodeInfo, opts Options, now time.Time, newID func() string) *Pass {
	p := &Pass{
		now:   now,
		opts:  opts.normalized(),
		newID: newID,
		nodes: slices.Clone(nodes),
		byID:  make(map[string]int, len(nodes)),
		infos: infos,
		info:  make(map[string]int, len(infos)),
	}
	slices.SortFunc(p.nodes, func(a, b *model.Node) int { return strings.Compare(a.ID, b.ID) })
	for i := range p.nodes {
		p.byID[p.nodes[i].ID] = i
	}
	for i := range infos {
		p.info[infos[i].ID] = i
	}
	return p
}

// node returns the node with the given ID, or nil when the cluster has none.
func (p *Pass) node(id string) *model.Node {
	if i, ok := p.byID[id]; ok {
		return p.nodes[i]
	}
	return nil
}

// Input is everything Reconcile needs for one service.
type Input struct {
	Service *model.Service
	// Tasks are all the service's tasks, history included.
	Tasks []*model.Task
	// Nodes are all the cluster's nodes; NodeInfos the scheduler's view of them.
	Nodes     []*model.Node
	NodeInfos []scheduler.NodeInfo
	Options   Options
	Now       time.Time
	NewID     func() string
}

// Reconcile reconciles one service on its own: NewPass followed by Pass.Reconcile.
func Reconcile(in Input) Plan {
	return NewPass(in.Nodes, in.NodeInfos, in.Options, in.Now, in.NewID).Reconcile(in.Service, in.Tasks)
}

// Reconcile decides what one service needs: the tasks to create, change and delete,
// and its update status. tasks are all of the service's tasks (history included), as
// stored; they are not modified. The decision depends only on its input.
func (p *Pass) Reconcile(svc *model.Service, tasks []*model.Task) Plan {
	r := p.newRun(svc, tasks)
	if r.checkUpdate() {
		return r.finish()
	}
	switch svc.Spec.Deploy.Mode {
	case spec.ModeGlobal, spec.ModeGlobalJob:
		r.reconcileGlobal()
	default:
		r.reconcileReplicated()
	}
	return r.finish()
}

// RemoveService handles the tasks of a service that no longer exists: they are told to
// go away (desired state remove) and deleted once they have stopped.
func (p *Pass) RemoveService(serviceID string, tasks []*model.Task) Plan {
	r := p.newRun(&model.Service{ID: serviceID}, tasks)
	for _, t := range tasks {
		r.setDesired(t, model.TaskRemove)
	}
	r.reapRemoved(tasks)
	return r.finish()
}

// run is the working state of one service's reconciliation.
type run struct {
	p      *Pass
	now    time.Time
	svc    *model.Service
	spec   *spec.Service
	hash   string
	job    bool
	global bool
	tasks  []*model.Task

	// req asks the scheduler about this service.
	req scheduler.Request
	// hold, when set, pends new tasks with it instead of placing them (Pass.Hold).
	hold string
	// enforcers cache the constraint enforcer's answers for the current and the
	// previous spec (nodes.go); prevHash is TaskHash of what a rollback returns to.
	enforcers [2]enforcer
	prevHash  string

	// upd holds the changes to existing tasks, created the new rows.
	upd     map[string]*TaskUpdate
	created map[*model.Task]struct{}
	deleted map[string]struct{}
	// rowBuf is room reserved for new tasks (reserve).
	rowBuf []model.Task
	// us is the update status as this run leaves it.
	us   model.UpdateStatus
	plan Plan
}

func (p *Pass) newRun(svc *model.Service, tasks []*model.Task) *run {
	r := &run{
		p:       p,
		now:     p.now,
		svc:     svc,
		spec:    &svc.Spec,
		job:     svc.Spec.Deploy.Job(),
		global:  svc.Spec.Deploy.Global(),
		tasks:   tasks,
		upd:     make(map[string]*TaskUpdate),
		created: make(map[*model.Task]struct{}),
		deleted: make(map[string]struct{}),
		us:      svc.UpdateStatus,
		plan:    Plan{ServiceID: svc.ID, SpecVersion: svc.SpecVersion},
	}
	r.hash = TaskHash(svc)
	r.hold = p.holds[svc.ID]
	var platforms []model.Platform
	if p.opts.Platforms != nil {
		platforms = p.opts.Platforms(svc)
	}
	r.req = scheduler.Request{ServiceID: svc.ID, Service: &svc.Spec, SpecVersion: svc.SpecVersion, Platforms: platforms}
	return r
}

// finish turns the run's decisions into the plan.
func (r *run) finish() Plan {
	if len(r.upd) > 0 {
		r.plan.Update = make([]TaskUpdate, 0, len(r.upd))
		for _, u := range r.upd {
			r.plan.Update = append(r.plan.Update, *u)
		}
		slices.SortFunc(r.plan.Update, func(a, b TaskUpdate) int { return strings.Compare(a.ID, b.ID) })
	}
	slices.Sort(r.plan.Delete)
	if r.us != r.svc.UpdateStatus && r.plan.Service == nil {
		r.plan.Service = &ServiceUpdate{UpdateStatus: r.us}
	}
	return r.plan
}

// wake asks for another run at t, if t is in the future.
func (r *run) wake(t time.Time) {
	if !t.After(r.now) {
		return
	}
	if r.plan.NextCheck.IsZero() || t.Before(r.plan.NextCheck) {
		r.plan.NextCheck = t
	}
}

// more asks for another run as soon as the plan is applied: it holds only part of what
// the service needs.
func (r *run) more() { r.plan.NextCheck = r.now }

// newTaskRoom is how many more tasks this run may create (Options.MaxNewTasks).
func (r *run) newTaskRoom() int { return max(0, r.p.opts.MaxNewTasks-len(r.plan.Create)) }

// ---------------------------------------------------------------------------
// Task predicates, seen through this run's decisions.

// liveDesired reports whether a desired state asks the task to run: running, or
// complete for jobs.
func liveDesired(d model.TaskState) bool { return d == model.TaskRunning || d == model.TaskComplete }

func (r *run) isCreated(t *model.Task) bool {
	_, ok := r.created[t]
	return ok
}

func (r *run) touched(t *model.Task) bool {
	_, ok := r.upd[t.ID]
	return ok
}

// desired is t's desired state after this run's changes.
func (r *run) desired(t *model.Task) model.TaskState {
	if u := r.upd[t.ID]; u != nil && u.DesiredState != "" {
		return u.DesiredState
	}
	return t.DesiredState
}

// status is t's observed state after this run's changes.
func (r *run) status(t *model.Task) model.TaskState {
	if u := r.upd[t.ID]; u != nil && u.Status != nil {
		return u.Status.State
	}
	return t.Status.State
}

// stopped reports whether t no longer runs anywhere: it ended, or it never reached a
// node's agent (agents act on tasks from assigned on).
func (r *run) stopped(t *model.Task) bool {
	st := r.status(t)
	return st.Terminal() || st.Before(model.TaskAssigned)
}

// clean reports whether t was made from the current spec.
func (r *run) clean(t *model.Task) bool {
	if t.SpecHash != "" {
		return t.SpecHash == r.hash
	}
	return t.SpecVersion == r.svc.SpecVersion
}

// carry is the restart record a replacement of t inherits: t's own while the spec is
// the same, a fresh one after a change.
func (r *run) carry(t *model.Task) model.Restarts {
	if r.clean(t) {
		return t.Restarts.Clone()
	}
	return model.Restarts{}
}

// older orders tasks by age: creation time, then raft index, then ID.
func older(a, b *model.Task) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.CreateIndex, b.CreateIndex), strings.Compare(a.ID, b.ID))
}

// ---------------------------------------------------------------------------
// Writes.

func (r *run) touch(t *model.Task) *TaskUpdate {
	u := r.upd[t.ID]
	if u == nil {
		u = &TaskUpdate{ID: t.ID, UpdatedAt: r.now}
		r.upd[t.ID] = u
	}
	return u
}

// setDesired moves t's desired state forward to d.
func (r *run) setDesired(t *model.Task, d model.TaskState) {
	if r.isCreated(t) {
		if d.After(t.DesiredState) {
			t.DesiredState = d
		}
		return
	}
	if !d.After(r.desired(t)) {
		return
	}
	r.touch(t).DesiredState = d
}

// orphan marks t orphaned: its node is gone, or down for too long, and no agent will
// report on it again.
func (r *run) orphan(t *model.Task, msg string) {
	if r.status(t).Compare(model.TaskOrphaned) >= 0 {
		return
	}
	r.touch(t).Status = &model.TaskStatus{State: model.TaskOrphaned, Message: msg, Timestamp: r.now}
}

// Status messages, Swarm's where Swarm has one.
const (
	msgAssigned = "scheduler assigned task to node"
	msgPending  = "pending task scheduling"
)

// assign puts a pending task on a node.
func (r *run) assign(t *model.Task, nodeID string) {
	if r.isCreated(t) {
		t.NodeID = nodeID
		t.Status = model.TaskStatus{State: model.TaskAssigned, Message: msgAssigned, Timestamp: r.now}
		return
	}
	u := r.touch(t)
	u.NodeID = nodeID
	u.Status = &model.TaskStatus{State: model.TaskAssigned, Message: msgAssigned, Timestamp: r.now}
}

// PendingStatus is the status of a task left pending for reason.
func PendingStatus(reason string, now time.Time) model.TaskStatus {
	return model.TaskStatus{State: model.TaskPending, Message: msgPending, Err: reason, Timestamp: now}
}

// pend leaves a task pending with the scheduler's reason, writing only if the reason
// changed.
func (r *run) pend(t *model.Task, reason string) {
	st := PendingStatus(reason, r.now)
	if r.isCreated(t) {
		t.Status = st
		return
	}
	if t.Status.State == model.TaskPending && t.Status.Err == reason {
		return
	}
	r.touch(t).Status = &st
}

// newTask makes a task for slot s from the current spec.
func (r *run) newTask(s *slot, rf refill) *model.Task {
	desired := model.TaskRunning
	if r.job {
		desired = model.TaskComplete
	}
	t := r.alloc()
	*t = model.Task{
		ID:           r.p.newID(),
		ServiceID:    r.svc.ID,
		ServiceName:  r.svc.Name,
		Slot:         s.num,
		NodeID:       s.node,
		SpecVersion:  r.svc.SpecVersion,
		DesiredState: desired,
		Status:       model.TaskStatus{State: model.TaskNew, Timestamp: r.now},
		CreatedAt:    r.now,
		UpdatedAt:    r.now,
		SpecHash:     r.hash,
		Image:        r.spec.Image,
		NotBefore:    rf.notBefore,
		Restarts:     rf.restarts,
	}
	r.created[t] = struct{}{}
	r.plan.Create = append(r.plan.Create, t)
	s.live = append(s.live, t)
	s.refill = nil
	return t
}

// reserve makes room for n new tasks at once: scaling a service from nothing to a
// thousand replicas then costs a few allocations rather than thousands. n is bounded
// by Options.MaxNewTasks, never the count a spec asks for.
func (r *run) reserve(n int) {
	if n <= 1 {
		return
	}
	r.rowBuf = make([]model.Task, 0, n)
	r.plan.Create = slices.Grow(r.plan.Create, n)
	if len(r.created) == 0 {
		r.created = make(map[*model.Task]struct{}, n)
	}
}

// alloc returns a zero task row, from the reserved room when there is some.
func (r *run) alloc() *model.Task {
	if n := len(r.rowBuf); n < cap(r.rowBuf) {
		r.rowBuf = r.rowBuf[:n+1]
		return &r.rowBuf[n]
	}
	return &model.Task{}
}

func (r *run) remove(t *model.Task) {
	r.deleted[t.ID] = struct{}{}
	r.plan.Delete = append(r.plan.Delete, t.ID)
}
