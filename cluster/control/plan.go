package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// PlanStacks is POST /v1/plan for the stacks a client sent (`berth diff -c`): a dry
// run of their deploy on this manager's state. No Git is involved, so no applier.
func (c *Control) PlanStacks(reqs []*api.StackDeployRequest) (*api.PlanResponse, error) {
	return PreviewStacks(c.st.State(), reqs, c.newID, c.now())
}

// SourcePlan is what applying a source's revision would do: the revision's stack
// commands, made once, and how they differ from the stacks the cluster held when the
// plan was made.
type SourcePlan struct {
	src  *model.Source
	cmds []*command.StackDeploy
	// index is the stacks table's index the comparison was made at.
	index     uint64
	diffs     []*spec.StackDiff
	unchanged bool
	kept      []string
}

// PlanSource plans applying a revision's stacks, each loaded and checked by this
// process (spec.LoadChecked), for the source src on the state tx. dependsOn is
// berth.yaml's depends_on, by stack name. A stack that does not make a command is a
// bad request (api.ErrBadRequest); a stack of another source is refused (wrapping
// state.ErrConflict) before the FSM would.
func PlanSource(tx *state.ReadTxn, src *model.Source, stacks []spec.Checked, dependsOn map[string][]string, newID func() string) (*SourcePlan, error) {
	p := &SourcePlan{src: src, cmds: make([]*command.StackDeploy, 0, len(stacks))}
	for _, st := range stacks {
		cmd, err := LoadedStackCommand(st, src.Prune, newID)
		if err != nil {
			return nil, fmt.Errorf("stack %s: %w", st.Stack().Name, err)
		}
		cmd.Stack.Source = src.Name
		cmd.Stack.DependsOn = dependsOn[st.Stack().Name]
		p.cmds = append(p.cmds, cmd)
	}
	return p, p.compare(tx)
}

// Current is the plan on the state tx: p itself when no stack changed since p was
// made, else p's commands compared again (the revision is not made again).
func (p *SourcePlan) Current(tx *state.ReadTxn) (*SourcePlan, error) {
	if tx.Index(state.TableStacks) == p.index {
		return p, nil
	}
	q := &SourcePlan{src: p.src, cmds: p.cmds}
	return q, q.compare(tx)
}

// compare compares the plan's stacks with those the cluster holds in tx.
func (p *SourcePlan) compare(tx *state.ReadTxn) error {
	p.index = tx.Index(state.TableStacks)
	owned, err := tx.StacksBySource(nil, p.src.Name)
	if err != nil {
		return err
	}
	p.unchanged, p.kept = true, nil
	var oldSpecs, newSpecs []*spec.Stack
	seen := map[string]bool{}
	for _, c := range p.cmds {
		seen[c.Stack.Name] = true
		newSpecs = append(newSpecs, c.Stack.Spec)
		cur, err := tx.Stack(nil, c.Stack.Name)
		switch {
		case errors.Is(err, state.ErrNotFound):
			p.unchanged = false
		case err != nil:
			return err
		case cur.Source != "" && cur.Source != p.src.Name:
			return fmt.Errorf("stack %s belongs to source %s: rename it, or remove it from that source first: %w", cur.Name, cur.Source, state.ErrConflict)
		default:
			oldSpecs = append(oldSpecs, cur.Spec)
			if cur.SpecHash != c.Stack.SpecHash || cur.Source != p.src.Name || !slices.Equal(cur.DependsOn, c.Stack.DependsOn) {
				p.unchanged = false
			}
		}
	}
	for _, st := range owned {
		switch {
		case seen[st.Name]:
		case p.src.Prune:
			oldSpecs = append(oldSpecs, st.Spec)
			p.unchanged = false
		default:
			p.kept = append(p.kept, st.Name)
		}
	}
	p.diffs = spec.DiffStacks(oldSpecs, newSpecs)
	return nil
}

// Diffs are the stacks' changes.
func (p *SourcePlan) Diffs() []*spec.StackDiff { return p.diffs }

// Unchanged: applying the revision writes nothing new.
func (p *SourcePlan) Unchanged() bool { return p.unchanged }

// Kept are the source's stacks the revision no longer has, kept because the source
// does not prune.
func (p *SourcePlan) Kept() []string { return p.kept }

// Summary counts what the plan does to services.
func (p *SourcePlan) Summary() model.PlanSummary {
	var sum model.PlanSummary
	for _, d := range p.diffs {
		for _, sc := range d.Services {
			switch sc.Action {
			case spec.ActionAdd:
				sum.Added++
			case spec.ActionRemove:
				sum.Removed++
			case spec.ActionChange:
				sum.Changed++
			}
		}
	}
	return sum
}

// ContentRevision names the revision by its content: a digest of its stacks' hashes,
// so that an unchanged folder is the same revision after any number of reads.
func (p *SourcePlan) ContentRevision() string {
	parts := make([]string, 0, len(p.cmds))
	for _, c := range p.cmds {
		parts = append(parts, c.Stack.Name+"="+c.Stack.SpecHash)
	}
	slices.Sort(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return "dir:" + hex.EncodeToString(sum[:])[:16]
}

// Preview is where the plan's tasks would land once applied as revision sha on st.
func (p *SourcePlan) Preview(st *state.Store, sha string, newID func() string, now time.Time) ([]*api.ServicePlacement, bool, error) {
	return previewSync(st, st.ReadTxn(), p.src, p.cmds, sha, newID, now)
}

// stacks are the plan's commands, marked as revision sha's.
func (p *SourcePlan) stacks(sha string) []*command.StackDeploy {
	for _, c := range p.cmds {
		c.Stack.Revision = sha
	}
	return p.cmds
}

// SyncCommand is the raft command of a sync of src, answering its requests: the
// record of the outcome, with plan's stacks applied when plan is not nil.
func SyncCommand(src *model.Source, now time.Time, fetched string, status model.SyncState, rec model.SyncRecord, plan *SourcePlan) *command.SourceSync {
	cmd := &command.SourceSync{Name: src.Name, Now: now.UTC(), Fetched: fetched, Status: status, Answered: src.SyncRequests, Record: rec}
	if plan != nil {
		cmd.Apply, cmd.Stacks, cmd.Prune = true, plan.stacks(rec.Revision), src.Prune
	}
	return cmd
}

// WaitSources returns the sources and their table's index once it passes index (at
// once for 0), or at ctx's deadline; state.ErrAbandoned when st was replaced.
func WaitSources(ctx context.Context, st *state.Store, index uint64) ([]*model.Source, uint64, error) {
	var out []*model.Source
	idx, err := st.Blocking(ctx, index, []string{state.TableSources}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		out, err = tx.Sources(ws)
		return tx.Index(state.TableSources), err
	})
	return out, idx, err
}
