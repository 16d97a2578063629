package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store"
)

// Raft is what control needs of the manager's raft besides writes: its configuration
// and its leadership (*store.Store has it all).
type Raft interface {
	Servers() ([]store.Server, error)
	Leader() (addr, id string)
	IsLeader() bool
	AddVoter(id, addr string) error
	RemoveServer(id string) error
	TransferLeadership() error
	// AppliedIndex is the index of the last entry raft handed to the state.
	AppliedIndex() uint64
	// ApplyEncoded applies a follower's write, already encoded, on the leader.
	ApplyEncoded(ctx context.Context, cmd []byte) (uint64, error)
}

// Peers is the node control runs on, as far as reaching the other managers goes.
type Peers interface {
	// Self is this node's ID and the address the other nodes reach it at.
	Self() (id, addr string)
	// KnownManagers are the other managers' addresses this node knows of, for
	// when raft names no leader.
	KnownManagers() []string
	// Client returns a client of the API of the manager at addr.
	Client(addr string) (*api.Client, error)
}

// Keyring is this manager's keyring, which follows the cluster row's autolock and
// unlock key outside the FSM.
type Keyring interface {
	// Reconcile rewraps the keyring the way c says, if c is newer than what it
	// follows.
	Reconcile(c *model.Cluster) error
}

// Voters returns the raft voters' IDs and who of them is reachable: the leader, and
// managers whose heartbeats keep them ready.
func (c *Control) Voters() ([]string, func(string) bool) {
	servers, _ := c.raft.Servers()
	var ids []string
	for _, s := range servers {
		if s.Voter {
			ids = append(ids, s.ID)
		}
	}
	_, leader := c.raft.Leader()
	tx := c.st.State().ReadTxn()
	return ids, func(id string) bool {
		if id == leader {
			return true
		}
		nd, err := tx.Node(nil, id)
		return err == nil && nd.Status.State == model.NodeReady
	}
}

// IsVoter says whether raft's configuration, as this manager knows it, counts id as
// a voter.
func (c *Control) IsVoter(id string) bool {
	servers, err := c.raft.Servers()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(servers, func(s store.Server) bool { return s.ID == id && s.Voter })
}

// ManagerAddrs lists the raft voters' addresses, for nodes that need somewhere to
// send heartbeats.
func (c *Control) ManagerAddrs() []string {
	servers, err := c.raft.Servers()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range servers {
		if s.Voter {
			out = append(out, s.Address)
		}
	}
	slices.Sort(out)
	return out
}

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

// ApplyCommand applies a follower's write here, on the leader.
func (c *Control) ApplyCommand(ctx context.Context, cmd []byte) (uint64, error) {
	return c.raft.ApplyEncoded(ctx, cmd)
}

// AddVoter adds a manager to raft (leader only), as a membership change (see
// setRole). Only a node the cluster records as a manager can be added, at the
// address it joined with.
func (c *Control) AddVoter(ctx context.Context, id string) error {
	return c.membershipChange(ctx, func() error { return c.addVoter(id) })
}

func (c *Control) addVoter(id string) error {
	nd, err := c.st.State().ReadTxn().Node(nil, id)
	if err != nil {
		return err
	}
	if nd.Role != model.RoleManager {
		return fmt.Errorf("%w: %s is not a manager in the cluster's records", ca.ErrForbidden, nodeName(nd))
	}
	if c.IsVoter(id) {
		return nil
	}
	addr := nd.Addr
	if nd.ManagerStatus != nil && nd.ManagerStatus.Addr != "" {
		addr = nd.ManagerStatus.Addr
	}
	if err := c.raft.AddVoter(id, addr); err != nil {
		return fmt.Errorf("add %s to raft: %w", nodeName(nd), err)
	}
	c.logger.Info("manager added to raft", "node", id, "hostname", nd.Hostname, "addr", addr)
	return nil
}

// RemoveVoter removes a manager from raft (leader only), as a membership change (see
// setRole). A leader asked to remove itself hands leadership over first and sends
// the caller to the new leader.
func (c *Control) RemoveVoter(ctx context.Context, id string) error {
	return c.membershipChange(ctx, func() error { return c.removeVoter(ctx, id) })
}

func (c *Control) removeVoter(ctx context.Context, id string) error {
	if !c.IsVoter(id) {
		return nil
	}
	if self, _ := c.peers.Self(); id == self {
		return c.handOver(ctx)
	}
	if err := c.raft.RemoveServer(id); err != nil {
		return fmt.Errorf("remove %s from raft: %w", id, err)
	}
	c.logger.Info("manager removed from raft", "node", id)
	return nil
}

// RemoveFromRaft has the leader remove a manager from raft, wherever the leader is,
// following it when leadership moves (a leader removing itself hands over first).
func (c *Control) RemoveFromRaft(ctx context.Context, id string) error {
	return c.onLeader(ctx, func(ctx context.Context) error {
		return c.RemoveVoter(ctx, id)
	}, func(ctx context.Context, cl *api.Client) error {
		return cl.RemoveVoter(ctx, id)
	})
}

// membershipChange runs fn on the leader under its membership lock: role changes and
// raft configuration changes run one at a time, each to its end, so that the next
// sees what the last one did. Off the leader, it returns a not-leader error naming it.
func (c *Control) membershipChange(ctx context.Context, fn func() error) error {
	select {
	case c.membership <- struct{}{}:
		defer func() { <-c.membership }()
	case <-ctx.Done():
		return fmt.Errorf("waiting for another membership change to end: %w", ctx.Err())
	}
	if !c.raft.IsLeader() {
		addr, _ := c.raft.Leader()
		return &store.NotLeaderError{Leader: addr}
	}
	return fn()
}

// handOver transfers leadership to another voter, before the leader leaves raft, and
// returns a not-leader error naming the new leader, for the caller to take its
// request there.
func (c *Control) handOver(ctx context.Context) error {
	if err := c.raft.TransferLeadership(); err != nil {
		return fmt.Errorf("hand over leadership before leaving raft: %w", err)
	}
	self, _ := c.peers.Self()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		addr, id := c.raft.Leader()
		if addr != "" && id != self {
			return &store.NotLeaderError{Leader: addr}
		}
		if sleepCtx(ctx, 50*time.Millisecond); ctx.Err() != nil {
			return &store.NotLeaderError{Leader: addr}
		}
	}
}

// onLeader runs a membership change on the leader: local when this manager leads,
// else remote through the leader's port (raft's idea of it, else the managers this
// node knows, which name the leader), following not-leader answers and waiting out
// elections, within the apply timeout and some.
func (c *Control) onLeader(ctx context.Context, local func(context.Context) error, remote func(context.Context, *api.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+5*time.Second)
	defer cancel()
	redirect := ""
	var lastErr error = store.ErrNoLeader
	for attempt := 0; ; attempt++ {
		var err error
		if redirect == "" && c.raft.IsLeader() {
			err = local(ctx)
		} else if addr := cmp.Or(redirect, c.leaderGuess(attempt)); addr == "" {
			err = store.ErrNoLeader
		} else {
			var cl *api.Client
			if cl, err = c.peers.Client(addr); err == nil {
				err = remote(ctx, cl)
			}
		}
		redirect = ""
		var nl *store.NotLeaderError
		var apiErr *api.Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &nl) && nl.Leader != "":
			redirect = nl.Leader
			continue
		case errors.As(err, &apiErr) && apiErr.Leader != "":
			redirect = apiErr.Leader
			continue
		case errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrNoLeader), errors.Is(err, api.ErrNotLeader), errors.Is(err, api.ErrNoLeader), isConnectError(err):
			lastErr = err
		default:
			return err
		}
		if sleepCtx(ctx, 100*time.Millisecond); ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
	}
}

// leaderGuess is where to look for the leader: raft's idea of it, else, in turn, the
// other managers this node knows (a manager just taken out of raft hears no leader
// any more).
func (c *Control) leaderGuess(attempt int) string {
	if addr, _ := c.raft.Leader(); addr != "" {
		return addr
	}
	others := c.peers.KnownManagers()
	if len(others) == 0 {
		return ""
	}
	return others[attempt%len(others)]
}

// LeaderClient is a client of the leader's API, for what only the leader holds: the
// sources' repositories. what says what needs the leader, for the error.
func (c *Control) LeaderClient(what string) (*api.Client, error) {
	addr, _ := c.raft.Leader()
	if addr == "" {
		return nil, fmt.Errorf("%w: %s, and there is none; try again once the managers have elected one", store.ErrNoLeader, what)
	}
	return c.peers.Client(addr)
}

func isConnectError(err error) bool {
	var ce *api.ConnectError
	return errors.As(err, &ce)
}
