package orchestrator

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// TaskSpecHash hashes the part of a service's spec that its tasks are made from. It
// leaves out what only the orchestrator reads: the replica count, the update and
// rollback configs, the restart policy and the service's own labels. Changing those
// must not restart containers (Swarm restarts them for a new restart policy; berth
// does not).
func TaskSpecHash(s *spec.Service) string {
	c := *s // shallow: only fields of the Deploy value copy are replaced below
	c.Deploy.Replicas = nil
	c.Deploy.UpdateConfig = nil
	c.Deploy.RollbackConfig = nil
	c.Deploy.RestartPolicy = nil
	c.Deploy.Labels = nil
	return c.Hash()
}

// TaskHash is what a service's tasks are made from, as a hash: TaskSpecHash of its
// spec, its force counter and the versions of the secrets and configs it mounts. It
// is what model.Task.SpecHash records; the agent should label containers with it
// (io.berth.spec-hash), so that its drift check and the orchestrator agree on what
// "changed" means. A service that was never forced and mounts nothing hashes like
// its spec alone.
func TaskHash(svc *model.Service) string {
	return taskHash(&svc.Spec, svc.ForceUpdate, svc.Objects)
}

// PreviousTaskHash is TaskHash of what a rollback returns to, "" when there is none.
func PreviousTaskHash(svc *model.Service) string {
	if svc.PreviousSpec == nil {
		return ""
	}
	return taskHash(svc.PreviousSpec, svc.ForceUpdate, svc.PreviousObjects)
}

func taskHash(s *spec.Service, force uint64, objects map[string]uint64) string {
	h := TaskSpecHash(s)
	if force == 0 && len(objects) == 0 {
		return h
	}
	sum := sha256.New()
	sum.Write([]byte(h))
	var b [binary.MaxVarintLen64]byte
	sum.Write(b[:binary.PutUvarint(b[:], force)])
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sum.Write([]byte(k))
		sum.Write([]byte{0})
		sum.Write(b[:binary.PutUvarint(b[:], objects[k])])
	}
	return hex.EncodeToString(sum.Sum(nil))
}
