package node

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/spec"
)

// notFoundError names what an operator asked for; it matches state.ErrNotFound.
type notFoundError struct{ what, ref string }

func (e *notFoundError) Error() string        { return "no such " + e.what + ": " + e.ref }
func (e *notFoundError) Is(target error) bool { return target == state.ErrNotFound }

// noLeaderError is store.ErrNoLeader with what this manager can see.
type noLeaderError struct {
	reachable, total int
	waited           time.Duration
	cause            error
}

func (e *noLeaderError) Error() string {
	return fmt.Sprintf("no leader: %d of %d managers reachable, and raft needs a majority of %d to elect one (waited %s): start the stopped managers or check the network between them",
		e.reachable, e.total, e.total/2+1, e.waited)
}

func (e *noLeaderError) Is(target error) bool { return target == store.ErrNoLeader }
func (e *noLeaderError) Unwrap() error        { return e.cause }

// apply writes a command; a lack of leader is explained by counting the managers this
// one can reach. A write forwarded to the leader returns once this manager has
// applied it too, so that whoever wrote through this manager reads its write here
// (and a rotated token is refused here) at once.
func (m *manager) apply(ctx context.Context, t store.CommandType, body any) (uint64, error) {
	idx, err := m.st.Apply(ctx, t, body)
	if errors.Is(err, store.ErrNoLeader) {
		return 0, m.noLeader(err)
	}
	if err == nil {
		m.waitApplied(ctx, idx)
	}
	return idx, err
}

// waitApplied waits (bounded by the apply timeout) until this manager has applied
// index. Followers apply an entry within a round trip of the leader, so it polls
// briefly first, then backs off.
func (m *manager) waitApplied(ctx context.Context, index uint64) {
	ctx, cancel := context.WithTimeout(ctx, m.st.ApplyTimeout())
	defer cancel()
	for d := 200 * time.Microsecond; m.st.StateIndex() < index; d = min(2*d, 2*time.Millisecond) {
		if !sleep(ctx, d) {
			return
		}
	}
}

// noLeader pings the other voters (one second each, at once) to count how many are
// reachable from here.
func (m *manager) noLeader(cause error) error {
	servers, err := m.st.Servers()
	if err != nil {
		return cause
	}
	self := m.n.Status().NodeID
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		total     int
		reachable int
	)
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		total++
		if s.ID == self {
			reachable++
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			c, err := m.n.client(addr)
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if c.Ping(ctx) == nil {
				mu.Lock()
				reachable++
				mu.Unlock()
			}
		}(s.Address)
	}
	wg.Wait()
	if total == 0 {
		return cause
	}
	return &noLeaderError{reachable: reachable, total: total, waited: m.st.ApplyTimeout(), cause: cause}
}

// blocking runs a blocking query on the current state store, starting over on a
// store replaced by a snapshot restore.
func (m *manager) blocking(ctx context.Context, q api.Query, tables []string, fn func(*state.ReadTxn, memdb.WatchSet) (uint64, error)) (uint64, error) {
	if q.Wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.Wait)
		defer cancel()
	}
	for {
		idx, err := m.state().Blocking(ctx, q.Index, tables, fn)
		if errors.Is(err, state.ErrAbandoned) {
			continue
		}
		return idx, err
	}
}

// voters returns the raft voters' IDs and who of them is reachable: the leader, and
// managers whose heartbeats keep them ready.
func (m *manager) voters() ([]string, func(string) bool) {
	servers, _ := m.st.Servers()
	var ids []string
	for _, s := range servers {
		if s.Voter {
			ids = append(ids, s.ID)
		}
	}
	_, leader := m.st.Leader()
	tx := m.state().ReadTxn()
	return ids, func(id string) bool {
		if id == leader {
			return true
		}
		nd, err := tx.Node(nil, id)
		return err == nil && nd.Status.State == state.NodeReady
	}
}

// withManagerStatus returns copies of nodes with their manager status as this manager
// sees it now: the leader from raft, the others reachable while their heartbeats keep
// them ready (and they are raft voters).
func (m *manager) withManagerStatus(nodes []*state.Node) []*state.Node {
	servers, _ := m.st.Servers()
	_, leader := m.st.Leader()
	out := make([]*state.Node, len(nodes))
	for i, nd := range nodes {
		c := nd.Copy()
		out[i] = c
		if c.Role != state.RoleManager {
			c.ManagerStatus = nil
			continue
		}
		ms := &state.ManagerStatus{Addr: c.Addr}
		if c.ManagerStatus != nil && c.ManagerStatus.Addr != "" {
			ms.Addr = c.ManagerStatus.Addr
		}
		voter := false
		for _, s := range servers {
			if s.ID == c.ID && s.Voter {
				voter, ms.Addr = true, s.Address
			}
		}
		switch {
		case c.ID == leader:
			ms.Reachability = state.ReachabilityLeader
		case voter && c.Status.State == state.NodeReady:
			ms.Reachability = state.ReachabilityReachable
		default:
			ms.Reachability = state.ReachabilityUnreachable
		}
		c.ManagerStatus = ms
	}
	return out
}

// resolveNode finds a node by ID, hostname or unique ID prefix, as Docker does.
func resolveNode(tx *state.ReadTxn, ref string) (*state.Node, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: no node given", api.ErrBadRequest)
	}
	nd, n, err := state.LookupRef(ref,
		func(id string) (*state.Node, error) { return tx.Node(nil, id) },
		func(host string) (*state.Node, error) { return tx.NodeByHostname(nil, host) },
		func() ([]*state.Node, error) { return tx.Nodes(nil) },
		func(nd *state.Node) string { return nd.ID })
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, &notFoundError{"node", ref}
	case n > 1:
		return nil, fmt.Errorf("%w: node %q is ambiguous: %d node IDs start with it; give more of the ID", api.ErrBadRequest, ref, n)
	}
	return nd, nil
}

func nodeName(nd *state.Node) string { return nd.Hostname + " (" + nd.ID + ")" }

// ---------------------------------------------------------------------------
// Cluster.

// Cluster implements api.Backend.
func (n *Node) Cluster(ctx context.Context) (*state.Cluster, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	c, err := m.state().ReadTxn().Cluster(nil)
	if err != nil {
		return nil, err
	}
	return c.Redacted(), nil
}

// updateCluster changes the cluster row with fn, compare-and-swap, retrying when
// another manager changed it in between. fn reports whether it changed anything.
func (m *manager) updateCluster(ctx context.Context, fn func(c *state.Cluster) (bool, error)) (*state.Cluster, uint64, error) {
	var lastErr error
	for range 10 {
		cur, err := m.state().ReadTxn().Cluster(nil)
		if err != nil {
			return nil, 0, err
		}
		next := cur.Copy()
		changed, err := fn(next)
		if err != nil || !changed {
			return cur, 0, err
		}
		idx, err := m.apply(ctx, store.CmdClusterUpdate, store.ClusterUpdate{ExpectModifyIndex: cur.ModifyIndex, Cluster: next})
		if !errors.Is(err, state.ErrConflict) {
			return next, idx, err
		}
		// This manager's copy is behind the leader's: let it catch up.
		lastErr = err
		if !sleep(ctx, 100*time.Millisecond) {
			return nil, 0, ctx.Err()
		}
	}
	return nil, 0, lastErr
}

// syncKeyring waits until this manager has applied index, then brings its keyring in
// line with the cluster row, so that an answer carrying a new unlock key means this
// manager already uses it.
func (m *manager) syncKeyring(ctx context.Context, index uint64) error {
	if err := waitFor(ctx, m.st.ApplyTimeout(), func() bool { return m.st.StateIndex() >= index }); err != nil {
		return err
	}
	c, err := m.state().ReadTxn().Cluster(nil)
	if err != nil {
		return err
	}
	return m.reconcileKeyring(c)
}

// UpdateCluster implements api.Backend (`berth update --autolock --max-replicas`).
func (n *Node) UpdateCluster(ctx context.Context, req *api.ClusterUpdateRequest) (*api.ClusterUpdateResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	resp := &api.ClusterUpdateResponse{}
	if req.MaxReplicas != nil {
		if err := m.setMaxReplicas(ctx, *req.MaxReplicas); err != nil {
			return nil, err
		}
	}
	if req.Autolock == nil {
		return resp, nil
	}
	on := *req.Autolock
	var key string
	_, idx, err := m.updateCluster(ctx, func(c *state.Cluster) (bool, error) {
		if c.Autolock == on {
			return false, nil
		}
		c.Autolock = on
		c.UnlockKeyGeneration++
		c.UnlockKey = ""
		if on {
			k, err := sealed.NewUnlockKey()
			if err != nil {
				return false, err
			}
			c.UnlockKey, key = k, k
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if idx > 0 {
		if err := m.syncKeyring(ctx, idx); err != nil {
			return nil, fmt.Errorf("autolock changed in the cluster, but this manager's keyring is not updated yet: %w", err)
		}
		m.logger.Info("autolock changed", "autolock", on)
	}
	resp.UnlockKey = key
	return resp, nil
}

// UnlockKey implements api.Backend.
func (n *Node) UnlockKey(ctx context.Context, rotate bool) (*api.UnlockKeyResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if !rotate {
		c, err := m.state().ReadTxn().Cluster(nil)
		if err != nil {
			return nil, err
		}
		if !c.Autolock {
			return nil, fmt.Errorf("%w: turn it on with `berth update --autolock=true`", sealed.ErrAutolockOff)
		}
		return &api.UnlockKeyResponse{Key: c.UnlockKey}, nil
	}
	key, err := sealed.NewUnlockKey()
	if err != nil {
		return nil, err
	}
	_, idx, err := m.updateCluster(ctx, func(c *state.Cluster) (bool, error) {
		if !c.Autolock {
			return false, fmt.Errorf("%w: turn it on with `berth update --autolock=true`", sealed.ErrAutolockOff)
		}
		c.UnlockKey = key
		c.UnlockKeyGeneration++
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if err := m.syncKeyring(ctx, idx); err != nil {
		return nil, fmt.Errorf("the unlock key was rotated in the cluster, but this manager's keyring is not updated yet: %w", err)
	}
	m.logger.Info("unlock key rotated")
	return &api.UnlockKeyResponse{Key: key}, nil
}

// JoinToken implements api.Backend.
func (n *Node) JoinToken(ctx context.Context, role state.NodeRole, rotate bool) (*api.JoinTokenResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	pick := func(c *state.Cluster) *string {
		if role == state.RoleManager {
			return &c.JoinTokens.Manager
		}
		return &c.JoinTokens.Worker
	}
	c, err := m.state().ReadTxn().Cluster(nil)
	if err != nil {
		return nil, err
	}
	if rotate {
		c, _, err = m.updateCluster(ctx, func(c *state.Cluster) (bool, error) {
			old, err := ca.ParseJoinToken(*pick(c))
			if err != nil {
				return false, err
			}
			t, err := ca.RotateJoinToken(old)
			if err != nil {
				return false, err
			}
			*pick(c) = t.Encode()
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		m.logger.Info("join token rotated", "role", role)
	}
	return &api.JoinTokenResponse{Role: role, Token: *pick(c), ManagerAddr: n.metaCopy().AdvertiseAddr}, nil
}

// ---------------------------------------------------------------------------
// Nodes.

// Nodes implements api.Backend.
func (n *Node) Nodes(ctx context.Context, q api.Query) ([]*state.Node, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var nodes []*state.Node
	idx, err := m.blocking(ctx, q, []string{state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		nodes, err = tx.Nodes(ws)
		return tx.Index(state.TableNodes), err
	})
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	return m.withManagerStatus(nodes), api.QueryMeta{Index: idx}, nil
}

// Node implements api.Backend.
func (n *Node) Node(ctx context.Context, ref string, q api.Query) (*state.Node, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var nd *state.Node
	idx, err := m.blocking(ctx, q, []string{state.TableNodes}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
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
	return m.withManagerStatus([]*state.Node{nd})[0], api.QueryMeta{Index: idx}, nil
}

// UpdateNode implements api.Backend.
func (n *Node) UpdateNode(ctx context.Context, ref string, req *api.NodeUpdateRequest) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if len(req.LabelsAdd) == 0 && len(req.LabelsRemove) == 0 && req.Availability == "" {
		return nil, fmt.Errorf("%w: nothing to update: give --label-add, --label-rm or --availability", api.ErrBadRequest)
	}
	nd, err := resolveNode(m.state().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if err := checkNodeLabels(nd.Labels, req); err != nil {
		return nil, err
	}
	idx, err := m.apply(ctx, store.CmdNodeUpdate, store.NodeUpdate{
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
		return fmt.Errorf("%w: node labels (--label-add): %w", api.ErrBadRequest, err)
	}
	return nil
}

// SetNodeRole implements api.Backend: `node promote` and `node demote`, made by the
// leader (see setRole) wherever the request arrives.
func (n *Node) SetNodeRole(ctx context.Context, ref string, role state.NodeRole) (*api.WriteResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	var resp *api.WriteResponse
	err = m.onLeader(ctx, func(ctx context.Context) (err error) {
		resp, err = m.setRole(ctx, ref, role)
		return err
	}, func(ctx context.Context, c *api.Client) (err error) {
		if role == state.RoleManager {
			resp, err = c.PromoteNode(ctx, ref)
		} else {
			resp, err = c.DemoteNode(ctx, ref)
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
func (m *manager) setRole(ctx context.Context, ref string, role state.NodeRole) (*api.WriteResponse, error) {
	unlock, err := m.lockMembership(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !m.st.IsLeader() {
		addr, _ := m.st.Leader()
		return nil, &server.NotLeaderError{Leader: addr}
	}
	nd, err := resolveNode(m.state().ReadTxn(), ref)
	if err != nil {
		return nil, err
	}
	if role == state.RoleManager {
		if nd.Role == state.RoleManager {
			return &api.WriteResponse{Unchanged: true}, nil
		}
		idx, err := m.apply(ctx, store.CmdNodeUpdate, store.NodeUpdate{ID: nd.ID, Role: state.RoleManager})
		if err != nil {
			return nil, err
		}
		m.logger.Info("node promoted", "node", nd.ID, "hostname", nd.Hostname)
		return &api.WriteResponse{Index: idx}, nil
	}
	voter := m.isVoter(nd.ID)
	if nd.Role == state.RoleWorker && !voter {
		return &api.WriteResponse{Unchanged: true}, nil
	}
	voters, reachable := m.voters()
	if err := checkQuorum(voters, reachable, nd.ID, "demoting "+nd.Hostname); err != nil {
		return nil, err
	}
	if voter {
		if nd.ID == m.n.Status().NodeID {
			return nil, m.handOver(ctx)
		}
		if err := m.st.RemoveServer(nd.ID); err != nil {
			return nil, fmt.Errorf("remove %s from raft: %w (its role is unchanged)", nodeName(nd), err)
		}
		m.logger.Info("manager removed from raft", "node", nd.ID, "hostname", nd.Hostname)
	}
	var idx uint64
	if nd.Role != state.RoleWorker {
		if idx, err = m.apply(ctx, store.CmdNodeUpdate, store.NodeUpdate{ID: nd.ID, Role: state.RoleWorker}); err != nil {
			return nil, fmt.Errorf("%s left raft but its role could not be recorded: %w (run the demote again)", nodeName(nd), err)
		}
	}
	m.logger.Info("node demoted", "node", nd.ID, "hostname", nd.Hostname)
	return &api.WriteResponse{Index: idx}, nil
}

// lockMembership takes the leader's membership lock: role changes and raft
// configuration changes run one at a time, each to its end, so that the next sees
// what the last one did.
func (m *manager) lockMembership(ctx context.Context) (unlock func(), err error) {
	select {
	case m.membership <- struct{}{}:
		return func() { <-m.membership }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for another membership change to end: %w", ctx.Err())
	}
}

// handOver transfers leadership to another voter, before the leader leaves raft, and
// returns a not-leader error naming the new leader, for the caller to take its
// request there.
func (m *manager) handOver(ctx context.Context) error {
	if err := m.st.TransferLeadership(); err != nil {
		return fmt.Errorf("hand over leadership before leaving raft: %w", err)
	}
	self := m.n.Status().NodeID
	var addr string
	_ = waitFor(ctx, 5*time.Second, func() bool {
		a, id := m.st.Leader()
		addr = a
		return a != "" && id != self
	})
	return &server.NotLeaderError{Leader: addr}
}

// RemoveNode implements api.Backend, with Docker's rules: a manager must be demoted
// first, and a node that is up needs --force. --force removes a manager too, as long
// as raft keeps its majority.
func (n *Node) RemoveNode(ctx context.Context, ref string, force bool) error {
	m, err := n.readyManager()
	if err != nil {
		return err
	}
	nd, err := resolveNode(m.state().ReadTxn(), ref)
	if err != nil {
		return err
	}
	if nd.ID == n.Status().NodeID {
		return fmt.Errorf("%w: %s is the node you are talking to: run `berth leave` on it instead", api.ErrRefused, nodeName(nd))
	}
	voter := m.isVoter(nd.ID)
	if nd.Role == state.RoleManager || voter {
		if !force {
			return fmt.Errorf("%w: %s is a manager: demote it first (`berth node demote %s`), or use --force", api.ErrRefused, nodeName(nd), nd.Hostname)
		}
		voters, reachable := m.voters()
		if err := checkQuorum(voters, reachable, nd.ID, "removing "+nd.Hostname); err != nil {
			return err
		}
		if voter {
			if err := m.removeVoter(ctx, nd.ID); err != nil {
				return fmt.Errorf("remove %s from raft: %w", nodeName(nd), err)
			}
		}
	} else if nd.Status.State == state.NodeReady && !force {
		return fmt.Errorf("%w: %s is not down: stop it (or run `berth leave` on it) first, or use --force", api.ErrRefused, nodeName(nd))
	}
	if _, err := m.apply(ctx, store.CmdNodeRemove, store.NodeRemove{ID: nd.ID}); err != nil {
		return err
	}
	m.logger.Info("node removed", "node", nd.ID, "hostname", nd.Hostname)
	return nil
}

// removeVoter has the leader remove a manager from raft, wherever the leader is,
// following it when leadership moves (a leader removing itself hands over first).
func (m *manager) removeVoter(ctx context.Context, id string) error {
	return m.onLeader(ctx, func(ctx context.Context) error {
		return m.n.RemoveVoter(ctx, id)
	}, func(ctx context.Context, c *api.Client) error {
		return c.RemoveVoter(ctx, id)
	})
}

// onLeader runs a membership change on the leader: local when this manager leads,
// else remote through the leader's port (raft's idea of it, else the managers this
// node knows, which name the leader), following not-leader answers and waiting out
// elections, within the apply timeout and some.
func (m *manager) onLeader(ctx context.Context, local func(context.Context) error, remote func(context.Context, *api.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.st.ApplyTimeout()+5*time.Second)
	defer cancel()
	redirect := ""
	var lastErr error = store.ErrNoLeader
	for attempt := 0; ; attempt++ {
		var err error
		if redirect == "" && m.st.IsLeader() {
			err = local(ctx)
		} else if addr := cmp.Or(redirect, m.leaderGuess(attempt)); addr == "" {
			err = store.ErrNoLeader
		} else {
			var c *api.Client
			if c, err = m.n.client(addr); err == nil {
				err = remote(ctx, c)
			}
		}
		redirect = ""
		var nl *server.NotLeaderError
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
		if !sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
	}
}

// leaderGuess is where to look for the leader: raft's idea of it, else, in turn, the
// other managers this node knows (a manager just taken out of raft hears no leader
// any more).
func (m *manager) leaderGuess(attempt int) string {
	if addr, _ := m.st.Leader(); addr != "" {
		return addr
	}
	others := m.knownManagers()
	if len(others) == 0 {
		return ""
	}
	return others[attempt%len(others)]
}

func isConnectError(err error) bool {
	var ce *api.ConnectError
	return errors.As(err, &ce)
}

// ---------------------------------------------------------------------------
// Secrets and configs.

func checkObject(kind string, req *api.ObjectCreateRequest) error {
	if err := spec.CheckObjectName(kind, req.Name); err != nil {
		return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if len(req.Data) == 0 {
		return fmt.Errorf("%w: %s %s is empty", api.ErrBadRequest, kind, req.Name)
	}
	if len(req.Data) > spec.MaxObjectBytes {
		return fmt.Errorf("%w: %s %s has %d bytes; the limit is %d", api.ErrBadRequest, kind, req.Name, len(req.Data), spec.MaxObjectBytes)
	}
	if err := spec.ValidateLabels("labels", req.Labels); err != nil {
		return fmt.Errorf("%w: %s %s: %w", api.ErrBadRequest, kind, req.Name, err)
	}
	return nil
}

// createVersion writes version latest+1 of a secret or config, retrying when another
// writer took that version first.
func (m *manager) createVersion(ctx context.Context, latest func(tx *state.ReadTxn) (uint64, error),
	write func(id string, version uint64) (uint64, error)) (*api.ObjectCreateResponse, error) {
	var lastErr error
	for range 5 {
		v, err := latest(m.state().ReadTxn())
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			return nil, err
		}
		id := newID()
		idx, err := write(id, v+1)
		if errors.Is(err, state.ErrConflict) {
			lastErr = err
			if !sleep(ctx, 50*time.Millisecond) {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return &api.ObjectCreateResponse{ID: id, Version: v + 1, Index: idx}, nil
	}
	return nil, lastErr
}

// CreateSecret implements api.Backend.
func (n *Node) CreateSecret(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if err := checkObject("secret", req); err != nil {
		return nil, err
	}
	resp, err := m.createVersion(ctx, func(tx *state.ReadTxn) (uint64, error) {
		s, err := tx.Secret(nil, req.Name)
		if err != nil {
			return 0, err
		}
		return s.Version, nil
	}, func(id string, v uint64) (uint64, error) {
		return m.apply(ctx, store.CmdSecretUpsert, &state.Secret{ID: id, Name: req.Name, Version: v, Data: req.Data, Labels: req.Labels})
	})
	if err != nil {
		return nil, err
	}
	resp.Name = req.Name
	return resp, nil
}

// Secrets implements api.Backend.
func (n *Node) Secrets(ctx context.Context, q api.Query) ([]*state.Secret, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var out []*state.Secret
	idx, err := m.blocking(ctx, q, []string{state.TableSecrets}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		var err error
		out, err = tx.Secrets(ws)
		return tx.Index(state.TableSecrets), err
	})
	return out, api.QueryMeta{Index: idx}, err
}

// CreateConfig implements api.Backend.
func (n *Node) CreateConfig(ctx context.Context, req *api.ObjectCreateRequest) (*api.ObjectCreateResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	if err := checkObject("config", req); err != nil {
		return nil, err
	}
	resp, err := m.createVersion(ctx, func(tx *state.ReadTxn) (uint64, error) {
		c, err := tx.Config(nil, req.Name)
		if err != nil {
			return 0, err
		}
		return c.Version, nil
	}, func(id string, v uint64) (uint64, error) {
		return m.apply(ctx, store.CmdConfigUpsert, &state.Config{ID: id, Name: req.Name, Version: v, Data: req.Data, Labels: req.Labels})
	})
	if err != nil {
		return nil, err
	}
	resp.Name = req.Name
	return resp, nil
}

// Configs implements api.Backend.
func (n *Node) Configs(ctx context.Context, q api.Query) ([]*state.Config, api.QueryMeta, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	var out []*state.Config
	idx, err := m.blocking(ctx, q, []string{state.TableConfigs}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
		all, err := tx.Configs(ws)
		out = make([]*state.Config, len(all))
		for i, c := range all {
			cp := c.Copy()
			cp.Data = nil
			out[i] = cp
		}
		return tx.Index(state.TableConfigs), err
	})
	return out, api.QueryMeta{Index: idx}, err
}

// ---------------------------------------------------------------------------
// Between nodes.

func (m *manager) rootCA(c *state.Cluster) (*ca.RootCA, error) {
	if c.RootCAKey == "" {
		return nil, errors.New("the cluster row holds no CA key")
	}
	return ca.ParseRootCA([]byte(c.RootCACert), []byte(c.RootCAKey))
}

func certSerial(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return cert.SerialNumber.Text(16)
}

// RequestJoin implements api.Backend: the token decides the role; the node ID is
// made here.
func (n *Node) RequestJoin(ctx context.Context, req *api.NodeJoinRequest) (*api.NodeJoinResponse, error) {
	m, err := n.readyManager()
	if err != nil {
		return nil, err
	}
	tx := m.state().ReadTxn()
	c, err := tx.Cluster(nil)
	if err != nil {
		return nil, err
	}
	worker, err := ca.ParseJoinToken(c.JoinTokens.Worker)
	if err != nil {
		return nil, fmt.Errorf("the cluster's worker token: %w", err)
	}
	manager, err := ca.ParseJoinToken(c.JoinTokens.Manager)
	if err != nil {
		return nil, fmt.Errorf("the cluster's manager token: %w", err)
	}
	role, err := ca.VerifyJoinToken(req.Token, worker, manager)
	if err != nil {
		return nil, err
	}
	if req.Hostname == "" || strings.ContainsRune(req.Hostname, 0) {
		return nil, fmt.Errorf("%w: the joining node gave no hostname", api.ErrBadRequest)
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		return nil, fmt.Errorf("%w: the joining node's address %q is not host:port", api.ErrBadRequest, req.Addr)
	}
	if old, err := tx.NodeByHostname(nil, req.Hostname); err == nil {
		if old.Status.State == state.NodeReady || m.isVoter(old.ID) {
			return nil, fmt.Errorf("%w: a node named %s is already in the cluster and up (%s): give the new node another --hostname, or remove the old one with `berth node rm`",
				state.ErrConflict, req.Hostname, old.ID)
		}
		// The same machine coming back after `berth leave`: its old record goes.
		if _, err := m.apply(ctx, store.CmdNodeRemove, store.NodeRemove{ID: old.ID}); err != nil {
			return nil, err
		}
		m.logger.Info("replaced the record of a node that was down", "node", old.ID, "hostname", old.Hostname)
	}
	root, err := m.rootCA(c)
	if err != nil {
		return nil, err
	}
	id := newID()
	certPEM, err := root.IssueNodeCert(req.CSR, id, role, 0, req.Addr)
	if err != nil {
		return nil, err
	}
	nd := &state.Node{
		ID: id, Hostname: req.Hostname, Role: state.NodeRole(role), Availability: state.AvailabilityActive,
		Platform: req.Platform, Resources: req.Resources, Addr: req.Addr,
		Status:     state.NodeStatus{State: state.NodeReady, Timestamp: time.Now().UTC()},
		CertSerial: certSerial(certPEM),
	}
	if role == ca.RoleManager {
		nd.ManagerStatus = &state.ManagerStatus{Reachability: state.ReachabilityReachable, Addr: req.Addr}
	}
	if _, err := m.apply(ctx, store.CmdNodeUpsert, nd); err != nil {
		return nil, err
	}
	resp := &api.NodeJoinResponse{
		NodeID: id, Role: nd.Role, Certificate: string(certPEM), CACertificate: c.RootCACert,
		Managers: m.managerAddrs(),
	}
	if role == ca.RoleManager {
		resp.UnlockKeyGeneration = c.UnlockKeyGeneration
		if c.Autolock {
			resp.UnlockKey = c.UnlockKey
		}
	}
	m.logger.Info("node joined", "node", id, "hostname", req.Hostname, "role", role, "addr", req.Addr)
	return resp, nil
}

// RenewCertificate implements api.Backend. The role is the cluster's record of the
// node, whatever the node holds now: this is how promotions and demotions reach it.
func (n *Node) RenewCertificate(ctx context.Context, caller ca.Identity, req *api.CertificateRequest) (*api.CertificateResponse, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	tx := m.state().ReadTxn()
	nd, err := tx.Node(nil, caller.NodeID)
	if err != nil {
		return nil, err
	}
	c, err := tx.Cluster(nil)
	if err != nil {
		return nil, err
	}
	root, err := m.rootCA(c)
	if err != nil {
		return nil, err
	}
	certPEM, err := root.IssueNodeCert(req.CSR, nd.ID, ca.Role(nd.Role), 0, nd.Addr)
	if err != nil {
		return nil, err
	}
	resp := &api.CertificateResponse{Role: nd.Role, Certificate: string(certPEM), CACertificate: c.RootCACert}
	if nd.Role == state.RoleManager {
		resp.UnlockKeyGeneration = c.UnlockKeyGeneration
		if c.Autolock {
			resp.UnlockKey = c.UnlockKey
		}
	}
	m.logger.Info("certificate issued", "node", nd.ID, "hostname", nd.Hostname, "role", nd.Role)
	return resp, nil
}

// ApplyCommand implements api.Backend: a follower's write, applied here.
func (n *Node) ApplyCommand(ctx context.Context, cmd []byte) (uint64, error) {
	m, err := n.activeManager()
	if err != nil {
		return 0, err
	}
	return m.st.ApplyEncoded(ctx, cmd)
}

// AddVoter implements api.Backend (leader only), as a membership change (see
// setRole). Only a node the cluster records as a manager can be added, at the address
// it joined with.
func (n *Node) AddVoter(ctx context.Context, id string) error {
	m, err := n.activeManager()
	if err != nil {
		return err
	}
	unlock, err := m.lockMembership(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !m.st.IsLeader() {
		addr, _ := m.st.Leader()
		return &server.NotLeaderError{Leader: addr}
	}
	nd, err := m.state().ReadTxn().Node(nil, id)
	if err != nil {
		return err
	}
	if nd.Role != state.RoleManager {
		return fmt.Errorf("%w: %s is not a manager in the cluster's records", ca.ErrForbidden, nodeName(nd))
	}
	if m.isVoter(id) {
		return nil
	}
	addr := nd.Addr
	if nd.ManagerStatus != nil && nd.ManagerStatus.Addr != "" {
		addr = nd.ManagerStatus.Addr
	}
	if err := m.st.AddVoter(id, addr); err != nil {
		return fmt.Errorf("add %s to raft: %w", nodeName(nd), err)
	}
	m.logger.Info("manager added to raft", "node", id, "hostname", nd.Hostname, "addr", addr)
	return nil
}

// RemoveVoter implements api.Backend (leader only), as a membership change (see
// setRole). A leader asked to remove itself hands leadership over first and sends the
// caller to the new leader.
func (n *Node) RemoveVoter(ctx context.Context, id string) error {
	m, err := n.activeManager()
	if err != nil {
		return err
	}
	unlock, err := m.lockMembership(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !m.st.IsLeader() {
		addr, _ := m.st.Leader()
		return &server.NotLeaderError{Leader: addr}
	}
	if !m.isVoter(id) {
		return nil
	}
	if id == n.Status().NodeID {
		return m.handOver(ctx)
	}
	if err := m.st.RemoveServer(id); err != nil {
		return fmt.Errorf("remove %s from raft: %w", id, err)
	}
	m.logger.Info("manager removed from raft", "node", id)
	return nil
}
