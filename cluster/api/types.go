package api

import (
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Phase is where a node stands in its life.
type Phase string

// Node phases.
const (
	// PhaseInactive: not part of a cluster; only init, join and info are served.
	PhaseInactive Phase = "inactive"
	// PhaseLocked: an autolocked manager after a restart; only unlock, info and
	// leave are served until `berth unlock`.
	PhaseLocked Phase = "locked"
	// PhaseWorker: a worker; it holds no cluster state.
	PhaseWorker Phase = "worker"
	// PhaseManager: an unlocked manager, serving everything.
	PhaseManager Phase = "manager"
)

// Status is what the API needs to know about the node to route a request.
type Status struct {
	Phase     Phase
	ClusterID string
	NodeID    string
}

// Info answers GET /v1/info (`berth info`).
type Info struct {
	Phase     Phase  `json:"phase"`
	NodeID    string `json:"node_id,omitempty"`
	Hostname  string `json:"hostname"`
	ClusterID string `json:"cluster_id,omitempty"`
	// Role is the role of the node's certificate.
	Role     model.NodeRole `json:"role,omitempty"`
	NodeAddr string         `json:"node_addr,omitempty"`
	Locked   bool           `json:"locked"`
	// The rest is known to managers only (workers: ManagerAddrs).
	Autolock     bool     `json:"autolock"`
	MaxReplicas  uint64   `json:"max_replicas,omitempty"`
	Leader       *Leader  `json:"leader,omitempty"`
	Managers     int      `json:"managers,omitempty"`
	Nodes        int      `json:"nodes,omitempty"`
	RaftIndex    uint64   `json:"raft_index,omitempty"`
	ManagerAddrs []string `json:"manager_addrs,omitempty"`
	// Version is the daemon's build (`berth version`).
	Version *Version `json:"version,omitempty"`
}

// Version describes a build of berth: the CLI's or a daemon's.
type Version struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	// Protocol is the replicated protocol the build speaks (command.Version): a
	// cluster runs the commands of its managers' lowest one.
	Protocol int `json:"protocol,omitempty"`
}

// Leader names the raft leader.
type Leader struct {
	NodeID   string `json:"node_id"`
	Hostname string `json:"hostname,omitempty"`
	Addr     string `json:"addr"`
}

// InitRequest is `berth init`.
type InitRequest struct {
	AdvertiseAddr   string   `json:"advertise_addr,omitempty"`
	Autolock        bool     `json:"autolock,omitempty"`
	DefaultAddrPool []string `json:"default_addr_pool,omitempty"`
	// ForceNewCluster makes a manager of a cluster that lost its quorum the only
	// manager of that cluster, keeping its state (Swarm's --force-new-cluster).
	ForceNewCluster bool `json:"force_new_cluster,omitempty"`
	// CertExpiry is how long node certificates are valid (zero: 90 days).
	CertExpiry spec.Duration `json:"cert_expiry,omitempty"`
}

// InitResponse tells the operator how to grow the cluster. UnlockKey is set with
// autolock: it is shown this once.
type InitResponse struct {
	NodeID       string `json:"node_id"`
	ClusterID    string `json:"cluster_id"`
	ManagerAddr  string `json:"manager_addr"`
	WorkerToken  string `json:"worker_token"`
	ManagerToken string `json:"manager_token"`
	UnlockKey    string `json:"unlock_key,omitempty"`
}

// JoinRequest is `berth join`: the local daemon joins the cluster of the manager at
// RemoteAddr.
type JoinRequest struct {
	RemoteAddr    string `json:"remote_addr"`
	Token         string `json:"token"`
	AdvertiseAddr string `json:"advertise_addr,omitempty"`
}

// JoinResponse says what the node became.
type JoinResponse struct {
	NodeID    string         `json:"node_id"`
	ClusterID string         `json:"cluster_id"`
	Role      model.NodeRole `json:"role"`
}

// LeaveRequest is `berth leave`.
type LeaveRequest struct {
	Force bool `json:"force,omitempty"`
}

// UnlockRequest is `berth unlock`.
type UnlockRequest struct {
	Key string `json:"key"`
}

// UnlockKeyResponse carries the cluster's unlock key (`berth unlock-key`).
type UnlockKeyResponse struct {
	Key string `json:"key"`
}

// ClusterUpdateRequest is `berth update`. Nil fields are left as they are.
type ClusterUpdateRequest struct {
	Autolock *bool `json:"autolock,omitempty"`
	// MaxReplicas sets the most replicas a service may ask for.
	MaxReplicas *uint64 `json:"max_replicas,omitempty"`
	// Notify changes where every source's sync results go; CommitStatus is not
	// cluster-wide.
	Notify *SourceNotifyUpdate `json:"notify,omitempty"`
	// CertExpiry sets how long node certificates are valid (`--cert-expiry`);
	// nodes renew theirs after two thirds of it.
	CertExpiry *spec.Duration `json:"cert_expiry,omitempty"`
	// RotateCA replaces the root CA (`berth swarm ca --rotate`): every node moves
	// to a certificate of the new root, and the join tokens pin it.
	RotateCA bool `json:"rotate_ca,omitempty"`
	// NewRootCACert and NewRootCAKey (PEM) are the root a rotation moves to
	// (`--ca-cert`, `--ca-key`) instead of one the cluster makes.
	NewRootCACert string `json:"new_root_ca_cert,omitempty"`
	NewRootCAKey  string `json:"new_root_ca_key,omitempty"`
}

// ClusterUpdateResponse carries the new unlock key when autolock was turned on, and
// the new root CA certificate (PEM) after a rotation.
type ClusterUpdateResponse struct {
	UnlockKey  string `json:"unlock_key,omitempty"`
	RootCACert string `json:"root_ca_cert,omitempty"`
}

// JoinTokenResponse is a join token and the manager address to join through.
type JoinTokenResponse struct {
	Role        model.NodeRole `json:"role"`
	Token       string         `json:"token"`
	ManagerAddr string         `json:"manager_addr"`
}

// NodeUpdateRequest is `berth node update`.
type NodeUpdateRequest struct {
	LabelsAdd    map[string]string      `json:"labels_add,omitempty"`
	LabelsRemove []string               `json:"labels_remove,omitempty"`
	Availability model.NodeAvailability `json:"availability,omitempty"`
}

// WriteResponse is the raft index a write was applied at. Unchanged says that
// nothing needed writing (promoting a manager, for instance).
type WriteResponse struct {
	Index     uint64 `json:"index"`
	Unchanged bool   `json:"unchanged,omitempty"`
}

// ObjectCreateRequest creates a new version of a secret or a config.
type ObjectCreateRequest struct {
	Name   string            `json:"name"`
	Data   []byte            `json:"data"`
	Labels map[string]string `json:"labels,omitempty"`
}

// ObjectCreateResponse identifies the version created.
type ObjectCreateResponse struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Index   uint64 `json:"index"`
}

// NodeJoinRequest is what a joining node sends to a manager (POST /v1/join), over TLS
// without a client certificate: the token authenticates it.
type NodeJoinRequest struct {
	Token string `json:"token"`
	// CSR is the DER certificate signing request for the node's new key.
	CSR       []byte              `json:"csr"`
	Hostname  string              `json:"hostname"`
	Addr      string              `json:"addr"`
	Platform  model.Platform      `json:"platform"`
	Resources model.NodeResources `json:"resources"`
	// Engine is the berth the joining node runs (nothing from a berth of protocol 1).
	Engine model.NodeEngine `json:"engine,omitzero"`
}

// NodeJoinResponse is the joiner's certificate and identity. UnlockKey is set for a
// manager joining an autolocked cluster: its keyring must use the cluster's key.
type NodeJoinResponse struct {
	NodeID        string         `json:"node_id"`
	Role          model.NodeRole `json:"role"`
	Certificate   string         `json:"certificate"`
	CACertificate string         `json:"ca_certificate"`
	// TrustedCACertificates are more roots to trust (PEM): the previous root
	// while a root rotation is under way.
	TrustedCACertificates string `json:"trusted_ca_certificates,omitempty"`
	UnlockKey             string `json:"unlock_key,omitempty"`
	// UnlockKeyGeneration is the generation of UnlockKey (and of the autolock
	// setting) at the time of the answer.
	UnlockKeyGeneration uint64   `json:"unlock_key_generation,omitempty"`
	Managers            []string `json:"managers,omitempty"`
}

// HeartbeatRequest is what a node says of itself with every heartbeat: the berth it
// runs (a berth of protocol 1 sends nothing).
type HeartbeatRequest struct {
	Engine model.NodeEngine `json:"engine,omitzero"`
}

// HeartbeatResponse tells a node when to come back and what the cluster wants of it.
type HeartbeatResponse struct {
	Period spec.Duration `json:"period"`
	// Role is the node's role as the cluster records it: when it differs from the
	// role of the node's certificate, the node was promoted or demoted.
	Role model.NodeRole `json:"role"`
	// Voter says whether the node is a raft voter now: a demoted manager keeps raft
	// running until the leader has removed it.
	Voter    bool     `json:"voter"`
	Managers []string `json:"managers,omitempty"`
	// RootCA is the digest of the cluster's root CA: a node whose certificate
	// chains to another root renews it. RotatingCA says the previous root is
	// still trusted; a node that trusts it once the rotation ended renews too.
	RootCA     string `json:"root_ca,omitempty"`
	RotatingCA bool   `json:"rotating_ca,omitempty"`
}

// CertificateRequest asks for a new certificate for a new key (role changes, renewal).
type CertificateRequest struct {
	CSR []byte `json:"csr"`
}

// CertificateResponse is the new certificate; the role is the one the cluster
// records for the node, never one the node asked for.
type CertificateResponse struct {
	Role          model.NodeRole `json:"role"`
	Certificate   string         `json:"certificate"`
	CACertificate string         `json:"ca_certificate"`
	// TrustedCACertificates: see NodeJoinResponse.
	TrustedCACertificates string `json:"trusted_ca_certificates,omitempty"`
	UnlockKey             string `json:"unlock_key,omitempty"`
	// UnlockKeyGeneration: see NodeJoinResponse.
	UnlockKeyGeneration uint64 `json:"unlock_key_generation,omitempty"`
}

// RaftMemberRequest names a manager to add to or remove from raft.
type RaftMemberRequest struct {
	NodeID string `json:"node_id"`
}

// Query is a blocking query: answer at once if the data's index is above Index (or
// Index is 0), otherwise wait up to Wait for a change.
type Query struct {
	Index uint64
	Wait  time.Duration
}

// QueryMeta is what a read answer carries besides its data.
type QueryMeta struct {
	// Index is the raft index of the answer: pass it back as Query.Index to wait for
	// the next change.
	Index uint64
}

// StackDeployRequest is `berth stack deploy`: the canonical stack as spec.Load made it
// (as `berth stack config` prints it), and the content of its secrets and configs, by short
// name, which the spec's JSON form leaves out. It never shows in a log.
type StackDeployRequest struct {
	Stack      *spec.Stack       `json:"stack"`
	SecretData map[string][]byte `json:"secret_data,omitempty"`
	ConfigData map[string][]byte `json:"config_data,omitempty"`
	// Prune removes the stack's services and networks that the files no longer have.
	Prune bool `json:"prune,omitempty"`
}

// NewStackDeployRequest carries a loaded stack and the content of its secrets and
// configs, which the spec's JSON form leaves out.
func NewStackDeployRequest(stack *spec.Stack, prune bool) *StackDeployRequest {
	req := &StackDeployRequest{Stack: stack, Prune: prune}
	for k, s := range stack.Secrets {
		if !s.External {
			if req.SecretData == nil {
				req.SecretData = map[string][]byte{}
			}
			req.SecretData[k] = s.Data
		}
	}
	for k, cf := range stack.Configs {
		if !cf.External {
			if req.ConfigData == nil {
				req.ConfigData = map[string][]byte{}
			}
			req.ConfigData[k] = cf.Data
		}
	}
	return req
}

// Actions in a StackDeployResponse.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
	ActionRemoved   = "removed"
)

// StackDeployResponse says what a deploy did, worked out from the state once the
// deploy was applied on the manager that answers.
type StackDeployResponse struct {
	Index   uint64         `json:"index"`
	Changes []ObjectChange `json:"changes"`
}

// ObjectChange is what a deploy did to one service, network, secret or config.
type ObjectChange struct {
	// Kind is service, network, secret or config.
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	ID     string `json:"id,omitempty"`
	Action string `json:"action"`
	// Version is the version of a secret or config the stack's services use now.
	Version uint64 `json:"version,omitempty"`
}

// StackSummary is one stack in `berth stack ls`.
type StackSummary struct {
	Name     string `json:"name"`
	Services int    `json:"services"`
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// ServiceFilter narrows GET /v1/services.
type ServiceFilter struct {
	Stack string
}

// ServiceStatus is a service row with what its tasks are doing: `service ls` and
// `service inspect`.
type ServiceStatus struct {
	*model.Service
	// Running counts the tasks meant to run that run (as Swarm counts them);
	// Desired is the replica count, or for a global service the number of nodes that
	// should run a task. Completed counts the completed tasks of a job.
	Running   uint64 `json:"running"`
	Desired   uint64 `json:"desired"`
	Completed uint64 `json:"completed,omitempty"`
	// UpToDate counts the running tasks made from the current spec: a rolling
	// update is done when they are as many as Desired.
	UpToDate uint64 `json:"up_to_date"`
	// Pending counts the tasks waiting for a node, by the scheduler's reason.
	Pending []PendingReason `json:"pending,omitempty"`
	// Failing counts the slots (a global service's nodes) where a task of the current
	// spec failed or was rejected and none runs or waits for a node yet, by the
	// latest failure's error.
	Failing []PendingReason `json:"failing,omitempty"`
}

// PendingReason is why some tasks of a service have no node.
type PendingReason struct {
	Reason string `json:"reason"`
	Tasks  int    `json:"tasks"`
}

// ServiceScaleRequest is `berth service scale`.
type ServiceScaleRequest struct {
	Replicas uint64 `json:"replicas"`
}

// ServiceUpdateRequest is `berth service update`.
type ServiceUpdateRequest struct {
	// Force replaces every task, through a rolling update, even though nothing
	// changed.
	Force bool `json:"force,omitempty"`
	// Spec, when set, is the service's new spec, which the manager holds to a
	// Compose service's rules against the service's stack (or none); the spec
	// before it is what a rollback returns to. Of a stack's service it is drift
	// from the stack's source.
	Spec *spec.Service `json:"spec,omitempty"`
}

// TaskFilter narrows GET /v1/tasks. Service and Node take what an operator types
// (ID, unique ID prefix, name or hostname).
type TaskFilter struct {
	Service string
	Stack   string
	Node    string
}

// TaskInfo is a task as `service ps` and `stack ps` show it.
type TaskInfo struct {
	*model.Task
	// Name is `web_api.1`, or `web_api.<node-id>` for a global task.
	Name string `json:"name"`
	// Stack is the task's service's stack.
	Stack string `json:"stack,omitempty"`
	// NodeHostname names the task's node.
	NodeHostname string `json:"node_hostname,omitempty"`
	// Image is the image of the spec the task was made from, when known.
	Image string `json:"image,omitempty"`
}

// TaskStatusReport is an agent's report on one task of its node.
type TaskStatusReport struct {
	TaskID string           `json:"task_id"`
	Status model.TaskStatus `json:"status"`
}

// TaskStatusRequest is what an agent sends (POST /v1/tasks/status): a batch of
// reports, about tasks assigned to the node of its certificate only.
type TaskStatusRequest struct {
	Reports []TaskStatusReport `json:"reports"`
}

// TaskRuntime is everything an agent needs to run one task of its node (GET
// /v1/tasks/{id}/runtime): the spec the task was made from (its service's current
// spec, or the previous one while a rolling update or rollback is under way), the
// content of the secrets and configs it mounts at their pinned versions, and its
// networks. Secrets travel only to the node the task is assigned to, and only here.
type TaskRuntime struct {
	Task  *model.Task  `json:"task"`
	Stack string       `json:"stack"`
	Spec  spec.Service `json:"spec"`
	// Volumes maps the spec's volume mount sources to the node-local volumes'
	// cluster-wide names (`<stack>_<volume>` unless the file names them).
	Volumes  map[string]string `json:"volumes,omitempty"`
	Secrets  []RuntimeFile     `json:"secrets,omitempty"`
	Configs  []RuntimeFile     `json:"configs,omitempty"`
	Networks []*model.Network  `json:"networks,omitempty"`
}

// RuntimeFile is a secret or config as a task mounts it: the spec's reference
// (target, owner, mode) with the content of the pinned version.
type RuntimeFile struct {
	spec.FileReference
	// Name is the cluster-wide name of the secret or config.
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Data    []byte `json:"data"`
}

// String never shows Data, so that a file logged by mistake leaks nothing.
func (f RuntimeFile) String() string {
	return fmt.Sprintf("%s (version %d) -> %s", f.Name, f.Version, f.Target)
}

// LogOptions select what GET /v1/tasks/{id}/logs streams.
type LogOptions struct {
	// Tail keeps the last Tail lines there are when reading starts; 0 means all.
	Tail int `json:"tail,omitempty"`
	// Follow streams new lines until the caller goes away.
	Follow bool `json:"follow,omitempty"`
	// Timestamps prefixes each line with its time (RFC 3339).
	Timestamps bool `json:"timestamps,omitempty"`
	// Stream is "stdout", "stderr" or "" for both.
	Stream string `json:"stream,omitempty"`
	// Since and Until keep the lines written between them (zero: no bound); a
	// followed log ends once Until has passed.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// ImageLoadOptions is the query of POST /v1/images/load.
type ImageLoadOptions struct {
	// AllNodes asks a manager to import the archive into every node of the
	// cluster, itself included, rather than into itself only.
	AllNodes bool
}

// ImageLoadResponse names the images an archive held (POST /v1/images/load). With
// AllNodes, Nodes says what each node made of it and Images is empty.
type ImageLoadResponse struct {
	Images []string        `json:"images"`
	Nodes  []NodeImageLoad `json:"nodes,omitempty"`
}

// NodeImageLoad is one node's import of an archive loaded into all nodes.
type NodeImageLoad struct {
	NodeID   string   `json:"node_id"`
	Hostname string   `json:"hostname"`
	Images   []string `json:"images,omitempty"`
	// Error says why the node has not imported the archive (it is down, its
	// port cannot be reached, containerd refused the archive).
	Error string `json:"error,omitempty"`
}

// SourceAddRequest is `berth source add`. Credentials and WebhookSecret are stored as
// cluster secrets that the source refers to; they never come back in an answer.
type SourceAddRequest struct {
	Source        *model.Source      `json:"source"`
	Credentials   *SourceCredentials `json:"credentials,omitempty"`
	WebhookSecret []byte             `json:"webhook_secret,omitempty"`
	// AgeKey is an age identity file (AGE-SECRET-KEY-1...) the source's SOPS files
	// are decrypted with; stored as a cluster secret like the credentials.
	AgeKey []byte `json:"age_key,omitempty"`
	// CommitStatusToken is the API token of Source.CommitStatus, stored as a secret.
	CommitStatusToken string `json:"commit_status_token,omitempty"`
}

// SourceCredentials is how a pull source reaches its remote: a token over HTTPS, or
// an SSH key whose server must be in KnownHosts. Stored as a cluster secret, in
// this JSON form.
type SourceCredentials struct {
	Username   string `json:"username,omitempty"`
	Token      string `json:"token,omitempty"`
	SSHKey     []byte `json:"ssh_key,omitempty"`
	KnownHosts []byte `json:"known_hosts,omitempty"`
}

// SourceUpdateRequest changes a source: nil fields stay.
type SourceUpdateRequest struct {
	Suspended *bool `json:"suspended,omitempty"`
	// Pin applies one revision until the next sync request or resume (`source
	// rollback --to REV`); "" clears the pin.
	Pin         *string `json:"pin,omitempty"`
	RequestSync bool    `json:"request_sync,omitempty"`
	// CA replaces the CA certificates (PEM) of a pull source's https:// remote
	// (`source update --ca-file`); "" removes them.
	CA *string `json:"ca,omitempty"`
	// The settings `source update` changes, as `source add` takes them. A change
	// makes the leader sync the source with them at once.
	Branch   *string        `json:"branch,omitempty"`
	Path     *string        `json:"path,omitempty"`
	Interval *spec.Duration `json:"interval,omitempty"`
	Prune    *bool          `json:"prune,omitempty"`
	SelfHeal *bool          `json:"self_heal,omitempty"`
	// Credentials replace a pull source's credentials (stored as a new version
	// of its credentials secret).
	Credentials *SourceCredentials `json:"credentials,omitempty"`
	// AgeKey replaces the source's age identities (a new version of its age key
	// secret); RemoveAgeKey deletes them.
	AgeKey       []byte `json:"age_key,omitempty"`
	RemoveAgeKey bool   `json:"remove_age_key,omitempty"`
	// Notify changes where sync results go.
	Notify *SourceNotifyUpdate `json:"notify,omitempty"`
}

// ChangesSettings reports whether u changes how the source is synced, beyond
// suspending, pinning and asking for a sync.
func (u *SourceUpdateRequest) ChangesSettings() bool {
	return u.CA != nil || u.Branch != nil || u.Path != nil || u.Interval != nil ||
		u.Prune != nil || u.SelfHeal != nil || u.Credentials != nil || u.Notify != nil ||
		u.AgeKey != nil || u.RemoveAgeKey
}

// Source statuses as `source ls` shows them, Flux's and Argo CD's words.
const (
	SourceSynced      = "Synced"
	SourceOutOfSync   = "OutOfSync"
	SourceFailed      = "Failed"
	SourceSuspended   = "Suspended"
	SourceProgressing = "Progressing"
	// SourceDegraded: applied, and some services cannot run until something
	// changes (ServiceStatus.Stuck); SourceInfo.Reason says why.
	SourceDegraded = "Degraded"
	SourcePending  = "Pending"
)

// SourceInfo is a source with what an operator reads first: its status in one word,
// and the stacks it manages.
type SourceInfo struct {
	*model.Source
	Display string   `json:"display_status"`
	Stacks  []string `json:"stacks,omitempty"`
	// Reason is why a Degraded source's services cannot all run.
	Reason string `json:"reason,omitempty"`
}

// UITokenResponse is `berth ui token`: a login link to the web dashboard of the
// manager that made it, which works once until ExpiresAt.
type UITokenResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SourceTokenResponse is `berth source token`: how to push to a push source.
type SourceTokenResponse struct {
	// URL is the remote on the manager that answered.
	URL   string `json:"url"`
	Token string `json:"token"`
	// CAFile is where the cluster's CA certificate is on the manager that
	// answered: git checks the remote's certificate against it.
	CAFile string `json:"ca_file"`
}

// PlanRequest is a live dry run (`berth diff --source`, `berth diff -c ... --stack`,
// `berth stack deploy --dry-run`): what deploying Stacks, or syncing Source, would
// change in the cluster and where the tasks would land. Nothing is written.
type PlanRequest struct {
	Stacks []*StackDeployRequest `json:"stacks,omitempty"`
	// Source plans the source's revision instead: Revision (a branch, tag or
	// commit; for a pull source, one its mirror has), or what a sync would read.
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
}

// PlanResponse is what a PlanRequest would do.
type PlanResponse struct {
	// Revision is the source's revision planned (a commit, or a folder's digest).
	Revision string `json:"revision,omitempty"`
	// Diffs are the stacks that would change, field by field.
	Diffs []*spec.StackDiff `json:"diffs"`
	// Kept are stacks of the source that the revision no longer has, kept
	// because the source does not prune.
	Kept []string `json:"kept,omitempty"`
	// Placement is, for each service whose tasks would change, where its new
	// tasks would run and why any could not be placed.
	Placement []*ServicePlacement `json:"placement"`
	// Settled is false when the preview stopped following the rollout before
	// every service settled (a rollout blocked for longer than the preview
	// follows it): Placement is then where it had got to.
	Settled  bool     `json:"settled"`
	Warnings []string `json:"warnings,omitempty"`
}

// ServicePlacement is where a service's tasks would run after a dry run.
type ServicePlacement struct {
	Service string `json:"service"`
	// Tasks are the new tasks (a new replica, or a replacement) and their node.
	Tasks []TaskPlacement `json:"tasks,omitempty"`
	// Stopped counts the running tasks that would stop and not come back
	// (scale down, removed service, a global service leaving a node).
	Stopped int `json:"stopped,omitempty"`
	// Unplaced are the tasks that could not be placed, by reason.
	Unplaced []UnplacedTasks `json:"unplaced,omitempty"`
	// Update is how the rolling update would end when it does not complete:
	// "paused: <why>", "rollback_completed: <why>".
	Update string `json:"update,omitempty"`
}

// TaskPlacement is one new task of a dry run.
type TaskPlacement struct {
	// Slot is the replica number; 0 for a global service's task.
	Slot uint64 `json:"slot,omitempty"`
	// Node is the hostname of the node the task would run on.
	Node string `json:"node"`
	// Replaces is set when the task replaces a running one (a changed spec);
	// From is then the node that one runs on, when it is another node.
	Replaces bool   `json:"replaces,omitempty"`
	From     string `json:"from,omitempty"`
}

// UnplacedTasks are Count tasks the scheduler could not place, and why.
type UnplacedTasks struct {
	Count  int    `json:"count"`
	Reason string `json:"reason"`
}

// NetworkView is what a node's data plane is told of the cluster's networks (the
// wire form of netstack.View): GET /v1/nodes/{ref}/network, the agent's second
// watch. Addresses are bare IPs ("10.0.1.5"), not CIDRs: the networks carry the
// subnets.
type NetworkView struct {
	// Underlay is the node's own underlay address: the host part of its Addr.
	Underlay string `json:"underlay,omitempty"`
	// Networks are the networks of the node's tasks that have not ended, and
	// those of its own endpoints (the ingress network), by ID.
	Networks []*model.Network `json:"networks"`
	// Endpoints are every address on those networks of a task placed on a node
	// that is not down, or of such a node itself, by network then task then node.
	Endpoints []NetworkEndpoint `json:"endpoints"`
	// Services are the services with an endpoint or a VIP on those networks, by ID.
	Services []NetworkService `json:"services"`
	// Encoded, when the backend sets it, is this view as JSON, which the handler
	// sends as it is: the managers encode each network once for all the nodes
	// on it, not once per node.
	Encoded []byte `json:"-"`
}

// NetworkEndpoint is one address on a network: a task's attachment, or a node's
// own (TaskID empty).
type NetworkEndpoint struct {
	Network   string `json:"network"`
	TaskID    string `json:"task_id,omitempty"`
	ServiceID string `json:"service_id,omitempty"`
	NodeID    string `json:"node_id"`
	Addr      string `json:"addr"`
	MAC       string `json:"mac,omitempty"`
	// Node is the underlay address of the node the endpoint is on.
	Node string `json:"node"`
	// Ready: the task runs (healthy, when it has a check), is meant to keep
	// running, and its node is ready; for a node's own endpoint, the node is
	// ready.
	Ready bool `json:"ready,omitempty"`
}

// NetworkService is a service as DNS, VIPs and the routing mesh see it.
type NetworkService struct {
	ID string `json:"id"`
	// Name is the cluster-wide name, ShortName the name in the stack file.
	Name      string `json:"name"`
	ShortName string `json:"short_name"`
	Stack     string `json:"stack,omitempty"`
	// DNSRR is endpoint_mode dnsrr: no VIP, names resolve to the tasks.
	DNSRR bool `json:"dnsrr,omitempty"`
	// VIPs are the service's virtual IPs (bare addresses), by network ID.
	VIPs map[string]string `json:"vips,omitempty"`
	// Aliases are the service's network aliases, by network ID.
	Aliases map[string][]string `json:"aliases,omitempty"`
	// IngressPorts are the ports published in ingress mode.
	IngressPorts []spec.Port `json:"ingress_ports,omitempty"`
}

// ClientCertRequest is `berth ca client-cert`: the CSR of a key the CLI made and
// keeps, and how long the certificate is to last (0: a day).
type ClientCertRequest struct {
	CSR []byte        `json:"csr"`
	TTL spec.Duration `json:"ttl,omitempty"`
}

// ClientCertResponse is an operator's client certificate (role admin) for a
// manager's TCP port, with the cluster's CA certificate to check the manager by.
type ClientCertResponse struct {
	Name          string    `json:"name"`
	Certificate   string    `json:"certificate"`
	CACertificate string    `json:"ca_certificate"`
	NotAfter      time.Time `json:"not_after"`
}
