package api

import (
	"context"
	"errors"
	"net/http"
)

// Sentinel errors of the API. A client's errors.Is matches an error answer against
// the sentinel of its code; the server maps the manager's own errors (of state,
// store, sealed, ca) to these codes, so that clients need none of those packages.
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

// Sentinel errors of answers about the manager's state, raft, sealing and
// certificates: what the client sees of the manager's errors of the same names.
var (
	ErrLocked         = errors.New("this node is locked: run `berth unlock`")
	ErrNoLeader       = errors.New("no leader")
	ErrNotLeader      = errors.New("this manager is not the leader")
	ErrUnknownCommand = errors.New("unknown raft command type")
	ErrNotLocked      = errors.New("this node is not locked")
	ErrWrongKey       = errors.New("invalid unlock key: it does not unlock this node (has it been rotated?)")
	ErrMalformedKey   = errors.New("malformed unlock key")
	ErrAutolockOff    = errors.New("autolock is off: this node has no unlock key")
	ErrDigestMismatch = errors.New("CA digest mismatch")
	ErrWrongCluster   = errors.New("belongs to another cluster")
	ErrInvalidToken   = errors.New("invalid join token")
	// ErrUnauthorized: the caller presented no client certificate of the cluster.
	ErrUnauthorized = errors.New("a client certificate signed by the cluster CA is required")
	ErrForbidden    = errors.New("permission denied")
	ErrInvalidCSR   = errors.New("invalid certificate signing request")
	ErrInvalidCert  = errors.New("invalid certificate")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	// ErrStateAbandoned: the manager replaced its state (a snapshot was restored)
	// while the request read it.
	ErrStateAbandoned = errors.New("state store abandoned")
)

// Error codes: the "code" of an error answer.
const (
	CodeLocked           = "locked"
	CodeNotInCluster     = "not_in_cluster"
	CodeAlreadyInCluster = "already_in_cluster"
	CodeNotManager       = "not_manager"
	CodeCatchingUp       = "catching_up"
	CodeLocalOnly        = "local_only"
	CodeQuorum           = "quorum"
	CodeRefused          = "refused"
	CodeTaskOutdated     = "task_outdated"
	CodeNoLeader         = "no_leader"
	CodeNotLeader        = "not_leader"
	CodeUnknownCommand   = "unknown_command"
	CodeNotLocked        = "not_locked"
	CodeWrongKey         = "wrong_key"
	CodeMalformedKey     = "malformed_key"
	CodeAutolockOff      = "autolock_off"
	CodeDigestMismatch   = "digest_mismatch"
	CodeWrongCluster     = "wrong_cluster"
	CodeInvalidToken     = "invalid_token"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeInvalidCSR       = "invalid_csr"
	CodeInvalidCert      = "invalid_cert"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeInvalid          = "invalid"
	CodeBadRequest       = "bad_request"
	CodeTooLarge         = "too_large"
	CodeStateAbandoned   = "state_abandoned"
	CodeTimeout          = "timeout"
	CodeCanceled         = "canceled"
	// CodeInternal is every other error: it matches no sentinel.
	CodeInternal = "internal"
)

// errorCodes gives each code its HTTP status and the sentinel error it stands for.
var errorCodes = []struct {
	code   string
	status int
	err    error
}{
	{CodeLocked, http.StatusLocked, ErrLocked},
	{CodeNotInCluster, http.StatusServiceUnavailable, ErrNotInCluster},
	{CodeAlreadyInCluster, http.StatusConflict, ErrAlreadyInCluster},
	{CodeNotManager, http.StatusServiceUnavailable, ErrNotManager},
	{CodeCatchingUp, http.StatusServiceUnavailable, ErrCatchingUp},
	{CodeLocalOnly, http.StatusForbidden, ErrLocalOnly},
	{CodeQuorum, http.StatusConflict, ErrQuorum},
	{CodeRefused, http.StatusConflict, ErrRefused},
	{CodeTaskOutdated, http.StatusGone, ErrTaskOutdated},
	{CodeNoLeader, http.StatusServiceUnavailable, ErrNoLeader},
	{CodeNotLeader, http.StatusMisdirectedRequest, ErrNotLeader},
	{CodeUnknownCommand, http.StatusNotImplemented, ErrUnknownCommand},
	{CodeNotLocked, http.StatusConflict, ErrNotLocked},
	{CodeWrongKey, http.StatusForbidden, ErrWrongKey},
	{CodeMalformedKey, http.StatusBadRequest, ErrMalformedKey},
	{CodeAutolockOff, http.StatusConflict, ErrAutolockOff},
	{CodeDigestMismatch, http.StatusForbidden, ErrDigestMismatch},
	{CodeWrongCluster, http.StatusForbidden, ErrWrongCluster},
	{CodeInvalidToken, http.StatusForbidden, ErrInvalidToken},
	{CodeUnauthorized, http.StatusUnauthorized, ErrUnauthorized},
	{CodeForbidden, http.StatusForbidden, ErrForbidden},
	{CodeInvalidCSR, http.StatusBadRequest, ErrInvalidCSR},
	{CodeInvalidCert, http.StatusBadRequest, ErrInvalidCert},
	{CodeNotFound, http.StatusNotFound, ErrNotFound},
	{CodeConflict, http.StatusConflict, ErrConflict},
	{CodeInvalid, http.StatusBadRequest, ErrInvalid},
	{CodeBadRequest, http.StatusBadRequest, ErrBadRequest},
	{CodeTooLarge, http.StatusRequestEntityTooLarge, ErrTooLarge},
	{CodeStateAbandoned, http.StatusServiceUnavailable, ErrStateAbandoned},
	{CodeTimeout, http.StatusGatewayTimeout, context.DeadlineExceeded},
	{CodeCanceled, 499, context.Canceled},
}

// BadRequest marks err as a bad request (errors.Is matches ErrBadRequest) and keeps
// its message as it is: the message is for the user, who has no use for the code's
// name in front of it.
func BadRequest(err error) error { return &markedError{err: err, code: ErrBadRequest} }

// Refused marks err as refused (errors.Is matches ErrRefused), its message kept as it
// is, as BadRequest does.
func Refused(err error) error { return &markedError{err: err, code: ErrRefused} }

// markedError is an error whose message is the user's and whose code is the
// sentinel it matches.
type markedError struct{ err, code error }

func (e *markedError) Error() string        { return e.err.Error() }
func (e *markedError) Unwrap() error        { return e.err }
func (e *markedError) Is(target error) bool { return target == e.code }

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

// NewError returns the answer with code and message, with the code's status
// (500 for CodeInternal and codes this package does not know).
func NewError(code, message string) *Error {
	status := http.StatusInternalServerError
	for _, c := range errorCodes {
		if c.code == code {
			status = c.status
		}
	}
	return &Error{StatusCode: status, Code: code, Message: message}
}

func (e *Error) Error() string { return e.Message }

// Is matches the sentinel error of e's code.
func (e *Error) Is(target error) bool {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err == target
		}
	}
	return false
}
