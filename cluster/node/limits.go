package node

import (
	"context"
	"fmt"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// setMaxReplicas sets the cluster's limit of replicas per service (`berth update
// --max-replicas`). A limit below what a service asks for already is refused: the
// service would then hold a count no write could store again.
func (m *manager) setMaxReplicas(ctx context.Context, limit uint64) error {
	if err := spec.CheckMaxReplicas(limit); err != nil {
		return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	svcs, err := m.state().ReadTxn().Services(nil)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if p := spec.ReplicasProblem(s.Stack, &s.Spec, limit); p != nil {
			return fmt.Errorf("%w: max-replicas %d: service %s asks for %d replicas: scale it down first", api.ErrRefused, limit, s.Name, *s.Spec.Deploy.Replicas)
		}
	}
	_, idx, err := m.updateCluster(ctx, func(c *state.Cluster) (bool, error) {
		if c.Settings.ReplicaLimit() == limit {
			return false, nil
		}
		c.Settings.MaxReplicas = limit
		return true, nil
	})
	if err != nil {
		return err
	}
	if idx > 0 {
		m.logger.Info("replica limit changed", "max_replicas", limit, "index", idx)
	}
	return nil
}
