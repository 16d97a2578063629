// Package api is berth's HTTP+JSON API as its clients see it: the request and
// answer types, the error codes and the Go client the CLI, the other nodes and the
// agents use. It links nothing of the manager (no raft, no store): the server is
// cluster/api/server, whose documentation lists the endpoints and who may call them.
//
// # Errors
//
// Errors are {"error": "<message for the operator>", "code": "<code>"} with a status
// that fits the code. The client turns them back into *Error, which errors.Is matches
// against this package's sentinel error of its code: ErrNotFound (not_found),
// ErrNoLeader (no_leader), ErrNotLeader (not_leader, with "leader": addr), ErrLocked
// (locked), ErrForbidden (forbidden), ErrQuorum (quorum), and so on (see
// errorCodes). The server maps the manager's errors to these codes.
//
// # Blocking queries
//
// Reads answer with the raft index of their data in the X-Berth-Index header. A read
// with ?index=N&wait=30s answers at once if the data changed after N, or else waits up
// to wait (default 5 minutes, at most 10) for a change; running out of time is not an
// error, the answer is then the unchanged data. This is how watches work.
//
// GET /v1/nodes/{ref}/tasks is the agent's watch, and its index is that of the node's
// own tasks (the last write that created, changed or deleted one of them), not of the
// task table: a write wakes only the agents whose tasks it changed.
package api
