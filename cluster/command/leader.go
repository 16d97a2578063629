package command

import (
	"fmt"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// applyLeaderElected records in the cluster row the manager that took the lead. The
// log orders leaderships: an old leader's record that a new leader commits after its
// election comes before the new leader's own, which it writes once it leads, so the
// last record applied is the current leader's and no term check is needed (a restored
// backup starts counting terms again).
func applyLeaderElected(tx *state.WriteTxn, l *model.LeaderRecord) error {
	if l.NodeID == "" || l.Term == 0 || l.Since.IsZero() {
		return fmt.Errorf("%w: a leader record without its node, term or time", state.ErrInvalid)
	}
	cur, err := tx.Cluster(nil)
	if err != nil {
		return err
	}
	next := cur.Copy()
	next.Leader = *l
	return tx.UpsertCluster(next)
}
