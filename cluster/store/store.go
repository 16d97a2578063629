// Package store is the managers' replicated memory: hashicorp/raft over a durable log
// (raft-boltdb), file snapshots, every entry and snapshot sealed at rest by the node's
// keyring (package sealed), the FSM that hands every entry to cluster/command to apply to
// cluster/state, and writes forwarded from followers to the leader.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store/sealed"
)

// Errors a writer can act on.
var (
	ErrNotLeader = errors.New("this manager is not the leader")
	ErrNoLeader  = errors.New("no leader")
)

// NotLeaderError says that a leader-only call reached a follower, and where the leader
// is. It matches ErrNotLeader; its answer carries the leader's address.
type NotLeaderError struct {
	Leader string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "this manager is not the leader and no leader is known"
	}
	return fmt.Sprintf("this manager is not the leader (the leader is at %s)", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Forwarder sends a command a follower received to the leader, and returns the raft
// index it was applied at. The API layer implements it over mutual TLS.
type Forwarder interface {
	Forward(ctx context.Context, leaderAddr string, command []byte) (uint64, error)
}

// Config is what Open needs. Durations left zero get values that give a failover within
// about three seconds on a LAN (raft's own defaults).
type Config struct {
	// Dir holds the raft log (raft.db) and snapshots (snapshots/).
	Dir    string
	NodeID string
	// Transport carries raft between managers: a NetworkTransport over a StreamLayer in a
	// daemon, an InmemTransport in tests.
	Transport raft.Transport
	// Keyring seals the log and the snapshots. It must be unlocked.
	Keyring   *sealed.Keyring
	Logger    *slog.Logger
	Forwarder Forwarder
	// Bootstrap starts a new cluster with this node as its only voter. It is ignored when
	// the node already has raft state.
	Bootstrap bool
	// ForceNewCluster rewrites the raft configuration of the node's state to this node
	// alone before raft starts: the recovery of a cluster that lost its quorum, which
	// keeps every entry this node has.
	ForceNewCluster bool

	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// CommitTimeout is how soon an idle leader tells followers what it committed
	// (raft's default: 50ms, randomised up to twice that). It is how long a follower
	// waits to see a write it forwarded.
	CommitTimeout     time.Duration
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// ApplyTimeout bounds one write, forwarding and waiting for a leader included.
	ApplyTimeout time.Duration
	// OnApply, when set, learns how long each write that succeeded took to be
	// committed and applied, forwarding included.
	OnApply func(took time.Duration)
	// OnHalt, when set, learns that this manager stopped applying the log: an entry
	// or a snapshot of a newer berth than this one. The daemon should exit rather
	// than serve a state that no longer follows the cluster's.
	OnHalt func(err error)
}

// Store is one manager's raft node and the state it replicates.
type Store struct {
	cfg     Config
	raft    *raft.Raft
	fsm     *fsm
	bolt    *raftboltdb.BoltStore
	files   *raft.FileSnapshotStore
	leaders *leaderFeed
}

// Open starts the node's raft. The node rejoins its cluster from the state on disk, or
// starts a new one with cfg.Bootstrap, or waits to be added as a voter by the leader.
func Open(cfg Config) (*Store, error) {
	if cfg.Keyring == nil || cfg.Keyring.Locked() {
		return nil, sealed.ErrLocked
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft dir: %w", err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
	}
	s, err := open(cfg, bolt)
	if err != nil {
		_ = bolt.Close()
		return nil, err
	}
	return s, nil
}

func open(cfg Config, bolt *raftboltdb.BoltStore) (*Store, error) {
	hclogger := newHCLogger(cfg.Logger.With("node", cfg.NodeID))
	files, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hclogger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	snaps := sealed.NewSnapshotStore(files, cfg.Keyring)
	logs, err := raft.NewLogCache(512, sealed.NewLogStore(bolt, cfg.Keyring))
	if err != nil {
		return nil, err
	}
	fsm, err := newFSM(cfg.Logger, cfg.OnHalt)
	if err != nil {
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hclogger.Named("raft")
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
		rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, cfg.HeartbeatTimeout)
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.CommitTimeout > 0 {
		rc.CommitTimeout = cfg.CommitTimeout
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = cfg.SnapshotInterval
	}

	if cfg.Bootstrap {
		existing, err := raft.HasExistingState(logs, bolt, snaps)
		if err != nil {
			return nil, fmt.Errorf("read raft state: %w", err)
		}
		if !existing {
			err := raft.BootstrapCluster(rc, logs, bolt, snaps, cfg.Transport, raft.Configuration{Servers: []raft.Server{
				{Suffrage: raft.Voter, ID: rc.LocalID, Address: cfg.Transport.LocalAddr()},
			}})
			if err != nil {
				return nil, fmt.Errorf("bootstrap cluster: %w", err)
			}
		}
	}
	if cfg.ForceNewCluster {
		// raft replays the state into an FSM of its own to snapshot it with the new
		// configuration; the store's FSM then restores from that snapshot.
		scratch, err := newFSM(cfg.Logger, nil)
		if err != nil {
			return nil, err
		}
		alone := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: cfg.Transport.LocalAddr()}}}
		if err := raft.RecoverCluster(rc, scratch, logs, bolt, snaps, cfg.Transport, alone); err != nil {
			return nil, fmt.Errorf("force a new cluster from this node's raft state: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, fsm, logs, bolt, snaps, cfg.Transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	return &Store{cfg: cfg, raft: r, fsm: fsm, bolt: bolt, files: files, leaders: newLeaderFeed(r.LeaderCh())}, nil
}

// State is the replicated state as this manager has applied it (possibly stale on a
// follower; see VerifyLeader for consistent reads).
func (s *Store) State() *state.Store { return s.fsm.State() }

// Apply writes one command and returns the raft index it was applied at. On a follower
// it is forwarded to the leader; while there is no leader it waits for one, up to the
// apply timeout, then fails with ErrNoLeader saying how many managers it can see.
func (s *Store) Apply(ctx context.Context, t command.Type, body any) (uint64, error) {
	data, err := command.Encode(t, body)
	if err != nil {
		return 0, err
	}
	return s.ApplyEncoded(ctx, data)
}

// ApplyEncoded is Apply for a command already encoded (what the leader receives from a
// follower's Forward).
func (s *Store) ApplyEncoded(ctx context.Context, data []byte) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	defer cancel()
	start := time.Now()
	for {
		idx, err := s.applyOnce(ctx, data)
		if !errors.Is(err, ErrNoLeader) && !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) {
			s.observeApply(start, err)
			return idx, err
		}
		// Leadership is moving: retry until a leader is known or the bound is reached.
		select {
		case <-ctx.Done():
			return 0, s.noLeaderError()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ApplyLeader writes one command on this manager only if it leads: it never forwards
// and never waits for an election, failing with ErrNotLeader instead. It is for the
// leader's own decisions (the reconciler's plans): computed from this manager's view,
// they must not be applied by another leader, which decides for itself.
func (s *Store) ApplyLeader(ctx context.Context, t command.Type, body any) (uint64, error) {
	data, err := command.Encode(t, body)
	if err != nil {
		return 0, err
	}
	if s.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if err := s.admit(data); err != nil {
		return 0, err
	}
	timeout := s.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	start := time.Now()
	f := s.raft.Apply(data, timeout)
	err = f.Error()
	s.observeApply(start, err)
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return 0, err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return f.Index(), err
	}
	return f.Index(), nil
}

func (s *Store) observeApply(start time.Time, err error) {
	if s.cfg.OnApply != nil && err == nil {
		s.cfg.OnApply(time.Since(start))
	}
}

func (s *Store) applyOnce(ctx context.Context, data []byte) (uint64, error) {
	if s.raft.State() == raft.Leader {
		if err := s.admit(data); err != nil {
			return 0, err
		}
		deadline, _ := ctx.Deadline()
		f := s.raft.Apply(data, time.Until(deadline))
		if err := f.Error(); err != nil {
			return 0, err
		}
		if err, ok := f.Response().(error); ok && err != nil {
			return f.Index(), err
		}
		return f.Index(), nil
	}
	addr, _ := s.raft.LeaderWithID()
	if addr == "" {
		return 0, ErrNoLeader
	}
	if s.cfg.Forwarder == nil {
		return 0, fmt.Errorf("%w (leader is %s)", ErrNotLeader, addr)
	}
	return s.cfg.Forwarder.Forward(ctx, string(addr), data)
}

func (s *Store) noLeaderError() error {
	total := 0
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		total = len(f.Configuration().Servers)
	}
	if total == 0 {
		return fmt.Errorf("%w: this manager is not part of a cluster yet", ErrNoLeader)
	}
	return fmt.Errorf("%w: none elected among the %d managers within %s; a majority of %d must reach each other",
		ErrNoLeader, total, s.cfg.ApplyTimeout, total/2+1)
}

// IsLeader reports whether this manager is the leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's raft address and id, empty when there is none.
func (s *Store) Leader() (addr, id string) {
	a, i := s.raft.LeaderWithID()
	return string(a), string(i)
}

// LeaderCh tells when this manager gains (true) or loses (false) leadership. Every
// call gets a channel of its own, so that each leader-only loop hears every change.
func (s *Store) LeaderCh() <-chan bool { return s.leaders.subscribe() }

// Barrier returns once every entry committed before it is applied to this manager's
// state (leader only). A new leader calls it before it reads the state to decide
// anything: the entries of the previous term may still be on their way to its FSM.
func (s *Store) Barrier(timeout time.Duration) error {
	err := s.raft.Barrier(timeout).Error()
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

// VerifyLeader confirms with a quorum that this manager is still the leader, for reads
// that must not be stale.
func (s *Store) VerifyLeader() error { return s.raft.VerifyLeader().Error() }

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// Servers lists the raft configuration.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Server
	for _, srv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds a manager to the raft configuration (leader only).
func (s *Store) AddVoter(id, addr string) error {
	return s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout).Error()
}

// RemoveServer removes a manager from the raft configuration (leader only).
func (s *Store) RemoveServer(id string) error {
	return s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout).Error()
}

// TransferLeadership hands leadership to another voter and returns when one has it
// (leader only). A leader that is about to be removed from raft steps aside first, so
// that the removal is committed by a leader that stays.
func (s *Store) TransferLeadership() error { return s.raft.LeadershipTransfer().Error() }

// Snapshot takes a snapshot now (raft also takes them on its own schedule).
func (s *Store) Snapshot() error { return s.raft.Snapshot().Error() }

// SnapshotNow takes a snapshot of everything applied so far and returns the folder
// that holds it, sealed as on disk (meta.json and state.bin): a consistent copy of the
// state for a backup, which raft never modifies once written.
func (s *Store) SnapshotNow() (string, error) {
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	list, err := s.files.List()
	if err != nil || len(list) == 0 {
		return "", fmt.Errorf("no snapshot to copy: %v", err)
	}
	return filepath.Join(s.cfg.Dir, "snapshots", list[0].ID), nil
}

// Stats are raft's own figures (term, commit_index, applied_index...), as text.
func (s *Store) Stats() map[string]string { return s.raft.Stats() }

// LastIndex is the index of the last entry in this manager's log.
func (s *Store) LastIndex() uint64 { return s.raft.LastIndex() }

// AppliedIndex is the index of the last entry raft handed to this manager's state
// machine (which may still be applying it).
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// Halted says why this manager stopped applying the log (see Config.OnHalt), or nil.
func (s *Store) Halted() error { return s.fsm.Halted() }

// StateIndex is the index of the last command applied to this manager's state: once it
// reaches a write's index, reads here see the write.
func (s *Store) StateIndex() uint64 { return s.fsm.applied.Load() }

// Unblock lets raft's apply loop go on past an entry the FSM halted on, applying
// nothing more, so that writes waiting for their entries fail instead of waiting: for
// the shutdown that follows a halt. Close does it too.
func (s *Store) Unblock() { s.fsm.unblock() }

// Close stops raft and closes the log.
func (s *Store) Close() error {
	s.fsm.unblock()
	err := s.raft.Shutdown().Error()
	s.leaders.close()
	return errors.Join(err, s.bolt.Close())
}

// LastContact is how long ago this manager last heard from the leader (zero on the
// leader itself), as raft tracks it.
func (s *Store) LastContact() time.Duration {
	if s.IsLeader() {
		return 0
	}
	return time.Since(s.raft.LastContact())
}

// ApplyTimeout is the bound a write waits for, forwarding and elections included.
func (s *Store) ApplyTimeout() time.Duration { return s.cfg.ApplyTimeout }
