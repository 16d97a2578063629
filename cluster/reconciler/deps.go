package reconciler

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// DependencyWait says why svc must not place new tasks yet: a stack its stack depends
// on (berth.yaml's depends_on) has a service that does not run all its tasks of its
// current spec (a task with a health check runs once it is healthy). It returns ""
// when nothing holds the service, and always for a service that already runs tasks
// of its current spec: depends_on orders starts, it never stops what runs.
func DependencyWait(tx *state.ReadTxn, svc *model.Service, tasks []*model.Task) (string, error) {
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
func runningOfSpec(svc *model.Service, tasks []*model.Task) (running, want int) {
	hash := orchestrator.TaskHash(svc)
	done := model.TaskRunning
	switch svc.Spec.Deploy.Mode {
	case spec.ModeReplicatedJob, spec.ModeGlobalJob:
		done = model.TaskComplete
	}
	live := 0
	for _, t := range tasks {
		if t.SpecHash != hash || t.DesiredState != model.TaskRunning && t.DesiredState != model.TaskComplete {
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

// ServicePlan is one service's share of a pass (PlanService).
type ServicePlan struct {
	orchestrator.Plan
	// Service is nil when the service no longer exists: the plan removes its tasks.
	Service *model.Service
	// Held: depends_on keeps the service's new tasks pending. The stacks it waits
	// for change in rows that do not make the service due again.
	Held bool
	// Failed is why the service could not be planned (the orchestrator panicked or
	// failed on it); the plan then records only that on the service (failedPlan).
	// Trace is the panic's stack trace, for the manager's log.
	Failed error
	Trace  []byte
}

// ErrPlanFailed: the orchestrator panicked or failed while planning a service.
var ErrPlanFailed = errors.New("the orchestrator could not plan this service")

// PlanService plans one service as the leader does: its plan, with its new tasks held
// back while a stack it depends on is not running, or the removal of the tasks of a
// service that no longer exists. It returns nil when there is nothing to plan (a
// removed service with no tasks left). The leader's reconciler and the applier's dry
// run both plan through it. A panic or an error while planning one service is that
// service's failure (ServicePlan.Failed), not the caller's: one bad row must not stop
// the leader from serving the others, nor crash it again each time it is elected.
func PlanService(tx *state.ReadTxn, p *orchestrator.Pass, id string) (*ServicePlan, error) {
	tasks, err := tx.TasksByService(nil, id)
	if err != nil {
		return nil, err
	}
	svc, err := tx.Service(nil, id)
	switch {
	case errors.Is(err, state.ErrNotFound) && len(tasks) == 0:
		return nil, nil
	case errors.Is(err, state.ErrNotFound):
		svc = nil
	case err != nil:
		return nil, err
	}
	return planGuarded(tx, p, id, svc, tasks), nil
}

// planGuarded plans a service (nil: removed) and turns a panic or error into a failed
// plan.
func planGuarded(tx *state.ReadTxn, p *orchestrator.Pass, id string, svc *model.Service, tasks []*model.Task) (sp *ServicePlan) {
	defer func() {
		if v := recover(); v != nil {
			sp = failedPlan(id, svc, fmt.Errorf("%w: %v", ErrPlanFailed, v))
			sp.Trace = debug.Stack()
		}
	}()
	if svc == nil {
		return &ServicePlan{Plan: p.RemoveService(id, tasks)}
	}
	wait, err := DependencyWait(tx, svc, tasks)
	if err != nil {
		return failedPlan(id, svc, fmt.Errorf("%w: %w", ErrPlanFailed, err))
	}
	if wait != "" {
		p.Hold(id, wait)
	}
	return &ServicePlan{Plan: p.Reconcile(svc, tasks), Service: svc, Held: wait != ""}
}

// failedPlan records why a service could not be planned in its update status, which
// `service inspect` shows, `stack deploy` reports as a failure and the dry run as how
// the update would end: the update (if any) pauses, nothing else changes. A spec
// change clears it, as it does any update status, and is planned afresh.
func failedPlan(id string, svc *model.Service, err error) *ServicePlan {
	sp := &ServicePlan{Plan: orchestrator.Plan{ServiceID: id}, Service: svc, Failed: err}
	if svc == nil {
		return sp
	}
	sp.SpecVersion = svc.SpecVersion
	paused := model.UpdatePaused
	if svc.UpdateStatus.State == model.UpdateRollbackStarted {
		paused = model.UpdateRollbackPaused
	}
	us := model.UpdateStatus{State: paused, StartedAt: svc.UpdateStatus.StartedAt,
		Message: err.Error() + "; its tasks are left as they are until its stack is deployed again or something else changes (a bug in berth: the leader's log has the details)"}
	if us != svc.UpdateStatus {
		sp.Plan.Service = &orchestrator.ServiceUpdate{UpdateStatus: us}
	}
	return sp
}
