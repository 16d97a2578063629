package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
)

// Sentinel errors of the API itself. Errors of the packages below (state, store,
// sealed, ca) keep their own sentinels: the server maps them to codes and the client
// maps the codes back, so errors.Is works the same on both ends of a connection.
var (
	// ErrNotInCluster: the node has not run `berth init` or `berth join` yet.
	ErrNotInCluster = errors.New("this node is not part of a cluster: run `berth init` or `berth join`")
	// ErrAlreadyInCluster: init or join on a node that is already a member.
	ErrAlreadyInCluster = errors.New("this node is already part of a cluster: run `berth leave` first")
	// ErrNotManager: a call that needs the cluster state reached a worker.
	ErrNotManager = errors.New("this node is a worker: worker nodes hold no cluster state; run the command on a manager, or promote this node")
	// ErrQuorum: a change was refused because raft would lose its majority.
	ErrQuorum = errors.New("refused: raft would lose its majority")
	// ErrBadRequest: the request is malformed (bad JSON, bad parameter).
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge: the request body is over the endpoint's limit.
	ErrTooLarge = errors.New("request too large")
	// ErrLocalOnly: the endpoint is only served on the node's unix socket.
	ErrLocalOnly = errors.New("only available on the node's local socket")
	// ErrCatchingUp: a manager that just started has not yet applied the log it
	// holds (raft applies it once the leader confirms what is committed).
	ErrCatchingUp = errors.New("this manager is catching up with the cluster: try again in a moment")
	// ErrRefused: the operation is refused as asked; the message says what to do
	// instead (demote first, use --force...).
	ErrRefused = errors.New("refused")
	// ErrTaskOutdated: the task was made from a spec its service no longer has
	// (neither the current nor the previous one); the orchestrator is replacing
	// it, so its agent should not start it.
	ErrTaskOutdated = errors.New("task outdated")
)

// Error is an error answer: the JSON body {"error": "...", "code": "..."} and the
// HTTP status. The client returns it for every non-2xx answer; errors.Is matches it
// against the sentinel error its code stands for.
type Error struct {
	StatusCode int    `json:"-"`
	Message    string `json:"error"`
	Code       string `json:"code"`
	// Leader is the leader's address, on not_leader answers, so that callers can go
	// there directly.
	Leader string `json:"leader,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel error of e's code.
func (e *Error) Is(target error) bool {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err != nil && c.err == target
		}
	}
	return false
}

// errorCodes maps sentinel errors to codes and statuses. The first match wins, so more
// specific errors come first.
var errorCodes = []struct {
	code   string
	status int
	err    error
}{
	{"locked", http.StatusLocked, sealed.ErrLocked},
	{"not_in_cluster", http.StatusServiceUnavailable, ErrNotInCluster},
	{"already_in_cluster", http.StatusConflict, ErrAlreadyInCluster},
	{"not_manager", http.StatusServiceUnavailable, ErrNotManager},
	{"catching_up", http.StatusServiceUnavailable, ErrCatchingUp},
	{"local_only", http.StatusForbidden, ErrLocalOnly},
	{"quorum", http.StatusConflict, ErrQuorum},
	{"refused", http.StatusConflict, ErrRefused},
	{"task_outdated", http.StatusGone, ErrTaskOutdated},
	{"no_leader", http.StatusServiceUnavailable, store.ErrNoLeader},
	{"not_leader", http.StatusMisdirectedRequest, store.ErrNotLeader},
	{"unknown_command", http.StatusNotImplemented, store.ErrUnknownCommand},
	{"not_locked", http.StatusConflict, sealed.ErrNotLocked},
	{"wrong_key", http.StatusForbidden, sealed.ErrWrongKey},
	{"malformed_key", http.StatusBadRequest, sealed.ErrMalformedKey},
	{"autolock_off", http.StatusConflict, sealed.ErrAutolockOff},
	{"digest_mismatch", http.StatusForbidden, ca.ErrDigestMismatch},
	{"wrong_cluster", http.StatusForbidden, ca.ErrWrongCluster},
	{"invalid_token", http.StatusForbidden, ca.ErrInvalidToken},
	{"unauthorized", http.StatusUnauthorized, ca.ErrNoClientCert},
	{"forbidden", http.StatusForbidden, ca.ErrForbidden},
	{"invalid_csr", http.StatusBadRequest, ca.ErrInvalidCSR},
	{"invalid_cert", http.StatusBadRequest, ca.ErrInvalidCert},
	{"not_found", http.StatusNotFound, state.ErrNotFound},
	{"conflict", http.StatusConflict, state.ErrConflict},
	{"invalid", http.StatusBadRequest, state.ErrInvalid},
	{"bad_request", http.StatusBadRequest, ErrBadRequest},
	{"too_large", http.StatusRequestEntityTooLarge, ErrTooLarge},
	{"state_abandoned", http.StatusServiceUnavailable, state.ErrAbandoned},
	{"timeout", http.StatusGatewayTimeout, context.DeadlineExceeded},
	{"canceled", 499, context.Canceled},
}

// toError turns any error into the answer the server sends. The message is the
// error's text: every package below writes its errors for operators and keeps secrets
// out of them.
func toError(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code != "" {
		// Passed through from another node (a forwarded call): keep its code and say
		// what we added around it.
		out := *apiErr
		out.Message = err.Error()
		if out.StatusCode == 0 {
			out.StatusCode = statusOf(out.Code)
		}
		return &out
	}
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		return &Error{StatusCode: http.StatusMisdirectedRequest, Code: "not_leader", Message: err.Error(), Leader: nl.Leader}
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return &Error{StatusCode: c.status, Code: c.code, Message: err.Error()}
		}
	}
	return &Error{StatusCode: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
}

func statusOf(code string) int {
	for _, c := range errorCodes {
		if c.code == code {
			return c.status
		}
	}
	return http.StatusInternalServerError
}

// NotLeaderError says that a leader-only call reached a follower, and where the leader
// is. It matches store.ErrNotLeader.
type NotLeaderError struct {
	Leader string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "this manager is not the leader and no leader is known"
	}
	return fmt.Sprintf("this manager is not the leader (the leader is at %s)", e.Leader)
}

// Is makes errors.Is(err, store.ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == store.ErrNotLeader }

// badRequest wraps ErrBadRequest with what is wrong.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}
