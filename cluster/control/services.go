package control

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/cluster/state"
)

// Services lists services with what their tasks do, by name.
func (c *Control) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	var out []*api.ServiceStatus
	idx, err := c.blocking(ctx, q, []string{state.TableServices, state.TableTasks, state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		out = nil
		var svcs []*model.Service
		var err error
		if f.Stack != "" {
			svcs, err = tx.ServicesByStack(ws, f.Stack)
		} else {
			svcs, err = tx.Services(ws)
		}
		if err != nil {
			return 0, err
		}
		allowed := c.allowedNodes(tx)
		for _, s := range svcs {
			tasks, err := tx.TasksByService(nil, s.ID)
			if err != nil {
				return 0, err
			}
			out = append(out, aboveLimit(ServiceStatus(s, tasks, allowed(s)), tx))
		}
		return tx.Index(state.TableServices, state.TableTasks, state.TableNodes), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// Service returns one service, by ID, name or unique ID prefix.
func (c *Control) Service(ctx context.Context, ref string, q api.Query) (*api.ServiceStatus, api.QueryMeta, error) {
	var out *api.ServiceStatus
	idx, err := c.blocking(ctx, q, []string{state.TableServices, state.TableTasks, state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		s, err := resolveService(tx, ref)
		if err != nil {
			return 0, err
		}
		tasks, err := tx.TasksByService(nil, s.ID)
		if err != nil {
			return 0, err
		}
		out = aboveLimit(ServiceStatus(s, tasks, c.allowedNodes(tx)(s)), tx)
		return tx.Index(state.TableServices, state.TableTasks, state.TableNodes), nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return out, api.QueryMeta{Index: idx}, nil
}

// allowedNodes returns, for a global service, the nodes that qualify to run one of
// its tasks (orchestrator.AllowedNodes), and nil for others. The scheduler's view of
// the nodes is built once per read, and only if a global service asks.
func (c *Control) allowedNodes(tx *state.ReadTxn) func(*model.Service) []string {
	var infos []scheduler.NodeInfo
	return func(s *model.Service) []string {
		if !s.Spec.Deploy.Global() {
			return nil
		}
		if infos == nil {
			nodes, _ := tx.Nodes(nil)
			infos = scheduler.NodeInfosFromState(nodes, nil, nil)
		}
		return orchestrator.AllowedNodes(infos, s, orchestrator.DefaultOptions(), c.clock())
	}
}

// ServiceStatus counts what a service's tasks do, as `service ls` shows it: running
// tasks that are meant to run, out of the replicas, why the others wait (Pending) and
// which slots are stuck on a failure (Failing, by the newest failure's error). A global
// service's desired tasks are one per node in allowed (the nodes that qualify, see
// orchestrator.AllowedNodes) or still running one (a paused node keeps its task).
func ServiceStatus(s *model.Service, tasks []*model.Task, allowed []string) *api.ServiceStatus {
	out := &api.ServiceStatus{Service: s}
	hash := orchestrator.TaskHash(s)
	nodes := map[string]struct{}{}
	for _, n := range allowed {
		nodes[n] = struct{}{}
	}
	var live uint64
	reasons := map[string]int{}
	slots := map[slotKey]*slotState{}
	for _, t := range tasks {
		current := t.SpecHash == hash || t.SpecHash == "" && t.SpecVersion == s.SpecVersion
		slotOf(slots, t).see(t, current)
		if t.DesiredState != model.TaskRunning && t.DesiredState != model.TaskComplete {
			continue
		}
		switch st := t.Status.State; {
		case st == model.TaskRunning:
			out.Running++
			live++
			if current {
				out.UpToDate++
			}
			if t.NodeID != "" {
				nodes[t.NodeID] = struct{}{}
			}
		case st == model.TaskComplete:
			out.Completed++
		case st.Terminal():
		default:
			live++
			if st == model.TaskPending && t.Status.Err != "" {
				reasons[t.Status.Err]++
			}
		}
	}
	switch {
	case s.Spec.Deploy.Global() && s.Spec.Deploy.Job():
		out.Desired = max(uint64(len(nodes)), live+out.Completed)
	case s.Spec.Deploy.Global():
		out.Desired = uint64(len(nodes))
	case s.Spec.Deploy.Replicas != nil:
		out.Desired = *s.Spec.Deploy.Replicas
	default:
		out.Desired = 1
	}
	out.Pending = countReasons(reasons)
	failing := map[string]int{}
	for k, sl := range slots {
		_, onNode := nodes[k.node]
		wanted := k.slot > 0 && k.slot <= out.Desired || k.slot == 0 && onNode
		if wanted && sl.failure != nil && !sl.settled {
			failing[failureText(sl.failure)]++
		}
	}
	out.Failing = countReasons(failing)
	return out
}

// countReasons lists counts by reason, in the order of the reasons.
func countReasons(reasons map[string]int) []api.PendingReason {
	var out []api.PendingReason
	for _, r := range slices.Sorted(maps.Keys(reasons)) {
		out = append(out, api.PendingReason{Reason: r, Tasks: reasons[r]})
	}
	return out
}

// slotKey is a replicated task's slot, or a global task's node.
type slotKey struct {
	slot uint64
	node string
}

// slotState is what one slot's tasks say about whether it is stuck on a failure.
type slotState struct {
	// failure is the newest task of the current spec that failed or was rejected.
	failure *model.Task
	// settled: a task of the current spec runs or completed, or one waits for a node
	// (counted in Pending instead).
	settled bool
}

func slotOf(slots map[slotKey]*slotState, t *model.Task) *slotState {
	k := slotKey{slot: t.Slot}
	if t.Slot == 0 {
		k.node = t.NodeID
	}
	if slots[k] == nil {
		slots[k] = &slotState{}
	}
	return slots[k]
}

func (sl *slotState) see(t *model.Task, current bool) {
	switch st := t.Status.State; {
	case !current:
	case st == model.TaskRunning || st == model.TaskComplete:
		sl.settled = true
	case st == model.TaskPending && t.Status.Err != "" && t.DesiredState == model.TaskRunning:
		sl.settled = true
	case st == model.TaskFailed || st == model.TaskRejected:
		if sl.failure == nil || newer(t, sl.failure) {
			sl.failure = t
		}
	}
}

// newer: a was made after b, or, made at once, changed state after it.
func newer(a, b *model.Task) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.Status.Timestamp.After(b.Status.Timestamp)
}

// failureText is a failed task's error in words.
func failureText(t *model.Task) string {
	switch {
	case t.Status.Err != "":
		return t.Status.Err
	case t.Status.Message != "":
		return t.Status.Message
	}
	return string(t.Status.State)
}

// ScaleService sets a replicated service's replicas.
func (c *Control) ScaleService(ctx context.Context, ref string, replicas uint64) (*api.WriteResponse, error) {
	s, err := resolveService(c.st.State().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if s.Spec.Deploy.Global() {
		return nil, api.Refused(fmt.Errorf("service %s is %s: scale applies to replicated services only", s.Name, s.Spec.Deploy.Mode))
	}
	idx, err := c.apply(ctx, command.CmdServiceScale, &command.ServiceScale{ID: s.ID, Replicas: replicas, Limited: true, Undoable: true})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service scaled", "service", s.Name, "replicas", replicas, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// UpdateService applies `service update`: a new spec, or --force, which replaces
// every task.
func (c *Control) UpdateService(ctx context.Context, ref string, req *api.ServiceUpdateRequest) (*api.WriteResponse, error) {
	s, err := resolveService(c.st.State().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if req.Spec != nil {
		return c.updateServiceSpec(ctx, s, req.Spec, req.Force)
	}
	if !req.Force {
		return nil, badRequest("nothing to update: give flags that change service %s, or --force to replace its tasks", s.Name)
	}
	idx, err := c.apply(ctx, command.CmdServiceForceUpdate, &command.ServiceForceUpdate{ID: s.ID})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service force-updated", "service", s.Name, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}

// RollbackService returns a service to its previous spec; the orchestrator rolls the
// tasks back with the rollback_config.
func (c *Control) RollbackService(ctx context.Context, ref string) (*api.WriteResponse, error) {
	s, err := resolveService(c.st.State().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if s.PreviousSpec == nil {
		return nil, api.Refused(fmt.Errorf("service %s has no previous spec to roll back to (it was never updated)", s.Name))
	}
	idx, err := c.apply(ctx, command.CmdServiceRollback, &command.ServiceRollback{ID: s.ID, Now: c.clock()})
	if err != nil {
		return nil, err
	}
	c.logger.Info("service rolled back", "service", s.Name, "index", idx)
	return &api.WriteResponse{Index: idx}, nil
}
