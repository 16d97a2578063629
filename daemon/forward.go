package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/store"
)

// forwarder sends followers' writes to the leader over mutual TLS: it is the
// store.Forwarder of a manager. hc returns the node's current client, which presents
// the manager's certificate and trusts the roots of the moment (a rotation replaces it).
type forwarder struct {
	hc func() *http.Client
}

var _ store.Forwarder = forwarder{}

// Forward implements store.Forwarder. A leader that cannot be reached is reported as
// store.ErrNoLeader, so that the store retries while an election runs; the request
// was never sent, so retrying cannot apply it twice. The leader's answers match the
// manager's sentinel errors, as if the write had been applied here.
func (f forwarder) Forward(ctx context.Context, leaderAddr string, cmd []byte) (uint64, error) {
	hc := f.hc()
	if hc == nil {
		return 0, fmt.Errorf("forward a write to the leader at %s: %w", leaderAddr, api.ErrNotInCluster)
	}
	c, err := api.New(leaderAddr, api.WithHTTPClient(hc))
	if err != nil {
		return 0, err
	}
	idx, err := c.Apply(ctx, cmd)
	var ce *api.ConnectError
	if errors.As(err, &ce) {
		return 0, fmt.Errorf("%w: the leader at %s cannot be reached: %s", store.ErrNoLeader, leaderAddr, ce.Reason())
	}
	return idx, server.ManagerError(err)
}
