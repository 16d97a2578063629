package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// ServiceChange is the kind of write a client waits on (`service create|update|
// scale|rollback` without --detach): it says which update status is the write's
// failure.
type ServiceChange int

// Kinds of write.
const (
	// ChangeSpec: a create or an update; a rollback that follows is its failure.
	ChangeSpec ServiceChange = iota
	// ChangeScale rolls nothing: an update status left by an earlier write is not
	// its failure.
	ChangeScale
	// ChangeRollback: a rollback the user asked for; its completion is success.
	ChangeRollback
)

// NotConvergedError says a service's update was paused or rolled back: waiting
// longer changes nothing without an operator.
type NotConvergedError struct {
	Service string
	Status  model.UpdateStatus
}

func (e *NotConvergedError) Error() string {
	msg := fmt.Sprintf("service %s did not converge: %s", e.Service, strings.ReplaceAll(string(e.Status.State), "_", " "))
	if e.Status.Message != "" {
		msg += ": " + e.Status.Message
	}
	return msg + fmt.Sprintf("; see `berth service ps %s`", e.Service)
}

// convergence is ConvergenceOf for a write of kind ch.
func (ch ServiceChange) convergence(s *ServiceStatus) Convergence {
	if ch != ChangeRollback {
		return ConvergenceOf(s, ch == ChangeSpec)
	}
	switch s.UpdateStatus.State {
	case model.UpdateRollbackStarted:
		return Converging
	case model.UpdateRollbackPaused:
		return Failed
	}
	return ConvergenceOf(s, false)
}

// WaitService follows a service by blocking queries, from the state at index
// after (the write's index) on, and calls report with each new status, until its
// tasks converged on what the write asked for (nil), the update failed (a
// *NotConvergedError) or ctx ends.
func (c *Client) WaitService(ctx context.Context, ref string, ch ServiceChange, after uint64, report func(*ServiceStatus)) error {
	index := uint64(0)
	for {
		s, meta, err := c.Service(ctx, ref, Query{Index: index, Wait: 30 * time.Second})
		if stop := retryable(ctx, err, ErrNotFound); stop != nil {
			return stop
		}
		if err != nil {
			index = 0
			continue
		}
		index = meta.Index
		if meta.Index < after {
			continue // a follower that has not applied the write yet
		}
		report(s)
		switch ch.convergence(s) {
		case Converged:
			return nil
		case Failed:
			return &NotConvergedError{Service: s.Name, Status: s.UpdateStatus}
		}
	}
}

// WaitTasksStopped follows the tasks by blocking queries and calls report with how
// many of the services' tasks still run (or start), until none does (nil) or ctx
// ends: what `stack rm --detach=false` waits for.
func (c *Client) WaitTasksStopped(ctx context.Context, serviceIDs map[string]bool, report func(live int)) error {
	index := uint64(0)
	for {
		tasks, meta, err := c.Tasks(ctx, TaskFilter{}, Query{Index: index, Wait: 30 * time.Second})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		index = meta.Index
		live := 0
		for _, t := range tasks {
			if serviceIDs[t.ServiceID] && !t.Status.State.Terminal() {
				live++
			}
		}
		report(live)
		if live == 0 {
			return nil
		}
	}
}
