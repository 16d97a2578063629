package reconciler

import (
	"errors"
	"fmt"

	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// DependencyWait says why svc must not place new tasks yet: a stack its stack depends
// on (berth.yaml's depends_on) has a service that does not run all its tasks of its
// current spec (a task with a health check runs once it is healthy). It returns ""
// when nothing holds the service, and always for a service that already runs tasks
// of its current spec: depends_on orders starts, it never stops what runs.
func DependencyWait(tx *state.ReadTxn, svc *state.Service, tasks []*state.Task) (string, error) {
	stack, err := tx.Stack(nil, svc.Stack)
	if errors.Is(err, state.ErrNotFound) || (err == nil && len(stack.DependsOn) == 0) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if running, _ := runningOfSpec(svc, tasks); running > 0 {
		return "", nil
	}
	for _, dep := range stack.DependsOn {
		svcs, err := tx.ServicesByStack(nil, dep)
		if err != nil {
			return "", err
		}
		if len(svcs) == 0 {
			return fmt.Sprintf("waiting for stack %s (depends_on): it is not deployed", dep), nil
		}
		for _, d := range svcs {
			dt, err := tx.TasksByService(nil, d.ID)
			if err != nil {
				return "", err
			}
			if running, want := runningOfSpec(d, dt); running < want {
				return fmt.Sprintf("waiting for stack %s (depends_on): service %s runs %d of %d tasks", dep, d.Name, running, want), nil
			}
		}
	}
	return "", nil
}

// runningOfSpec counts the service's tasks of its current spec that run (that
// completed, for a job), and how many it wants: its replicas, or for a global
// service at least one.
func runningOfSpec(svc *state.Service, tasks []*state.Task) (running, want int) {
	hash := orchestrator.TaskHash(svc)
	done := state.TaskRunning
	switch svc.Spec.Deploy.Mode {
	case spec.ModeReplicatedJob, spec.ModeGlobalJob:
		done = state.TaskComplete
	}
	live := 0
	for _, t := range tasks {
		if t.SpecHash != hash || t.DesiredState != state.TaskRunning && t.DesiredState != state.TaskComplete {
			continue
		}
		live++
		if t.Status.State == done {
			running++
		}
	}
	want = 1
	switch svc.Spec.Deploy.Mode {
	case spec.ModeGlobal, spec.ModeGlobalJob:
		want = max(1, live)
	default:
		if r := svc.Spec.Deploy.Replicas; r != nil {
			want = int(*r)
		}
	}
	return running, want
}
