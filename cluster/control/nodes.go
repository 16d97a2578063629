package control

import (
	"context"
	"fmt"
	"maps"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// Nodes lists the nodes, with their manager status as this manager sees it.
func (c *Control) Nodes(ctx context.Context, q api.Query) ([]*model.Node, api.QueryMeta, error) {
	var nodes []*model.Node
	idx, err := c.blocking(ctx, q, []string{state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		nodes, err = tx.Nodes(ws)
		return tx.Index(state.TableNodes), err
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return c.withManagerStatus(nodes), api.QueryMeta{Index: idx}, nil
}

// Node returns a node by ID, hostname or unique ID prefix.
func (c *Control) Node(ctx context.Context, ref string, q api.Query) (*model.Node, api.QueryMeta, error) {
	var nd *model.Node
	idx, err := c.blocking(ctx, q, []string{state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		// Watch the whole table: the node may appear, or its hostname change.
		if _, err := tx.Nodes(ws); err != nil {
			return 0, err
		}
		var err error
		nd, err = resolveNode(tx, ref)
		if err != nil {
			return 0, err
		}
		return nd.ModifyIndex, nil
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return c.withManagerStatus([]*model.Node{nd})[0], api.QueryMeta{Index: idx}, nil
}

// withManagerStatus returns copies of nodes with their manager status as this manager
// sees it now: the leader from raft, the others reachable while their heartbeats keep
// them ready (and they are raft voters).
func (c *Control) withManagerStatus(nodes []*model.Node) []*model.Node {
	servers, _ := c.raft.Servers()
	_, leader := c.raft.Leader()
	out := make([]*model.Node, len(nodes))
	for i, nd := range nodes {
		cp := nd.Copy()
		out[i] = cp
		if cp.Role != model.RoleManager {
			cp.ManagerStatus = nil
			continue
		}
		ms := &model.ManagerStatus{Addr: cp.Addr}
		if cp.ManagerStatus != nil && cp.ManagerStatus.Addr != "" {
			ms.Addr = cp.ManagerStatus.Addr
		}
		voter := false
		for _, s := range servers {
			if s.ID == cp.ID && s.Voter {
				voter, ms.Addr = true, s.Address
			}
		}
		switch {
		case cp.ID == leader:
			ms.Reachability = model.ReachabilityLeader
		case voter && cp.Status.State == model.NodeReady:
			ms.Reachability = model.ReachabilityReachable
		default:
			ms.Reachability = model.ReachabilityUnreachable
		}
		cp.ManagerStatus = ms
	}
	return out
}

// UpdateNode changes a node's labels or availability.
func (c *Control) UpdateNode(ctx context.Context, ref string, req *api.NodeUpdateRequest) (*api.WriteResponse, error) {
	if len(req.LabelsAdd) == 0 && len(req.LabelsRemove) == 0 && req.Availability == "" {
		return nil, badRequest("nothing to update: give --label-add, --label-rm or --availability")
	}
	nd, err := resolveNode(c.st.State().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if err := checkNodeLabels(nd.Labels, req); err != nil {
		return nil, err
	}
	idx, err := c.apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{
		ID: nd.ID, LabelsAdd: req.LabelsAdd, LabelsRemove: req.LabelsRemove, Availability: req.Availability})
	if err != nil {
		return nil, err
	}
	return &api.WriteResponse{Index: idx}, nil
}

// checkNodeLabels holds the labels a node would have after req to the label limits;
// removing labels over them is always allowed.
func checkNodeLabels(labels map[string]string, req *api.NodeUpdateRequest) error {
	after := maps.Clone(labels)
	if after == nil {
		after = map[string]string{}
	}
	maps.Copy(after, req.LabelsAdd)
	for _, k := range req.LabelsRemove {
		delete(after, k)
	}
	if err := spec.ValidateLabels("labels", after); err != nil {
		return api.BadRequest(fmt.Errorf("node labels (--label-add): %w", err))
	}
	return nil
}

// SetNodeRole is `node promote` and `node demote`, made by the leader (see setRole)
// wherever the request arrives.
func (c *Control) SetNodeRole(ctx context.Context, ref string, role model.NodeRole) (*api.WriteResponse, error) {
	var resp *api.WriteResponse
	err := c.onLeader(ctx, func(ctx context.Context) (err error) {
		resp, err = c.setRole(ctx, ref, role)
		return err
	}, func(ctx context.Context, cl *api.Client) (err error) {
		if role == model.RoleManager {
			resp, err = cl.PromoteNode(ctx, ref)
		} else {
			resp, err = cl.DemoteNode(ctx, ref)
		}
		return err
	})
	return resp, err
}

// setRole changes a node's role on the leader, one membership change at a time, so
// that the recorded role follows raft's configuration and never runs ahead of it.
//
// A promotion only changes the record: the worker sees it in its next heartbeat
// answer, gets a manager certificate and asks to join raft (AddVoter, which waits
// its turn here too). A demotion is refused if the remaining managers could not form
// a majority; otherwise the manager leaves raft first and the record changes once
// raft's new configuration has committed; the node stops its manager when it sees
// both. The leader demoting itself hands leadership over and answers with the new
// leader, which makes the change in its turn.
func (c *Control) setRole(ctx context.Context, ref string, role model.NodeRole) (resp *api.WriteResponse, err error) {
	err = c.membershipChange(ctx, func() error {
		nd, err := resolveNode(c.st.State().ReadTxn(), ref)
		if err != nil {
			return err
		}
		if role == model.RoleManager {
			resp, err = c.promote(ctx, nd)
		} else {
			resp, err = c.demote(ctx, nd)
		}
		return err
	})
	return resp, err
}

func (c *Control) promote(ctx context.Context, nd *model.Node) (*api.WriteResponse, error) {
	if nd.Role == model.RoleManager {
		return &api.WriteResponse{Unchanged: true}, nil
	}
	idx, err := c.apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: nd.ID, Role: model.RoleManager})
	if err != nil {
		return nil, err
	}
	c.logger.Info("node promoted", "node", nd.ID, "hostname", nd.Hostname)
	return &api.WriteResponse{Index: idx}, nil
}

func (c *Control) demote(ctx context.Context, nd *model.Node) (*api.WriteResponse, error) {
	voter := c.IsVoter(nd.ID)
	if nd.Role == model.RoleWorker && !voter {
		return &api.WriteResponse{Unchanged: true}, nil
	}
	voters, reachable := c.Voters()
	if err := checkQuorum(voters, reachable, nd.ID, "demoting "+nd.Hostname); err != nil {
		return nil, err
	}
	if voter {
		if self, _ := c.peers.Self(); nd.ID == self {
			return nil, c.handOver(ctx)
		}
		if err := c.raft.RemoveServer(nd.ID); err != nil {
			return nil, fmt.Errorf("remove %s from raft: %w (its role is unchanged)", nodeName(nd), err)
		}
		c.logger.Info("manager removed from raft", "node", nd.ID, "hostname", nd.Hostname)
	}
	var idx uint64
	if nd.Role != model.RoleWorker {
		var err error
		if idx, err = c.apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: nd.ID, Role: model.RoleWorker}); err != nil {
			return nil, fmt.Errorf("%s left raft but its role could not be recorded: %w (run the demote again)", nodeName(nd), err)
		}
	}
	c.logger.Info("node demoted", "node", nd.ID, "hostname", nd.Hostname)
	return &api.WriteResponse{Index: idx}, nil
}

// RemoveNode removes a node, with Docker's rules: a manager must be demoted first,
// and a node that is up needs --force. --force removes a manager too, as long as
// raft keeps its majority.
func (c *Control) RemoveNode(ctx context.Context, ref string, force bool) error {
	nd, err := resolveNode(c.st.State().ReadTxn(), ref)
	if err != nil {
		return err
	}
	if self, _ := c.peers.Self(); nd.ID == self {
		return fmt.Errorf("%w: %s is the node you are talking to: run `berth leave` on it instead", api.ErrRefused, nodeName(nd))
	}
	voter := c.IsVoter(nd.ID)
	if nd.Role == model.RoleManager || voter {
		if !force {
			return fmt.Errorf("%w: %s is a manager: demote it first (`berth node demote %s`), or use --force", api.ErrRefused, nodeName(nd), nd.Hostname)
		}
		voters, reachable := c.Voters()
		if err := checkQuorum(voters, reachable, nd.ID, "removing "+nd.Hostname); err != nil {
			return err
		}
		if voter {
			if err := c.RemoveFromRaft(ctx, nd.ID); err != nil {
				return fmt.Errorf("remove %s from raft: %w", nodeName(nd), err)
			}
		}
	} else if nd.Status.State == model.NodeReady && !force {
		return fmt.Errorf("%w: %s is not down: stop it (or run `berth leave` on it) first, or use --force", api.ErrRefused, nodeName(nd))
	}
	if _, err := c.apply(ctx, command.CmdNodeRemove, command.NodeRemove{ID: nd.ID}); err != nil {
		return err
	}
	c.logger.Info("node removed", "node", nd.ID, "hostname", nd.Hostname)
	return nil
}

func nodeName(nd *model.Node) string { return nd.Hostname + " (" + nd.ID + ")" }
