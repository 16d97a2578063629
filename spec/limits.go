package spec

import "fmt"

// Limits on replicas per service. Swarm has none: it takes any uint64 and its
// orchestrator sets out to make every task, so one typo can exhaust the managers'
// memory. A berth cluster refuses a service that asks for more than its limit
// (model.Settings.MaxReplicas, `berth update --max-replicas N`).
const (
	// DefaultMaxReplicas is a cluster's limit until an operator changes it.
	DefaultMaxReplicas = 10_000
	// MaxReplicasCeiling is the highest limit a cluster may set: the size of the
	// million-task benchmark in one service. A stack file is refused above it
	// wherever it is read, even offline.
	MaxReplicasCeiling = 1_000_000
)

// fieldReplicas is the path of the replicas in a stack file.
const fieldReplicas = "deploy.replicas"

// ReplicasProblem says why a service of stack asks for more replicas than limit, or
// returns nil. Services that ignore replicas (global ones) never do.
func ReplicasProblem(stack string, s *Service, limit uint64) *Problem {
	r := s.Deploy.Replicas
	if r == nil || *r <= limit || s.Deploy.Global() {
		return nil
	}
	return &Problem{Stack: stack, Service: s.Name, Field: fieldReplicas,
		Message: fmt.Sprintf("%d is above the cluster's limit of %d replicas per service", *r, limit),
		Fix:     "lower it, or raise the limit with berth update --max-replicas N"}
}

// CheckMaxReplicas checks a limit an operator asks a cluster to set.
func CheckMaxReplicas(limit uint64) error {
	if limit == 0 || limit > MaxReplicasCeiling {
		return fmt.Errorf("max-replicas %d: give a number from 1 to %d", limit, MaxReplicasCeiling)
	}
	return nil
}

// validateReplicas checks replicas where no cluster is at hand (berth validate, a
// stack file read before it is sent): above the ceiling no cluster takes it; above
// the default limit, a cluster takes it only once the limit was raised.
func validateReplicas(s *Service, ps *problems) {
	switch {
	case ReplicasProblem(ps.stack, s, MaxReplicasCeiling) != nil:
		ps.errorf(s.Name, fieldReplicas, "lower it", "%d is above %d, the most replicas per service a cluster allows",
			*s.Deploy.Replicas, MaxReplicasCeiling)
	case ReplicasProblem(ps.stack, s, DefaultMaxReplicas) != nil:
		ps.warnf(s.Name, fieldReplicas, "raise the cluster's limit first with berth update --max-replicas N",
			"%d is above the default limit of %d replicas per service, which a cluster refuses unless its limit was raised",
			*s.Deploy.Replicas, DefaultMaxReplicas)
	}
}
