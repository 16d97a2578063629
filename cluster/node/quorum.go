package node

import (
	"fmt"
	"slices"

	"github.com/berthd/berth/cluster/api"
)

// checkQuorum says why taking voter id out of raft would leave the remaining voters
// unable to form a majority among those that are reachable, or returns nil. what is
// the action for the message ("demoting node-3").
func checkQuorum(voters []string, reachable func(id string) bool, id, what string) error {
	if !slices.Contains(voters, id) {
		return nil
	}
	remaining := len(voters) - 1
	if remaining == 0 {
		return fmt.Errorf("%w: %s would leave the cluster without a manager; promote another node first", api.ErrQuorum, what)
	}
	up := 0
	for _, v := range voters {
		if v != id && reachable(v) {
			up++
		}
	}
	if need := remaining/2 + 1; up < need {
		return fmt.Errorf("%w: %s would leave %d of %d managers reachable, and raft needs a majority of %d; bring the unreachable managers back or promote another node first",
			api.ErrQuorum, what, up, remaining, need)
	}
	return nil
}
