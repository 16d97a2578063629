package model

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/berthd/berth/spec"
)

// Meta is the raft bookkeeping every row carries. The write transaction sets
// both fields; values supplied by callers are ignored.
type Meta struct {
	// CreateIndex is the raft index of the write that inserted the row.
	CreateIndex uint64 `json:"create_index"`
	// ModifyIndex is the raft index of the last write to the row.
	ModifyIndex uint64 `json:"modify_index"`
}

// RowMeta returns the row's raft bookkeeping, for the store that writes it.
func (m *Meta) RowMeta() *Meta { return m }

// Key returns a row's primary key: the ID, or the name for sources and stacks.
func (c *Cluster) Key() string { return c.ID }
func (n *Node) Key() string    { return n.ID }
func (s *Source) Key() string  { return s.Name }
func (s *Stack) Key() string   { return s.Name }
func (s *Service) Key() string { return s.ID }
func (t *Task) Key() string    { return t.ID }
func (n *Network) Key() string { return n.ID }
func (s *Secret) Key() string  { return s.ID }
func (c *Config) Key() string  { return c.ID }
func (v *Volume) Key() string  { return v.ID }

// ---------------------------------------------------------------------------
// Cluster

// Cluster is the singleton row describing the cluster itself.
//
// It holds the cluster's secrets: the root CA's private key, the join tokens
// and, with autolock on, the unlock key. They live here, in the raft state,
// so that any manager can sign certificates and answer joins after a
// failover, and so that a manager joining an autolocked cluster receives the
// one cluster-wide unlock key; the raft log and snapshots are sealed at rest,
// so they never reach a disk in the clear. String, Format and LogValue never
// show them and Redacted returns a copy without them: API answers and logs
// must only ever use that.
type Cluster struct {
	Meta
	ID string `json:"id"`
	// RootCACert is the PEM encoding of the cluster's root CA certificate.
	RootCACert string `json:"root_ca_cert,omitempty"`
	// RootCAKey is the PEM encoding of the root CA's private key (secret).
	RootCAKey string `json:"root_ca_key,omitempty"`
	// JoinTokens are the full join tokens, one per role (secret).
	JoinTokens JoinTokens `json:"join_tokens,omitzero"`
	// Autolock keeps the key-encryption key off disk: a restarted manager
	// stays locked until `berth unlock`.
	Autolock bool `json:"autolock"`
	// UnlockKey is the cluster's unlock key while Autolock is on, empty
	// otherwise (secret). Every manager wraps its keyring with it.
	UnlockKey string `json:"unlock_key,omitempty"`
	// UnlockKeyGeneration counts unlock key rotations, so that managers can
	// tell that the key they were unlocked with is no longer current.
	UnlockKeyGeneration uint64   `json:"unlock_key_generation"`
	Settings            Settings `json:"settings"`
	// Leader is the manager that last took the lead, as it recorded when it did:
	// `berth events` tells leader changes from it.
	Leader LeaderRecord `json:"leader,omitzero"`
	// RootRotation is set while nodes move to a new root CA (`berth swarm ca
	// --rotate`) and cleared once every node has a certificate of it.
	RootRotation *RootRotation `json:"root_rotation,omitempty"`
}

// LeaderRecord is a manager's record of its leadership, written once per term it
// leads. Since is the proposer's clock.
type LeaderRecord struct {
	NodeID   string    `json:"node_id"`
	Hostname string    `json:"hostname,omitempty"`
	Term     uint64    `json:"term"`
	Since    time.Time `json:"since"`
}

// RootRotation is a root CA rotation under way. RootCACert is already the new
// root; nodes trust the previous one too until every node's certificate is
// signed by the new one (Node.CertRoot), so no connection fails meanwhile.
type RootRotation struct {
	// PrevCACert is the root being replaced (PEM).
	PrevCACert string `json:"prev_ca_cert"`
	// CrossSigned is the new root signed by the previous one (PEM): sent after
	// every node certificate issued during the rotation, so that nodes that
	// trust only the previous root accept it.
	CrossSigned string `json:"cross_signed"`
	// Digest is the new root's CA digest, what Node.CertRoot is compared with.
	Digest    string    `json:"digest"`
	StartedAt time.Time `json:"started_at"`
}

// JoinTokens are the role secrets of the worker and manager join tokens.
type JoinTokens struct {
	Worker  string `json:"worker,omitempty"`
	Manager string `json:"manager,omitempty"`
}

// Settings are the cluster-wide tunables.
type Settings struct {
	// HeartbeatPeriod is how often agents heartbeat; a node is marked down
	// after a few missed periods.
	HeartbeatPeriod spec.Duration `json:"heartbeat_period"`
	// TaskHistoryLimit is how many terminated tasks are kept per slot (or per
	// node for global services) for `service ps`.
	TaskHistoryLimit int64 `json:"task_history_limit"`
	// DefaultAddrPool lists the CIDRs overlay subnets are carved from when a
	// network does not name one, DefaultAddrPoolMaskLen the size of each.
	DefaultAddrPool        []string `json:"default_addr_pool,omitempty"`
	DefaultAddrPoolMaskLen uint32   `json:"default_addr_pool_mask_len,omitempty"`
	// VXLANPort is the UDP port of the overlay's VXLAN devices.
	VXLANPort uint32 `json:"vxlan_port"`
	// MaxReplicas is the most replicas a service may ask for (`berth update
	// --max-replicas`); see ReplicaLimit.
	MaxReplicas uint64 `json:"max_replicas,omitempty"`
	// Notify are where every source's sync results go (`berth swarm update --notify`).
	Notify []NotifyTarget `json:"notify,omitempty"`
	// NodeCertExpiry is how long node certificates are valid (`berth update
	// --cert-expiry`); zero means ca.DefaultNodeCertValidity.
	NodeCertExpiry spec.Duration `json:"node_cert_expiry,omitempty"`
}

// ReplicaLimit is the most replicas a service may ask for: MaxReplicas, or
// spec.DefaultMaxReplicas in a row written before the setting existed.
func (s Settings) ReplicaLimit() uint64 {
	if s.MaxReplicas == 0 {
		return spec.DefaultMaxReplicas
	}
	return s.MaxReplicas
}

// Defaults for Settings, the same as Docker Swarm's but for the heartbeat period
// (Swarm's is 5 s): heartbeats are not raft writes, so a short one is cheap, and it
// bounds how long a dead node's tasks wait to move.
const (
	DefaultHeartbeatPeriod  = 1 * time.Second
	DefaultTaskHistoryLimit = 5
	DefaultAddrPoolCIDR     = "10.0.0.0/8"
	DefaultAddrPoolMaskLen  = 24
	DefaultVXLANPort        = 4789
)

// DefaultSettings returns the settings of a new cluster.
func DefaultSettings() Settings {
	return Settings{
		HeartbeatPeriod:        spec.Duration(DefaultHeartbeatPeriod),
		TaskHistoryLimit:       DefaultTaskHistoryLimit,
		DefaultAddrPool:        []string{DefaultAddrPoolCIDR},
		DefaultAddrPoolMaskLen: DefaultAddrPoolMaskLen,
		VXLANPort:              DefaultVXLANPort,
		MaxReplicas:            spec.DefaultMaxReplicas,
	}
}

// Copy returns a deep copy.
func (c *Cluster) Copy() *Cluster {
	if c == nil {
		return nil
	}
	out := *c
	out.Settings.DefaultAddrPool = slices.Clone(c.Settings.DefaultAddrPool)
	out.Settings.Notify = slices.Clone(c.Settings.Notify)
	if c.RootRotation != nil {
		r := *c.RootRotation
		out.RootRotation = &r
	}
	return &out
}

// Redacted returns a copy without the secrets (root CA key, join tokens,
// unlock key), for API answers and logs.
func (c *Cluster) Redacted() *Cluster {
	if c == nil {
		return nil
	}
	out := c.Copy()
	out.RootCAKey = ""
	out.JoinTokens = JoinTokens{}
	out.UnlockKey = ""
	for i, t := range out.Settings.Notify {
		out.Settings.Notify[i] = t.Masked()
	}
	return out
}

// String describes the cluster without its secrets.
func (c Cluster) String() string {
	return fmt.Sprintf("cluster %s (autolock=%t, unlock key generation %d, modify index %d)",
		c.ID, c.Autolock, c.UnlockKeyGeneration, c.ModifyIndex)
}

// Format prints String for every verb, so that no %v, %+v or %#v shows the
// cluster's secrets.
func (c Cluster) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue keeps the cluster's secrets out of slog output.
func (c Cluster) LogValue() slog.Value { return slog.StringValue(c.String()) }

// ---------------------------------------------------------------------------
// Node

// NodeRole is a node's role in the cluster.
type NodeRole string

// Node roles.
const (
	RoleManager NodeRole = "manager"
	RoleWorker  NodeRole = "worker"
)

// Valid reports whether r is a known role.
func (r NodeRole) Valid() bool { return r == RoleManager || r == RoleWorker }

// NodeAvailability is the operator's wish for a node, as in Swarm.
type NodeAvailability string

// Node availabilities.
const (
	// AvailabilityActive nodes take new tasks.
	AvailabilityActive NodeAvailability = "active"
	// AvailabilityPause nodes keep their tasks but take no new ones.
	AvailabilityPause NodeAvailability = "pause"
	// AvailabilityDrain nodes lose their tasks.
	AvailabilityDrain NodeAvailability = "drain"
)

// Valid reports whether a is a known availability.
func (a NodeAvailability) Valid() bool {
	return a == AvailabilityActive || a == AvailabilityPause || a == AvailabilityDrain
}

// NodeState is what the managers observe of a node.
type NodeState string

// Node states.
const (
	NodeUnknown NodeState = "unknown"
	NodeReady   NodeState = "ready"
	NodeDown    NodeState = "down"
)

// Valid reports whether s is a known node state.
func (s NodeState) Valid() bool { return s == NodeUnknown || s == NodeReady || s == NodeDown }

// Reachability is a manager's standing in the raft cluster.
type Reachability string

// Manager reachabilities.
const (
	ReachabilityLeader      Reachability = "leader"
	ReachabilityReachable   Reachability = "reachable"
	ReachabilityUnreachable Reachability = "unreachable"
)

// Valid reports whether r is a known reachability.
func (r Reachability) Valid() bool {
	return r == ReachabilityLeader || r == ReachabilityReachable || r == ReachabilityUnreachable
}

// Node is one member of the cluster, manager or worker.
type Node struct {
	Meta
	ID           string           `json:"id"`
	Hostname     string           `json:"hostname"`
	Role         NodeRole         `json:"role"`
	Availability NodeAvailability `json:"availability"`
	// Labels are set by the operator (`node update --label-add`) and are what
	// node.labels.* constraints match.
	Labels map[string]string `json:"labels,omitempty"`
	// EngineLabels are reported by the node's agent (engine.labels.*).
	EngineLabels map[string]string `json:"engine_labels,omitempty"`
	Platform     Platform          `json:"platform"`
	Resources    NodeResources     `json:"resources"`
	// Addr is the address other nodes reach this node's agent and overlay at.
	Addr string `json:"addr,omitempty"`
	// Networks are the node's own addresses on cluster networks, given by the
	// leader: its endpoint on the ingress network, the source the routing mesh
	// gives connections it sends to tasks on other nodes.
	Networks []Attachment `json:"networks,omitempty"`
	Status   NodeStatus   `json:"status"`
	// ManagerStatus is nil for workers (and for managers that have not yet
	// joined raft).
	ManagerStatus *ManagerStatus `json:"manager_status,omitempty"`
	// CertSerial is the serial number of the node's current certificate.
	CertSerial string `json:"cert_serial,omitempty"`
	// Engine is the berth the node runs, as its heartbeats report it; zero for a
	// node that never said (a berth of protocol 1).
	Engine NodeEngine `json:"engine,omitzero"`
	// CertRoot is the CA digest of the root that signed that certificate: a root
	// rotation is done when every node's is the new root's.
	CertRoot string `json:"cert_root,omitempty"`
}

// NodeEngine is the build of berth a node runs and the replicated protocol it speaks
// (command.Version).
type NodeEngine struct {
	Version  string `json:"version,omitempty"`
	Protocol int    `json:"protocol,omitempty"`
}

// Platform is a node's OS and CPU architecture, in GOOS/GOARCH terms.
type Platform struct {
	OS   string `json:"os,omitempty"`
	Arch string `json:"arch,omitempty"`
}

// NodeResources is what a node offers to tasks.
type NodeResources struct {
	NanoCPUs    spec.NanoCPUs `json:"cpus"`
	MemoryBytes int64         `json:"memory"`
}

// NodeStatus is the observed state of a node.
type NodeStatus struct {
	State   NodeState `json:"state"`
	Message string    `json:"message,omitempty"`
	// Timestamp is when State last changed, set by whoever proposes the
	// transition (the leader's heartbeat monitor, the join). The orchestrator's
	// down grace period and orphaning count from it; zero means unknown, which
	// it treats as "for longer than any grace period".
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// ManagerStatus is a manager's raft status.
type ManagerStatus struct {
	Reachability Reachability `json:"reachability"`
	// Addr is the manager's raft address.
	Addr string `json:"addr,omitempty"`
}

// Copy returns a deep copy.
func (n *Node) Copy() *Node {
	if n == nil {
		return nil
	}
	out := *n
	out.Labels = maps.Clone(n.Labels)
	out.EngineLabels = maps.Clone(n.EngineLabels)
	out.Networks = slices.Clone(n.Networks)
	if n.ManagerStatus != nil {
		ms := *n.ManagerStatus
		out.ManagerStatus = &ms
	}
	return &out
}

// ---------------------------------------------------------------------------
// Source

// SourceKind is where a source's revisions come from.
type SourceKind string

// Source kinds.
const (
	// SourceGitPull sources are fetched from a remote repository on a
	// schedule and on webhooks.
	SourceGitPull SourceKind = "git-pull"
	// SourceGitPush sources are repositories the cluster serves: revisions
	// arrive by `git push`.
	SourceGitPush SourceKind = "git-push"
	// SourceDir sources are local directories watched with fsnotify.
	SourceDir SourceKind = "dir"
)

// Valid reports whether k is a known kind.
func (k SourceKind) Valid() bool { return k == SourceGitPull || k == SourceGitPush || k == SourceDir }

// SyncState is the sync status of a source, as Flux and Argo CD show it.
type SyncState string

// Sync states. The empty state means "never synced yet".
const (
	SyncPending   SyncState = "pending"
	SyncSynced    SyncState = "synced"
	SyncOutOfSync SyncState = "out-of-sync"
	SyncFailed    SyncState = "failed"
)

// Valid reports whether s is a known state or empty.
func (s SyncState) Valid() bool {
	switch s {
	case "", SyncPending, SyncSynced, SyncOutOfSync, SyncFailed:
		return true
	}
	return false
}

// SyncResult is the outcome of one sync of a source.
type SyncResult string

// Sync results.
const (
	// SyncApplied: the revision was valid and its stacks were written.
	SyncApplied SyncResult = "applied"
	// SyncUnchanged: the revision changed nothing in the cluster.
	SyncUnchanged SyncResult = "unchanged"
	// SyncRejected: the revision was invalid; the previous one stays applied.
	SyncRejected SyncResult = "rejected"
	// SyncError: the revision could not be fetched or applied.
	SyncError SyncResult = "error"
)

// SourceHistoryLimit is how many sync records a source keeps; UpsertSource
// drops older ones.
const SourceHistoryLimit = 10

// Source is a GitOps source: where stacks come from and how their last syncs
// went.
type Source struct {
	Meta
	Name string     `json:"name"`
	Kind SourceKind `json:"kind"`
	// URL is the remote of a git-pull source, or the directory of a dir source.
	URL string `json:"url,omitempty"`
	// CA is PEM certificates an https:// remote's certificate is checked against,
	// besides the system's: a Git server with a private CA. Not a secret.
	CA     string `json:"ca,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Path is the folder inside the repository that holds the stacks.
	Path string `json:"path,omitempty"`
	// Interval is the polling period of a git-pull source (0: webhooks only).
	Interval spec.Duration `json:"interval,omitempty"`
	// AuthRef and WebhookSecretRef name secrets; the credentials themselves
	// never live in this row.
	AuthRef          string `json:"auth_ref,omitempty"`
	WebhookSecretRef string `json:"webhook_secret_ref,omitempty"`
	Suspended        bool   `json:"suspended,omitempty"`
	// Prune removes what the source created and its revision no longer has;
	// SelfHeal reverts drift. Both are set explicitly by whoever creates the
	// source (the CLI turns Prune on by default).
	Prune    bool `json:"prune,omitempty"`
	SelfHeal bool `json:"self_heal,omitempty"`

	// AgeKeyRef names the secret holding the age identities the source's SOPS files
	// are decrypted with; AgeRecipients are their public keys, which are no secret.
	AgeKeyRef     string   `json:"age_key_ref,omitempty"`
	AgeRecipients []string `json:"age_recipients,omitempty"`

	// PinnedRevision is set by `source rollback`: syncs apply it instead of the
	// branch's tip until the next `source sync` or `source resume`.
	PinnedRevision string `json:"pinned_revision,omitempty"`
	// SyncRequests counts `source sync` and webhook requests; AnsweredRequests is
	// the count the last sync answered. The leader syncs while they differ, so a
	// request survives a change of leader.
	SyncRequests     uint64 `json:"sync_requests,omitempty"`
	AnsweredRequests uint64 `json:"answered_requests,omitempty"`

	// PushedRevision is the commit a push source's branch points at, and PushPack
	// every object reachable from it, as one self-contained Git pack: a push is
	// acknowledged once both are committed, and each manager serves its copy of the
	// repository from them.
	PushedRevision string `json:"pushed_revision,omitempty"`
	PushPack       Blob   `json:"push_pack,omitzero"`

	LastFetchedRevision string    `json:"last_fetched_revision,omitempty"`
	LastFetchedAt       time.Time `json:"last_fetched_at,omitzero"`
	LastAppliedRevision string    `json:"last_applied_revision,omitempty"`
	LastAppliedAt       time.Time `json:"last_applied_at,omitzero"`
	Status              SyncState `json:"status,omitempty"`
	Message             string    `json:"message,omitempty"`
	// History holds the last syncs, oldest first, at most SourceHistoryLimit.
	History []SyncRecord `json:"history,omitempty"`

	SourceNotify
	// RejectedPush is the last push the source refused: only the last is kept.
	RejectedPush PushRejection `json:"rejected_push,omitzero"`
}

// MaxPushRejectionReason bounds the reason a refused push records: its first line
// says what to fix; the pusher saw the rest.
const MaxPushRejectionReason = 1024

// PushRejection is a push a push source refused before its branch moved (its
// Compose files do not load, validate or plan). At is the proposer's clock. The
// pusher is not known: a push authenticates with the source's token, whatever user
// name Git sends.
type PushRejection struct {
	Revision string    `json:"revision,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Blob is bytes that never change once made, so copies of a row share them: a
// push's pack is megabytes, and every sync copies its source's row.
type Blob struct{ b []byte }

// NewBlob takes b, which the caller must not change afterwards.
func NewBlob(b []byte) Blob { return Blob{b: b} }

// Bytes returns the blob's bytes, which the caller must not change.
func (b Blob) Bytes() []byte { return b.b }

// IsZero reports an empty blob.
func (b Blob) IsZero() bool { return len(b.b) == 0 }

// MarshalJSON encodes the bytes as []byte does (base64).
func (b Blob) MarshalJSON() ([]byte, error) { return json.Marshal(b.b) }

// UnmarshalJSON decodes what MarshalJSON encodes.
func (b *Blob) UnmarshalJSON(data []byte) error { return json.Unmarshal(data, &b.b) }

// SyncRecord is one sync of a source.
type SyncRecord struct {
	Revision string      `json:"revision"`
	Time     time.Time   `json:"time"`
	Result   SyncResult  `json:"result"`
	Plan     PlanSummary `json:"plan,omitzero"`
	Message  string      `json:"message,omitempty"`
}

// PlanSummary counts what a sync's plan did to services.
type PlanSummary struct {
	Added   int `json:"added,omitempty"`
	Changed int `json:"changed,omitempty"`
	Removed int `json:"removed,omitempty"`
}

// SecretRefs are the names of the secrets the source keeps its keys in.
func (s *Source) SecretRefs() []string {
	var refs []string
	for _, r := range []string{s.AuthRef, s.WebhookSecretRef, s.AgeKeyRef} {
		if r != "" {
			refs = append(refs, r)
		}
	}
	if s.CommitStatus != nil && s.CommitStatus.TokenRef != "" {
		refs = append(refs, s.CommitStatus.TokenRef)
	}
	return refs
}

// Copy returns a deep copy.
func (s *Source) Copy() *Source {
	if s == nil {
		return nil
	}
	out := *s
	out.History = slices.Clone(s.History)
	out.AgeRecipients = slices.Clone(s.AgeRecipients)
	out.SourceNotify = s.SourceNotify.Copy()
	return &out
}

// ---------------------------------------------------------------------------
// Stack

// Stack is a deployed stack: the canonical spec of its files and where they
// came from.
type Stack struct {
	Meta
	Name string `json:"name"`
	// Source is the name of the GitOps source the stack came from, empty for
	// `stack deploy`.
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Spec is the canonical spec. Its secrets' and configs' Data are never
	// stored here (see the Secret and Config tables).
	Spec     *spec.Stack       `json:"spec,omitempty"`
	SpecHash string            `json:"spec_hash,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	// DependsOn names the stacks (berth.yaml's depends_on) whose services must all
	// run before this stack's services place new tasks.
	DependsOn []string `json:"depends_on,omitempty"`
}

// Copy returns a deep copy.
func (s *Stack) Copy() *Stack {
	if s == nil {
		return nil
	}
	out := *s
	out.Spec = spec.Clone(s.Spec)
	out.Labels = maps.Clone(s.Labels)
	out.DependsOn = slices.Clone(s.DependsOn)
	return &out
}

// ---------------------------------------------------------------------------
// Service

// UpdateState is the progress of a service's rolling update or rollback.
type UpdateState string

// Update states. The empty state means no update has run.
const (
	UpdateUpdating          UpdateState = "updating"
	UpdatePaused            UpdateState = "paused"
	UpdateCompleted         UpdateState = "completed"
	UpdateRollbackStarted   UpdateState = "rollback_started"
	UpdateRollbackPaused    UpdateState = "rollback_paused"
	UpdateRollbackCompleted UpdateState = "rollback_completed"
)

// Valid reports whether s is a known update state or empty.
func (s UpdateState) Valid() bool {
	switch s {
	case "", UpdateUpdating, UpdatePaused, UpdateCompleted,
		UpdateRollbackStarted, UpdateRollbackPaused, UpdateRollbackCompleted:
		return true
	}
	return false
}

// Service is one service of a stack.
type Service struct {
	Meta
	ID string `json:"id"`
	// Name is the cluster-wide name, spec.FullName(Stack, Spec.Name).
	Name  string       `json:"name"`
	Stack string       `json:"stack"`
	Spec  spec.Service `json:"spec"`
	// PreviousSpec is the spec before the last update, what a rollback
	// returns to.
	PreviousSpec *spec.Service `json:"previous_spec,omitempty"`
	// SpecVersion grows by one with every write that changes what the service
	// asks for (spec, scale, force, rollback); tasks record the version they were
	// made from, and the orchestrator's plans are skipped when it moved on.
	SpecVersion uint64 `json:"spec_version"`
	// ForceUpdate grows with every `service update --force`: it is part of what
	// tasks are made from, so a new value replaces every task, as Swarm's
	// TaskTemplate.ForceUpdate does.
	ForceUpdate uint64 `json:"force_update,omitempty"`
	// Objects pins the version of every secret and config the tasks mount, by
	// kind and cluster-wide name ("secret/web_db_password": 3). A new version of
	// one is a change of the service: its tasks roll to it.
	Objects map[string]uint64 `json:"objects,omitempty"`
	// PreviousObjects is Objects before the last change, what a rollback
	// returns to along with PreviousSpec.
	PreviousObjects map[string]uint64 `json:"previous_objects,omitempty"`
	UpdateStatus    UpdateStatus      `json:"update_status,omitzero"`
	Endpoint        Endpoint          `json:"endpoint,omitzero"`
}

// ObjectKey is the key of Service.Objects for a secret or config: kind is
// "secret" or "config", name the cluster-wide name.
func ObjectKey(kind, name string) string { return kind + "/" + name }

// UpdateStatus is the state of the last rolling update or rollback.
type UpdateStatus struct {
	State       UpdateState `json:"state,omitempty"`
	Message     string      `json:"message,omitempty"`
	StartedAt   time.Time   `json:"started_at,omitzero"`
	CompletedAt time.Time   `json:"completed_at,omitzero"`
}

// Endpoint is how a service is reached: its virtual IPs and its ports with
// the published ports the cluster allocated.
type Endpoint struct {
	VIPs  []VIP       `json:"vips,omitempty"`
	Ports []spec.Port `json:"ports,omitempty"`
}

// VIP is a service's virtual IP on one network.
type VIP struct {
	// Network is the network's ID.
	Network string `json:"network"`
	// Addr is the address in CIDR form ("10.0.1.2/24").
	Addr string `json:"addr"`
}

// Copy returns a deep copy.
func (s *Service) Copy() *Service {
	if s == nil {
		return nil
	}
	out := *s
	out.Spec = *spec.Clone(&s.Spec)
	out.PreviousSpec = spec.Clone(s.PreviousSpec)
	out.Objects = maps.Clone(s.Objects)
	out.PreviousObjects = maps.Clone(s.PreviousObjects)
	out.Endpoint.VIPs = slices.Clone(s.Endpoint.VIPs)
	out.Endpoint.Ports = slices.Clone(s.Endpoint.Ports)
	return &out
}

// ---------------------------------------------------------------------------
// Task

// Task is one container of a service: a slot of a replicated service or the
// service's container on one node for a global one.
type Task struct {
	Meta
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	// ServiceName is the service's cluster-wide name, kept on the task so
	// that its name and container labels need no lookup.
	ServiceName string `json:"service_name,omitempty"`
	// Slot numbers replicated tasks from 1; it is 0 for global tasks, which
	// are known by their NodeID.
	Slot uint64 `json:"slot,omitempty"`
	// NodeID is the node the task is assigned to (empty while pending).
	NodeID       string       `json:"node_id,omitempty"`
	SpecVersion  uint64       `json:"spec_version"`
	DesiredState TaskState    `json:"desired_state"`
	Status       TaskStatus   `json:"status"`
	Networks     []Attachment `json:"networks,omitempty"`
	ContainerID  string       `json:"container_id,omitempty"`
	// CreatedAt and UpdatedAt come from the command that wrote the task: the
	// FSM never reads the clock.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// SpecHash identifies what the task was made from (the orchestrator's
	// TaskHash of the service: its spec without the fields that restart nothing,
	// the force counter and the pinned secrets and configs). Tasks are out of
	// date by content, not by version: a scale restarts nothing, a rollback finds
	// the old tasks up to date again. Empty on rows written before the field
	// existed; the orchestrator then compares SpecVersion.
	SpecHash string `json:"spec_hash,omitempty"`
	// Image is the image of the spec the task was made from: a task's history row
	// keeps the image it ran after the service's spec moved on twice (an update, then
	// a rollback or another update), which the service's current and previous specs
	// can no longer tell. Empty on rows written before the field existed.
	Image string `json:"image,omitempty"`
	// NotBefore is when the agent may start the task at the earliest (the
	// restart delay). The orchestrator places the task only then, so that a
	// node that cannot prepare it does not reject it before the delay.
	NotBefore time.Time `json:"not_before,omitzero"`
	// Restarts is the restart supervisor's memory for the task's slot, handed
	// from each task to its replacement. Keeping it in the replicated row (Swarm
	// keeps it in the leader's memory) is what makes max_attempts survive a
	// leader change and the history reaper.
	Restarts Restarts `json:"restarts,omitzero"`
}

// Restarts counts the restarts of one slot (or one node's task of a global
// service) since its spec last changed.
type Restarts struct {
	// Count is the number of restarts; it is what max_attempts is checked
	// against when the restart policy has no window.
	Count uint64 `json:"count,omitempty"`
	// Recent holds the times of the latest restarts, oldest first, at most
	// max_attempts of them and none older than the window. It is kept only when
	// the policy has both max_attempts and a window.
	Recent []time.Time `json:"recent,omitempty"`
}

// Clone returns a deep copy.
func (r Restarts) Clone() Restarts {
	return Restarts{Count: r.Count, Recent: slices.Clone(r.Recent)}
}

// TaskStatus is the observed state of a task.
type TaskStatus struct {
	State   TaskState `json:"state"`
	Message string    `json:"message,omitempty"`
	// Err is why the task failed or could not be placed, in words.
	Err       string    `json:"err,omitempty"`
	ExitCode  int       `json:"exit_code,omitempty"`
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Attachment is a task's address on one network.
type Attachment struct {
	// Network is the network's ID.
	Network string `json:"network"`
	// Addr is the address in CIDR form ("10.0.1.5/24").
	Addr string `json:"addr"`
	MAC  string `json:"mac,omitempty"`
}

// Name is the task's display name: `web_api.1` for a replicated task,
// `web_api.<node-id>` for a global one.
func (t *Task) Name() string {
	svc := t.ServiceName
	if svc == "" {
		svc = t.ServiceID
	}
	if t.Slot > 0 {
		return svc + "." + strconv.FormatUint(t.Slot, 10)
	}
	return svc + "." + t.NodeID
}

// Copy returns a deep copy.
func (t *Task) Copy() *Task {
	if t == nil {
		return nil
	}
	out := *t
	out.Networks = slices.Clone(t.Networks)
	out.Restarts.Recent = slices.Clone(t.Restarts.Recent)
	return &out
}

// ---------------------------------------------------------------------------
// Network

// Network is a cluster network.
type Network struct {
	Meta
	ID string `json:"id"`
	// Name is the cluster-wide name (`<stack>_<net>` unless the file names it).
	Name string `json:"name"`
	// Stack is the stack that created the network, empty for others: `stack
	// rm` and `stack deploy --prune` remove only what their stack created.
	Stack  string `json:"stack,omitempty"`
	Driver string `json:"driver"`
	// Options are the driver's options.
	Options map[string]string `json:"options,omitempty"`
	// VNI is the VXLAN network identifier of an overlay network.
	VNI        uint32            `json:"vni,omitempty"`
	Subnet     string            `json:"subnet,omitempty"`
	Gateway    string            `json:"gateway,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Ingress    bool              `json:"ingress,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// Copy returns a deep copy.
func (n *Network) Copy() *Network {
	if n == nil {
		return nil
	}
	out := *n
	out.Options = maps.Clone(n.Options)
	out.Labels = maps.Clone(n.Labels)
	return &out
}

// ---------------------------------------------------------------------------
// Secret and Config

// Secret is one version of a secret. Changing a secret's content makes a new
// row with the next Version (and a new ID); services roll to it.
//
// Data must reach only the nodes that run a task using the secret: String,
// Format and LogValue never show it, the Secrets lister leaves it out, and
// Redacted returns a copy without it.
type Secret struct {
	Meta
	ID   string `json:"id"`
	Name string `json:"name"`
	// Stack is the stack that created the secret, empty for `secret create`.
	Stack   string            `json:"stack,omitempty"`
	Version uint64            `json:"version"`
	Data    []byte            `json:"data,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Copy returns a deep copy, data included.
func (s *Secret) Copy() *Secret {
	if s == nil {
		return nil
	}
	out := *s
	out.Data = slices.Clone(s.Data)
	out.Labels = maps.Clone(s.Labels)
	return &out
}

// Redacted returns a deep copy without Data.
func (s *Secret) Redacted() *Secret {
	if s == nil {
		return nil
	}
	out := *s
	out.Data = nil
	out.Labels = maps.Clone(s.Labels)
	return &out
}

// String names the secret; it never shows Data.
func (s Secret) String() string {
	return fmt.Sprintf("secret %s (id %s, version %d, %d bytes)", s.Name, s.ID, s.Version, len(s.Data))
}

// Format prints String for every verb, so that no %v, %+v, %#v or %x of a
// Secret (or of a struct or slice holding one) shows Data.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue keeps Data out of slog output, whatever the handler.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Config is one version of a config. Its content is not confidential.
type Config struct {
	Meta
	ID   string `json:"id"`
	Name string `json:"name"`
	// Stack is the stack that created the config, empty for `config create`.
	Stack   string            `json:"stack,omitempty"`
	Version uint64            `json:"version"`
	Data    []byte            `json:"data,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Copy returns a deep copy.
func (c *Config) Copy() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.Data = slices.Clone(c.Data)
	out.Labels = maps.Clone(c.Labels)
	return &out
}

// ---------------------------------------------------------------------------
// Volume

// Volume records a named volume that exists on one node.
type Volume struct {
	Meta
	ID      string            `json:"id"`
	Node    string            `json:"node"`
	Name    string            `json:"name"`
	Driver  string            `json:"driver,omitempty"`
	Options map[string]string `json:"options,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Copy returns a deep copy.
func (v *Volume) Copy() *Volume {
	if v == nil {
		return nil
	}
	out := *v
	out.Options = maps.Clone(v.Options)
	out.Labels = maps.Clone(v.Labels)
	return &out
}
