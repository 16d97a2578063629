package node

import (
	"context"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/state"
)

// The stack, service and task endpoints are cluster/control's, served by the manager.

// DeployStack implements api.Backend.
func (n *Node) DeployStack(ctx context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.DeployStack(ctx, req)
}

// RemoveStack implements api.Backend.
func (n *Node) RemoveStack(ctx context.Context, name string) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.RemoveStack(ctx, name)
}

// Stacks implements api.Backend.
func (n *Node) Stacks(ctx context.Context, q api.Query) ([]*api.StackSummary, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Stacks(ctx, q)
}

// Services implements api.Backend.
func (n *Node) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Services(ctx, f, q)
}

// Service implements api.Backend.
func (n *Node) Service(ctx context.Context, ref string, q api.Query) (*api.ServiceStatus, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Service(ctx, ref, q)
}

// ScaleService implements api.Backend.
func (n *Node) ScaleService(ctx context.Context, ref string, replicas uint64) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.ScaleService(ctx, ref, replicas)
}

// UpdateService implements api.Backend.
func (n *Node) UpdateService(ctx context.Context, ref string, req *api.ServiceUpdateRequest) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.UpdateService(ctx, ref, req)
}

// RollbackService implements api.Backend.
func (n *Node) RollbackService(ctx context.Context, ref string) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.RollbackService(ctx, ref)
}

// Tasks implements api.Backend.
func (n *Node) Tasks(ctx context.Context, f api.TaskFilter, q api.Query) ([]*api.TaskInfo, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.Tasks(ctx, f, q)
}

// NodeTasks implements api.Backend. Agents are served by a manager that is still
// catching up too: they act on what it knows, and their blocking query moves on.
func (n *Node) NodeTasks(ctx context.Context, ref string, q api.Query) ([]*state.Task, api.QueryMeta, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.NodeTasks(ctx, ref, q)
}

// NodeNetworkView implements api.Backend; like NodeTasks, it is served by a manager
// still catching up.
func (n *Node) NodeNetworkView(ctx context.Context, ref string, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.ctl.NodeNetworkView(ctx, ref, q)
}

// TaskRuntime implements api.Backend.
func (n *Node) TaskRuntime(ctx context.Context, nodeID, taskID string) (*api.TaskRuntime, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	return m.ctl.TaskRuntime(ctx, nodeID, taskID)
}

// ReportTaskStatus implements api.Backend.
func (n *Node) ReportTaskStatus(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error {
	m, err := n.activeManager()
	if err != nil {
		return err
	}
	return m.ctl.ReportTaskStatus(ctx, nodeID, reports)
}

// withControl runs fn on this manager's control, once the manager is ready.
func withControl[T any](n *Node, fn func(*control.Control) (T, error)) (T, error) {
	m, err := n.readyManager()
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(m.ctl)
}

// AddSource implements api.Backend.
func (n *Node) AddSource(ctx context.Context, req *api.SourceAddRequest) (*api.WriteResponse, error) {
	return withControl(n, func(c *control.Control) (*api.WriteResponse, error) { return c.AddSource(ctx, req) })
}

// Sources implements api.Backend.
func (n *Node) Sources(ctx context.Context, q api.Query) ([]*api.SourceInfo, api.QueryMeta, error) {
	var meta api.QueryMeta
	out, err := withControl(n, func(c *control.Control) (list []*api.SourceInfo, err error) {
		list, meta, err = c.Sources(ctx, q)
		return list, err
	})
	return out, meta, err
}

// Source implements api.Backend.
func (n *Node) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	var meta api.QueryMeta
	out, err := withControl(n, func(c *control.Control) (src *api.SourceInfo, err error) {
		src, meta, err = c.Source(ctx, name, q)
		return src, err
	})
	return out, meta, err
}

// UpdateSource implements api.Backend. A rollback goes to the leader, which checks
// its revision in the source's repository.
func (n *Node) UpdateSource(ctx context.Context, name string, req *api.SourceUpdateRequest) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if req.Pin != nil && *req.Pin != "" && !m.st.IsLeader() {
		c, err := n.leaderClient(m, "a rollback is checked on the leader")
		if err != nil {
			return nil, err
		}
		resp, err := c.UpdateSource(ctx, name, req)
		if err != nil {
			return nil, err
		}
		// Who wrote through this manager reads the write here, as after any write.
		m.waitApplied(ctx, resp.Index)
		return resp, nil
	}
	return m.ctl.UpdateSource(ctx, name, req)
}

// RemoveSource implements api.Backend.
func (n *Node) RemoveSource(ctx context.Context, name string, prune bool) (*api.WriteResponse, error) {
	return withControl(n, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveSource(ctx, name, prune) })
}
