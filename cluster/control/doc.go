// Package control is what a manager does for the stack, service and task endpoints of
// the API: it turns requests into raft commands (deciding IDs and times, so that the
// FSM stays deterministic), answers reads with blocking queries, and batches the
// agents' task status reports into few raft entries. cluster/node serves it through
// the API; tests and the C1M benchmark drive it over stores on raft's in-memory
// transport.
//
// The dry run of POST /v1/plan is here too (preview.go): it forks the state, simulates
// the write and follows the rollout it starts with the orchestrator and scheduler the
// leader runs, playing the agents, to show where tasks would land. `berth diff -c`
// plans the stacks it sends with it. The GitOps applier hands the stacks of a
// source's revision, loaded and checked, to PlanSource (plan.go): the commands are made
// and compared with the cluster's stacks once, and the sync applies that plan.
//
// It holds no state of its own beyond the reports waiting to be written: every answer
// comes from the replicated state of the manager it runs on.
package control
