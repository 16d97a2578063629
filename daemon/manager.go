package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/server"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/cluster/ui"
)

// manager is what a manager runs besides the membership: the port, raft, the
// keyring, and the leader's heartbeat tracker.
type manager struct {
	n      *Node
	st     *store.Store
	ctl    *control.Control
	events *control.EventLog
	port   *port
	kr     *sealed.Keyring
	hb     *tracker
	logger *slog.Logger
	loops  *loops
	// mirrors are the pull sources' mirrors, shared by the applier and the
	// previews of `berth diff --source`.
	mirrors *applier.Mirrors
	// pushPlans hands the plans the push server makes to the applier's syncs.
	pushPlans *applier.PushPlans
	// caughtUp is closed once the manager has applied the log it held at start
	// (and knows the cluster), or after catchUpWait: past that, stale answers are
	// better than none (a manager without a majority still shows who is down).
	caughtUp chan struct{}
	// rejoin wakes keepVoter: the leader counts this manager out of raft.
	rejoin chan struct{}
	// ui holds the web dashboard's login links and sessions, which end with the
	// manager.
	ui *ui.Sessions

	krMu sync.Mutex // one keyring reconciliation at a time
}

// commitTimeout is how soon an idle leader sends followers its commit index. A
// write forwarded by a follower returns once the follower has applied it (read your
// writes on the manager you talk to), so this bounds the wait added to such a write:
// raft's default (50ms, randomised up to 100ms) made a forwarded write take 90ms.
// Measured on 3 idle managers over 10s: 50ms 0.25 CPU-s, 20ms 0.46, 10ms 0.81.
const commitTimeout = 20 * time.Millisecond

// catchUpWait bounds how long a starting manager refuses reads while it catches up.
const catchUpWait = 15 * time.Second

// raftStart is how a manager's raft starts.
type raftStart int

const (
	// raftResume: from its raft state, or waiting to be added by the leader.
	raftResume raftStart = iota
	// raftBootstrap: a new cluster with this node alone.
	raftBootstrap
	// raftForceNew: from its raft state, as the only voter: the recovery of a
	// cluster that lost its quorum (`swarm init --force-new-cluster`).
	raftForceNew
)

// becomeManager starts the manager's port and raft with an unlocked keyring and makes
// the node a manager, its raft started as start says. Caller holds the lifecycle lock
// (or is starting the daemon).
func (n *Node) becomeManager(kr *sealed.Keyring, start raftStart) error {
	bootstrap := start == raftBootstrap
	meta := n.metaCopy()
	logger := n.logger.With("role", "manager")
	m := &manager{n: n, kr: kr, hb: newTracker(), logger: logger, caughtUp: make(chan struct{}), mirrors: applier.NewMirrors(), pushPlans: applier.NewPushPlans(),
		rejoin: make(chan struct{}, 1), ui: ui.NewSessions(nil)}
	push, err := applier.NewPushHandler(applier.PushConfig{Cluster: applierCluster{m: n.readyManager}, Dir: n.dir.sources(), Plans: m.pushPlans,
		MaxPack: command.MaxPushPack, Logger: logger.With("api", "git"), Metrics: n.gitops})
	if err != nil {
		return err
	}
	dashboard, err := n.dashboard(m.ui)
	if err != nil {
		return err
	}
	p, err := openPort(n.cfg.ListenAddr, meta.ClusterID, n.ident.Load,
		server.NewRemoteHandler(n, server.WithLogger(logger.With("api", "remote")),
			server.WithPublicHandler(webhook.PathPrefix, n.gitops.CountWebhooks(webhook.NewHandler(hookSources{n}, webhook.WithLogger(logger.With("api", "webhook"))))),
			server.WithPublicHandler("/git/", &pushRouter{n: n, local: push}),
			server.WithPublicHandler(ui.Prefix, dashboard)), logger)
	if err != nil {
		return fmt.Errorf("open the node port: %w", err)
	}
	sl := store.NewStreamLayer(advertisedAddr(meta.AdvertiseAddr), ca.DynamicClientTLSConfig(n.trust, ca.ManagerServerName))
	p.setStream(sl)
	st, err := store.Open(store.Config{
		Dir:               n.dir.raft(),
		NodeID:            meta.NodeID,
		Transport:         store.NewTransport(sl, logger),
		Keyring:           kr,
		Logger:            logger,
		Forwarder:         forwarder{hc: n.hc.Load},
		Bootstrap:         bootstrap,
		ForceNewCluster:   start == raftForceNew,
		HeartbeatTimeout:  n.cfg.RaftHeartbeatTimeout,
		ElectionTimeout:   n.cfg.RaftElectionTimeout,
		CommitTimeout:     commitTimeout,
		SnapshotThreshold: n.cfg.RaftSnapshotThreshold,
		SnapshotInterval:  n.cfg.RaftSnapshotInterval,
		ApplyTimeout:      n.cfg.ApplyTimeout,
		OnApply:           n.timings.observeApply,
		OnHalt:            n.halt,
	})
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p.close(ctx)
		cancel()
		sl.Close()
		return err
	}
	m.st, m.port = st, p
	// Control sends a rollback to the leader, whose applier holds the repositories
	// its revision is checked in.
	m.events = control.NewEventLog(0)
	m.ctl = m.newControl(applier.Revisions{Config: m.applierConfig(logger.With("component", "applier"))})
	var ctx context.Context
	m.loops, ctx = newLoops(n.runCtx)
	// Every manager keeps the events it applies: a new leader tells what the old one did.
	m.loops.run(func() { m.events.Run(ctx, controlStore{m}) })
	// The orchestrator runs on whichever manager leads, and stops when it no longer does.
	m.loops.run(func() {
		reconciler.RunWhileLeader(ctx, st.LeaderCh(), st.IsLeader, reconciler.Config{Store: st, Logger: logger.With("component", "orchestrator"),
			OnPass: n.timings.observePass})
	})
	// So does the GitOps applier, which must never sync a source from two managers.
	m.loops.run(func() {
		alog := logger.With("component", "applier")
		store.RunWhileLeader(ctx, st.LeaderCh(), st.IsLeader, alog, "applier", func(ctx context.Context) error {
			return applier.Run(ctx, m.applierConfig(alog))
		})
	})
	m.loops.run(func() {
		store.RunWhileLeader(ctx, st.LeaderCh(), st.IsLeader, logger.With("component", "leadership"), "leadership record", m.recordLeadership)
	})
	if bootstrap {
		close(m.caughtUp)
	} else {
		target := st.LastIndex()
		m.loops.run(func() {
			defer close(m.caughtUp)
			_ = waitFor(ctx, catchUpWait, func() bool {
				_, err := m.state().ReadTxn().Cluster(nil)
				return err == nil && m.st.AppliedIndex() >= target
			})
		})
	}
	m.loops.run(func() { m.watchKeyring(ctx) })
	m.loops.run(func() { m.monitorHeartbeats(ctx) })
	// A manager that is not yet a voter (it just joined, was promoted, or
	// crashed before it was added) asks the leader to add it.
	m.loops.run(func() { m.keepVoter(ctx, !bootstrap) })
	n.mu.Lock()
	n.mgr, n.phase, n.kr = m, api.PhaseManager, nil
	n.mu.Unlock()
	n.startMembership()
	logger.Info("manager started", "node", meta.NodeID, "addr", meta.AdvertiseAddr, "listen", n.cfg.ListenAddr)
	return nil
}

// becomeWorker makes the node a worker: heartbeats, and the port managers reach it at.
func (n *Node) becomeWorker() {
	n.mu.Lock()
	n.phase = api.PhaseWorker
	n.mu.Unlock()
	n.openWorkerPort()
	n.startMembership()
	n.logger.Info("worker started", "node", n.Status().NodeID)
}

// startMembership starts the node's heartbeats, if they are not running.
func (n *Node) startMembership() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.member != nil {
		return
	}
	l, ctx := newLoops(n.runCtx)
	n.member = l
	l.run(func() { n.heartbeatLoop(ctx) })
	l.run(func() { n.certLoop(ctx) })
	if n.cfg.Agent != nil {
		l.run(func() { n.agentLoop(ctx) })
	}
}

func (n *Node) stopMembership() {
	n.mu.Lock()
	l := n.member
	n.member = nil
	n.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// stopManager stops the manager (port, then raft) and leaves the node without one.
func (n *Node) stopManager() {
	n.mu.Lock()
	m := n.mgr
	n.mgr = nil
	n.mu.Unlock()
	if m != nil {
		m.stop()
	}
}

func (m *manager) stop() {
	// Loops waiting for a write behind an entry the FSM halted on would wait forever.
	m.st.Unblock()
	m.loops.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.port.close(ctx)
	if err := m.st.Close(); err != nil {
		m.logger.Warn("closing raft", "error", err)
	}
}

func (m *manager) state() *state.Store { return m.st.State() }

// watchKeyring keeps this manager's keyring wrapped the way the cluster row says:
// autolock on with the cluster's unlock key, or off. It runs outside the FSM because
// rewriting the keyring is this node's business, not the replicated state's.
func (m *manager) watchKeyring(ctx context.Context) {
	var index uint64
	for ctx.Err() == nil {
		var c *model.Cluster
		idx, err := m.state().Blocking(ctx, index, []string{state.TableCluster}, func(tx *state.ReadTxn, ws memdb.WatchSet) (uint64, error) {
			row, err := tx.Cluster(ws)
			if err == nil {
				c = row
			}
			return tx.Index(state.TableCluster), nil
		})
		switch {
		case errors.Is(err, state.ErrAbandoned):
			index = 0
			continue
		case err != nil:
			return
		}
		index = idx
		if c != nil {
			if err := m.reconcileKeyring(c); err != nil {
				m.logger.Error("could not rewrap the keyring as the cluster asks", "error", err)
				sleep(ctx, time.Second)
			}
		}
	}
}

func (m *manager) reconcileKeyring(c *model.Cluster) error {
	m.krMu.Lock()
	defer m.krMu.Unlock()
	meta := m.n.metaCopy()
	if meta == nil || c.UnlockKeyGeneration <= meta.KeyringGeneration {
		return nil
	}
	switch {
	case c.Autolock && c.UnlockKey != "":
		cur, err := m.kr.UnlockKey()
		if err != nil && !errors.Is(err, sealed.ErrAutolockOff) {
			return err
		}
		if err != nil || cur != c.UnlockKey {
			if err := m.kr.SetUnlockKey(c.UnlockKey); err != nil {
				return err
			}
			m.logger.Info("keyring now wrapped with the cluster's unlock key", "generation", c.UnlockKeyGeneration)
		}
	case !c.Autolock:
		if m.kr.Autolock() {
			if _, err := m.kr.SetAutolock(false); err != nil {
				return err
			}
			m.logger.Info("autolock turned off: keyring key stored beside the data keys again", "generation", c.UnlockKeyGeneration)
		}
	}
	return m.n.setKeyringGeneration(c.UnlockKeyGeneration)
}

// setKeyringGeneration records which unlock key generation the keyring follows.
func (n *Node) setKeyringGeneration(gen uint64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.meta == nil {
		return nil
	}
	n.meta.KeyringGeneration = gen
	return n.dir.writeNodeFile(n.meta)
}

// keepVoter has this manager join raft: at start unless it started the cluster, and
// again each time the leader's heartbeat answer says the cluster records it as a
// manager that raft does not count (a demotion, then a promotion before this node
// stopped its manager, left it out of raft).
func (m *manager) keepVoter(ctx context.Context, atStart bool) {
	if atStart {
		if err := m.ensureVoter(ctx, false); err != nil && ctx.Err() == nil {
			m.logger.Error("could not join raft", "error", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.rejoin:
		}
		if err := m.ensureVoter(ctx, true); err != nil && ctx.Err() == nil {
			m.logger.Error("could not join raft again", "error", err)
		}
	}
}

// ensureVoter asks the leader to add this manager to raft until the local raft
// configuration lists it as a voter. It goes to the leader when raft knows it, else
// to the managers it knows of, following not-leader answers. With removed, the leader
// said raft does not count this manager: the local configuration, which may not have
// heard of the removal, is not believed until the leader has been asked.
func (m *manager) ensureVoter(ctx context.Context, removed bool) error {
	meta := m.n.metaCopy()
	var lastErr error
	redirect := ""
	for attempt := 0; ; attempt++ {
		if m.ctl.IsVoter(meta.NodeID) && (!removed || attempt > 0) {
			if attempt > 0 {
				m.logger.Info("joined raft as a voter")
			}
			return nil
		}
		targets := []string{redirect}
		if addr, _ := m.st.Leader(); addr != "" {
			targets = append(targets, addr)
		}
		targets = append(targets, m.knownManagers()...)
		redirect = ""
		added := false
		for _, addr := range dedupe(targets) {
			if addr == meta.AdvertiseAddr {
				continue
			}
			c, err := m.n.client(addr)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = c.AddVoter(cctx, meta.NodeID)
			cancel()
			if err == nil {
				added = true
				break
			}
			lastErr = err
			var apiErr *api.Error
			if errors.As(err, &apiErr) && apiErr.Leader != "" && apiErr.Leader != addr {
				redirect = apiErr.Leader
				break
			}
		}
		if redirect != "" {
			continue
		}
		if added {
			// Wait for the new configuration to reach this manager.
			_ = waitFor(ctx, 5*time.Second, func() bool { return m.ctl.IsVoter(meta.NodeID) })
			continue
		}
		if attempt > 0 && attempt%10 == 0 {
			m.logger.Warn("still not a raft voter; retrying", "error", lastErr)
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// knownManagers are the other managers this manager knows of: those of the node file
// (from the last heartbeat answer or the join) and those of its own raft
// configuration, which names managers that joined since (a manager demoted before its
// first heartbeat answer knows the others only from there).
func (m *manager) knownManagers() []string {
	meta := m.n.metaCopy()
	if meta == nil {
		return nil
	}
	return slices.DeleteFunc(dedupe(append(meta.Managers, m.ctl.ManagerAddrs()...)), func(a string) bool { return a == meta.AdvertiseAddr })
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
