package control

import (
	"maps"
	"slices"

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
