// Package model holds the rows of berth's replicated data model (DESIGN.md section 3):
// the cluster, nodes, sources, stacks, services, tasks, networks, secrets, configs and
// volumes, the enumerations they use (roles, task states, update states...), their
// copies and redacted forms, and the IDs the proposers make for them.
//
// It is plain data with no storage in it: cluster/state keeps these rows in its tables
// and the raft FSM writes them, while the API (cluster/api) sends them to clients, so
// that the agent and the CLI share the manager's types without linking its database.
//
// Rows returned by cluster/state are shared with every other reader and must never be
// changed in place: Copy a row, change the copy, write that.
package model
