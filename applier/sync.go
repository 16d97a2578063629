package applier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// PushRepoDir is where a push source's repository lives under Config.Dir: the push
// server receives into it and the applier reads from it.
func PushRepoDir(dir, source string) string { return filepath.Join(dir, source, "push.git") }

// mirrorDir is where a pull source's mirror lives under Config.Dir.
func mirrorDir(dir, source string) string { return filepath.Join(dir, source, "mirror.git") }

// syncer makes the syncs of one source.
type syncer struct {
	cfg    *Config
	name   string
	mirror *Mirror
	// release gives the mirror back to cfg.Mirrors.
	release func()
}

func newSyncer(cfg *Config, name string) *syncer { return &syncer{cfg: cfg, name: name} }

func (s *syncer) close() {
	if s.mirror != nil {
		s.release()
		s.mirror, s.release = nil, nil
	}
}

// revision is what a sync reads: the tree of one revision.
type revision struct {
	sha     string // the revision applied: a commit, or the folder's content digest
	fetched string // what the remote's branch points at, when it was read
	fsys    fs.FS
}

// errNothingPushed: a push source whose branch has not been pushed yet.
var errNothingPushed = errors.New("nothing pushed yet")

// sync brings the cluster to the source's revision, or records why it could not, and
// returns the result it recorded ("" when it recorded none). A revision is applied
// whole in one raft command or not at all.
func (s *syncer) sync(ctx context.Context, src *model.Source, logger *slog.Logger) model.SyncResult {
	requested := src.SyncRequests > src.AnsweredRequests
	rev, err := s.read(ctx, src)
	if errors.Is(err, errNothingPushed) {
		if requested {
			return s.record(ctx, src, rev, model.SyncRecord{Result: model.SyncUnchanged, Message: "nothing pushed yet"}, model.SyncPending, logger)
		}
		return ""
	}
	if err != nil {
		return s.fail(ctx, src, rev, model.SyncError, err, requested, logger)
	}
	healing, done := s.checkDrift(ctx, src, rev, requested, logger)
	if done {
		return ""
	}
	plan, reason, err := s.plan(ctx, src, rev)
	if err != nil {
		return s.fail(ctx, src, rev, reason, err, requested, logger)
	}
	if src.Kind == model.SourceDir {
		rev.sha = plan.ContentRevision()
		rev.fetched = rev.sha
		if healing, done = s.checkDrift(ctx, src, rev, requested, logger); done {
			return ""
		}
	}
	sum := plan.Summary()
	result := model.SyncApplied
	message := keptMessage(plan.Kept())
	switch {
	case healing != nil:
		message = driftMessage(healing, true)
	case plan.Unchanged():
		result = model.SyncUnchanged
	}
	sync := &Sync{Source: src, Now: s.cfg.Now(), Fetched: rev.fetched, Status: model.SyncSynced,
		Record: model.SyncRecord{Revision: rev.sha, Result: result, Plan: sum, Message: message}, Plan: plan}
	if err := s.cfg.Cluster.ApplySync(ctx, sync); err != nil {
		if errors.Is(err, ErrNotLeader) || ctx.Err() != nil {
			return ""
		}
		reason := model.SyncError
		if errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrInvalid) {
			reason = model.SyncRejected
		}
		return s.fail(ctx, src, rev, reason, err, requested, logger)
	}
	s.cfg.notifier.synced(sync)
	logger.Info("source synced", "revision", rev.sha, "result", result, "added", sum.Added, "changed", sum.Changed, "removed", sum.Removed)
	return result
}

// plan is the plan of the revision on the state as it is now: the one its push made
// (re-planned only if the stacks changed since), or one made from its files. reason
// is how a failure is recorded.
func (s *syncer) plan(ctx context.Context, src *model.Source, rev revision) (Plan, model.SyncResult, error) {
	var plan Plan
	var err error
	if pushed := s.cfg.PushPlans.take(src, rev.sha); pushed != nil {
		plan, err = s.cfg.Cluster.Replan(ctx, pushed)
	} else {
		var loaded *LoadedStacks
		if loaded, err = LoadStacks(ctx, rev.fsys, src.Path, nil, WithSOPS(s.cfg.Cluster, src)); err != nil {
			return nil, model.SyncRejected, err
		}
		plan, err = s.cfg.Cluster.Plan(ctx, src, loaded)
	}
	switch {
	case err == nil:
		return plan, "", nil
	case errors.Is(err, state.ErrConflict) || errors.Is(err, api.ErrBadRequest):
		return nil, model.SyncRejected, err
	}
	return nil, model.SyncError, err
}

// checkDrift looks for changes made outside Git when the source is still at the
// revision last applied. It returns the changes to revert (self-heal), or done when
// the sync has nothing more to do: no drift, or drift recorded as OutOfSync.
func (s *syncer) checkDrift(ctx context.Context, src *model.Source, rev revision, requested bool, logger *slog.Logger) (healing []string, done bool) {
	if rev.sha == "" || rev.sha != src.LastAppliedRevision || (src.Status != model.SyncSynced && src.Status != model.SyncOutOfSync) {
		return nil, false
	}
	var changes []string
	tx, err := s.cfg.readTxn()
	if err == nil {
		changes, err = drift(tx, src.Name)
	}
	if err != nil {
		s.fail(ctx, src, rev, model.SyncError, err, requested, logger)
		return nil, true
	}
	switch {
	case len(changes) > 0 && src.SelfHeal:
		return changes, false
	case len(changes) > 0:
		if msg := driftMessage(changes, false); requested || src.Status != model.SyncOutOfSync || src.Message != msg {
			s.record(ctx, src, rev, model.SyncRecord{Result: model.SyncUnchanged, Message: msg}, model.SyncOutOfSync, logger)
		}
		return nil, true
	}
	// In sync; an OutOfSync source whose drift was undone by hand is Synced again.
	if !requested && src.Status == model.SyncSynced {
		return nil, true
	}
	return nil, false
}

// read fetches or reads the source's current revision.
func (s *syncer) read(ctx context.Context, src *model.Source) (revision, error) {
	switch src.Kind {
	case model.SourceGitPull:
		return s.readPull(ctx, src)
	case model.SourceGitPush:
		if src.PushedRevision == "" {
			return revision{}, errNothingPushed
		}
		dir := PushRepoDir(s.cfg.Dir, src.Name)
		if err := materializePush(dir, src); err != nil {
			return revision{}, err
		}
		repo, err := OpenRepository(ctx, dir)
		if err != nil {
			return revision{}, err
		}
		defer repo.Close()
		return treeOf(repo, src, src.PushedRevision, "")
	case model.SourceDir:
		info, err := os.Stat(src.URL)
		if err != nil {
			return revision{}, fmt.Errorf("folder %s: %w (a folder source reads it on the leading manager: it must exist on every manager)", src.URL, err)
		}
		if !info.IsDir() {
			return revision{}, fmt.Errorf("folder source %s: %s is not a directory", src.Name, src.URL)
		}
		return revision{fsys: os.DirFS(src.URL)}, nil
	}
	return revision{}, fmt.Errorf("source %s: unknown kind %q", src.Name, src.Kind)
}

func (s *syncer) readPull(ctx context.Context, src *model.Source) (revision, error) {
	if s.mirror == nil || s.mirror.url != src.URL {
		s.close()
		m, release, err := s.cfg.Mirrors.Open(mirrorDir(s.cfg.Dir, src.Name), src.URL)
		if err != nil {
			return revision{}, err
		}
		s.mirror, s.release = m, release
	}
	cred, err := s.credentials(src)
	if err != nil {
		return revision{}, err
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	tip, _, err := s.mirror.Fetch(fctx, src.Branch, cred)
	if err != nil {
		return revision{}, err
	}
	rev, err := treeOf(s.mirror.Repository(), src, tip, tip)
	if errors.Is(err, ErrUnknownRevision) && src.PinnedRevision != "" {
		// The mirror holds the branch's history and nothing else: the repository's
		// own error would list no branch and say it has no commits.
		err = &notOnBranchError{src: src}
	}
	return rev, err
}

// notOnBranchError: a pull source's pinned revision is not in its branch's history.
type notOnBranchError struct{ src *model.Source }

func (e *notOnBranchError) Error() string {
	return fmt.Sprintf("revision %q not found in %s branch %s: give a commit of the branch's history ('berth source history %s' lists those applied)",
		e.src.PinnedRevision, redactURLs(e.src.URL), e.src.Branch, e.src.Name)
}

func (e *notOnBranchError) Is(target error) bool { return target == ErrUnknownRevision }

// treeOf reads the tree of want, or of the pinned revision when the source has one.
func treeOf(repo *Repository, src *model.Source, want, fetched string) (revision, error) {
	if src.PinnedRevision != "" {
		want = src.PinnedRevision
	}
	fsys, sha, err := repo.TreeFS(want)
	if err != nil {
		if src.PinnedRevision == "" && src.Kind == model.SourceGitPush {
			return revision{}, errNothingPushed
		}
		return revision{fetched: fetched}, err
	}
	if fetched == "" {
		fetched = sha
	}
	rev := revision{sha: sha, fetched: fetched, fsys: fsys}
	if src.PinnedRevision == "" {
		err = checkForward(repo, src, sha)
	}
	return rev, err
}

// checkForward refuses a revision that does not descend from the one last applied: a
// sync never moves a source backwards (a mirror or repository that a failover left
// behind, a force push); only `source rollback --to` does.
func checkForward(repo *Repository, src *model.Source, sha string) error {
	last := src.LastAppliedRevision
	if last == "" || last == sha {
		return nil
	}
	ok, err := repo.IsAncestor(last, sha)
	if err != nil {
		return fmt.Errorf("revision %s: cannot tell whether it follows the last applied revision %s: %w", shortSHA(sha), shortSHA(last), err)
	}
	if !ok {
		return fmt.Errorf("revision %s does not descend from the last applied revision %s, and a sync never moves a source backwards: 'berth source rollback %s --to %s' applies it",
			shortSHA(sha), shortSHA(last), src.Name, shortSHA(sha))
	}
	return nil
}

// credentials reads the source's credentials from its cluster secret.
func (s *syncer) credentials(src *model.Source) (*Credentials, error) {
	if src.AuthRef == "" {
		if src.CA == "" {
			return nil, nil
		}
		return &Credentials{CABundle: []byte(src.CA)}, nil
	}
	tx, err := s.cfg.readTxn()
	if err != nil {
		return nil, err
	}
	sec, err := tx.Secret(nil, src.AuthRef)
	if err != nil {
		return nil, fmt.Errorf("source %s: its credentials (secret %s): %w", src.Name, src.AuthRef, err)
	}
	var c api.SourceCredentials
	if err := json.Unmarshal(sec.Data, &c); err != nil {
		return nil, fmt.Errorf("source %s: its credentials (secret %s) are not what `source add` stores", src.Name, src.AuthRef)
	}
	return &Credentials{Username: c.Username, Token: c.Token, SSHKey: c.SSHKey, KnownHosts: c.KnownHosts, CABundle: []byte(src.CA)}, nil
}

// fail records a sync that did not apply. The same failure of the same revision is
// recorded once, not at every interval, unless someone asked for the sync.
func (s *syncer) fail(ctx context.Context, src *model.Source, rev revision, result model.SyncResult, err error, requested bool, logger *slog.Logger) model.SyncResult {
	msg := err.Error()
	if !requested && src.Status == model.SyncFailed && src.Message == msg {
		return "" // the same failure again: recorded once
	}
	logger.Warn("source sync failed", "revision", rev.sha, "result", result, "error", msg)
	return s.record(ctx, src, rev, model.SyncRecord{Result: result, Message: msg}, model.SyncFailed, logger)
}

// record writes a sync's record and returns its result, or "" when it was not written.
func (s *syncer) record(ctx context.Context, src *model.Source, rev revision, rec model.SyncRecord, status model.SyncState, logger *slog.Logger) model.SyncResult {
	rec.Revision = rev.sha
	sync := &Sync{Source: src, Now: s.cfg.Now(), Fetched: rev.fetched, Status: status, Record: rec}
	if err := s.cfg.Cluster.ApplySync(ctx, sync); err != nil {
		if !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
			logger.Error("could not record a sync of the source", "error", err)
		}
		return ""
	}
	s.cfg.notifier.synced(sync)
	return rec.Result
}

// keptMessage reports the stacks a source without prune keeps although its revision
// no longer has them.
func keptMessage(kept []string) string {
	if len(kept) == 0 {
		return ""
	}
	return fmt.Sprintf("kept (the source does not prune): stack %s is no longer in the revision", strings.Join(kept, ", "))
}
