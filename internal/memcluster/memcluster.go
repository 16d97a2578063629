// Package memcluster runs berth managers in one process for scenario tests and the C1M
// benchmark: real raft (on its in-memory transport), real boltdb logs and sealed
// snapshots on disk, the real FSM, state, control and reconciler. Only the network is
// a channel, and nodes are simulated (bench/simagent). Every wait is bounded.
package memcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/reconciler"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/cluster/store/sealed"
)

// Options tune a cluster. Zero fields get defaults.
type Options struct {
	// Managers is the number of managers (3).
	Managers int
	// Dir holds the managers' raft data; it must exist.
	Dir    string
	Logger *slog.Logger
	// Reconciler is the reconciler's configuration; Store, Logger and Now are set
	// per manager.
	Reconciler reconciler.Config
	// Now is the clock of the control planes and reconcilers (time.Now).
	Now func() time.Time
	// Raft tuning: fast elections for tests (200ms).
	ElectionTimeout time.Duration
	// SnapshotThreshold is raft's (8192).
	SnapshotThreshold uint64
	// Applier, when set, runs the GitOps applier on whichever manager leads, with
	// its repositories under Applier.Dir/<manager>; Cluster, Logger and Now are set
	// per manager.
	Applier *applier.Config
}

// Manager is one manager of the cluster.
type Manager struct {
	ID      string
	Store   *store.Store
	Control *control.Control
	dir     string
	trans   *raft.InmemTransport
	kr      *sealed.Keyring
	cancel  context.CancelFunc
	done    chan struct{}
}

// Cluster is a set of managers.
type Cluster struct {
	opts     Options
	mu       sync.Mutex
	managers []*Manager
}

// forwarder hands a follower's command to the leader's store, as the API does.
type forwarder struct{ c *Cluster }

func (f forwarder) Forward(ctx context.Context, leaderAddr string, data []byte) (uint64, error) {
	for _, m := range f.c.Managers() {
		if string(m.trans.LocalAddr()) == leaderAddr {
			return m.Store.ApplyEncoded(ctx, data)
		}
	}
	return 0, store.ErrNoLeader
}

// New starts the managers and waits (bounded) until they form one raft cluster.
func New(opts Options) (*Cluster, error) {
	if opts.Managers <= 0 {
		opts.Managers = 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ElectionTimeout <= 0 {
		opts.ElectionTimeout = 200 * time.Millisecond
	}
	c := &Cluster{opts: opts}
	for i := range opts.Managers {
		id := fmt.Sprintf("manager-%d", i+1)
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
		dir := filepath.Join(opts.Dir, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		kr, _, err := sealed.Create(dir, false)
		if err != nil {
			return nil, err
		}
		c.managers = append(c.managers, &Manager{ID: id, dir: dir, trans: tr, kr: kr})
	}
	for _, a := range c.managers {
		for _, b := range c.managers {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for i, m := range c.managers {
		if err := c.start(m, i == 0); err != nil {
			c.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, m := range c.managers {
		if m != leader {
			if err := leader.Store.AddVoter(m.ID, string(m.trans.LocalAddr())); err != nil {
				c.Close()
				return nil, fmt.Errorf("add %s to raft: %w", m.ID, err)
			}
		}
	}
	return c, nil
}

func (c *Cluster) start(m *Manager, bootstrap bool) error {
	logger := c.opts.Logger.With("manager", m.ID)
	st, err := store.Open(store.Config{
		Dir: m.dir, NodeID: m.ID, Transport: m.trans, Keyring: m.kr, Logger: logger,
		Forwarder: forwarder{c}, Bootstrap: bootstrap,
		HeartbeatTimeout: c.opts.ElectionTimeout, ElectionTimeout: c.opts.ElectionTimeout,
		CommitTimeout: 5 * time.Millisecond, SnapshotThreshold: c.opts.SnapshotThreshold,
		ApplyTimeout: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", m.ID, err)
	}
	m.Store = st
	ccfg := control.Config{Store: st, Logger: logger, Now: c.opts.Now, ApplyTimeout: 30 * time.Second}
	var ac applier.Config
	// Its Control is set once made: the control plane checks rollbacks with the applier.
	cluster := &ApplierCluster{Store: st}
	if c.opts.Applier != nil {
		ac = *c.opts.Applier
		ac.Cluster, ac.Logger, ac.Now, ac.Dir = cluster, logger.With("component", "applier"), c.opts.Now, filepath.Join(ac.Dir, m.ID)
		if ac.Mirrors == nil {
			// The applier and the rollbacks' checks share the mirrors, as on a daemon.
			ac.Mirrors = applier.NewMirrors()
		}
		ccfg.Revisions = applier.Revisions{Config: ac}
	}
	m.Control = control.New(ccfg)
	cluster.Control = m.Control
	rc := c.opts.Reconciler
	rc.Store, rc.Logger, rc.Now = st, logger, c.opts.Now
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { reconciler.RunWhileLeader(ctx, st.LeaderCh(), st.IsLeader, rc) })
	if c.opts.Applier != nil {
		wg.Go(func() {
			store.RunWhileLeader(ctx, st.LeaderCh(), st.IsLeader, ac.Logger, "applier", func(ctx context.Context) error { return applier.Run(ctx, ac) })
		})
	}
	go func() {
		defer close(m.done)
		wg.Wait()
	}()
	return nil
}

// Managers returns the managers.
func (c *Cluster) Managers() []*Manager {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Manager(nil), c.managers...)
}

// Leader waits (until ctx is done) for a leader and returns it.
func (c *Cluster) Leader(ctx context.Context) (*Manager, error) {
	for {
		for _, m := range c.Managers() {
			if m.Store != nil && m.Store.IsLeader() {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("no leader elected")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Follower returns a manager that does not lead.
func (c *Cluster) Follower(ctx context.Context) (*Manager, error) {
	leader, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range c.Managers() {
		if m != leader {
			return m, nil
		}
	}
	return leader, nil
}

// TransferLeadership hands leadership from the leader to another manager and waits
// for a new leader.
func (c *Cluster) TransferLeadership(ctx context.Context) (*Manager, error) {
	old, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	if err := old.Store.TransferLeadership(); err != nil {
		return nil, fmt.Errorf("transfer leadership: %w", err)
	}
	for {
		m, err := c.Leader(ctx)
		if err != nil {
			return nil, err
		}
		if m != old {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("leadership did not move")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Apply writes a command through any manager.
func (c *Cluster) Apply(ctx context.Context, t command.Type, body any) (uint64, error) {
	m, err := c.Leader(ctx)
	if err != nil {
		return 0, err
	}
	return m.Store.Apply(ctx, t, body)
}

// WaitApplied waits until every manager has applied index.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64) error {
	for _, m := range c.Managers() {
		for m.Store.StateIndex() < index {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not apply index %d (at %d)", m.ID, index, m.Store.StateIndex())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// Node returns a ready, active linux/amd64 worker row, as a join writes it.
func Node(id string, labels map[string]string) *model.Node {
	return &model.Node{ID: id, Hostname: id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
		Labels: labels, Platform: model.Platform{OS: "linux", Arch: "amd64"},
		Resources: model.NodeResources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		Status:    model.NodeStatus{State: model.NodeReady, Timestamp: time.Now().UTC()}}
}

// AgentAPI is the agent API of node nodeID, served by manager m: what a real agent
// gets over mutual TLS with its node's certificate (the simulated agent's API).
func (m *Manager) AgentAPI(nodeID string) AgentAPI { return AgentAPI{m, nodeID} }

// AgentAPI is a node's view of a manager's control plane, as agents call it.
type AgentAPI struct {
	m    *Manager
	node string
}

func (a AgentAPI) Heartbeat(context.Context) error { return nil }

func (a AgentAPI) NodeTasks(ctx context.Context, q api.Query) ([]*model.Task, api.QueryMeta, error) {
	return a.m.Control.NodeTasks(ctx, a.node, q)
}

func (a AgentAPI) ReportTaskStatus(ctx context.Context, reports []api.TaskStatusReport) error {
	return a.m.Control.ReportTaskStatus(ctx, a.node, reports)
}

// Close stops every manager.
func (c *Cluster) Close() {
	for _, m := range c.Managers() {
		if m.cancel != nil {
			m.cancel()
			<-m.done
		}
		if m.Store != nil {
			_ = m.Store.Close()
		}
	}
}
