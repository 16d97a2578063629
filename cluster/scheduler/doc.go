// Package scheduler decides where new tasks run. It is pure: the caller hands it a
// view of the nodes (NodeInfo, built from state rows with NodeInfosFromState), a
// placement Request and the current time, and gets back assignments and, for what
// cannot be placed, a reason a person can act on. It reads no clock, does no I/O and
// keeps no state between calls, so the orchestrator on the raft leader and the
// applier's plan preview get the same answer from the same input.
//
// # Filters
//
// A node must pass every filter, in this order; a node that fails is counted once,
// under the first filter it fails (and the first constraint it fails), and the reason
// of an unplaced task lists the counts, the largest first as in Swarm, equal counts in
// filter order:
//
//	ready          the node's status is ready ("down", "not ready")
//	availability   active ("paused", "draining"); the empty availability counts as active
//	platform       one of Request.Platforms (from the image's index), when given
//	constraints    each placement constraint, in the order written
//	resources      cpu and memory reservations fit in what the node has left
//	max replicas   fewer than max_replicas_per_node tasks of the service
//	host ports     the service's host-mode published ports are free on the node
//
// The first four depend only on the node and the service; the last three change as
// tasks are placed, so Schedule re-checks them on a node after every task it puts
// there. A reason reads
//
//	no suitable node (max replicas per node limit reached on 2 nodes; constraint node.labels.os == linux not satisfied on 1 node)
//
// and "no suitable node (no nodes available)" when the cluster has no node at all.
//
// Constraints follow Swarm: values compare without regard to case, a missing label
// reads as the empty value (so == fails and != passes), node.ip matches an address or
// a CIDR against the node's address. A constraint that does not parse (the spec is
// validated before it gets here, so this is a bug elsewhere) fails every node and is
// named as invalid in the reason, rather than panicking or being ignored.
//
// # Ranking
//
// Among the nodes that pass, each task goes, one at a time:
//
//  1. to a node that has not failed this service version recently, if there is one
//     (at least Request.FailureThreshold failures within Request.FailureWindow). Such
//     nodes are ranked last, not filtered, so that the service still runs somewhere;
//     a spread group holding only such nodes likewise comes after the other groups;
//  2. down the spread-preference tree: at each level, into the group (label value)
//     holding the fewest tasks of the service, nodes without the label forming a group
//     of their own; group ties go to the smaller label value;
//  3. within the final group, to the node with the fewest tasks of the service, then
//     the fewest tasks overall, then the smallest node ID.
//
// A group's count includes the service's tasks on every node of the group that passes
// the first four filters, even on a node that is full: a zone is judged by all the
// tasks it runs, not only by those on nodes with room left. Placing one task at a
// time with the counts updated reproduces Swarm's even spread, and also honours caps
// such as max_replicas_per_node within a single call.
//
// Global services use ScheduleGlobal, which applies the same filters to say which
// nodes should run a task and why the others should not. Apply records a Result in the
// NodeInfos, so that a batch of services can be scheduled from one view.
//
// Each group keeps its children in a binary heap, so one call costs O(N) to filter
// and build plus O(R·L·log N) to place R tasks over L preference levels.
package scheduler
