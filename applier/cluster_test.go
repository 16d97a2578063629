package applier_test

import (
	"errors"
	"testing"

	"github.com/berthd/berth/applier"
)

// A cluster's own not-leader error, wrapped by NotLeader, is ErrNotLeader to the applier
// and keeps the cluster's words and its own identity.
func TestNotLeaderKeepsTheClustersError(t *testing.T) {
	own := errors.New("this manager is not the leader (the leader is at 10.0.0.1:4270)")
	err := applier.NotLeader(own)
	if !errors.Is(err, applier.ErrNotLeader) || !errors.Is(err, own) || err.Error() != own.Error() {
		t.Errorf("NotLeader(%v) = %v: matches ErrNotLeader %v, the cluster's error %v",
			own, err, errors.Is(err, applier.ErrNotLeader), errors.Is(err, own))
	}
	if errors.Is(own, applier.ErrNotLeader) {
		t.Error("an unwrapped error matches ErrNotLeader")
	}
}
