package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
)

// errNoRuntime: the daemon runs without a container runtime (simulated agents).
var errNoRuntime = fmt.Errorf("%w: this node runs no container runtime", api.ErrRefused)

// LoadImage implements api.Backend.
func (n *Node) LoadImage(ctx context.Context, r io.Reader) (*api.ImageLoadResponse, error) {
	if n.cfg.LoadImage == nil {
		return nil, errNoRuntime
	}
	names, err := n.cfg.LoadImage(ctx, r)
	if err != nil {
		return nil, err
	}
	return &api.ImageLoadResponse{Images: names}, nil
}

// TaskLogs implements api.Backend: a task that ran here is read from this node's
// files; a manager finds the node of any other task and asks it.
func (n *Node) TaskLogs(ctx context.Context, ref string, o api.LogOptions, w io.Writer) error {
	m, merr := n.readyManager()
	if merr != nil {
		// A worker knows its own tasks by ID only.
		return n.localTaskLogs(ctx, ref, o, w)
	}
	t, err := m.ctl.ResolveTask(ref)
	if err != nil {
		return err
	}
	self := n.Status().NodeID
	if t.NodeID == "" {
		return fmt.Errorf("%w: task %s was never assigned to a node, so it has no logs", state.ErrNotFound, t.Name())
	}
	if t.NodeID == self {
		return n.localTaskLogs(ctx, t.ID, o, w)
	}
	node, err := m.state().ReadTxn().Node(nil, t.NodeID)
	if err != nil {
		return fmt.Errorf("task %s: its node %s: %w", t.Name(), t.NodeID, err)
	}
	if node.Role != state.RoleManager || node.ManagerStatus == nil || node.ManagerStatus.Addr == "" {
		// Workers serve no API on their port yet: their agents only call out.
		return fmt.Errorf("%w: task %s ran on worker %s; read its logs there with `berth task logs %s`",
			api.ErrRefused, t.Name(), node.Hostname, t.ID)
	}
	c, err := n.client(node.ManagerStatus.Addr)
	if err != nil {
		return err
	}
	return c.TaskLogs(ctx, t.ID, o, w)
}

func (n *Node) localTaskLogs(ctx context.Context, taskID string, o api.LogOptions, w io.Writer) error {
	if n.cfg.TaskLogs == nil {
		return errNoRuntime
	}
	err := n.cfg.TaskLogs(ctx, taskID, o, w)
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: no logs of task %s on this node", state.ErrNotFound, taskID)
	}
	return err
}
