package command

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
)

// PlanApply carries the plans of many services in one entry: the leader's reconciler
// commits its decisions in batches, which is what makes placing a million tasks cheap
// (DESIGN.md section 4). Each plan is applied on its own, with the rules documented
// on orchestrator.Plan; NextCheck is the leader's business and is not carried.
type PlanApply struct {
	Plans []*orchestrator.Plan
}

// Tasks counts the task rows the entry writes.
func (p *PlanApply) Tasks() int {
	n := 0
	for _, pl := range p.Plans {
		n += pl.Tasks()
	}
	return n
}

func (p *PlanApply) encodeWire(e *wireEncoder) {
	e.uvarint(uint64(len(p.Plans)))
	for _, pl := range p.Plans {
		e.str(pl.ServiceID)
		e.uvarint(pl.SpecVersion)
		e.bool(pl.Service != nil)
		if u := pl.Service; u != nil {
			e.bool(u.Rollback)
			e.str(string(u.UpdateStatus.State))
			e.str(u.UpdateStatus.Message)
			e.time(u.UpdateStatus.StartedAt)
			e.time(u.UpdateStatus.CompletedAt)
		}
		e.uvarint(uint64(len(pl.Create)))
		for _, t := range pl.Create {
			e.task(t)
		}
		e.uvarint(uint64(len(pl.Update)))
		for i := range pl.Update {
			u := &pl.Update[i]
			e.str(u.ID)
			e.str(string(u.DesiredState))
			e.str(u.NodeID)
			e.bool(u.Status != nil)
			if u.Status != nil {
				e.status(u.Status)
			}
			e.attachments(u.Networks)
			e.time(u.UpdatedAt)
		}
		e.uvarint(uint64(len(pl.Delete)))
		for _, id := range pl.Delete {
			e.str(id)
		}
	}
}

func (p *PlanApply) decodeWire(d *wireDecoder) {
	p.Plans = make([]*orchestrator.Plan, d.count(4))
	for i := range p.Plans {
		pl := &orchestrator.Plan{ServiceID: d.str(), SpecVersion: d.uvarint()}
		p.Plans[i] = pl
		if d.bool() {
			pl.Service = &orchestrator.ServiceUpdate{Rollback: d.bool()}
			pl.Service.UpdateStatus = model.UpdateStatus{State: model.UpdateState(d.str()), Message: d.str(),
				StartedAt: d.time(), CompletedAt: d.time()}
		}
		if n := d.count(20); n > 0 {
			// A row of its own for each task, not one array for the plan's: an array
			// lives as long as any of its rows, and the agents' first status report
			// replaces each row, at its own time.
			pl.Create = make([]*model.Task, n)
			for j := range pl.Create {
				t := new(model.Task)
				d.task(t)
				pl.Create[j] = t
			}
		}
		if n := d.count(5); n > 0 {
			pl.Update = make([]orchestrator.TaskUpdate, n)
			for j := range pl.Update {
				u := &pl.Update[j]
				u.ID = d.str()
				u.DesiredState = model.TaskState(d.word())
				u.NodeID = d.word()
				if d.bool() {
					st := d.status()
					u.Status = &st
				}
				if d.format >= 2 {
					u.Networks = d.attachments()
				}
				u.UpdatedAt = d.time()
			}
		}
		if n := d.count(1); n > 0 {
			pl.Delete = make([]string, n)
			for j := range pl.Delete {
				pl.Delete[j] = d.str()
			}
		}
		if d.err != nil {
			return
		}
	}
}

func applyPlans(tx *state.WriteTxn, p *PlanApply) error {
	reserved := reservedAddrs{tx: &tx.ReadTxn}
	for _, pl := range p.Plans {
		if err := applyPlan(tx, pl, &reserved); err != nil {
			return fmt.Errorf("plan of service %s: %w", pl.ServiceID, err)
		}
	}
	return nil
}

// applyPlan applies one plan with the rules of orchestrator.Plan and TaskUpdate.
func applyPlan(tx *state.WriteTxn, p *orchestrator.Plan, reserved *reservedAddrs) error {
	svc, err := tx.Service(nil, p.ServiceID)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	switch {
	case p.SpecVersion == 0 && svc != nil:
		// For a removed service, which exists again.
		return nil
	case p.SpecVersion != 0 && (svc == nil || svc.SpecVersion != p.SpecVersion):
		// Computed from a spec that no longer holds.
		return nil
	}
	for _, t := range p.Create {
		if t.ServiceID != p.ServiceID {
			return fmt.Errorf("%w: task %s is of service %s", state.ErrInvalid, t.ID, t.ServiceID)
		}
	}
	if taken, err := reserved.given(p); taken || err != nil {
		return err
	}
	if u := p.Service; u != nil && svc != nil {
		next := svc.Copy()
		if u.Rollback && svc.PreviousSpec != nil {
			next = rolledBack(tx, svc)
		}
		next.UpdateStatus = u.UpdateStatus
		if err := tx.UpsertService(next); err != nil {
			return err
		}
	}
	// Task IDs are random, made by the proposer: a new task never meets an old row.
	if err := tx.PutTasks(p.Create); err != nil {
		return err
	}
	for i := range p.Update {
		if err := applyTaskUpdate(tx, &p.Update[i]); err != nil {
			return err
		}
	}
	for _, id := range p.Delete {
		if err := tx.DeleteTask(id); err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
	}
	return nil
}

// reservedAddrs are the addresses VIPs and node endpoints hold on the networks an
// entry's plans give addresses on, and the range tasks' addresses must come from
// (TaskRange), read once per network and entry: a plan writes neither services'
// VIPs, nor nodes, nor networks.
type reservedAddrs struct {
	tx   *state.ReadTxn
	nets map[string]*reservedOn
}

type reservedOn struct {
	held  map[netip.Addr]string
	tasks netip.Prefix // invalid when the network or its subnet cannot be read
}

// given reports whether a plan gives a task an address that a VIP or a node's
// endpoint holds, or one outside its network's TaskRange. The leader planned it
// before a stack write took that address (VIPs come from the top of a subnet, tasks
// from the bottom, so only on a nearly full subnet), and the write's entry came
// first: the plan is skipped whole, as a stale one is, and the leader, which sees
// the write take an address it gave a task, reads its view anew and plans again
// (cluster/reconciler).
func (r *reservedAddrs) given(p *orchestrator.Plan) (bool, error) {
	for _, t := range p.Create {
		if taken, err := r.holds(t.Networks); taken || err != nil {
			return taken, err
		}
	}
	for i := range p.Update {
		if taken, err := r.holds(p.Update[i].Networks); taken || err != nil {
			return taken, err
		}
	}
	return false, nil
}

func (r *reservedAddrs) holds(atts []model.Attachment) (bool, error) {
	for _, a := range atts {
		on, err := r.on(a.Network)
		if err != nil {
			return false, err
		}
		p, err := netip.ParsePrefix(a.Addr)
		if err == nil && (on.held[p.Addr()] != "" || on.tasks.IsValid() && !on.tasks.Contains(p.Addr())) {
			return true, nil
		}
	}
	return false, nil
}

func (r *reservedAddrs) on(network string) (*reservedOn, error) {
	if on, ok := r.nets[network]; ok {
		return on, nil
	}
	held, err := r.tx.ReservedAddrs(network)
	if err != nil {
		return nil, err
	}
	on := &reservedOn{held: held}
	if n, err := r.tx.Network(nil, network); err == nil {
		if subnet, err := netip.ParsePrefix(n.Subnet); err == nil {
			on.tasks = TaskRange(n, subnet)
		}
	}
	if r.nets == nil {
		r.nets = map[string]*reservedOn{}
	}
	r.nets[network] = on
	return on, nil
}

// applyTaskUpdate applies the fields of u that move the task forward.
func applyTaskUpdate(tx *state.WriteTxn, u *orchestrator.TaskUpdate) error {
	cur, err := tx.Task(nil, u.ID)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	next := *cur
	changed := false
	if u.DesiredState != "" && u.DesiredState.After(next.DesiredState) {
		next.DesiredState, changed = u.DesiredState, true
	}
	if st := u.Status; st != nil {
		switch st.State {
		case model.TaskAssigned:
			if next.Status.State.Before(model.TaskAssigned) && (next.NodeID == "" || next.NodeID == u.NodeID) {
				next.NodeID, next.Status, changed = u.NodeID, *st, true
				if len(next.Networks) == 0 {
					next.Networks = u.Networks
				}
			}
		case model.TaskPending:
			if !next.Status.State.After(model.TaskPending) {
				next.Status, changed = *st, true
			}
		default:
			if !st.State.Before(next.Status.State) {
				next.Status, changed = *st, true
			}
		}
	}
	if !changed {
		return nil
	}
	next.UpdatedAt = u.UpdatedAt
	// The copy shares the row's slices, which nothing here changes.
	return tx.ReplaceTask(cur, &next)
}

// TaskStatusReport is one status an agent reported, with the node it came from (the
// node of its certificate, never one it claims).
type TaskStatusReport struct {
	NodeID string
	TaskID string
	Status model.TaskStatus
}

// TaskStatusBatch carries the status reports of any number of agents: managers batch
// them into few entries (DESIGN.md section 4). Each is applied with the forward-only
// rule of state.WriteTxn.ReportTaskStatus; those that no longer apply are skipped.
type TaskStatusBatch struct {
	Reports []TaskStatusReport
}

func (b *TaskStatusBatch) encodeWire(e *wireEncoder) {
	e.uvarint(uint64(len(b.Reports)))
	for i := range b.Reports {
		r := &b.Reports[i]
		e.str(r.NodeID)
		e.str(r.TaskID)
		e.status(&r.Status)
	}
}

func (b *TaskStatusBatch) decodeWire(d *wireDecoder) {
	b.Reports = make([]TaskStatusReport, d.count(7))
	for i := range b.Reports {
		b.Reports[i] = TaskStatusReport{NodeID: d.str(), TaskID: d.str(), Status: d.status()}
	}
}

func applyTaskStatus(tx *state.WriteTxn, b *TaskStatusBatch) error {
	for i := range b.Reports {
		r := &b.Reports[i]
		if _, err := tx.ReportTaskStatus(r.NodeID, r.TaskID, r.Status); err != nil {
			return err
		}
	}
	return nil
}
