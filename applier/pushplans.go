package applier

import (
	"sync"

	"github.com/berthd/berth/cluster/model"
)

// PushPlans hands the plan a push's pre-receive made to the sync the push requests,
// on the leader that takes both: a pushed revision is loaded, validated and planned
// once. A sync that finds no plan (another leader took the push) makes its own.
type PushPlans struct {
	mu    sync.Mutex
	plans map[string]pushPlan // by source: a newer push replaces the plan
}

// pushPlan is the plan of a source's revision sha, made for the source's path and
// prune setting as they were then.
type pushPlan struct {
	sha, path string
	prune     bool
	plan      Plan
}

// NewPushPlans returns an empty set, which the push server and the applier of one
// manager share.
func NewPushPlans() *PushPlans { return &PushPlans{plans: map[string]pushPlan{}} }

func (p *PushPlans) put(src *model.Source, sha string, plan Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plans[src.Name] = pushPlan{sha: sha, path: src.Path, prune: src.Prune, plan: plan}
}

// take returns, once, the plan of src's revision sha, if it was made from the stacks
// a sync of src reads now.
func (p *PushPlans) take(src *model.Source, sha string) Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	pp, ok := p.plans[src.Name]
	if !ok || pp.sha != sha {
		return nil
	}
	delete(p.plans, src.Name)
	if pp.path != src.Path || pp.prune != src.Prune {
		return nil
	}
	return pp.plan
}
