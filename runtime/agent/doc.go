// Package agent is the node agent of berth's data plane (DESIGN.md section 5): it
// watches the tasks the managers assigned to its node (a blocking query), converges
// containerd to them through the executor, and reports what it observes in batches.
//
// # One runner per task
//
// Every task the agent handles gets a runner: a goroutine that owns the task's
// container, network sandbox and secret files from preparation to removal, so that
// a slow image pull for one task never holds up another. The watch loop only hands
// runners the newest version of their task; the executor's exit events go straight
// to the runner of the task that exited.
//
// A runner drives its task through phases, a state machine whose transitions are
// one table (phase.go). While the managers want the task running:
//
//	new       fetch the task's runtime (spec, secrets, configs, networks), ensure
//	          the image, set up the network sandbox, write secrets and configs to
//	          a per-task tmpfs, create the container. -> created, rejected
//	created   wait for the task's NotBefore (the restart delay), start it; with a
//	          health check the task is reported starting until the check first
//	          passes. -> running, rejected
//	adopted   a container that had started, found when the daemon started: its
//	          runtime is fetched once, for its health check. -> running, exited
//	running   until the container exits, or fails its health check past the
//	          retries (reported failed, then stopped). -> exited
//	exited    the exit was reported (complete, or failed with its exit code); the
//	          managers decide what comes next.
//	rejected  preparing or starting failed, reported with the reason.
//
// Once they no longer want it, any phase leaves that way (removed is the end):
//
//	drained   a running task on a network first keeps running for the drain delay
//	          (2s) while the other nodes take it out of DNS and the VIPs. -> stopped
//	stopped   its container stopped (after stop_grace_period), reported shut
//	          down. -> removed
//	removed   when the task is terminal, its container, sandbox and secret files
//	          are removed; its logs stay until the task leaves the node's list
//	          (the managers' history reaper).
//
// Errors before the container starts reject the task (Swarm's "rejected"), with the
// reason; the restart supervisor on the leader decides what comes next.
//
// # The network view
//
// Beside its tasks, the agent watches its node's network view (a second blocking
// query): the networks of its tasks, every endpoint on them across the cluster and
// the services behind them. Each new view goes to netstack's Apply whole; one that
// fails is applied again with backoff, and while the managers are unreachable the
// last view stays programmed.
//
// # Restarts of the daemon
//
// A running container outlives the daemon. On start the agent lists the containers
// of its namespace (labelled io.berth.task) and adopts them: a container of a task
// the managers still want running keeps running and is not started twice; one whose
// task is gone is stopped and removed. Exits that happened while the daemon was down
// are found in the listing and reported.
//
// # Secrets
//
// Secret and config content goes to a tmpfs mounted per task under the data dir
// (never to persistent disk) and is bind-mounted read-only into the container at
// its target; the tmpfs is unmounted when the task is removed. Content is never
// logged.
package agent
