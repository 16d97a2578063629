package server_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// A write a follower forwards fails as it would have on the leader: the leader's
// answer matches the manager's sentinel of its code, and still the API's.
func TestManagerErrorMatchesTheManagersSentinel(t *testing.T) {
	for _, tc := range []struct {
		code          string
		manager, wire error
	}{
		{api.CodeConflict, state.ErrConflict, api.ErrConflict},
		{api.CodeNoLeader, store.ErrNoLeader, api.ErrNoLeader},
		{api.CodeNotLeader, store.ErrNotLeader, api.ErrNotLeader},
		{api.CodeQuorum, api.ErrQuorum, api.ErrQuorum},
	} {
		err := server.ManagerError(fmt.Errorf("forwarded: %w", api.NewError(tc.code, "from the leader")))
		var apiErr *api.Error
		if !errors.Is(err, tc.manager) || !errors.Is(err, tc.wire) || !errors.As(err, &apiErr) || err.Error() != "forwarded: from the leader" {
			t.Errorf("%s: %v does not match %v and %v", tc.code, err, tc.manager, tc.wire)
		}
	}
	plain := errors.New("disk on fire")
	if err := server.ManagerError(plain); err != plain {
		t.Errorf("an error that is no answer changed: %v", err)
	}
}
