package orchestrator

import (
	"cmp"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
)

// replicas is the number of slots a replicated service (or job) wants, within the
// cluster's limit (Options.MaxReplicas).
func (r *run) replicas() int {
	if p := r.spec.Deploy.Replicas; p != nil {
		return int(min(*p, r.p.opts.MaxReplicas, uint64(maxSlots)))
	}
	return 1
}

// maxSlots caps replicas so that slot arithmetic stays in int on every platform; no
// cluster runs more.
const maxSlots = 1 << 30

// reconcileReplicated keeps one task per slot 1..replicas running: it scales down
// first (so that nothing is restarted in a slot about to go), then runs the per-slot
// rules, refills the slots that need a task, scales up, takes the next step of a
// rolling update, places every task that needs a node in one scheduler call, and
// trims the history.
func (r *run) reconcileReplicated() {
	slots, foreign := r.group()
	r.orphans()
	r.scaleDown(slots, r.replicas())
	for _, s := range slots {
		r.processSlot(s)
		if s.refill != nil {
			r.newTask(s, *s.refill)
		}
	}
	slots = r.scaleUp(slots, r.replicas())
	r.updateStep(slots, nil)
	r.place(slots)
	r.reap(slots, foreign)
}

// occupied reports whether a slot counts toward the replicas: anything not removed,
// including a finished slot (its task ended and the policy says not to restart it,
// which is the 2/3 `service ls` shows).
func occupied(s *slot) bool { return !s.removed }

// scaleDown removes slots beyond want. Slots that run nothing go first (ended, waiting,
// pending), highest slot first; then tasks from the nodes that run the most of this
// service, so the remaining tasks stay spread, ties broken by the highest slot. On one
// node, a task that is not running yet goes before one that runs. Removed tasks get
// desired state remove: the reaper deletes them once they have stopped, history and
// all, as Swarm does.
func (r *run) scaleDown(slots []*slot, want int) {
	n := 0
	for _, s := range slots {
		if occupied(s) {
			n++
		}
	}
	excess := n - want
	if excess <= 0 {
		return
	}
	type candidate struct {
		s       *slot
		node    string
		running bool
		rank    int // 0: runs nothing, 1: pending, 2: on a node
		copy    int // the nth task of the service on its node, counted from those kept first
	}
	var cands []candidate
	for _, s := range slots {
		if !occupied(s) {
			continue
		}
		c := candidate{s: s}
		var cur *model.Task
		for _, t := range s.tasks {
			if liveDesired(t.DesiredState) && !t.Status.State.Terminal() {
				cur = t
			}
		}
		switch {
		case cur == nil:
			c.rank = 0
		case cur.NodeID == "" || cur.Status.State.Before(model.TaskAssigned):
			c.rank = 1
		default:
			c.rank, c.node, c.running = 2, cur.NodeID, cur.Status.State == model.TaskRunning
		}
		cands = append(cands, c)
	}
	// Number the tasks on each node, those to keep longest first: running before not
	// running, then lower slots. Removing the highest numbers first always takes from
	// the node that has the most left.
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(strings.Compare(a.node, b.node), boolFirst(a.running, b.running), cmp.Compare(a.s.num, b.s.num))
	})
	for i := range cands {
		if cands[i].rank == 2 {
			if i > 0 && cands[i-1].rank == 2 && cands[i-1].node == cands[i].node {
				cands[i].copy = cands[i-1].copy + 1
			} else {
				cands[i].copy = 1
			}
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(b.copy, a.copy), cmp.Compare(b.s.num, a.s.num))
	})
	for _, c := range cands[:excess] {
		for _, t := range c.s.tasks {
			r.setDesired(t, model.TaskRemove)
		}
		c.s.removed = true
	}
}

// boolFirst orders true before false.
func boolFirst(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// scaleUp adds slots until want are occupied, with the lowest free slot numbers; a
// removed slot's number is free again. A run adds at most what Options.MaxNewTasks
// leaves room for, and asks for another run for the rest.
func (r *run) scaleUp(slots []*slot, want int) []*slot {
	n := 0
	for _, s := range slots {
		if occupied(s) {
			n++
		}
	}
	missing := want - n
	if missing <= 0 {
		return slots
	}
	if room := r.newTaskRoom(); missing > room {
		missing = room
		r.more()
	}
	if missing == 0 {
		return slots
	}
	byNum := make(map[uint64]*slot, len(slots))
	for _, s := range slots {
		byNum[s.num] = s
	}
	r.reserve(missing)
	// One allocation for the new slots, one for their lists of live tasks.
	room := make([]slot, 0, missing)
	lives := make([]*model.Task, missing)
	added := false
	for num := uint64(1); missing > 0; num++ {
		s := byNum[num]
		switch {
		case s == nil:
			k := len(room)
			room = append(room, slot{num: num, live: lives[k : k : k+1]})
			s = &room[k]
			slots = append(slots, s)
			added = true
		case s.removed:
			s.removed = false
		default:
			continue
		}
		r.newTask(s, refill{})
		missing--
	}
	if added {
		sortSlots(slots)
	}
	return slots
}

// place puts every task that needs a node on one, in slot order, with one scheduler
// call, and records the result in the pass's NodeInfos for the next service. A task
// that cannot be placed stays pending with the scheduler's reason; an existing one is
// rewritten only when the reason changed.
func (r *run) place(slots []*slot) {
	var todo []*model.Task
	var avoid []string
	for _, s := range slots {
		if s.removed {
			continue
		}
		for _, t := range s.live {
			if t.NodeID == "" && r.status(t).Before(model.TaskAssigned) && !r.delayed(t) {
				todo = append(todo, t)
				avoid = r.avoidNodes(s, avoid)
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	if r.hold != "" {
		for _, t := range todo {
			r.pend(t, r.hold)
		}
		return
	}
	req := r.req
	req.Replicas, req.Avoid = len(todo), avoid
	res := scheduler.Schedule(r.p.infos, req, r.now)
	scheduler.Apply(r.p.infos, req, res)
	for _, a := range res.Assignments {
		r.assign(todo[a.Task], a.NodeID)
	}
	for _, t := range todo[len(res.Assignments):] {
		r.pend(t, res.Reason)
	}
}
