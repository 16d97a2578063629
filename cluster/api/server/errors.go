package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
)

// errorCodes maps the sentinel errors of the manager, and the API's own, to codes.
// The first match wins, so more specific errors come first.
var errorCodes = []struct {
	err  error
	code string
}{
	{sealed.ErrLocked, api.CodeLocked},
	{api.ErrNotInCluster, api.CodeNotInCluster},
	{api.ErrAlreadyInCluster, api.CodeAlreadyInCluster},
	{api.ErrNotManager, api.CodeNotManager},
	{api.ErrCatchingUp, api.CodeCatchingUp},
	{api.ErrLocalOnly, api.CodeLocalOnly},
	{api.ErrQuorum, api.CodeQuorum},
	{api.ErrRefused, api.CodeRefused},
	{api.ErrTaskOutdated, api.CodeTaskOutdated},
	{store.ErrNoLeader, api.CodeNoLeader},
	{store.ErrNotLeader, api.CodeNotLeader},
	{command.ErrUnknown, api.CodeUnknownCommand},
	{command.ErrProtocol, api.CodeRefused},
	{sealed.ErrNotLocked, api.CodeNotLocked},
	{sealed.ErrWrongKey, api.CodeWrongKey},
	{sealed.ErrMalformedKey, api.CodeMalformedKey},
	{sealed.ErrAutolockOff, api.CodeAutolockOff},
	{ca.ErrDigestMismatch, api.CodeDigestMismatch},
	{ca.ErrWrongCluster, api.CodeWrongCluster},
	{ca.ErrInvalidToken, api.CodeInvalidToken},
	{ca.ErrNoClientCert, api.CodeUnauthorized},
	{ca.ErrForbidden, api.CodeForbidden},
	{ca.ErrInvalidCSR, api.CodeInvalidCSR},
	{ca.ErrInvalidCert, api.CodeInvalidCert},
	{state.ErrNotFound, api.CodeNotFound},
	{state.ErrConflict, api.CodeConflict},
	{state.ErrInvalid, api.CodeInvalid},
	{api.ErrBadRequest, api.CodeBadRequest},
	{api.ErrTooLarge, api.CodeTooLarge},
	{state.ErrAbandoned, api.CodeStateAbandoned},
	{context.DeadlineExceeded, api.CodeTimeout},
	{context.Canceled, api.CodeCanceled},
}

// toError turns any error into the answer the server sends. The message is the
// error's text: every package below writes its errors for operators and keeps secrets
// out of them.
func toError(err error) *api.Error {
	var apiErr *api.Error
	if errors.As(err, &apiErr) && apiErr.Code != "" {
		// Passed through from another node (a forwarded call): keep its code and say
		// what we added around it.
		out := *apiErr
		out.Message = err.Error()
		if out.StatusCode == 0 {
			out.StatusCode = api.NewError(out.Code, "").StatusCode
		}
		return &out
	}
	var nl *store.NotLeaderError
	if errors.As(err, &nl) {
		out := api.NewError(api.CodeNotLeader, err.Error())
		out.Leader = nl.Leader
		return out
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return api.NewError(c.code, err.Error())
		}
	}
	return api.NewError(api.CodeInternal, err.Error())
}

// ManagerError returns err, another manager's answer, so that errors.Is matches it
// against the manager's sentinel error of its code as well as the API's: a write a
// follower forwards to the leader fails as it would have on the leader (the store
// retries on store.ErrNoLeader, callers check state.ErrConflict).
func ManagerError(err error) error {
	var apiErr *api.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	for _, c := range errorCodes {
		if c.code == apiErr.Code {
			return &managerError{err: err, sentinel: c.err}
		}
	}
	return err
}

// managerError is an answer of another manager that also matches the manager's
// sentinel error of its code.
type managerError struct {
	err      error
	sentinel error
}

func (e *managerError) Error() string        { return e.err.Error() }
func (e *managerError) Unwrap() error        { return e.err }
func (e *managerError) Is(target error) bool { return target == e.sentinel }

// badRequest wraps api.ErrBadRequest with what is wrong.
func badRequest(format string, args ...any) error {
	return api.BadRequest(fmt.Errorf(format, args...))
}
