package api

import (
	"context"
	"io"

	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/state"
)

// Backend is what the handler serves: the running node (cluster/node implements it).
// The handler decodes requests, authenticates callers and gates on the node's phase;
// the backend does the work. Methods return errors wrapping the sentinel errors of
// this package or of state, store, sealed and ca, which the handler turns into codes.
//
// nodeRef arguments are what an operator typed: a node ID, a unique ID prefix or a
// hostname.
type Backend interface {
	// Status is cheap and never fails: every request is gated on it.
	Status() Status
	// Member checks that a node whose certificate verified is still in the cluster,
	// so that removing a node revokes its certificate.
	Member(nodeID string) error

	Info(ctx context.Context) (*Info, error)
	Init(ctx context.Context, req *InitRequest) (*InitResponse, error)
	Join(ctx context.Context, req *JoinRequest) (*JoinResponse, error)
	Leave(ctx context.Context, req *LeaveRequest) error
	Unlock(ctx context.Context, req *UnlockRequest) error

	// Cluster returns the cluster row, Redacted.
	Cluster(ctx context.Context) (*state.Cluster, error)
	UpdateCluster(ctx context.Context, req *ClusterUpdateRequest) (*ClusterUpdateResponse, error)
	UnlockKey(ctx context.Context, rotate bool) (*UnlockKeyResponse, error)
	JoinToken(ctx context.Context, role state.NodeRole, rotate bool) (*JoinTokenResponse, error)

	Nodes(ctx context.Context, q Query) ([]*state.Node, QueryMeta, error)
	Node(ctx context.Context, nodeRef string, q Query) (*state.Node, QueryMeta, error)
	UpdateNode(ctx context.Context, nodeRef string, req *NodeUpdateRequest) (*WriteResponse, error)
	SetNodeRole(ctx context.Context, nodeRef string, role state.NodeRole) (*WriteResponse, error)
	RemoveNode(ctx context.Context, nodeRef string, force bool) error

	CreateSecret(ctx context.Context, req *ObjectCreateRequest) (*ObjectCreateResponse, error)
	// Secrets lists every version of every secret, Redacted.
	Secrets(ctx context.Context, q Query) ([]*state.Secret, QueryMeta, error)
	CreateConfig(ctx context.Context, req *ObjectCreateRequest) (*ObjectCreateResponse, error)
	// Configs lists every version of every config, without data.
	Configs(ctx context.Context, q Query) ([]*state.Config, QueryMeta, error)

	// DeployStack writes a whole stack in one raft command.
	DeployStack(ctx context.Context, req *StackDeployRequest) (*StackDeployResponse, error)
	RemoveStack(ctx context.Context, name string) (*WriteResponse, error)
	// Plan is a dry run of stack deploys or of a source's sync: it writes nothing.
	Plan(ctx context.Context, req *PlanRequest) (*PlanResponse, error)
	Stacks(ctx context.Context, q Query) ([]*StackSummary, QueryMeta, error)
	// Services and Service answer with what the services' tasks are doing;
	// serviceRef is an ID, a unique ID prefix or a name.
	Services(ctx context.Context, f ServiceFilter, q Query) ([]*ServiceStatus, QueryMeta, error)
	Service(ctx context.Context, serviceRef string, q Query) (*ServiceStatus, QueryMeta, error)
	ScaleService(ctx context.Context, serviceRef string, replicas uint64) (*WriteResponse, error)
	UpdateService(ctx context.Context, serviceRef string, req *ServiceUpdateRequest) (*WriteResponse, error)
	RollbackService(ctx context.Context, serviceRef string) (*WriteResponse, error)
	Tasks(ctx context.Context, f TaskFilter, q Query) ([]*TaskInfo, QueryMeta, error)
	// NodeTasks is an agent's watch: the tasks assigned to a node. The handler lets
	// a worker's certificate read its own node's only.
	NodeTasks(ctx context.Context, nodeRef string, q Query) ([]*state.Task, QueryMeta, error)
	// NodeNetworkView is an agent's network watch: what the node's data plane
	// needs of the cluster's networks, answered when that node's view changes.
	// The handler lets a worker's certificate read its own node's only.
	NodeNetworkView(ctx context.Context, nodeRef string, q Query) (*NetworkView, QueryMeta, error)
	// TaskRuntime resolves what an agent needs to run a task (spec, secrets,
	// configs, networks). nodeID is the caller's node from its certificate, empty
	// on the local socket; a task of another node is refused.
	TaskRuntime(ctx context.Context, nodeID, taskID string) (*TaskRuntime, error)
	// TaskLogs streams a task's logs to w: from this node's files when the task
	// ran here, else (managers) from the node it ran on.
	TaskLogs(ctx context.Context, taskRef string, o LogOptions, w io.Writer) error
	// LoadImage imports an OCI or Docker image archive into this node's
	// container runtime (`berth image load`).
	LoadImage(ctx context.Context, r io.Reader, o ImageLoadOptions) (*ImageLoadResponse, error)
	// AddSource, Sources, Source, UpdateSource and RemoveSource manage GitOps
	// sources; answers never carry their credentials.
	AddSource(ctx context.Context, req *SourceAddRequest) (*WriteResponse, error)
	Sources(ctx context.Context, q Query) ([]*SourceInfo, QueryMeta, error)
	Source(ctx context.Context, name string, q Query) (*SourceInfo, QueryMeta, error)
	UpdateSource(ctx context.Context, name string, req *SourceUpdateRequest) (*WriteResponse, error)
	RemoveSource(ctx context.Context, name string, prune bool) (*WriteResponse, error)
	// SourceToken returns a push source's remote and token, rotating it first
	// when asked.
	SourceToken(ctx context.Context, name string, rotate bool) (*SourceTokenResponse, error)

	// ReportTaskStatus records an agent's reports; nodeID is the node of the
	// caller's certificate, and only that node's tasks are changed.
	ReportTaskStatus(ctx context.Context, nodeID string, reports []TaskStatusReport) error

	// RequestJoin answers a joining node (POST /v1/join): the token is its only
	// credential.
	RequestJoin(ctx context.Context, req *NodeJoinRequest) (*NodeJoinResponse, error)
	// Heartbeat records that the node of the caller's certificate is alive (leader
	// only: others answer a NotLeaderError).
	Heartbeat(ctx context.Context, caller ca.Identity) (*HeartbeatResponse, error)
	// RenewCertificate issues a certificate for the caller's node with the role the
	// cluster records for it.
	RenewCertificate(ctx context.Context, caller ca.Identity, req *CertificateRequest) (*CertificateResponse, error)
	// ApplyCommand applies a raft command forwarded by a follower.
	ApplyCommand(ctx context.Context, cmd []byte) (uint64, error)
	// AddVoter and RemoveVoter change the raft configuration (leader only).
	AddVoter(ctx context.Context, nodeID string) error
	RemoveVoter(ctx context.Context, nodeID string) error
}
