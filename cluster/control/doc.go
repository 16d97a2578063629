// Package control is every request a manager serves: the cluster row, unlock key and
// join tokens (cluster.go), nodes and their roles (nodes.go), joins and certificates
// (join.go), secrets and configs (objects.go), stacks, services, tasks and sources,
// the agents' watches and reports (agent.go), and raft membership (membership.go).
// It turns requests into raft commands (deciding IDs and times, so that the FSM stays
// deterministic), answers reads with blocking queries, and batches the agents' task
// status reports into few raft entries. One set of helpers serves them all: lookups
// by ID, name or unique prefix, blocking reads that survive a snapshot restore, and
// apply, which returns once this manager has applied the write (read your writes on
// the manager you talk to) or an error when it has not within the apply timeout.
//
// Its errors are what the CLI prints: a sentence about the user's object that says what
// to do. A refusal is api.BadRequest (the message alone, no code name before it), a
// name not found says which list holds the names (no such source: x (berth source ls
// lists them)), and a raft command refused by the FSM reaches the caller as the
// command's own sentence.
//
// The dry run of POST /v1/plan is here too (preview.go): it forks the state, simulates
// the write and follows the rollout it starts with the orchestrator and scheduler the
// leader runs, playing the agents, to show where tasks would land. `berth diff -c`
// plans the stacks it sends with it. The GitOps applier hands the stacks of a
// source's revision, loaded and checked, to PlanSource (plan.go): the commands are made
// and compared with the cluster's stacks once, and the sync applies that plan.
//
// What it needs of raft (the configuration, leadership) and of the node it runs on
// (its identity, the other managers, its keyring) it gets through the interfaces it
// declares: Raft, Peers and Keyring, which daemon/ implements. The daemon
// serves it through the API in the phases that have a manager; tests and the C1M
// benchmark drive it over stores on raft's in-memory transport.
//
// It holds no state of its own beyond the reports waiting to be written and the
// leader's membership lock: every answer comes from the replicated state of the
// manager it runs on.
package control
