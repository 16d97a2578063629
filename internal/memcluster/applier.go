package memcluster

import (
	"context"
	"errors"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// ApplierCluster is the applier's cluster over one manager, as daemon/ wires it
// on a daemon.
type ApplierCluster struct {
	// Store is the manager's raft store, which must lead to write.
	Store reconciler.Store
	// Control serves Source and Services (the push server's reads).
	Control *control.Control
}

func (c ApplierCluster) State() (*state.Store, error) { return c.Store.State(), nil }

func (c ApplierCluster) WaitSources(ctx context.Context, index uint64) ([]*model.Source, uint64, error) {
	return control.WaitSources(ctx, c.Store.State(), index)
}

func (c ApplierCluster) Barrier(timeout time.Duration) error { return c.Store.Barrier(timeout) }

func (c ApplierCluster) Plan(_ context.Context, src *model.Source, stacks *applier.LoadedStacks) (applier.Plan, error) {
	return control.PlanSource(c.Store.State().ReadTxn(), src, stacks.Checked(), stacks.DependsOn, model.NewID)
}

func (c ApplierCluster) Replan(_ context.Context, plan applier.Plan) (applier.Plan, error) {
	// A plan the applier holds is one Plan made.
	return plan.(*control.SourcePlan).Current(c.Store.State().ReadTxn())
}

func (c ApplierCluster) Preview(_ context.Context, plan applier.Plan, sha string) ([]*api.ServicePlacement, bool, error) {
	return plan.(*control.SourcePlan).Preview(c.Store.State(), sha, model.NewID, time.Now())
}

func (c ApplierCluster) ApplySync(ctx context.Context, s *applier.Sync) error {
	plan, _ := s.Plan.(*control.SourcePlan)
	return c.applyLeader(ctx, command.CmdSourceSync, control.SyncCommand(s.Source, s.Now, s.Fetched, s.Status, s.Record, plan))
}

func (c ApplierCluster) ApplyPush(ctx context.Context, source, old, new string, pack []byte) error {
	return c.applyLeader(ctx, command.CmdSourcePush, &command.SourcePush{Name: source, Old: old, New: new, Pack: pack})
}

func (c ApplierCluster) applyLeader(ctx context.Context, t command.Type, body any) error {
	_, err := c.Store.ApplyLeader(ctx, t, body)
	if errors.Is(err, store.ErrNotLeader) {
		return applier.NotLeader(err)
	}
	return err
}

func (c ApplierCluster) Source(ctx context.Context, name string, q api.Query) (*api.SourceInfo, api.QueryMeta, error) {
	return c.Control.Source(ctx, name, q)
}

func (c ApplierCluster) Services(ctx context.Context, f api.ServiceFilter, q api.Query) ([]*api.ServiceStatus, api.QueryMeta, error) {
	return c.Control.Services(ctx, f, q)
}

func (c ApplierCluster) RecordPushRejection(ctx context.Context, source string, r model.PushRejection) error {
	return c.applyLeader(ctx, command.CmdSourcePushRejected, &command.SourcePushRejected{Name: source, Rejection: r})
}
