package control

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// checkReplicas refuses a stack whose services ask for more replicas than the cluster
// allows before anything is proposed; the FSM checks it again against the limit it
// holds when the entry applies.
func (c *Control) checkReplicas(st *spec.Stack) error {
	tx := c.st.State().ReadTxn()
	for _, k := range slices.Sorted(maps.Keys(st.Services)) {
		if err := command.CheckReplicas(tx, st.Name, st.Services[k]); err != nil {
			return err
		}
	}
	return nil
}

// aboveLimit says why a service stored above the cluster's limit (by a berth that had
// none) has fewer tasks than it asks for: the orchestrator makes only the limit.
func aboveLimit(st *api.ServiceStatus, tx *state.ReadTxn) *api.ServiceStatus {
	limit := command.ReplicaLimit(tx)
	p := spec.ReplicasProblem(st.Stack, &st.Spec, limit)
	if p == nil {
		return st
	}
	st.Pending = append(st.Pending, api.PendingReason{Tasks: int(st.Desired - limit),
		Reason: fmt.Sprintf("%s: %s: only %d tasks are made; %s", p.Field, p.Message, limit, p.Fix)})
	return st
}

// setMaxReplicas sets the cluster's limit of replicas per service (`berth update
// --max-replicas`). A limit below what a service asks for already is refused: the
// service would then hold a count no write could store again.
func (c *Control) setMaxReplicas(ctx context.Context, limit uint64) error {
	if err := spec.CheckMaxReplicas(limit); err != nil {
		return api.BadRequest(err)
	}
	svcs, err := c.st.State().ReadTxn().Services(nil)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if p := spec.ReplicasProblem(s.Stack, &s.Spec, limit); p != nil {
			return api.Refused(fmt.Errorf("max-replicas %d: service %s asks for %d replicas: scale it down first", limit, s.Name, *s.Spec.Deploy.Replicas))
		}
	}
	_, idx, err := c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
		if row.Settings.ReplicaLimit() == limit {
			return false, nil
		}
		row.Settings.MaxReplicas = limit
		return true, nil
	})
	if err != nil {
		return err
	}
	if idx > 0 {
		c.logger.Info("replica limit changed", "max_replicas", limit, "index", idx)
	}
	return nil
}
