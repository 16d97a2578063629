package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthd/berth/cluster/model"
)

// Convergence is where one service stands after a deploy.
type Convergence int

// Where a service stands.
const (
	// Converging: tasks are still being placed, started or updated.
	Converging Convergence = iota
	// Converged: as many tasks of the current spec run as are desired (a job's have
	// completed), and no update or rollback is in progress.
	Converged
	// Failed: the update was paused or rolled back; it will not converge on the
	// spec that was deployed without an operator.
	Failed
)

// ConvergenceOf tells where a service stands. updated says whether the deploy being
// watched changed the service: an update status left by an earlier deploy (a rollback
// that completed, say) is not this deploy's failure.
func ConvergenceOf(s *ServiceStatus, updated bool) Convergence {
	switch s.UpdateStatus.State {
	case model.UpdatePaused, model.UpdateRollbackPaused:
		return Failed
	case model.UpdateRollbackStarted:
		if updated {
			return Failed
		}
		return Converging
	case model.UpdateRollbackCompleted:
		if updated {
			return Failed
		}
	case model.UpdateUpdating:
		return Converging
	}
	job := s.Spec.Deploy.Job()
	if job {
		if s.Completed >= s.Desired {
			return Converged
		}
		return Converging
	}
	if s.UpToDate >= s.Desired {
		return Converged
	}
	return Converging
}

// Stuck reports whether every task the service still lacks waits on something that
// does not change by itself: a node to qualify (Pending) or a spec that fails (Failing).
func (s *ServiceStatus) Stuck() bool {
	if ConvergenceOf(s, true) != Converging {
		return false
	}
	done := s.UpToDate
	if s.Spec.Deploy.Job() {
		done = s.Completed
	}
	if done >= s.Desired {
		return false
	}
	var waiting uint64
	for _, r := range slices.Concat(s.Pending, s.Failing) {
		waiting += uint64(r.Tasks)
	}
	return waiting >= s.Desired-done
}

// StuckReasons says why tasks of the service do not run, once per distinct reason:
// "2 pending: no suitable node (...); 1 failing: image ...: not found".
func (s *ServiceStatus) StuckReasons() string {
	var parts []string
	for _, r := range s.Pending {
		parts = append(parts, fmt.Sprintf("%d pending: %s", r.Tasks, r.Reason))
	}
	for _, r := range s.Failing {
		parts = append(parts, fmt.Sprintf("%d failing: %s", r.Tasks, r.Reason))
	}
	return strings.Join(parts, "; ")
}

// WatchServices calls fn with the services of a stack every time they change (by
// blocking queries), until fn returns done, fn fails, or ctx ends (ctx's error is
// returned then).
func (c *Client) WatchServices(ctx context.Context, stack string, fn func([]*ServiceStatus) (done bool, err error)) error {
	var index uint64
	for {
		svcs, meta, err := c.Services(ctx, ServiceFilter{Stack: stack}, Query{Index: index, Wait: 30 * time.Second})
		if stop := retryable(ctx, err); stop != nil {
			return stop
		}
		if err != nil {
			index = 0
			continue
		}
		index = meta.Index
		done, err := fn(svcs)
		if err != nil || done {
			return err
		}
	}
}

// retryable says whether a blocking query that returned err may be asked again:
// nil when it may (at once when err is nil; after a pause when a manager busy with
// an election answered), else the error to stop with.
func retryable(ctx context.Context, err error, final ...error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return nil
	}
	var ce *ConnectError
	if errors.As(err, &ce) || slices.ContainsFunc(final, func(f error) bool { return errors.Is(err, f) }) {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(500 * time.Millisecond):
		return nil
	}
}
