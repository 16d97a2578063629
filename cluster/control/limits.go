package control

import (
	"fmt"
	"maps"
	"slices"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/spec"
)

// checkReplicas refuses a stack whose services ask for more replicas than the cluster
// allows before anything is proposed; the FSM checks it again against the limit it
// holds when the entry applies.
func (c *Control) checkReplicas(st *spec.Stack) error {
	tx := c.st.State().ReadTxn()
	for _, k := range slices.Sorted(maps.Keys(st.Services)) {
		if err := store.CheckReplicas(tx, st.Name, st.Services[k]); err != nil {
			return err
		}
	}
	return nil
}

// aboveLimit says why a service stored above the cluster's limit (by a berth that had
// none) has fewer tasks than it asks for: the orchestrator makes only the limit.
func aboveLimit(st *api.ServiceStatus, tx *state.ReadTxn) *api.ServiceStatus {
	limit := store.ReplicaLimit(tx)
	p := spec.ReplicasProblem(st.Stack, &st.Spec, limit)
	if p == nil {
		return st
	}
	st.Pending = append(st.Pending, api.PendingReason{Tasks: int(st.Desired - limit),
		Reason: fmt.Sprintf("%s: %s: only %d tasks are made; %s", p.Field, p.Message, limit, p.Fix)})
	return st
}
