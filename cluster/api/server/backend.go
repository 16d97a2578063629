package server

import (
	"context"
	"io"
	"net/http"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
)

// Backend is what the handler serves: the running node (daemon/ implements it).
// The handler decodes requests, authenticates callers and gates on the node's phase;
// the backend does the work. Methods return errors wrapping the sentinel errors of
// api or of state, store, sealed and ca, which the handler turns into codes (see
// errorCodes).
//
// nodeRef arguments are what an operator typed: a node ID, a unique ID prefix or a
// hostname.
type Backend interface {
	// Status is cheap and never fails: every request is gated on it.
	Status() api.Status
	// Member checks that a node whose certificate verified is still in the cluster,
	// so that removing a node revokes its certificate.
	Member(nodeID string) error

	Info(ctx context.Context) (*api.Info, error)
	// MetricsHandler serves the node's metrics in Prometheus' text format.
	MetricsHandler() http.Handler
	// Backup writes a backup of this manager (a gzipped tar) to w.
	Backup(ctx context.Context, w io.Writer) error
	Init(ctx context.Context, req *api.InitRequest) (*api.InitResponse, error)
	Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error)
	Leave(ctx context.Context, req *api.LeaveRequest) error
	Unlock(ctx context.Context, req *api.UnlockRequest) error

	// Cluster returns the cluster row, Redacted.
	Cluster(ctx context.Context) (*model.Cluster, error)
	UpdateCluster(ctx context.Context, req *api.ClusterUpdateRequest) (*api.ClusterUpdateResponse, error)
	UnlockKey(ctx context.Context, rotate bool) (*api.UnlockKeyResponse, error)
	JoinToken(ctx context.Context, role model.NodeRole, rotate bool) (*api.JoinTokenResponse, error)

	Nodes(ctx context.Context, q api.Query) ([]*model.Node, api.QueryMeta, error)
	Node(ctx context.Context, nodeRef string, q api.Query) (*model.Node, api.QueryMeta, error)
	UpdateNode(ctx context.Context, nodeRef string, req *api.NodeUpdateRequest) (*api.WriteResponse, error)
	SetNodeRole(ctx context.Context, nodeRef string, role model.NodeRole) (*api.WriteResponse, error)
	RemoveNode(ctx context.Context, nodeRef string, force bool) error

	CreateSecret(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error)
	// Secrets lists every version of every secret, Redacted.
	Secrets(ctx context.Context, q api.Query) ([]*model.Secret, api.QueryMeta, error)
	CreateConfig(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error)
	// Configs lists every version of every config, without data.
	Configs(ctx context.Context, q api.Query) ([]*model.Config, api.QueryMeta, error)
	// Secret and Config find one version by name (the latest), ID or unique ID
	// prefix; Secret's answer is Redacted.
	Secret(ctx context.Context, ref string) (*model.Secret, error)
	Config(ctx context.Context, ref string) (*model.Config, error)
	// RemoveSecret and RemoveConfig delete every version of the object ref names,
	// refusing one a service (or, for a secret, a source) uses.
	RemoveSecret(ctx context.Context, ref string) (*api.WriteResponse, error)
	RemoveConfig(ctx context.Context, ref string) (*api.WriteResponse, error)

	// DeployStack writes a whole stack in one raft command.
	DeployStack(ctx context.Context, req *api.StackDeployRequest) (*api.StackDeployResponse, error)
	RemoveStack(ctx context.Context, name string) (*api.WriteResponse, error)
	// Plan is a dry run of stack deploys or of a source's sync: it writes nothing.
	Plan(ctx context.Context, req *api.PlanRequest) (*api.PlanResponse, error)
	Stacks(ctx context.Context, q api.Query) ([]*api.StackSummary, api.QueryMeta, error)
	// Services and Service answer with what the services' tasks are doing;
	// serviceRef is an ID, a unique ID prefix or a name.
	Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error)
	Service(ctx context.Context, serviceRef string, q api.Query) (*api.ServiceStatus, api.QueryMeta, error)
	ScaleService(ctx context.Context, serviceRef string, replicas uint64) (*api.WriteResponse, error)
	UpdateService(ctx context.Context, serviceRef string, req *api.ServiceUpdateRequest) (*api.WriteResponse, error)
	RollbackService(ctx context.Context, serviceRef string) (*api.WriteResponse, error)
	CreateService(ctx context.Context, req *api.ServiceCreateRequest) (*api.ServiceCreateResponse, error)
	RemoveService(ctx context.Context, serviceRef string) (*api.WriteResponse, error)
	Tasks(ctx context.Context, f api.TaskFilter, q api.Query) ([]*api.TaskInfo, api.QueryMeta, error)
	Events(ctx context.Context, f api.EventFilter, q api.Query) ([]*api.Event, api.QueryMeta, error)
	// NodeTasks is an agent's watch: the tasks assigned to a node. The handler lets
	// a worker's certificate read its own node's only.
	NodeTasks(ctx context.Context, nodeRef string, q api.Query) ([]*model.Task, api.QueryMeta, error)
	// NodeNetworkView is an agent's network watch: what the node's data plane
	// needs of the cluster's networks, answered when that node's view changes.
	// The handler lets a worker's certificate read its own node's only.
	NodeNetworkView(ctx context.Context, nodeRef string, q api.Query) (*api.NetworkView, api.QueryMeta, error)
	// TaskRuntime resolves what an agent needs to run a task (spec, secrets,
	// configs, networks). nodeID is the caller's node from its certificate, empty
	// on the local socket; a task of another node is refused.
	TaskRuntime(ctx context.Context, nodeID, taskID string) (*api.TaskRuntime, error)
	// TaskLogs streams a task's logs to w: from this node's files when the task
	// ran here, else (managers) from the node it ran on.
	TaskLogs(ctx context.Context, taskRef string, o api.LogOptions, w io.Writer) error
	// LoadImage imports an OCI or Docker image archive into this node's
	// container runtime (`berth image load`).
	LoadImage(ctx context.Context, r io.Reader, o api.ImageLoadOptions) (*api.ImageLoadResponse, error)
	// AddSource, Sources, Source, UpdateSource and RemoveSource manage GitOps
	// sources; answers never carry their credentials.
	AddSource(ctx context.Context, req *api.SourceAddRequest) (*api.WriteResponse, error)
	Sources(ctx context.Context, q api.Query) ([]*api.SourceInfo, api.QueryMeta, error)
	Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error)
	UpdateSource(ctx context.Context, name string, req *api.SourceUpdateRequest) (*api.WriteResponse, error)
	RemoveSource(ctx context.Context, name string, prune bool) (*api.WriteResponse, error)
	// SourceToken returns a push source's remote and token, rotating it first
	// when asked.
	SourceToken(ctx context.Context, name string, rotate bool) (*api.SourceTokenResponse, error)

	// ReportTaskStatus records an agent's reports; nodeID is the node of the
	// caller's certificate, and only that node's tasks are changed.
	ReportTaskStatus(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error

	// RequestJoin answers a joining node (POST /v1/join): the token is its only
	// credential.
	RequestJoin(ctx context.Context, req *api.NodeJoinRequest) (*api.NodeJoinResponse, error)
	// Heartbeat records that the node of the caller's certificate is alive (leader
	// only: others answer a NotLeaderError).
	Heartbeat(ctx context.Context, caller ca.Identity, req api.HeartbeatRequest) (*api.HeartbeatResponse, error)
	// RenewCertificate issues a certificate for the caller's node with the role the
	// cluster records for it.
	RenewCertificate(ctx context.Context, caller ca.Identity, req *api.CertificateRequest) (*api.CertificateResponse, error)
	// UIToken makes a one-time login link to this manager's web dashboard.
	UIToken(ctx context.Context) (*api.UITokenResponse, error)
	// IssueClientCert issues an operator's client certificate (role admin).
	IssueClientCert(ctx context.Context, req *api.ClientCertRequest) (*api.ClientCertResponse, error)
	// ApplyCommand applies a raft command forwarded by a follower.
	ApplyCommand(ctx context.Context, cmd []byte) (uint64, error)
	// AddVoter and RemoveVoter change the raft configuration (leader only).
	AddVoter(ctx context.Context, nodeID string) error
	RemoveVoter(ctx context.Context, nodeID string) error
}
