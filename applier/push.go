package applier

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/berthd/berth/applier/gitserver"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/plantext"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// PushConfig configures the push server's hooks.
type PushConfig struct {
	Cluster Cluster
	// Dir is the applier's Config.Dir: push repositories live under it.
	Dir string
	// Plans takes the plan of each push, for the sync it requests on the leader
	// (Config.PushPlans; nil: none kept).
	Plans *PushPlans
	// MaxPack bounds the objects of a pushed branch: what one raft entry may carry.
	MaxPack int
	Logger  *slog.Logger
	// Converge bounds how long a push waits, printing progress, for the services
	// it changed to run (2 minutes); the push succeeds either way once applied.
	Converge time.Duration
	// Metrics counts the pushes (nil: not counted).
	Metrics *Metrics
}

// NewPushHandler serves the push sources as Git remotes (/git/NAME.git): a push is
// loaded, validated and planned before its ref moves, then applied by the leader's
// applier while the push shows the convergence.
func NewPushHandler(cfg PushConfig) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Converge <= 0 {
		cfg.Converge = 2 * time.Minute
	}
	if cfg.Plans == nil {
		cfg.Plans = NewPushPlans()
	}
	if cfg.MaxPack <= 0 {
		return nil, errors.New("push server: no bound on a push's objects (MaxPack)")
	}
	h := &pushHooks{cfg: cfg}
	return gitserver.NewHandler(gitserver.Config{Dir: h.dir, Hooks: h, Logger: cfg.Logger})
}

type pushHooks struct{ cfg PushConfig }

// pushSource returns the push source name, or gitserver.ErrNotFound.
func (h *pushHooks) pushSource(name string) (*model.Source, error) {
	st, err := h.cfg.Cluster.State()
	if err != nil {
		return nil, err
	}
	src, err := st.ReadTxn().Source(nil, name)
	if errors.Is(err, state.ErrNotFound) || (err == nil && src.Kind != model.SourceGitPush) {
		return nil, fmt.Errorf("no push source %s (berth source add %s --push makes one): %w", name, name, gitserver.ErrNotFound)
	}
	return src, err
}

// dir returns the source's repository on this manager, brought to the revision the
// replicated state holds: any manager serves a fetch, and the leader takes the next
// push, with the history acknowledged so far.
func (h *pushHooks) dir(name string) (string, error) {
	src, err := h.pushSource(name)
	if err != nil {
		return "", err
	}
	dir := PushRepoDir(h.cfg.Dir, name)
	if err := materializePush(dir, src); err != nil {
		return "", err
	}
	return dir, nil
}

// Authorize implements gitserver.Hooks: the source's token, as the password.
func (h *pushHooks) Authorize(_ context.Context, repo, _, password string, _ bool) error {
	src, err := h.pushSource(repo)
	if err != nil {
		return err
	}
	if src.AuthRef == "" || password == "" {
		return fmt.Errorf("push source %s: %w (berth source token %s prints the token)", repo, gitserver.ErrUnauthorized, repo)
	}
	st, err := h.cfg.Cluster.State()
	if err != nil {
		return err
	}
	sec, err := st.ReadTxn().Secret(nil, src.AuthRef)
	if err != nil {
		return fmt.Errorf("push source %s: its token: %w", repo, err)
	}
	if subtle.ConstantTimeCompare(sec.Data, []byte(password)) != 1 {
		return fmt.Errorf("push source %s: %w: wrong token (berth source token %s prints the current one)", repo, gitserver.ErrUnauthorized, repo)
	}
	return nil
}

// PreReceive implements gitserver.Hooks, counting what it decides and recording
// what it refuses.
func (h *pushHooks) PreReceive(ctx context.Context, p *gitserver.Push) error {
	err := h.preReceive(ctx, p)
	h.cfg.Metrics.observePush(p.Repo, err)
	if err != nil && !errors.Is(err, gitserver.ErrNotFound) {
		h.recordRejection(ctx, p, err)
	}
	return err
}

// recordRejection commits the refusal of a push, so that every manager's `berth
// events` tells it. The pusher has the refusal already: failing to record it is
// logged, not added to it.
func (h *pushHooks) recordRejection(ctx context.Context, p *gitserver.Push, refusal error) {
	r := model.PushRejection{Reason: firstLine(refusal.Error(), model.MaxPushRejectionReason), At: time.Now().UTC()}
	if len(p.Updates) > 0 && !p.Updates[0].New.IsZero() {
		r.Revision = p.Updates[0].New.String()
	}
	if err := h.cfg.Cluster.RecordPushRejection(ctx, p.Repo, r); err != nil {
		h.cfg.Logger.Warn("the refused push is not recorded", "source", p.Repo, "error", err)
	}
}

// firstLine is s up to its first line break, at most max bytes of it.
func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// preReceive: the pushed revision of the tracked branch must load, validate and plan,
// or the ref does not move.
func (h *pushHooks) preReceive(ctx context.Context, p *gitserver.Push) error {
	src, err := h.pushSource(p.Repo)
	if err != nil {
		return err
	}
	up := trackedUpdate(src, p.Updates)
	if up == nil || len(p.Updates) > 1 {
		// Only the tracked branch is replicated to the other managers.
		return fmt.Errorf("push source %s takes pushes to its branch %s only (git push berth %s)", src.Name, src.Branch, src.Branch)
	}
	if up.New.IsZero() {
		return fmt.Errorf("deleting branch %s would remove every stack of source %s; use 'berth source rm --prune %s' for that", src.Branch, src.Name, src.Name)
	}
	repo := WrapRepository(p.Storage, p.Repo)
	fsys, sha, err := repo.TreeFS(up.New.String())
	if err != nil {
		return err
	}
	if !up.Old.IsZero() {
		// A forced push would be acknowledged and then refused by the sync, which
		// never moves a source backwards.
		if ok, err := repo.IsAncestor(up.Old.String(), sha); err != nil || !ok {
			return fmt.Errorf("revision %s does not descend from %s, where branch %s is: push source %s takes fast-forwards only (fetch, rebase or merge, and push again; 'berth source rollback %s --to REV' goes back)",
				sha[:7], up.Old.String()[:7], src.Branch, src.Name, src.Name)
		}
	}
	loaded, err := LoadStacks(ctx, fsys, src.Path, nil, WithSOPS(h.cfg.Cluster, src))
	if err != nil {
		return fmt.Errorf("revision %s: %w", sha[:7], err)
	}
	planned, err := h.cfg.Cluster.Plan(ctx, src, loaded)
	if err != nil {
		return fmt.Errorf("revision %s: %w", sha[:7], err)
	}
	plan := &api.PlanResponse{Revision: sha, Diffs: planned.Diffs(), Kept: planned.Kept(), Settled: true}
	if !planned.Unchanged() {
		// The placement is a preview: a failure to work it out is said, not fatal.
		plan.Placement, plan.Settled, err = h.cfg.Cluster.Preview(ctx, planned, sha)
		if err != nil {
			fmt.Fprintf(p.Progress, "berth: no placement preview: %v\n", err)
		}
	}
	// The sync this push requests applies this plan: the revision is not loaded
	// and planned again.
	h.cfg.Plans.put(src, sha, planned)
	printPlan(p.Progress, plan)
	return h.replicate(ctx, src, up)
}

// replicate commits the push through raft: the branch moves, and git push hears ok,
// only once a majority of the managers hold the revision and its objects.
func (h *pushHooks) replicate(ctx context.Context, src *model.Source, up *gitserver.RefUpdate) error {
	// The pushed objects are in the repository's pack files already.
	pack, err := packBranch(PushRepoDir(h.cfg.Dir, src.Name), up.New, h.cfg.MaxPack)
	if err != nil {
		return fmt.Errorf("revision %s: %w", up.New.String()[:7], err)
	}
	var old string
	if !up.Old.IsZero() {
		old = up.Old.String()
	}
	if err := h.cfg.Cluster.ApplyPush(ctx, src.Name, old, up.New.String(), pack); err != nil {
		return fmt.Errorf("revision %s could not be stored on a majority of the managers, so the branch did not move; push again: %w", up.New.String()[:7], err)
	}
	return nil
}

func trackedUpdate(src *model.Source, updates []gitserver.RefUpdate) *gitserver.RefUpdate {
	for i := range updates {
		if updates[i].Name == plumbing.NewBranchReferenceName(src.Branch) {
			return &updates[i]
		}
	}
	return nil
}

// pushPlacementLines bounds the new tasks a push lists per service.
const pushPlacementLines = 20

// printPlan writes the revision's plan on the push's remote: lines, as berth diff
// prints it.
func printPlan(w io.Writer, plan *api.PlanResponse) {
	if len(plan.Diffs) == 0 {
		fmt.Fprintf(w, "berth: revision %s changes nothing\n", shortSHA(plan.Revision))
		return
	}
	plantext.Plan(plantext.Prefixed(w, "berth: "), plan, pushPlacementLines)
}

// PostReceive implements gitserver.Hooks: the branch moved and the leader's applier
// syncs; the push shows the result, then each service's progress until all run.
func (h *pushHooks) PostReceive(ctx context.Context, p *gitserver.Push) {
	src, err := h.pushSource(p.Repo)
	if err != nil || trackedUpdate(src, p.Updates) == nil {
		return
	}
	w := p.Progress
	// The push's raft command asked for the sync.
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Converge)
	defer cancel()
	info, err := h.waitSynced(ctx, src.Name)
	if err != nil {
		fmt.Fprintf(w, "berth: %v ('berth source ls' shows the sync once done)\n", err)
		return
	}
	rec := info.History[len(info.History)-1]
	switch rec.Result {
	case model.SyncApplied, model.SyncUnchanged:
		fmt.Fprintf(w, "berth: revision %s %s\n", shortSHA(rec.Revision), rec.Result)
	default:
		fmt.Fprintf(w, "berth: revision %s was not applied: %s\n", shortSHA(rec.Revision), rec.Message)
		return
	}
	h.showConvergence(ctx, w, info.Stacks)
}

func (h *pushHooks) waitSynced(ctx context.Context, name string) (*api.SourceInfo, error) {
	var q api.Query
	for {
		info, meta, err := h.cfg.Cluster.Source(ctx, name, q)
		// A blocking read whose wait outlives ctx answers at ctx's deadline without
		// an error: ctx is checked on every round, not only on errors.
		if ctx.Err() != nil {
			return nil, errors.New("the sync did not finish in time")
		}
		if err != nil {
			return nil, err
		}
		if info.AnsweredRequests >= info.SyncRequests && len(info.History) > 0 {
			return info, nil
		}
		q = api.Query{Index: meta.Index, Wait: 10 * time.Second}
	}
}

// showConvergence prints running/desired per service as it changes, until every
// service of the stacks runs, what is left is stuck (ServiceStatus.Stuck: it waits
// for a node that qualifies, or its tasks fail), or ctx ends.
func (h *pushHooks) showConvergence(ctx context.Context, w io.Writer, stacks []string) {
	shown := map[string]string{}
	var q api.Query
	var waiting []string
	for {
		var idx uint64
		var stuck []string
		last := waiting
		waiting = nil
		for _, stack := range stacks {
			svcs, meta, err := h.cfg.Cluster.Services(ctx, api.ServiceFilter{Stack: stack}, q)
			// As in waitSynced, ctx ending is no error of the read.
			if ctx.Err() != nil {
				fmt.Fprintf(w, "berth: still converging after %s: %s; 'berth service ls' shows the rest\n", h.cfg.Converge, strings.Join(last, ", "))
				return
			}
			if err != nil {
				fmt.Fprintf(w, "berth: cannot follow the services: %v; 'berth service ls' shows them\n", err)
				return
			}
			idx = max(idx, meta.Index)
			for _, s := range svcs {
				conv := api.ConvergenceOf(s, true)
				line := progressLine(s, conv)
				if shown[s.Name] != line {
					fmt.Fprintf(w, "berth: %s %s\n", s.Name, line)
					shown[s.Name] = line
				}
				// All tasks of the new spec running is what a push waits for; the
				// update's monitor period after it is not.
				switch {
				case s.Stuck():
					stuck = append(stuck, s.Name)
				case conv == api.Converging && (s.UpToDate < s.Desired || s.Running < s.Desired):
					waiting = append(waiting, s.Name)
				}
			}
			// Only the first stack's read blocks: the others answer at once.
			q = api.Query{}
		}
		switch {
		case len(waiting) > 0:
		case len(stuck) > 0:
			fmt.Fprintf(w, "berth: revision applied; %s cannot run as things are ('berth service ps %s' shows why)\n", strings.Join(stuck, ", "), stuck[0])
			return
		default:
			fmt.Fprintln(w, "berth: all services running")
			return
		}
		q = api.Query{Index: idx, Wait: 10 * time.Second}
	}
}

// progressLine is a service's running/desired count, and why the rest waits.
func progressLine(s *api.ServiceStatus, conv api.Convergence) string {
	line := fmt.Sprintf("%d/%d running", s.Running, s.Desired)
	if why := s.StuckReasons(); why != "" {
		line += "; " + why
	}
	if conv == api.Failed {
		line += "; update failed (see 'berth service ps')"
	}
	return line
}

func shortSHA(rev string) string {
	if len(rev) >= 7 {
		return rev[:7]
	}
	return rev
}
