// Package reconciler is the shell around the orchestrator's pure core: the loop that
// runs on the raft leader, reads the state, runs orchestrator passes over the services
// that need one, and commits the plans in batches.
//
// # What it keeps
//
// A million tasks are too many to read again after every write, so the loop keeps
// the scheduler's view of the nodes (scheduler.NodeInfo: what each node's tasks
// reserve and how many of each service it runs) and the set of services that need a
// pass, and updates both from the state's change feed (state.Feed) instead of
// rescanning. It reads the whole state only when it starts leading, when the feed
// lost changes, when a snapshot replaced the state, and when nodes join or leave or
// a service's reservations or host ports change (the accounting of its tasks would
// change under it).
//
// # When a service gets a pass
//
//   - at the start of leadership, every service (and every service ID that only
//     tasks still name: removed services whose tasks remain);
//   - when its row changes (deploy, scale, rollback, removal);
//   - when any node changes (joins, leaves, labels, availability, status): pending
//     tasks are retried and global services follow the nodes;
//   - when one of its tasks changes in a way the orchestrator acts on: it stops
//     (failed, complete, shutdown, rejected, orphaned), its desired state or node
//     changes, or it starts running while the service is updating or rolling back.
//     A task reporting progress (accepted, preparing, starting, running) outside an
//     update needs no decision, and at a million tasks that is most reports;
//   - when a plan's NextCheck comes (grace periods, restart delays and windows,
//     update delays, monitor periods, timeouts), and at once after a plan that
//     holds only one batch of a scale-up (orchestrator.Options.MaxNewTasks).
//
// A service the orchestrator cannot plan (it panics or fails on it) is reported on
// the service (PlanService) and in the log; the pass goes on with the others.
//
// Changes made by the loop's own plans are not a reason for a pass: the pass that
// made them already decided them.
//
// # Plans
//
// A pass reconciles its services from one read transaction and one orchestrator.Pass
// (so that services account for each other's placements), and commits their plans
// in command.CmdPlanApply entries of at most MaxBatchTasks task rows, a few entries in
// flight at once while it goes on deciding. A pass stops taking services once its
// plans hold MaxPassTasks rows and leaves the rest for the next, so that the view is
// refreshed from the feed in between. The placements a pass recorded in the NodeInfos
// are taken out again once its entries are committed: the feed then adds what was
// really written (a stale plan writes nothing).
//
// # Leadership
//
// Run must run only while the manager leads, RunWhileLeader takes care of that from
// raft's leadership notifications. Plans are applied with store.(*Store).ApplyLeader,
// which never forwards: a manager that lost leadership stops, and the new leader
// decides from its own state after a raft barrier.
package reconciler
