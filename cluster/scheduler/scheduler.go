package scheduler

import (
	"slices"
	"time"
)

// Schedule places req.Replicas new tasks of a replicated service on nodes, one at a
// time with the counters updated in between, so that caps and spreading hold within
// the call. It does not modify nodes (see Apply). The result depends only on its
// input, not on the order of nodes: ties are broken by node ID. now anchors the
// recent-failure window.
func Schedule(nodes []NodeInfo, req Request, now time.Time) Result {
	if req.Replicas <= 0 {
		return Result{}
	}
	if len(nodes) == 0 {
		return Result{Unplaced: req.Replicas, Reason: ReasonNoNodes}
	}
	r := compile(&req, now)
	counts := make([]int, len(r.buckets))
	t := r.build(nodes, counts)

	// Size the result for what can be placed, not for what was asked: a request for a
	// million tasks on three capped nodes should not allocate a million assignments.
	limit := req.Replicas
	if len(r.ports) > 0 {
		limit = min(limit, len(t.leaves))
	}
	if m := r.maxPerNode; m > 0 && m <= limit {
		limit = min(limit, len(t.leaves)*m)
	}
	res := Result{Assignments: make([]Assignment, 0, limit)}

	for task := range req.Replicas {
		li := t.best()
		if li < 0 {
			break
		}
		l := &t.leaves[li]
		res.Assignments = append(res.Assignments, Assignment{Task: task, NodeID: l.id, Node: int(l.node)})
		l.svc++
		l.total++
		l.free.NanoCPUs -= r.need.NanoCPUs
		l.free.MemoryBytes -= r.need.MemoryBytes
		f := r.checkCapacity(&nodes[l.node], l.free, l.svc, true)
		if f.kind != passed {
			counts[r.bucket(f)]++
		}
		t.placed(li, f.kind != passed)
	}
	if placed := len(res.Assignments); placed < req.Replicas {
		res.Unplaced = req.Replicas - placed
		res.Reason = r.reason(counts)
	}
	return res
}

// ScheduleGlobal tells which nodes a global service should run a task on: eligible
// lists them by node ID, reasons says for every other node why not, as one phrase
// ("node is draining", "constraint node.labels.os == linux not satisfied").
// req.Replicas, max_replicas_per_node and the failure ranking do not apply.
//
// A node that already runs a task of the service is judged on the node filters only
// (ready, availability, platform, constraints): its reservations and host ports are
// held by that very task and must not push it out. Being ineligible is not by itself a
// reason to remove a task; a paused node, for one, keeps its tasks. That is the
// orchestrator's rule to apply.
func ScheduleGlobal(nodes []NodeInfo, req Request, now time.Time) (eligible []string, reasons map[string]string) {
	r := compile(&req, now)
	r.maxPerNode = 0
	eligible = make([]string, 0, len(nodes))
	reasons = make(map[string]string)
	// One phrase per bucket, built on first use: thousands of drained nodes share a
	// handful of strings.
	phrases := make([]string, len(r.buckets))
	for i := range nodes {
		n := &nodes[i]
		f := r.checkNode(n)
		if f.kind == passed && n.ServiceTasks[r.serviceID] == 0 {
			free := Resources{
				NanoCPUs:    n.Total.NanoCPUs - n.Reserved.NanoCPUs,
				MemoryBytes: n.Total.MemoryBytes - n.Reserved.MemoryBytes,
			}
			f = r.checkCapacity(n, free, 0, false)
		}
		if f.kind == passed {
			eligible = append(eligible, n.ID)
			continue
		}
		b := r.bucket(f)
		if phrases[b] == "" {
			phrases[b] = r.describe(f)
		}
		reasons[n.ID] = phrases[b]
	}
	slices.Sort(eligible)
	return eligible, reasons
}
