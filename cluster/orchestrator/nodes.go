package orchestrator

import (
	"slices"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

// Why a task loses its node.
const (
	lostRemoved = "node removed"
	lostDrained = "node drained"
	lostDown    = "node down"
)

// checkNodes stops the live tasks of s whose node can no longer have them: removed,
// drained, down for longer than the grace period, or no longer matching the service's
// constraints (the constraint enforcer). A paused node keeps its tasks, and so does a
// node whose state is unknown (a new leader has not heard from it yet). When the
// current task goes, the slot asks for a replacement; for a global service the
// replacement can only be on the same node, which the global reconciler then refuses.
func (r *run) checkNodes(s *slot) {
	for i := 0; i < len(s.live); {
		t := s.live[i]
		if r.isCreated(t) || t.NodeID == "" {
			i++
			continue
		}
		why := r.lost(t)
		if why == "" {
			i++
			continue
		}
		d := model.TaskShutdown
		if why == lostRemoved && r.global {
			// The node's slot is gone with it.
			d = model.TaskRemove
		}
		r.setDesired(t, d)
		current := i == len(s.live)-1
		s.live = slices.Delete(s.live, i, i+1)
		if current && s.refill == nil {
			s.refill = &refill{restarts: r.carry(t)}
		}
	}
}

// lost says why t's node can no longer have it, or "".
func (r *run) lost(t *model.Task) string {
	n := r.p.node(t.NodeID)
	switch {
	case n == nil:
		return lostRemoved
	case n.Availability == model.AvailabilityDrain:
		return lostDrained
	case n.Status.State == model.NodeDown:
		if r.downFor(n, r.p.opts.NodeDownGrace) {
			return lostDown
		}
	}
	return r.violation(t)
}

// downFor reports whether n has been down for at least d, and otherwise asks to run
// again when it will have been.
func (r *run) downFor(n *model.Node, d time.Duration) bool {
	if n.Status.Timestamp.IsZero() {
		return true
	}
	at := n.Status.Timestamp.Add(d)
	if !at.After(r.now) {
		return true
	}
	r.wake(at)
	return false
}

// unreachable reports whether t's node cannot tell us that t stopped: it is gone or
// down.
func (r *run) unreachable(t *model.Task) bool {
	if t.NodeID == "" {
		return false
	}
	n := r.p.node(t.NodeID)
	return n == nil || n.Status.State == model.NodeDown
}

// orphans marks orphaned the tasks that still look alive on a node that is gone or has
// been down for OrphanAfter: no agent will report on them, and as orphans they stop
// holding the node's resources and become history the reaper can trim.
func (r *run) orphans() {
	for _, t := range r.tasks {
		if t.NodeID == "" || t.Status.State.Terminal() {
			continue
		}
		n := r.p.node(t.NodeID)
		switch {
		case n == nil:
			r.orphan(t, "node removed from the cluster")
		case n.Status.State == model.NodeDown && r.downFor(n, r.p.opts.OrphanAfter):
			r.orphan(t, "node down for more than "+r.p.opts.OrphanAfter.String())
		}
	}
}

// violation is the constraint enforcer: it says which placement constraint (or image
// platform) t's node no longer satisfies, in the scheduler's words and by its logic, or
// "". A task is judged by the spec it was made from, as Swarm does: a task of the
// previous spec by the previous constraints (a new constraint is the rolling update's
// business, paced by update_config, not the enforcer's), a task of an older spec not at
// all. The answers for all the nodes the service's tasks run on are worked out once per
// run and spec.
func (r *run) violation(t *model.Task) string {
	var e *enforcer
	switch {
	case r.clean(t):
		e = &r.enforcers[0]
		e.spec = r.spec
	case r.svc.PreviousSpec != nil && t.SpecHash != "" && t.SpecHash == r.previousHash():
		e = &r.enforcers[1]
		e.spec = r.svc.PreviousSpec
	default:
		return ""
	}
	if len(e.spec.Deploy.Placement.Constraints) == 0 && (e.spec != r.spec || len(r.req.Platforms) == 0) {
		return ""
	}
	if e.reasons == nil {
		e.reasons = r.enforce(e.spec)
	}
	return e.reasons[t.NodeID]
}

// enforcer caches the constraint enforcer's answers for one spec.
type enforcer struct {
	spec    *spec.Service
	reasons map[string]string
}

func (r *run) previousHash() string {
	if r.prevHash == "" && r.svc.PreviousSpec != nil {
		r.prevHash = PreviousTaskHash(r.svc)
	}
	return r.prevHash
}

// enforce asks scheduler.ScheduleGlobal about the nodes the service's live tasks are on,
// as if each were ready, active and had room: what is left are the node's labels,
// role, address and platform against the constraints of s.
func (r *run) enforce(s *spec.Service) map[string]string {
	var views []scheduler.NodeInfo
	seen := make(map[string]struct{})
	for _, t := range r.tasks {
		if t.NodeID == "" || !liveDesired(t.DesiredState) || t.Status.State.Terminal() {
			continue
		}
		if _, ok := seen[t.NodeID]; ok {
			continue
		}
		seen[t.NodeID] = struct{}{}
		i, ok := r.p.info[t.NodeID]
		if !ok {
			continue
		}
		v := r.p.infos[i] // a copy: only its scalar fields change
		v.State, v.Availability = model.NodeReady, model.AvailabilityActive
		views = append(views, v)
	}
	_, reasons := scheduler.ScheduleGlobal(views, r.nodeOnlyRequest(s), r.now)
	if reasons == nil {
		reasons = map[string]string{}
	}
	return reasons
}

// nodeOnlyRequest is the service's request for spec sp without what depends on the
// node's load (reservations, host ports, max per node): ScheduleGlobal then judges
// nodes on their own description alone.
func (r *run) nodeOnlyRequest(sp *spec.Service) scheduler.Request {
	s := *sp
	s.Ports = nil
	s.Deploy.Resources.Reservations = nil
	s.Deploy.Placement.MaxReplicasPerNode = 0
	req := r.req
	req.Service = &s
	if sp != r.spec {
		// The platforms are those of the current spec's image.
		req.Platforms = nil
	}
	return req
}
