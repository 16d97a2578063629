package applier

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// PreviewSource is a dry run of a sync of the source: the revision rev (a branch, tag
// or commit), or the one a sync would read now. A pull source's revision is fetched
// into its mirror, as a sync would; nothing is written to the cluster.
func PreviewSource(ctx context.Context, cfg Config, name, rev string) (*api.PlanResponse, error) {
	cfg.defaults()
	src, r, release, err := readSource(ctx, &cfg, name, rev, "drop --rev")
	if err != nil {
		return nil, err
	}
	defer release()
	loaded, err := LoadStacks(ctx, r.fsys, src.Path, nil, WithSOPS(cfg.Cluster, src))
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	plan, err := cfg.Cluster.Plan(ctx, src, loaded)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	if src.Kind == model.SourceDir {
		r.sha = plan.ContentRevision()
	}
	resp := &api.PlanResponse{Revision: r.sha, Diffs: plan.Diffs(), Kept: plan.Kept()}
	for _, w := range loaded.Warnings {
		resp.Warnings = append(resp.Warnings, w.String())
	}
	if r.sha == src.LastAppliedRevision && !src.SelfHeal {
		// A sync of the revision it applied last writes nothing: changes made
		// outside Git stay (and are told as drift) unless the source self-heals.
		resp.Settled = true
		return resp, nil
	}
	resp.Placement, resp.Settled, err = cfg.Cluster.Preview(ctx, plan, r.sha)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ResolveRevision finds rev (a branch, tag or commit) in the source's repository as
// a sync of it pinned there would, fetching a pull source's branch first, and
// returns the commit's SHA: `source rollback` pins only a revision that exists.
func ResolveRevision(ctx context.Context, cfg Config, name, rev string) (string, error) {
	cfg.defaults()
	_, r, release, err := readSource(ctx, &cfg, name, rev, "roll it back by changing its files")
	if err != nil {
		return "", err
	}
	release()
	return r.sha, nil
}

// Revisions resolves the revisions of `source rollback` for the cluster's control
// (control.Revisions), with ResolveRevision.
type Revisions struct{ Config Config }

// ResolveRevision implements control.Revisions.
func (r Revisions) ResolveRevision(ctx context.Context, source, rev string) (string, error) {
	return ResolveRevision(ctx, r.Config, source, rev)
}

// readSource reads the source's revision rev, or the one a sync would read now when
// rev is empty. A revision that does not exist is a bad request; fix tells how to do
// without one for a folder source, which has none. release ends the use of the
// revision's files.
func readSource(ctx context.Context, cfg *Config, name, rev, fix string) (*model.Source, revision, func(), error) {
	tx, err := cfg.readTxn()
	if err != nil {
		return nil, revision{}, nil, err
	}
	src, err := tx.Source(nil, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, revision{}, nil, api.NewError(api.CodeNotFound, fmt.Sprintf("no such source: %s (berth source ls lists them)", name))
	}
	if err != nil {
		return nil, revision{}, nil, fmt.Errorf("source %s: %w", name, err)
	}
	if rev != "" {
		if src.Kind == model.SourceDir {
			return nil, revision{}, nil, api.NewError(api.CodeBadRequest, fmt.Sprintf("source %s is a folder: it has no revisions to choose from (%s)", name, fix))
		}
		src = src.Copy()
		src.PinnedRevision = rev
	}
	s := newSyncer(cfg, name)
	r, err := s.read(ctx, src)
	if err != nil {
		s.close()
		if errors.Is(err, errNothingPushed) {
			err = fmt.Errorf("%w: git push to it first (berth source remote %s sets up the remote)", err, name)
		}
		err = fmt.Errorf("source %s: %w", name, err)
		if rev != "" && (errors.Is(err, ErrUnknownRevision) || errors.Is(err, errNothingPushed)) {
			err = api.BadRequest(err)
		}
		return nil, revision{}, nil, err
	}
	return src, r, s.close, nil
}
