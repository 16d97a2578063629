package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/spec"
)

// legacyHeartbeatPeriod is the setting a cluster made before 1 s became the default
// stores. Nothing but that default ever wrote it, so it means "the default".
const legacyHeartbeatPeriod = 5 * time.Second

// tracker is the leader's memory of heartbeats. It is never written to raft: only the
// transitions it causes are (ready -> down, down -> ready).
type tracker struct {
	mu      sync.Mutex
	leading bool
	since   time.Time
	seen    map[string]time.Time
}

func newTracker() *tracker { return &tracker{} }

// lead starts tracking when this manager becomes leader. Nodes it has not heard from
// yet count from now: a new leader gives everyone a full grace period rather than
// declaring the whole cluster down.
func (t *tracker) lead(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.leading {
		t.leading, t.since, t.seen = true, now, map[string]time.Time{}
	}
}

func (t *tracker) follow() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leading, t.seen = false, nil
}

func (t *tracker) beat(id string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen != nil {
		t.seen[id] = now
	}
}

func (t *tracker) last(id string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastLocked(id)
}

func (t *tracker) lastLocked(id string) time.Time {
	if at, ok := t.seen[id]; ok {
		return at
	}
	return t.since
}

// overdue returns the nodes, not yet down, that have not beaten for silence at now,
// and the earliest time another one will have (zero when none can).
func (t *tracker) overdue(nodes []*model.Node, now time.Time, silence time.Duration) (late []*model.Node, next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, nd := range nodes {
		if nd.Status.State == model.NodeDown {
			continue
		}
		deadline := t.lastLocked(nd.ID).Add(silence)
		switch {
		case !deadline.After(now):
			late = append(late, nd)
		case next.IsZero() || deadline.Before(next):
			next = deadline
		}
	}
	return late, next
}

// heartbeatPeriod is this node's override, else the cluster's setting, else Swarm's
// default.
func (n *Node) heartbeatPeriod(m *manager) time.Duration {
	if n.cfg.HeartbeatPeriod > 0 {
		return n.cfg.HeartbeatPeriod
	}
	if m != nil {
		if c, err := m.state().ReadTxn().Cluster(nil); err == nil {
			return settingsPeriod(c.Settings)
		}
	}
	return model.DefaultHeartbeatPeriod
}

// settingsPeriod is the heartbeat period of the cluster's settings.
func settingsPeriod(s model.Settings) time.Duration {
	p := time.Duration(s.HeartbeatPeriod)
	if p <= 0 || p == legacyHeartbeatPeriod {
		return model.DefaultHeartbeatPeriod
	}
	return p
}

// monitorHeartbeats runs on every manager and acts while it leads: a node not heard
// from for api.DownAfter periods is written down. It sleeps until the earliest deadline
// (at most a period, to notice a new leadership or period), so a node is down within
// a few milliseconds of its deadline, and a cluster whose nodes all beat costs about
// one pass over the nodes a period.
func (m *manager) monitorHeartbeats(ctx context.Context) {
	var wait time.Duration
	for {
		if !sleep(ctx, wait) {
			return
		}
		period := m.n.heartbeatPeriod(m)
		wait = period
		if !m.st.IsLeader() {
			m.hb.follow()
			continue
		}
		now := time.Now()
		m.hb.lead(now)
		nodes, err := m.state().ReadTxn().Nodes(nil)
		if err != nil {
			continue
		}
		late, next := m.hb.overdue(nodes, now, api.DownAfter*period)
		for _, nd := range late {
			m.markDown(ctx, nd, now)
		}
		if !next.IsZero() {
			// A floor keeps a write that keeps failing from spinning.
			wait = max(min(wait, next.Sub(time.Now())), period/20)
		}
	}
}

// markDown writes node nd down: a transition, the only raft write heartbeats make.
func (m *manager) markDown(ctx context.Context, nd *model.Node, now time.Time) {
	msg := fmt.Sprintf("heartbeat failure: no heartbeat for %s", now.Sub(m.hb.last(nd.ID)).Round(100*time.Millisecond))
	actx, cancel := context.WithTimeout(ctx, m.st.ApplyTimeout())
	defer cancel()
	if _, err := m.st.Apply(actx, command.CmdNodeStatus, command.NodeStatusUpdate{
		ID: nd.ID, Status: model.NodeStatus{State: model.NodeDown, Message: msg, Timestamp: now.UTC()}}); err != nil {
		m.logger.Warn("could not mark node down", "node", nd.ID, "hostname", nd.Hostname, "error", err)
		return
	}
	m.logger.Info("node down", "node", nd.ID, "hostname", nd.Hostname, "reason", msg)
}

// Heartbeat implements server.Backend (leader only).
func (n *Node) Heartbeat(ctx context.Context, caller ca.Identity, req api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	m, err := n.activeManager()
	if err != nil {
		return nil, err
	}
	if !m.st.IsLeader() {
		addr, _ := m.st.Leader()
		return nil, &store.NotLeaderError{Leader: addr}
	}
	now := time.Now()
	m.hb.lead(now)
	m.hb.beat(caller.NodeID, now)
	nd, err := m.state().ReadTxn().Node(nil, caller.NodeID)
	if err != nil {
		return nil, err
	}
	if err := m.recordBeat(ctx, nd, req.Engine, now); err != nil {
		return nil, err
	}
	root, rotating, err := m.ctl.RootCA()
	if err != nil {
		return nil, err
	}
	return &api.HeartbeatResponse{
		Period:     spec.Duration(n.heartbeatPeriod(m)),
		Role:       nd.Role,
		Voter:      m.ctl.IsVoter(nd.ID),
		Managers:   m.ctl.ManagerAddrs(),
		RootCA:     root,
		RotatingCA: rotating,
	}, nil
}

// recordBeat writes what a heartbeat changes of node nd, in one entry: ready again, or
// another berth than its row says (an upgrade, which the protocol gate reads).
func (m *manager) recordBeat(ctx context.Context, nd *model.Node, engine model.NodeEngine, now time.Time) error {
	ready := nd.Status.State == model.NodeReady
	// A berth of protocol 1 says nothing; its row keeps what a newer one said (a
	// downgrade is not supported: such a manager stops on the first newer command).
	upgraded := engine != (model.NodeEngine{}) && nd.Engine != engine
	if ready && !upgraded {
		return nil
	}
	u := command.NodeStatusUpdate{ID: nd.ID, Status: nd.Status}
	if !ready {
		u.Status = model.NodeStatus{State: model.NodeReady, Timestamp: now.UTC()}
	}
	if upgraded {
		u.Engine = engine
	}
	if _, err := m.st.Apply(ctx, command.CmdNodeStatus, u); err != nil {
		return err
	}
	if !ready {
		m.logger.Info("node ready", "node", nd.ID, "hostname", nd.Hostname)
	}
	if upgraded {
		m.logger.Info("node runs another berth", "node", nd.ID, "hostname", nd.Hostname,
			"version", engine.Version, "protocol", engine.Protocol, "was", nd.Engine.Version)
	}
	return nil
}

// heartbeatLoop is the node's side: every period it tells the leader it is alive, and
// acts on what the answer says (its role, the managers' addresses).
func (n *Node) heartbeatLoop(ctx context.Context) {
	target := ""
	failures := 0
	for {
		m, _ := n.activeManager()
		period := n.heartbeatPeriod(m)
		resp, addr, err := n.beatOnce(ctx, m, target, period)
		switch {
		case err == nil:
			target = addr
			if failures > 0 {
				n.logger.Info("heartbeats reach the leader again", "leader", addr)
			}
			failures = 0
			if n.cfg.HeartbeatPeriod == 0 && resp.Period > 0 {
				period = time.Duration(resp.Period)
			}
			n.handleHeartbeat(ctx, resp)
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrNoLeader), errors.Is(err, api.ErrNoLeader):
			n.logger.Debug("heartbeat skipped: no leader yet")
		default:
			failures++
			target = ""
			// The first failures are normal during an election.
			if failures == api.DownAfter || failures%20 == 0 {
				n.logger.Warn("heartbeats do not reach the leader", "failures", failures, "error", err)
			} else {
				n.logger.Debug("heartbeat failed", "error", err)
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// beatOnce sends one heartbeat: in-process when this node leads, else to the leader
// (raft's idea of it on a manager, the last one that answered, then every known
// manager), following not-leader answers.
func (n *Node) beatOnce(ctx context.Context, m *manager, target string, period time.Duration) (*api.HeartbeatResponse, string, error) {
	meta := n.metaCopy()
	id := n.ident.Load()
	if meta == nil || id == nil {
		return nil, "", api.ErrNotInCluster
	}
	if m != nil && m.st.IsLeader() {
		resp, err := n.Heartbeat(ctx, id.id, api.HeartbeatRequest{Engine: n.engine()})
		return resp, meta.AdvertiseAddr, err
	}
	candidates := []string{target}
	if m != nil {
		addr, _ := m.st.Leader()
		candidates = append([]string{addr}, candidates...)
	}
	queue := dedupe(append(candidates, meta.Managers...))
	if m != nil {
		queue = dedupe(append(queue, m.knownManagers()...))
		queue = slices.DeleteFunc(queue, func(a string) bool { return a == meta.AdvertiseAddr })
		if len(queue) == 0 {
			// A manager alone before its first election: nobody to tell yet.
			return nil, "", store.ErrNoLeader
		}
	}
	tried := map[string]bool{}
	var lastErr error = fmt.Errorf("no manager address known")
	for len(queue) > 0 && len(tried) < 8 {
		addr := queue[0]
		queue = queue[1:]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		c, err := n.client(addr)
		if err != nil {
			return nil, "", err
		}
		cctx, cancel := context.WithTimeout(ctx, api.HeartbeatTimeout(period))
		resp, err := c.Heartbeat(cctx, api.HeartbeatRequest{Engine: n.engine()})
		cancel()
		if err == nil {
			return resp, addr, nil
		}
		lastErr = fmt.Errorf("heartbeat to %s: %w", addr, err)
		var apiErr *api.Error
		if errors.As(err, &apiErr) && apiErr.Leader != "" {
			queue = append([]string{apiErr.Leader}, queue...)
		}
		if errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrForbidden) {
			return nil, "", fmt.Errorf("this node is no longer a member of the cluster (removed?): %w", err)
		}
	}
	return nil, "", lastErr
}

// engine is the berth this node runs, which it tells the cluster when it joins and
// with every heartbeat.
func (n *Node) engine() model.NodeEngine {
	return model.NodeEngine{Version: n.cfg.Version, Protocol: command.Version}
}

func (n *Node) handleHeartbeat(ctx context.Context, resp *api.HeartbeatResponse) {
	meta := n.metaCopy()
	if meta == nil {
		return
	}
	if len(resp.Managers) > 0 && !slices.Equal(meta.Managers, resp.Managers) {
		n.mu.Lock()
		if n.meta != nil {
			n.meta.Managers = resp.Managers
			meta = n.meta
		}
		err := n.dir.writeNodeFile(meta)
		n.mu.Unlock()
		if err != nil {
			n.logger.Warn("could not save the managers' addresses", "error", err)
		}
	}
	if resp.Role == model.RoleManager && meta.Role == model.RoleManager && !resp.Voter {
		// Recorded as a manager, not counted by raft: out of raft after a
		// demotion that a promotion followed, or not yet in it.
		if m, _ := n.activeManager(); m != nil {
			select {
			case m.rejoin <- struct{}{}:
			default:
			}
		}
		return
	}
	if reason := certWanted(n.ident.Load(), resp); reason != "" {
		n.wantCert(reason)
	}
	if resp.Role == "" || resp.Role == meta.Role {
		return
	}
	if resp.Role == model.RoleWorker && resp.Voter {
		// Demoted, but still in raft: wait until the leader has removed it, or raft
		// would lose a voter without the configuration knowing.
		n.logger.Debug("demoted: waiting for the leader to remove this manager from raft")
		return
	}
	if err := n.changeRole(ctx, resp.Role); err != nil && ctx.Err() == nil {
		n.logger.Error("could not change role", "to", resp.Role, "error", err)
	}
}

// changeRole follows a promotion or demotion: a certificate for the new role, then
// raft started (with the cluster's unlock key, if autolocked) or stopped and removed.
func (n *Node) changeRole(ctx context.Context, want model.NodeRole) error {
	if err := n.lock(ctx); err != nil {
		return err
	}
	defer n.unlock()
	meta := n.metaCopy()
	if meta == nil || meta.Role == want {
		return nil
	}
	n.logger.Info("the cluster changed this node's role", "from", meta.Role, "to", want)
	resp, keyPEM, err := n.requestCert(ctx, meta.NodeID)
	if err != nil {
		return err
	}
	if resp.Role != want {
		return fmt.Errorf("the cluster now records role %s, not %s", resp.Role, want)
	}
	id, err := newTrustedIdentity([]byte(resp.CACertificate), []byte(resp.TrustedCACertificates), []byte(resp.Certificate), keyPEM)
	if err != nil {
		return err
	}
	switch want {
	case model.RoleManager:
		// Raft state from an earlier time as a manager belongs to another history.
		if err := os.RemoveAll(n.dir.raft()); err != nil {
			return err
		}
		kr, err := n.newKeyring(resp.UnlockKey)
		if err != nil {
			return err
		}
		if err := n.dir.saveIdentity(id, keyPEM); err != nil {
			return err
		}
		n.setIdentity(id)
		if err := n.setKeyringGeneration(resp.UnlockKeyGeneration); err != nil {
			return err
		}
		// The manager's port takes the worker's place.
		n.closeWorkerPort()
		if err := n.becomeManager(kr, raftResume); err != nil {
			return err
		}
	case model.RoleWorker:
		n.stopManager()
		n.mu.Lock()
		n.phase = api.PhaseWorker
		n.mu.Unlock()
		if err := os.RemoveAll(n.dir.raft()); err != nil {
			n.logger.Warn("could not remove the raft state of the former manager", "error", err)
		}
		if err := n.dir.saveIdentity(id, keyPEM); err != nil {
			return err
		}
		n.setIdentity(id)
		n.openWorkerPort()
	}
	n.mu.Lock()
	n.meta.Role = want
	err = n.dir.writeNodeFile(n.meta)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	n.logger.Info("role changed", "role", want)
	return nil
}

// renew gets a certificate for csr from a manager: this node itself while it leads,
// else the managers it knows.
func (n *Node) renew(ctx context.Context, csr []byte) (*api.CertificateResponse, error) {
	meta := n.metaCopy()
	m, _ := n.activeManager()
	if m != nil && m.st.IsLeader() {
		return n.RenewCertificate(ctx, n.ident.Load().id, &api.CertificateRequest{CSR: csr})
	}
	var candidates []string
	if m != nil {
		addr, _ := m.st.Leader()
		candidates = append(candidates, addr)
	}
	var lastErr error = fmt.Errorf("no manager address known")
	for _, addr := range dedupe(append(candidates, meta.Managers...)) {
		if addr == meta.AdvertiseAddr {
			continue
		}
		c, err := n.client(addr)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := c.RenewCertificate(cctx, csr)
		cancel()
		if err == nil {
			return resp, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("get a new certificate: %w", lastErr)
}
