package orchestrator

import (
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// Defaults for Options.
const (
	// DefaultNodeDownGrace is how long a node may be down before its replicated tasks
	// are replaced elsewhere and its global tasks stopped. None, as in Swarm: the
	// heartbeat's down deadline (five missed periods) is the grace already, and every
	// second more is a second the service runs short.
	DefaultNodeDownGrace = 0
	// DefaultOrphanAfter is how long a node may be down before its tasks, which no
	// agent reports on any more, are marked orphaned. Swarm's figure (24 hours): until
	// then the rows still say what was last known to run there.
	DefaultOrphanAfter = 24 * time.Hour
	// DefaultUpdateStepTimeout bounds the wait for one step of a rolling update: a new
	// task that is not running this long after it was made counts as failed, and an
	// old task that has not reported stopping is given up on. Generous, because a
	// large image can take minutes to pull.
	DefaultUpdateStepTimeout = 10 * time.Minute
	// DefaultMaxNewTasks bounds the tasks one run makes for a service when it scales
	// up: the memory of a run follows what it creates, and a requested count is
	// only a number in a file (a typo of 100000000 must not take the leader down).
	// It is the default limit of replicas per service, so that a service within
	// that limit is still made in one run (one pass), as fast as before; a
	// reconciler pass stops taking services after MaxPassTasks rows anyway.
	DefaultMaxNewTasks = spec.DefaultMaxReplicas
)

// Options tune the orchestrator; DefaultOptions and OptionsFromSettings fill them in.
type Options struct {
	// TaskHistoryLimit is how many stopped tasks each slot (each node, for global
	// services) keeps, newest first. The newest task of a slot is always kept, since
	// it is the slot's record of why it is empty. Negative keeps everything.
	TaskHistoryLimit int
	// NodeDownGrace: see DefaultNodeDownGrace. Zero or less means the default.
	NodeDownGrace time.Duration
	// OrphanAfter: see DefaultOrphanAfter. Zero means the default; it is never shorter
	// than NodeDownGrace.
	OrphanAfter time.Duration
	// UpdateStepTimeout: see DefaultUpdateStepTimeout. Zero means the default.
	UpdateStepTimeout time.Duration
	// UpdateTimeout bounds a whole rolling update or rollback; when it passes, the
	// update's failure action is taken (continue counts as pause here: the update has
	// to end somehow). Zero means no bound: UpdateStepTimeout alone already makes
	// every update end, and a legitimate rollout of many replicas with long delays
	// can take hours.
	UpdateTimeout time.Duration
	// MaxNewTasks bounds the tasks one run creates to scale a service up; the plan
	// then asks for another run at once (Plan.NextCheck), which makes the next batch.
	// Zero means DefaultMaxNewTasks.
	MaxNewTasks int
	// MaxReplicas is the cluster's limit of replicas per service
	// (model.Settings.ReplicaLimit). Writes above it are refused; a service stored
	// above it anyway (by a build that had no limit) runs this many. Zero means
	// spec.DefaultMaxReplicas.
	MaxReplicas uint64
	// Platforms, when set, returns the platforms a service's image exists for
	// (scheduler.Request.Platforms). Nil places on any platform.
	Platforms func(svc *model.Service) []model.Platform
}

// DefaultOptions returns the defaults, with Swarm's task history limit.
func DefaultOptions() Options {
	return Options{
		TaskHistoryLimit:  model.DefaultTaskHistoryLimit,
		NodeDownGrace:     DefaultNodeDownGrace,
		OrphanAfter:       DefaultOrphanAfter,
		UpdateStepTimeout: DefaultUpdateStepTimeout,
		MaxNewTasks:       DefaultMaxNewTasks,
		MaxReplicas:       spec.DefaultMaxReplicas,
	}
}

// OptionsFromSettings returns the defaults with the cluster's settings applied.
func OptionsFromSettings(s model.Settings) Options {
	o := DefaultOptions()
	o.TaskHistoryLimit = int(s.TaskHistoryLimit)
	o.MaxReplicas = s.ReplicaLimit()
	return o
}

// normalized fills zero durations with their defaults.
func (o Options) normalized() Options {
	if o.NodeDownGrace <= 0 {
		o.NodeDownGrace = DefaultNodeDownGrace
	}
	if o.OrphanAfter <= 0 {
		o.OrphanAfter = DefaultOrphanAfter
	}
	// Orphaning a task that is not yet replaced would leave its slot without a live
	// task and without the replacement the grace period promises.
	o.OrphanAfter = max(o.OrphanAfter, o.NodeDownGrace)
	if o.UpdateStepTimeout <= 0 {
		o.UpdateStepTimeout = DefaultUpdateStepTimeout
	}
	if o.MaxNewTasks <= 0 {
		o.MaxNewTasks = DefaultMaxNewTasks
	}
	if o.MaxReplicas == 0 {
		o.MaxReplicas = spec.DefaultMaxReplicas
	}
	return o
}
