package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store/sealed"
)

// Cluster returns the cluster row, Redacted.
func (c *Control) Cluster(context.Context) (*model.Cluster, error) {
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return nil, err
	}
	return row.Redacted(), nil
}

// updateCluster changes the cluster row with fn, compare-and-swap, retrying when
// another manager changed it in between. fn reports whether it changed anything.
func (c *Control) updateCluster(ctx context.Context, fn func(c *model.Cluster) (bool, error)) (*model.Cluster, uint64, error) {
	var lastErr error
	for range 10 {
		cur, err := c.st.State().ReadTxn().Cluster(nil)
		if err != nil {
			return nil, 0, err
		}
		next := cur.Copy()
		changed, err := fn(next)
		if err != nil || !changed {
			return cur, 0, err
		}
		idx, err := c.apply(ctx, command.CmdClusterUpdate, command.ClusterUpdate{ExpectModifyIndex: cur.ModifyIndex, Cluster: next})
		if !errors.Is(err, state.ErrConflict) {
			return next, idx, err
		}
		// This manager's copy is behind the leader's: let it catch up.
		lastErr = err
		if sleepCtx(ctx, 100*time.Millisecond); ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
	return nil, 0, lastErr
}

// syncKeyring brings this manager's keyring in line with the cluster row, once a
// write changed it, so that an answer carrying a new unlock key means this manager
// already uses it. apply waited for the write to be applied here.
func (c *Control) syncKeyring() error {
	row, err := c.st.State().ReadTxn().Cluster(nil)
	if err != nil {
		return err
	}
	return c.keyring.Reconcile(row)
}

// UpdateCluster is `berth update --autolock --max-replicas --cert-expiry --notify`
// and `berth swarm ca --rotate`.
func (c *Control) UpdateCluster(ctx context.Context, req *api.ClusterUpdateRequest) (*api.ClusterUpdateResponse, error) {
	resp := &api.ClusterUpdateResponse{}
	if err := c.clusterSettings(req); err != nil {
		return nil, err
	}
	if req.Notify != nil {
		if err := c.setClusterNotify(ctx, req.Notify); err != nil {
			return nil, err
		}
	}
	if req.MaxReplicas != nil {
		if err := c.setMaxReplicas(ctx, *req.MaxReplicas); err != nil {
			return nil, err
		}
	}
	if req.CertExpiry != nil {
		if err := c.setCertExpiry(ctx, *req.CertExpiry); err != nil {
			return nil, err
		}
	}
	if !req.RotateCA && (req.NewRootCACert != "" || req.NewRootCAKey != "") {
		return nil, api.BadRequest(errors.New("--ca-cert and --ca-key name the root of a rotation: give them with --rotate"))
	}
	if req.RotateCA {
		root, err := c.rotateCA(ctx, req.NewRootCACert, req.NewRootCAKey)
		if err != nil {
			return nil, err
		}
		resp.RootCACert = root
	}
	if req.Autolock == nil {
		return resp, nil
	}
	key, err := c.setAutolock(ctx, *req.Autolock)
	if err != nil {
		return nil, err
	}
	resp.UnlockKey = key
	return resp, nil
}

// setAutolock turns autolock on (with a new unlock key, which it returns) or off.
func (c *Control) setAutolock(ctx context.Context, on bool) (string, error) {
	var key string
	_, idx, err := c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
		if row.Autolock == on {
			return false, nil
		}
		row.Autolock = on
		row.UnlockKeyGeneration++
		row.UnlockKey = ""
		if on {
			k, err := sealed.NewUnlockKey()
			if err != nil {
				return false, err
			}
			row.UnlockKey, key = k, k
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	if idx > 0 {
		if err := c.syncKeyring(); err != nil {
			return "", fmt.Errorf("autolock changed in the cluster, but this manager's keyring is not updated yet: %w", err)
		}
		c.logger.Info("autolock changed", "autolock", on)
	}
	return key, nil
}

// UnlockKey returns the cluster's unlock key, rotating it first with rotate.
func (c *Control) UnlockKey(ctx context.Context, rotate bool) (*api.UnlockKeyResponse, error) {
	if !rotate {
		row, err := c.st.State().ReadTxn().Cluster(nil)
		if err != nil {
			return nil, err
		}
		if !row.Autolock {
			return nil, fmt.Errorf("%w: turn it on with `berth update --autolock=true`", sealed.ErrAutolockOff)
		}
		return &api.UnlockKeyResponse{Key: row.UnlockKey}, nil
	}
	key, err := sealed.NewUnlockKey()
	if err != nil {
		return nil, err
	}
	_, _, err = c.updateCluster(ctx, func(row *model.Cluster) (bool, error) {
		if !row.Autolock {
			return false, fmt.Errorf("%w: turn it on with `berth update --autolock=true`", sealed.ErrAutolockOff)
		}
		row.UnlockKey = key
		row.UnlockKeyGeneration++
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := c.syncKeyring(); err != nil {
		return nil, fmt.Errorf("the unlock key was rotated in the cluster, but this manager's keyring is not updated yet: %w", err)
	}
	c.logger.Info("unlock key rotated")
	return &api.UnlockKeyResponse{Key: key}, nil
}

// FillInfo adds what this manager knows of the cluster to info (`berth info`).
func (c *Control) FillInfo(info *api.Info) {
	tx := c.st.State().ReadTxn()
	if row, err := tx.Cluster(nil); err == nil {
		info.Autolock = row.Autolock
		info.MaxReplicas = row.Settings.ReplicaLimit()
	}
	if nodes, err := tx.Nodes(nil); err == nil {
		info.Nodes = len(nodes)
	}
	if servers, err := c.raft.Servers(); err == nil {
		for _, s := range servers {
			if s.Voter {
				info.Managers++
			}
		}
	}
	if addr, id := c.raft.Leader(); addr != "" {
		info.Leader = &api.Leader{NodeID: id, Addr: addr}
		if n, err := tx.Node(nil, id); err == nil {
			info.Leader.Hostname = n.Hostname
		}
	}
	info.RaftIndex = c.raft.AppliedIndex()
}
