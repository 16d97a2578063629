// Package orchestrator decides, on the raft leader, which tasks each service needs: it
// turns a service row, its tasks and the nodes into a Plan of task rows to create,
// change and delete, and the service's update status. It is the pure core of the
// replicated and global orchestrators, the restart supervisor, the rolling updater,
// the node-health and constraint enforcers and the task reaper: it reads no clock
// (now is a parameter), makes ids with an injected function, does no I/O and keeps
// nothing between calls. Every decision is derived from the replicated state alone,
// so a new leader carries on where the old one stopped, with the same restart counts,
// the same update progress and the same grace periods.
//
// The shell, cluster/reconciler, watches the state on the raft leader, runs a Pass over
// the services that changed (and whenever a plan's NextCheck comes), and proposes the
// plans, many per raft entry; cluster/store applies them with the rules on Plan.
//
// # Slots
//
// A replicated service has slots 1..replicas, a global one a slot per node. A slot's
// tasks are its history, oldest first; its current task is the newest one meant to run
// (desired running, or complete for jobs) that has not stopped. A slot is:
//
//   - live: it has a current task;
//   - finished: its newest task ended and stays ended (the restart policy says no, or a
//     job completed). The task keeps desired state running: that, with the policy
//     and the restart record on the row, is what says "finished" to every later run,
//     so a refusal writes nothing and survives a leader change;
//   - vacant: its newest task was told to stop (shutdown). It is refilled once that
//     task has stopped (or its node is down or gone, or the update step timeout
//     passed): this is how stop-first updates and global nodes coming back work;
//   - removed: every task has desired state remove (scale down, node removed).
//
// Replicated: scale down removes the slots that run nothing first, then takes from the
// nodes running the most tasks of the service (ties: highest slot); scale up fills the
// lowest free slot numbers. Global: one task per node that passes the scheduler's
// node filters; a node that passes them but lacks room gets a task that stays pending
// with the reason. Paused nodes keep their tasks and get no new ones; drained ones, and
// nodes down for longer than the grace period, lose them (replicated tasks are
// replaced elsewhere); removed nodes' tasks are orphaned at once, and tasks on a node
// down for OrphanAfter are orphaned. Running tasks whose node no longer satisfies the
// service's constraints are replaced (the constraint enforcer reuses the scheduler's
// filters through scheduler.ScheduleGlobal). Pending tasks are offered to the
// scheduler again on every run, so the shell should run after any change of nodes,
// labels, availability or tasks.
//
// Jobs (replicated-job, global-job) run each slot to completion: a completed task is
// done and never restarted, a failed one is restarted per the restart policy (default
// on-failure; any means on-failure for jobs). A new spec runs the job again on every
// slot at once; jobs have no rolling update.
//
// # Restarts
//
// When the current task of a slot ends while meant to run, the restart supervisor
// applies restart_policy: none never restarts, on-failure restarts unless the task
// completed with exit code 0, any always (default, with Swarm's 5 s delay). The count
// is model.Task.Restarts, copied from each task to its replacement, so max_attempts holds
// across leader changes and history trimming; it restarts from zero when the spec
// changes. With a window, max_attempts restarts are allowed per window (a sliding
// window over Restarts.Recent). The replacement is made at once with NotBefore = now
// + delay, pending, and placed only when the delay is over: a node prepares a task as
// soon as it has it, so a task it cannot prepare (an image that cannot be pulled)
// would otherwise be rejected and replaced at once, whatever the delay.
//
// The delay backs off as Kubernetes' CrashLoopBackOff does: after a task that failed
// soon after it could start (rejected, or ended within BackoffReset or within the delay
// it waited itself), the next waits twice as long, up to MaxRestartBackoff; a task that
// ran longer resets it to the policy's delay (Swarm waits the policy's delay every
// time). The delay a task waited is its NotBefore less its CreatedAt, so the back-off
// is read from the rows like the count. The nodes where the slot's current streak
// failed are ranked last for the replacement (scheduler.Request.Avoid) while another
// node qualifies. Together these hold a failing slot to one attempt per delay.
//
// Replacing a task because of its node (drain, down, removed, constraints) is not a
// restart: the policy and the count do not apply (Swarm runs those through the
// policy, so that a restart_policy of none loses tasks on drain).
//
// # Rolling updates
//
// A task is out of date when its SpecHash differs from TaskHash of the service: its
// spec (replicas, update/rollback config, restart policy and service labels do not
// count), its force counter (`service update --force`) and the versions of the
// secrets and configs it mounts. Progress is read from UpdateStatus and the tasks' hashes and timestamps:
// the tasks an update made are those of the current spec created since
// UpdateStatus.StartedAt. See updateStep for the steps and checkUpdate for failures,
// failure actions (pause, continue, rollback) and the timeouts.
//
// # Contract with the FSM and the API
//
// Plan documents how the FSM applies a plan. Besides that, whoever changes a service's
// spec (stack deploy, service update, the applier) must also clear its UpdateStatus,
// as Swarm's control API does: that is what starts a new update, and what resumes a
// paused one. `service rollback` is the FSM write ServiceUpdate{Rollback: true} with
// UpdateStatus{rollback_started, "manually requested rollback", StartedAt: now},
// refused by the API when there is no PreviousSpec.
//
// # Rows
//
// The orchestrator reads and writes state rows directly. Besides the obvious, it relies
// on model.Task.SpecHash (TaskHash of what the task was made from), Task.NotBefore (the
// restart delay), Task.Restarts (the supervisor's count, carried from task to task),
// and model.NodeStatus.Timestamp (when a node's state last changed: the down grace
// period and orphaning count from it).
package orchestrator
