package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
)

// AgentAPI is the agent API of this node: its tasks and its network view (blocking
// queries) and its status reports, over mutual TLS with the node's certificate, to a
// manager (this node itself when it is one). The node's own heartbeat loop already
// heartbeats for it.
type AgentAPI struct {
	n    *Node
	next *atomic.Uint64
}

// NodeID is this node's ID.
func (a AgentAPI) NodeID() string { return a.n.Status().NodeID }

// Heartbeat is a no-op: the node heartbeats on its own.
func (a AgentAPI) Heartbeat(context.Context) error { return nil }

// NodeTasks returns the tasks assigned to this node.
func (a AgentAPI) NodeTasks(ctx context.Context, q api.Query) ([]*model.Task, api.QueryMeta, error) {
	c, err := a.client()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	tasks, meta, err := c.NodeTasks(ctx, a.n.Status().NodeID, q)
	if err != nil {
		a.next.Add(1)
	}
	return tasks, meta, err
}

// NodeNetworkView returns this node's view of the cluster's networks.
func (a AgentAPI) NodeNetworkView(ctx context.Context, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	c, err := a.client()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	v, meta, err := c.NodeNetworkView(ctx, a.n.Status().NodeID, q)
	if err != nil {
		a.next.Add(1)
	}
	return v, meta, err
}

// TaskRuntime fetches what the agent needs to run one of this node's tasks.
func (a AgentAPI) TaskRuntime(ctx context.Context, taskID string) (*api.TaskRuntime, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	rt, err := c.TaskRuntime(ctx, taskID)
	if err != nil {
		a.next.Add(1)
	}
	return rt, err
}

// ReportTaskStatus reports on this node's tasks.
func (a AgentAPI) ReportTaskStatus(ctx context.Context, reports []api.TaskStatusReport) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.ReportTaskStatus(ctx, reports); err != nil {
		a.next.Add(1)
		return err
	}
	return nil
}

// client picks a manager: this node when it is one, else the managers it knows in
// turn (moving on after a failure).
func (a AgentAPI) client() (*api.Client, error) {
	meta := a.n.metaCopy()
	if meta == nil {
		return nil, api.ErrNotInCluster
	}
	addr := meta.AdvertiseAddr
	if a.n.Status().Phase != api.PhaseManager {
		if len(meta.Managers) == 0 {
			return nil, errors.New("no manager address known yet")
		}
		addr = meta.Managers[a.next.Load()%uint64(len(meta.Managers))]
	}
	return a.n.client(addr)
}

// agentLoop runs the configured agent for as long as the node is a member.
func (n *Node) agentLoop(ctx context.Context) {
	a := AgentAPI{n: n, next: new(atomic.Uint64)}
	for {
		err := n.cfg.Agent(ctx, a)
		if ctx.Err() != nil {
			return
		}
		n.logger.Warn("agent stopped; restarting it", "error", err)
		if !sleep(ctx, time.Second) {
			return
		}
	}
}
