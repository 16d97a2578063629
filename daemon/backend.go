package daemon

import (
	"context"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
)

// The manager's endpoints of api.Backend are cluster/control's. The node only says
// whether its phase has a control to serve them: a worker, a locked or a stopping
// manager has none, and a manager still catching up after a start serves only the
// agents and the other managers (activeControl), not the operator (readyControl).

// activeControl returns the running manager's control, or the error that says why
// there is none.
func (n *Node) activeControl() (*control.Control, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	return m.ctl, nil
}

// readyControl is activeControl for the operator's calls (see readyManager).
func (n *Node) readyControl() (*control.Control, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	return m.ctl, nil
}

// call runs fn on the control get returns.
func call[T any](get func() (*control.Control, error), fn func(*control.Control) (T, error)) (T, error) {
	c, err := get()
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(c)
}

// query is call for blocking reads.
func query[T any](get func() (*control.Control, error), fn func(*control.Control) (T, api.QueryMeta, error)) (T, api.QueryMeta, error) {
	c, err := get()
	if err != nil {
		var zero T
		return zero, api.QueryMeta{}, err
	}
	return fn(c)
}

// run is call for writes that answer only an error.
func run(get func() (*control.Control, error), fn func(*control.Control) error) error {
	c, err := get()
	if err != nil {
		return err
	}
	return fn(c)
}

// Cluster implements server.Backend.
func (n *Node) Cluster(ctx context.Context) (*model.Cluster, error) {
	return call(n.readyControl, func(c *control.Control) (*model.Cluster, error) { return c.Cluster(ctx) })
}

// UpdateCluster implements server.Backend.
func (n *Node) UpdateCluster(ctx context.Context, req *api.ClusterUpdateRequest) (*api.ClusterUpdateResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.ClusterUpdateResponse, error) { return c.UpdateCluster(ctx, req) })
}

// UnlockKey implements server.Backend.
func (n *Node) UnlockKey(ctx context.Context, rotate bool) (*api.UnlockKeyResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.UnlockKeyResponse, error) { return c.UnlockKey(ctx, rotate) })
}

// JoinToken implements server.Backend.
func (n *Node) JoinToken(ctx context.Context, role model.NodeRole, rotate bool) (*api.JoinTokenResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.JoinTokenResponse, error) { return c.JoinToken(ctx, role, rotate) })
}

// Nodes implements server.Backend.
func (n *Node) Nodes(ctx context.Context, q api.Query) ([]*model.Node, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*model.Node, api.QueryMeta, error) { return c.Nodes(ctx, q) })
}

// Node implements server.Backend.
func (n *Node) Node(ctx context.Context, ref string, q api.Query) (*model.Node, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) (*model.Node, api.QueryMeta, error) { return c.Node(ctx, ref, q) })
}

// UpdateNode implements server.Backend.
func (n *Node) UpdateNode(ctx context.Context, ref string, req *api.NodeUpdateRequest) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.UpdateNode(ctx, ref, req) })
}

// SetNodeRole implements server.Backend.
func (n *Node) SetNodeRole(ctx context.Context, ref string, role model.NodeRole) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.SetNodeRole(ctx, ref, role) })
}

// RemoveNode implements server.Backend.
func (n *Node) RemoveNode(ctx context.Context, ref string, force bool) error {
	return run(n.readyControl, func(c *control.Control) error { return c.RemoveNode(ctx, ref, force) })
}

// CreateSecret implements server.Backend.
func (n *Node) CreateSecret(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.ObjectCreateResponse, error) { return c.CreateSecret(ctx, req) })
}

// Secrets implements server.Backend.
func (n *Node) Secrets(ctx context.Context, q api.Query) ([]*model.Secret, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*model.Secret, api.QueryMeta, error) { return c.Secrets(ctx, q) })
}

// CreateConfig implements server.Backend.
func (n *Node) CreateConfig(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.ObjectCreateResponse, error) { return c.CreateConfig(ctx, req) })
}

// Configs implements server.Backend.
func (n *Node) Configs(ctx context.Context, q api.Query) ([]*model.Config, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*model.Config, api.QueryMeta, error) { return c.Configs(ctx, q) })
}

// Secret implements server.Backend.
func (n *Node) Secret(ctx context.Context, ref string) (*model.Secret, error) {
	return call(n.readyControl, func(c *control.Control) (*model.Secret, error) { return c.Secret(ctx, ref) })
}

// Config implements server.Backend.
func (n *Node) Config(ctx context.Context, ref string) (*model.Config, error) {
	return call(n.readyControl, func(c *control.Control) (*model.Config, error) { return c.Config(ctx, ref) })
}

// RemoveSecret implements server.Backend.
func (n *Node) RemoveSecret(ctx context.Context, ref string) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveSecret(ctx, ref) })
}

// RemoveConfig implements server.Backend.
func (n *Node) RemoveConfig(ctx context.Context, ref string) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveConfig(ctx, ref) })
}

// RequestJoin implements server.Backend.
func (n *Node) RequestJoin(ctx context.Context, req *api.NodeJoinRequest) (*api.NodeJoinResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.NodeJoinResponse, error) { return c.RequestJoin(ctx, req) })
}

// RenewCertificate implements server.Backend.
func (n *Node) RenewCertificate(ctx context.Context, caller ca.Identity, req *api.CertificateRequest) (*api.CertificateResponse, error) {
	return call(n.activeControl, func(c *control.Control) (*api.CertificateResponse, error) {
		return c.RenewCertificate(ctx, caller, req)
	})
}

// IssueClientCert implements server.Backend.
func (n *Node) IssueClientCert(ctx context.Context, req *api.ClientCertRequest) (*api.ClientCertResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.ClientCertResponse, error) { return c.IssueClientCert(ctx, req) })
}

// ApplyCommand implements server.Backend.
func (n *Node) ApplyCommand(ctx context.Context, cmd []byte) (uint64, error) {
	return call(n.activeControl, func(c *control.Control) (uint64, error) { return c.ApplyCommand(ctx, cmd) })
}

// AddVoter implements server.Backend.
func (n *Node) AddVoter(ctx context.Context, id string) error {
	return run(n.activeControl, func(c *control.Control) error { return c.AddVoter(ctx, id) })
}

// RemoveVoter implements server.Backend.
func (n *Node) RemoveVoter(ctx context.Context, id string) error {
	return run(n.activeControl, func(c *control.Control) error { return c.RemoveVoter(ctx, id) })
}

// DeployStack implements server.Backend.
func (n *Node) DeployStack(ctx context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.StackDeployResponse, error) { return c.DeployStack(ctx, req) })
}

// RemoveStack implements server.Backend.
func (n *Node) RemoveStack(ctx context.Context, name string) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveStack(ctx, name) })
}

// Stacks implements server.Backend.
func (n *Node) Stacks(ctx context.Context, q api.Query) ([]*api.StackSummary, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*api.StackSummary, api.QueryMeta, error) { return c.Stacks(ctx, q) })
}

// Services implements server.Backend.
func (n *Node) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*api.ServiceStatus, api.QueryMeta, error) { return c.Services(ctx, f, q) })
}

// Service implements server.Backend.
func (n *Node) Service(ctx context.Context, ref string, q api.Query) (*api.ServiceStatus, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) (*api.ServiceStatus, api.QueryMeta, error) { return c.Service(ctx, ref, q) })
}

// ScaleService implements server.Backend.
func (n *Node) ScaleService(ctx context.Context, ref string, replicas uint64) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.ScaleService(ctx, ref, replicas) })
}

// UpdateService implements server.Backend.
func (n *Node) UpdateService(ctx context.Context, ref string, req *api.ServiceUpdateRequest) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.UpdateService(ctx, ref, req) })
}

// RollbackService implements server.Backend.
func (n *Node) RollbackService(ctx context.Context, ref string) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RollbackService(ctx, ref) })
}

// CreateService implements server.Backend.
func (n *Node) CreateService(ctx context.Context, req *api.ServiceCreateRequest) (*api.ServiceCreateResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.ServiceCreateResponse, error) { return c.CreateService(ctx, req) })
}

// RemoveService implements server.Backend.
func (n *Node) RemoveService(ctx context.Context, ref string) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveService(ctx, ref) })
}

// Tasks implements server.Backend.
func (n *Node) Tasks(ctx context.Context, f api.TaskFilter, q api.Query) ([]*api.TaskInfo, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*api.TaskInfo, api.QueryMeta, error) { return c.Tasks(ctx, f, q) })
}

// Events implements server.Backend.
func (n *Node) Events(ctx context.Context, f api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*api.Event, api.QueryMeta, error) { return c.Events(ctx, f, q) })
}

// NodeTasks implements server.Backend.
func (n *Node) NodeTasks(ctx context.Context, ref string, q api.Query) ([]*model.Task, api.QueryMeta, error) {
	return query(n.activeControl, func(c *control.Control) ([]*model.Task, api.QueryMeta, error) { return c.NodeTasks(ctx, ref, q) })
}

// NodeNetworkView implements server.Backend.
func (n *Node) NodeNetworkView(ctx context.Context, ref string, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	return query(n.activeControl, func(c *control.Control) (*api.NetworkView, api.QueryMeta, error) {
		return c.NodeNetworkView(ctx, ref, q)
	})
}

// TaskRuntime implements server.Backend.
func (n *Node) TaskRuntime(ctx context.Context, nodeID, taskID string) (*api.TaskRuntime, error) {
	return call(n.activeControl, func(c *control.Control) (*api.TaskRuntime, error) { return c.TaskRuntime(ctx, nodeID, taskID) })
}

// ReportTaskStatus implements server.Backend.
func (n *Node) ReportTaskStatus(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error {
	return run(n.activeControl, func(c *control.Control) error { return c.ReportTaskStatus(ctx, nodeID, reports) })
}

// AddSource implements server.Backend.
func (n *Node) AddSource(ctx context.Context, req *api.SourceAddRequest) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.AddSource(ctx, req) })
}

// Sources implements server.Backend.
func (n *Node) Sources(ctx context.Context, q api.Query) ([]*api.SourceInfo, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) ([]*api.SourceInfo, api.QueryMeta, error) { return c.Sources(ctx, q) })
}

// Source implements server.Backend.
func (n *Node) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	return query(n.readyControl, func(c *control.Control) (*api.SourceInfo, api.QueryMeta, error) { return c.Source(ctx, name, q) })
}

// UpdateSource implements server.Backend.
func (n *Node) UpdateSource(ctx context.Context, name string, req *api.SourceUpdateRequest) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.UpdateSource(ctx, name, req) })
}

// RemoveSource implements server.Backend.
func (n *Node) RemoveSource(ctx context.Context, name string, prune bool) (*api.WriteResponse, error) {
	return call(n.readyControl, func(c *control.Control) (*api.WriteResponse, error) { return c.RemoveSource(ctx, name, prune) })
}
