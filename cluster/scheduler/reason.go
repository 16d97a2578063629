package scheduler

import (
	"slices"
	"strconv"
	"strings"
)

// Reason prefixes; ReasonNoNodes is the whole reason when the cluster has no node.
const (
	reasonPrefix  = "no suitable node"
	ReasonNoNodes = reasonPrefix + " (no nodes available)"
)

// condition is a failure as it reads before " on N nodes" in a counted reason.
func (r *request) condition(f failure) string {
	switch f.kind {
	case failDown:
		return "down"
	case failNotReady:
		return "not ready"
	case failPaused:
		return "paused"
	case failDraining:
		return "draining"
	case failPlatform:
		return "platform not supported by the image"
	case failConstraint:
		c := &r.constraints[f.sub]
		if c.kind == keyInvalid {
			return "invalid constraint " + c.text
		}
		return "constraint " + c.text + " not satisfied"
	case failResources:
		switch f.sub {
		case resCPU:
			return "insufficient resources (cpu)"
		case resMemory:
			return "insufficient resources (memory)"
		}
		return "insufficient resources (cpu, memory)"
	case failMaxReplicas:
		return "max replicas per node limit reached"
	case failHostPort:
		return "host port " + r.ports[f.sub].String() + " in use"
	}
	return ""
}

// describe is a failure as it reads for one node (global services, where each task
// belongs to one node).
func (r *request) describe(f failure) string {
	switch f.kind {
	case failDown, failNotReady, failPaused, failDraining:
		return "node is " + r.condition(f)
	case failPlatform:
		return "node platform not supported by the image"
	}
	return r.condition(f)
}

// reason counts nodes per failed filter, the filter failed on most nodes first and
// equal counts in filter order, e.g. "no suitable node (max replicas per node limit
// reached on 2 nodes; constraint node.labels.os == linux not satisfied on 1 node)".
// Most first, as Swarm does, because the biggest obstacle is what the operator should
// read first. counts is indexed like r.buckets.
func (r *request) reason(counts []int) string {
	order := make([]int, 0, len(counts))
	for i, n := range counts {
		if n > 0 {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return reasonPrefix
	}
	// Stable, so that buckets with equal counts keep filter order.
	slices.SortStableFunc(order, func(a, b int) int { return counts[b] - counts[a] })
	var b strings.Builder
	b.WriteString(reasonPrefix)
	for k, i := range order {
		if k == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		n := counts[i]
		b.WriteString(r.condition(r.buckets[i]))
		b.WriteString(" on ")
		b.WriteString(strconv.Itoa(n))
		if n == 1 {
			b.WriteString(" node")
		} else {
			b.WriteString(" nodes")
		}
	}
	b.WriteString(")")
	return b.String()
}

// Reason classes: what stops most nodes in a reason, in a word, for metrics that must not
// carry a constraint's text.
var reasonClasses = []struct{ class, condition string }{
	{"no_nodes", "no nodes available"},
	{"node_down", "down"},
	{"node_not_ready", "not ready"},
	{"node_paused", "paused"},
	{"node_draining", "draining"},
	{"platform", "platform not supported"},
	{"invalid_constraint", "invalid constraint"},
	{"constraint", "constraint"},
	{"resources", "insufficient resources"},
	{"max_replicas", "max replicas per node"},
	{"host_port", "host port"},
}

// ReasonClass is the class of a reason the scheduler gave, from its first condition
// (the one that stops most nodes); "other" for text of another kind.
func ReasonClass(reason string) string {
	first, ok := strings.CutPrefix(reason, reasonPrefix+" (")
	if !ok {
		return "other"
	}
	for _, c := range reasonClasses {
		if strings.HasPrefix(first, c.condition) {
			return c.class
		}
	}
	return "other"
}
