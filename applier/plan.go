package applier

import (
	"errors"
	"fmt"
	"slices"

	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/spec"
)

// revisionCommands makes the stack deploys of a revision, owned by the source.
func revisionCommands(src *state.Source, loaded *LoadedStacks, newID func() string) ([]*store.StackDeploy, error) {
	out := make([]*store.StackDeploy, 0, len(loaded.Stacks))
	for _, st := range loaded.checked {
		// Loaded by this process: spec.LoadChecked ran every check the managers make.
		cmd, err := control.LoadedStackCommand(st, src.Prune, newID)
		if err != nil {
			return nil, fmt.Errorf("stack %s: %w", st.Stack().Name, err)
		}
		cmd.Stack.Source = src.Name
		cmd.Stack.DependsOn = loaded.DependsOn[st.Stack().Name]
		out = append(out, cmd)
	}
	return out, nil
}

// revisionPlan is what applying a revision would do to the cluster.
type revisionPlan struct {
	diffs []*spec.StackDiff
	// unchanged: applying the revision writes nothing new.
	unchanged bool
	// kept are the source's stacks the revision no longer has, kept because the
	// source does not prune.
	kept []string
}

// planRevision compares a revision's stacks with what the cluster holds. A stack of
// another source is refused (wrapping state.ErrConflict) before the FSM would.
func planRevision(tx *state.ReadTxn, src *state.Source, cmds []*store.StackDeploy) (*revisionPlan, error) {
	owned, err := tx.StacksBySource(nil, src.Name)
	if err != nil {
		return nil, err
	}
	p := &revisionPlan{unchanged: true}
	var oldSpecs, newSpecs []*spec.Stack
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[c.Stack.Name] = true
		newSpecs = append(newSpecs, c.Stack.Spec)
		cur, err := tx.Stack(nil, c.Stack.Name)
		switch {
		case errors.Is(err, state.ErrNotFound):
			p.unchanged = false
		case err != nil:
			return nil, err
		case cur.Source != "" && cur.Source != src.Name:
			return nil, fmt.Errorf("stack %s belongs to source %s: rename it, or remove it from that source first: %w", cur.Name, cur.Source, state.ErrConflict)
		default:
			oldSpecs = append(oldSpecs, cur.Spec)
			if cur.SpecHash != c.Stack.SpecHash || cur.Source != src.Name || !slices.Equal(cur.DependsOn, c.Stack.DependsOn) {
				p.unchanged = false
			}
		}
	}
	for _, st := range owned {
		switch {
		case seen[st.Name]:
		case src.Prune:
			oldSpecs = append(oldSpecs, st.Spec)
			p.unchanged = false
		default:
			p.kept = append(p.kept, st.Name)
		}
	}
	p.diffs = spec.DiffStacks(oldSpecs, newSpecs)
	return p, nil
}

// summary counts what the plan does to services.
func (p *revisionPlan) summary() state.PlanSummary {
	var sum state.PlanSummary
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
