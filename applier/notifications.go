package applier

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/applier/notify"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// notifier tells a source's notification targets and its forge what the leader's
// syncs did, and follows each applied revision's rollout for its commit status. It
// only enqueues: a sync never waits for an endpoint. Delivery is at least once: a
// new leader follows the rollout of each source's last applied revision again, and
// may send a commit status the previous leader sent.
type notifier struct {
	cfg    *Config
	d      *notify.Dispatcher
	logger *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	rollouts map[string]context.CancelFunc // by source: the watch of its last applied revision
}

func newNotifier(ctx context.Context, cfg *Config) *notifier {
	opts := cfg.Notify
	opts.Logger = cfg.Logger
	opts.Count = cfg.Metrics.countNotification
	n := &notifier{cfg: cfg, d: notify.New(opts), logger: cfg.Logger, rollouts: map[string]context.CancelFunc{}}
	n.ctx, n.cancel = context.WithCancel(ctx)
	return n
}

// close stops the rollout watches and the deliveries not made yet.
func (n *notifier) close() {
	n.cancel()
	n.wg.Wait()
	n.d.Close()
}

// synced is called with every sync the leader recorded.
func (n *notifier) synced(s *Sync) {
	if n == nil || (s.Source.CommitStatus == nil && len(n.targets(s.Source)) == 0) {
		return
	}
	src, rev, msg := s.Source, s.Record.Revision, s.Record.Message
	switch {
	case s.Status == model.SyncFailed:
		n.event(src, notify.SyncFailed, rev, msg)
		n.status(src, rev, notify.Failure, "sync failed: "+msg)
	case s.Status == model.SyncOutOfSync:
		n.event(src, notify.DriftDetected, rev, msg)
	case s.Status == model.SyncSynced && s.Record.Result == model.SyncApplied:
		p := s.Record.Plan
		text := fmt.Sprintf("revision %s applied: %d added, %d changed, %d removed services", shortSHA(rev), p.Added, p.Changed, p.Removed)
		if msg != "" {
			text += "; " + msg
		}
		n.event(src, notify.SyncSucceeded, rev, text)
		n.status(src, rev, notify.Pending, "rolling out")
		n.followRollout(src, rev, s.Now)
	case s.Status == model.SyncSynced && src.Status == model.SyncFailed:
		// A fix that makes the applied revision's stacks again: nothing to roll out.
		n.event(src, notify.SyncSucceeded, rev, fmt.Sprintf("revision %s: nothing to change", shortSHA(rev)))
		n.status(src, rev, notify.Success, "nothing to change")
	}
}

// resume follows again the rollout of a source's last applied revision, when this
// manager starts leading: the previous leader may have stopped before its end.
func (n *notifier) resume(src *model.Source) {
	if src.CommitStatus != nil && src.Status == model.SyncSynced && src.LastAppliedRevision != "" {
		n.followRollout(src, src.LastAppliedRevision, src.LastAppliedAt)
	}
}

// event enqueues ev for each of the source's targets and the cluster's.
func (n *notifier) event(src *model.Source, reason notify.Reason, rev, msg string) {
	ev := notify.Event{Source: src.Name, Reason: reason, Revision: rev, Message: redactURLs(msg), Time: n.cfg.Now()}
	for _, t := range n.targets(src) {
		del, err := notify.EventDelivery(t, ev)
		if err != nil {
			n.logger.Error("notification not sent", "source", src.Name, "error", err)
			continue
		}
		n.d.Enqueue(del)
	}
}

// targets are the source's targets, then the cluster's it has not.
func (n *notifier) targets(src *model.Source) []model.NotifyTarget {
	out := src.Notify
	tx, err := n.cfg.readTxn()
	if err != nil {
		return out
	}
	row, err := tx.Cluster(nil)
	if err != nil {
		return out
	}
	for _, t := range row.Settings.Notify {
		if !slices.ContainsFunc(out, func(s model.NotifyTarget) bool { return s.URL == t.URL }) {
			out = append(slices.Clip(out), t)
		}
	}
	return out
}

// commitSHA matches the revisions a forge has statuses for.
var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// status enqueues a commit status of rev, when the source posts them.
func (n *notifier) status(src *model.Source, rev string, state notify.State, desc string) {
	cs := src.CommitStatus
	if cs == nil || !commitSHA.MatchString(rev) {
		return
	}
	del, err := n.statusDelivery(src, cs, rev, notify.Status{State: state, Description: redactURLs(desc), Context: "berth/" + src.Name})
	if err != nil {
		n.logger.Error("commit status not sent", "source", src.Name, "revision", rev, "error", err)
		return
	}
	n.d.Enqueue(del)
}

func (n *notifier) statusDelivery(src *model.Source, cs *model.CommitStatus, rev string, st notify.Status) (notify.Delivery, error) {
	endpoint, err := cs.Endpoint(src.URL, rev)
	if err != nil {
		return notify.Delivery{}, err
	}
	tx, err := n.cfg.readTxn()
	if err != nil {
		return notify.Delivery{}, err
	}
	sec, err := tx.Secret(nil, cs.TokenRef)
	if err != nil {
		return notify.Delivery{}, fmt.Errorf("its token (secret %s): %w", cs.TokenRef, err)
	}
	return notify.StatusDelivery(cs.Provider, endpoint, string(sec.Data), st)
}

// followRollout watches the services of revision rev, applied at applied, until they
// converge (success) or are stuck (failure, and a RolloutStuck event); a watch of
// the source's previous revision ends.
func (n *notifier) followRollout(src *model.Source, rev string, applied time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if stop := n.rollouts[src.Name]; stop != nil {
		stop()
	}
	ctx, cancel := context.WithCancel(n.ctx)
	n.rollouts[src.Name] = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer cancel()
		n.watchRollout(ctx, src, rev, applied)
	}()
}

func (n *notifier) watchRollout(ctx context.Context, src *model.Source, rev string, applied time.Time) {
	var q api.Query
	for ctx.Err() == nil {
		info, meta, err := n.cfg.Cluster.Source(ctx, src.Name, q)
		if err != nil {
			if ctx.Err() == nil {
				n.logger.Warn("rollout not followed: the source cannot be read", "source", src.Name, "revision", rev, "error", err)
			}
			return
		}
		if info.LastAppliedRevision != rev {
			return
		}
		stuck := info.Reason
		if info.Display != api.SourceDegraded {
			stuck = n.haltedUpdates(src.Name, applied)
		}
		switch {
		case stuck != "":
			n.event(src, notify.RolloutStuck, rev, stuck)
			n.status(src, rev, notify.Failure, "rollout stuck: "+stuck)
			return
		case info.Display == api.SourceSynced:
			n.status(src, rev, notify.Success, "every service converged")
			return
		}
		q = api.Query{Index: meta.Index, Wait: 30 * time.Second}
	}
}

// haltedUpdates says which services of the source paused or rolled back an update
// started since applied.
func (n *notifier) haltedUpdates(source string, applied time.Time) string {
	tx, err := n.cfg.readTxn()
	if err != nil {
		return ""
	}
	stacks, err := tx.StacksBySource(nil, source)
	if err != nil {
		return ""
	}
	halted := []model.UpdateState{model.UpdatePaused, model.UpdateRollbackStarted, model.UpdateRollbackPaused, model.UpdateRollbackCompleted}
	var out []string
	for _, st := range stacks {
		svcs, err := tx.ServicesByStack(nil, st.Name)
		if err != nil {
			return ""
		}
		for _, svc := range svcs {
			u := svc.UpdateStatus
			if slices.Contains(halted, u.State) && !u.StartedAt.Before(applied) {
				out = append(out, fmt.Sprintf("service %s: update %s: %s", svc.Name, strings.ReplaceAll(string(u.State), "_", " "), u.Message))
			}
		}
	}
	return strings.Join(out, "; ")
}
