package api

import (
	"context"

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
