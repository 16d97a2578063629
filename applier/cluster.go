package applier

import (
	"context"
	"errors"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// Cluster is what the applier needs of the cluster, like any client: reads of the
// replicated state, the plan of a revision, and the writes of syncs and pushes. The
// daemon implements it over the manager the applier runs on; the raft commands are
// made on that side.
type Cluster interface {
	// State is the replicated state as this manager applied it (an error while the
	// manager is not ready).
	State() (*state.Store, error)
	// WaitSources returns the sources and their table's index once that index passes
	// index (at once for 0), or at ctx's deadline; state.ErrAbandoned when the state
	// was replaced (a snapshot restore).
	WaitSources(ctx context.Context, index uint64) ([]*model.Source, uint64, error)
	// Barrier returns once every entry committed before it is applied to State.
	Barrier(timeout time.Duration) error
	// Plan makes the stack changes of a source's revision, loaded here, and compares
	// them with the stacks the cluster holds. A stack that is refused wraps
	// api.ErrBadRequest, a stack of another source state.ErrConflict.
	Plan(ctx context.Context, src *model.Source, stacks *LoadedStacks) (Plan, error)
	// Replan is plan on the state as it is now: plan itself when no stack changed
	// since it was made, else its stack changes compared again.
	Replan(ctx context.Context, plan Plan) (Plan, error)
	// Preview is where the plan's tasks would land once applied as revision sha, and
	// whether the rollout would settle.
	Preview(ctx context.Context, plan Plan, sha string) ([]*api.ServicePlacement, bool, error)
	// ApplySync writes a sync, only while this manager leads (else ErrNotLeader): a
	// sync decided here must not be applied by another leader, which syncs for itself.
	ApplySync(ctx context.Context, s *Sync) error
	// ApplyPush replicates a push of the source's branch from old to new, pack holding
	// every object of the branch; only while this manager leads, as the push was
	// checked against its repository.
	ApplyPush(ctx context.Context, source, old, new string, pack []byte) error
	// RecordPushRejection records the last push the source refused, for `berth
	// events`.
	RecordPushRejection(ctx context.Context, source string, r model.PushRejection) error
	Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error)
	Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error)
}

// ErrNotLeader: the manager no longer leads, and wrote nothing.
var ErrNotLeader = errors.New("this manager does not lead")

// NotLeader is how a Cluster says that err, its own not-leader error, is ErrNotLeader:
// the message stays the cluster's, errors.Is matches both.
func NotLeader(err error) error { return notLeaderError{err} }

type notLeaderError struct{ error }

func (e notLeaderError) Is(target error) bool { return target == ErrNotLeader }
func (e notLeaderError) Unwrap() error        { return e.error }

// Plan is the cluster's plan of a revision (Cluster.Plan).
type Plan interface {
	// Diffs are the stacks' changes.
	Diffs() []*spec.StackDiff
	// Unchanged: applying the revision writes nothing new.
	Unchanged() bool
	// Kept are the source's stacks the revision no longer has, kept because the
	// source does not prune.
	Kept() []string
	// Summary counts what the plan does to services.
	Summary() model.PlanSummary
	// ContentRevision names the revision by its stacks' content: a folder's revision.
	ContentRevision() string
}

// Sync is one sync of a source, as Cluster.ApplySync writes it.
type Sync struct {
	// Source is the row the sync read: the sync answers its requests.
	Source  *model.Source
	Now     time.Time
	Fetched string
	Status  model.SyncState
	Record  model.SyncRecord
	// Plan is applied as the revision Record.Revision; nil records the outcome only.
	Plan Plan
}
