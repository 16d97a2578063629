package command

import (
	"fmt"

	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// ReplicaLimit is the cluster's limit of replicas per service
// (model.Settings.ReplicaLimit; the default before the cluster row exists).
func ReplicaLimit(tx *state.ReadTxn) uint64 {
	c, err := tx.Cluster(nil)
	if err != nil {
		return spec.DefaultMaxReplicas
	}
	return c.Settings.ReplicaLimit()
}

// CheckReplicas refuses a service of stack that asks for more replicas than the
// cluster allows. The FSM checks every write that sets replicas (a deploy, a sync, a
// scale) that asks for it (StackDeploy.Limited, ServiceScale.Limited), so that no
// path, the dry run's included, stores a count the orchestrator would have to cut,
// while a log written before the limit existed still applies the same way.
func CheckReplicas(tx *state.ReadTxn, stack string, s *spec.Service) error {
	if p := spec.ReplicasProblem(stack, s, ReplicaLimit(tx)); p != nil {
		return fmt.Errorf("%w: %s", state.ErrInvalid, p)
	}
	return nil
}
