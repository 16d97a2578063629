package orchestrator

import (
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
)

// eligibility is what the scheduler says about the nodes for a global service.
type eligibility struct {
	// fit lists the nodes that should run a task now (sorted), why says why each
	// other node should not, in the scheduler's words.
	fit []string
	why map[string]string
	// allowed lists the nodes whose own description qualifies (ready, active,
	// platform, constraints), whether or not they have room: a node allowed but not
	// fit gets a task that stays pending with the reason, as Swarm shows "insufficient
	// resources" for a global service.
	allowed []string
}

func (e *eligibility) fits(id string) bool {
	_, ok := slices.BinarySearch(e.fit, id)
	return ok
}

func (e *eligibility) allows(id string) bool {
	_, ok := slices.BinarySearch(e.allowed, id)
	return ok
}

// reconcileGlobal keeps one task on every node that qualifies. Nodes that join,
// become active or gain a label the constraints ask for get a task; a node that is
// drained, down past the grace period, removed or no longer matches the constraints
// loses its task; a paused node, or one whose state is unknown, keeps it but gets no
// new one. replicas is ignored.
func (r *run) reconcileGlobal() {
	slots, foreign := r.group()
	// Every node has a slot, with tasks or not; slots of removed nodes stay too, so
	// that their tasks are stopped and reaped.
	have := make(map[string]bool, len(slots))
	for _, s := range slots {
		have[s.node] = true
		if s.removed && r.p.node(s.node) != nil {
			// Its tasks were removed with the node, which is back (same ID): the
			// slot starts over, the removed tasks are reaped as they stop.
			s.removed = false
		}
	}
	added := false
	for i := range r.p.nodes {
		if id := r.p.nodes[i].ID; !have[id] {
			slots = append(slots, &slot{node: id})
			added = true
		}
	}
	if added {
		sortSlots(slots)
	}

	var e eligibility
	e.fit, e.why = scheduler.ScheduleGlobal(r.p.infos, r.req, r.now)
	e.allowed, _ = scheduler.ScheduleGlobal(r.p.infos, r.nodeOnlyRequest(r.spec), r.now)

	r.orphans()
	var assigned scheduler.Result
	for _, s := range slots {
		r.processSlot(s)
		if s.removed || s.finished || s.waiting || len(s.live) > 0 {
			continue
		}
		if !e.allows(s.node) {
			s.refill = nil
			continue
		}
		rf := refill{}
		if s.refill != nil {
			rf = *s.refill
		}
		r.newTask(s, rf)
	}
	r.updateStep(slots, &e)
	// Settle every task that waits for its node: the new ones, and pending ones whose
	// node may have room now.
	for _, s := range slots {
		t := s.current()
		if s.removed || t == nil || !r.status(t).Before(model.TaskAssigned) {
			continue
		}
		switch {
		case r.hold != "":
			r.pend(t, r.hold)
		case r.delayed(t):
		case e.fits(s.node):
			r.assign(t, s.node)
			assigned.Assignments = append(assigned.Assignments, scheduler.Assignment{Task: len(assigned.Assignments), NodeID: s.node, Node: r.p.info[s.node]})
		default:
			r.pend(t, e.why[s.node])
		}
	}
	scheduler.Apply(r.p.infos, r.req, assigned)
	r.reap(slots, foreign)
}

// AllowedNodes lists (sorted) the nodes whose own description qualifies them to run a
// task of a global service: ready, active, of a platform the image has, matching the
// constraints. A node that qualifies but lacks room still counts: its task waits there
// with the reason. It is what `service ls` counts as a global service's desired tasks,
// besides the nodes that still run one (a paused node keeps its task).
func AllowedNodes(infos []scheduler.NodeInfo, svc *model.Service, opts Options, now time.Time) []string {
	p := NewPass(nil, infos, opts, now, func() string { return "" })
	r := p.newRun(svc, nil)
	allowed, _ := scheduler.ScheduleGlobal(infos, r.nodeOnlyRequest(r.spec), now)
	return allowed
}
