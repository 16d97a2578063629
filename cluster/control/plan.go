package control

import "github.com/berthd/berth/cluster/api"

// PlanStacks is POST /v1/plan for the stacks a client sent (`berth diff -c`): a dry
// run of their deploy on this manager's state. No Git is involved, so no applier.
func (c *Control) PlanStacks(reqs []*api.StackDeployRequest) (*api.PlanResponse, error) {
	return PreviewStacks(c.st.State(), reqs, c.newID, c.now())
}
