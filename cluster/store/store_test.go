package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store/sealed"
)

// cluster is an in-process set of managers on raft's in-memory transport: real raft,
// real boltdb logs and sealed snapshots on disk, only the network is a channel.
type testCluster struct {
	t      *testing.T
	mu     sync.Mutex
	nodes  map[string]*Store
	trans  map[string]*raft.InmemTransport
	dirs   map[string]string
	keys   map[string]*sealed.Keyring
	config Config
}

// forwarder hands a follower's command to the leader's store, as the API does.
type inprocForwarder struct{ c *testCluster }

func (f inprocForwarder) Forward(ctx context.Context, leaderAddr string, data []byte) (uint64, error) {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	for id, tr := range f.c.trans {
		if string(tr.LocalAddr()) == leaderAddr && f.c.nodes[id] != nil {
			s := f.c.nodes[id]
			f.c.mu.Unlock()
			defer f.c.mu.Lock()
			return s.ApplyEncoded(ctx, data)
		}
	}
	return 0, ErrNoLeader
}

func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[string]*Store{}, trans: map[string]*raft.InmemTransport{}, dirs: map[string]string{}, keys: map[string]*sealed.Keyring{},
		config: Config{HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, ApplyTimeout: 5 * time.Second}}
	for i := range n {
		id := fmt.Sprintf("m%d", i+1)
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id + "-addr"))
		c.trans[id] = tr
		c.dirs[id] = t.TempDir()
		kr, _, err := sealed.Create(c.dirs[id], false)
		if err != nil {
			t.Fatal(err)
		}
		c.keys[id] = kr
	}
	for a, ta := range c.trans {
		for b, tb := range c.trans {
			if a != b {
				ta.Connect(tb.LocalAddr(), tb)
			}
		}
	}
	for i := range n {
		c.start(fmt.Sprintf("m%d", i+1), i == 0)
	}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
	})
	leader := c.waitLeader()
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("m%d", i+1)
		if err := leader.AddVoter(id, string(c.trans[id].LocalAddr())); err != nil {
			t.Fatalf("add voter %s: %v", id, err)
		}
	}
	return c
}

func (c *testCluster) start(id string, bootstrap bool) {
	c.t.Helper()
	cfg := c.config
	cfg.Dir, cfg.NodeID, cfg.Transport, cfg.Keyring, cfg.Bootstrap = c.dirs[id], id, c.trans[id], c.keys[id], bootstrap
	cfg.Forwarder = inprocForwarder{c}
	s, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = s
	c.mu.Unlock()
}

func (c *testCluster) stop(id string) {
	c.mu.Lock()
	s := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if s != nil {
		if err := s.Close(); err != nil {
			c.t.Errorf("close %s: %v", id, err)
		}
	}
}

func (c *testCluster) node(id string) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// waitLeader waits (bounded) until one running node is leader and returns it.
func (c *testCluster) waitLeader() *Store {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, s := range c.nodes {
			if s.IsLeader() {
				c.mu.Unlock()
				return s
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader elected within 10s")
	return nil
}

func (c *testCluster) leaderID() string {
	l := c.waitLeader()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, s := range c.nodes {
		if s == l {
			return id
		}
	}
	return ""
}

// waitApplied waits (bounded) until s has applied index.
func waitApplied(t *testing.T, s *Store, index uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.StateIndex() < index {
		if time.Now().After(deadline) {
			t.Fatalf("index %d not applied within 10s (at %d)", index, s.StateIndex())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func node(id string) *model.Node {
	return &model.Node{ID: id, Hostname: "host-" + id, Role: model.RoleWorker, Availability: model.AvailabilityActive,
		Status: model.NodeStatus{State: model.NodeReady}}
}

func TestApplyReplicatesAndForwards(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	leaderID := c.leaderID()
	var follower *Store
	for _, id := range []string{"m1", "m2", "m3"} {
		if id != leaderID {
			follower = c.node(id)
			break
		}
	}
	// Written on a follower: forwarded to the leader, applied everywhere.
	idx, err := follower.Apply(ctx, command.CmdNodeUpsert, node("n1"))
	if err != nil {
		t.Fatalf("apply through follower: %v", err)
	}
	idx, err = follower.Apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: "n1", LabelsAdd: map[string]string{"os": "linux"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m1", "m2", "m3"} {
		s := c.node(id)
		waitApplied(t, s, idx)
		n, err := s.State().ReadTxn().Node(nil, "n1")
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if n.Labels["os"] != "linux" || n.ModifyIndex != idx {
			t.Errorf("%s: node n1 = %+v, want label os=linux at index %d", id, n, idx)
		}
	}
	// A command the FSM refuses comes back to the proposer as an error.
	if _, err := follower.Apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: "missing", Availability: model.AvailabilityDrain}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("update of a missing node: err = %v, want state.ErrNotFound", err)
	}
}

// The leader refuses to write a command it does not know: no manager would apply it.
func TestUnknownCommandIsNotProposed(t *testing.T) {
	c := newTestCluster(t, 1)
	leader := c.waitLeader()
	if _, err := command.Encode(command.Type(250), struct{}{}); !errors.Is(err, command.ErrUnknown) {
		t.Fatalf("encode unknown type: err = %v", err)
	}
	last := leader.LastIndex()
	// As if forwarded by a newer berth.
	if _, err := leader.ApplyEncoded(context.Background(), []byte{250, '{', '}'}); !errors.Is(err, command.ErrUnknown) {
		t.Fatalf("apply unknown type: err = %v, want ErrUnknownCommand", err)
	}
	if got := leader.LastIndex(); got != last {
		t.Errorf("the log grew from %d to %d: the refused command was written", last, got)
	}
}

// Acknowledged writes survive losing the leader: a new leader is elected, accepts
// writes, and the old leader catches up when it comes back.
func TestFailoverLosesNothing(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	var last uint64
	write := func(s *Store, i int) {
		t.Helper()
		idx, err := s.Apply(ctx, command.CmdNodeUpsert, node(fmt.Sprintf("n%03d", i)))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		last = idx
	}
	for i := range 20 {
		write(c.waitLeader(), i)
	}
	old := c.leaderID()
	c.stop(old)
	for i := 20; i < 40; i++ {
		write(c.waitLeader(), i)
	}
	if now := c.leaderID(); now == old {
		t.Fatalf("leader %s did not change after it stopped", old)
	}
	c.start(old, false)
	s := c.node(old)
	waitApplied(t, s, last)
	nodes, err := s.State().ReadTxn().Nodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 40 {
		t.Fatalf("restarted manager has %d nodes, want 40", len(nodes))
	}
}

// A manager restarted from a snapshot (plus the log after it) has the same state.
func TestRestartRestoresFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 1)
	ctx := context.Background()
	leader := c.waitLeader()
	for i := range 10 {
		if _, err := leader.Apply(ctx, command.CmdNodeUpsert, node(fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	idx, err := leader.Apply(ctx, command.CmdSecretUpsert, &model.Secret{ID: "s1", Name: "db_password", Version: 1, Data: []byte("after-the-snapshot")})
	if err != nil {
		t.Fatal(err)
	}
	c.stop("m1")
	c.start("m1", true)
	s := c.waitLeader()
	waitApplied(t, s, idx)
	tx := s.State().ReadTxn()
	nodes, _ := tx.Nodes(nil)
	sec, err := tx.Secret(nil, "db_password")
	if len(nodes) != 10 || err != nil || string(sec.Data) != "after-the-snapshot" {
		t.Fatalf("after restart: %d nodes, secret %v (err %v)", len(nodes), sec, err)
	}
	snaps, _ := filepath.Glob(filepath.Join(c.dirs["m1"], "snapshots", "*"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
}

// With no quorum, a write fails within the bound and says why.
func TestNoLeaderFailsWithinBound(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.leaderID()
	for _, id := range []string{"m1", "m2", "m3"} {
		if id != leader {
			c.stop(id)
		}
	}
	// Alone of three, the last manager cannot be elected.
	c.stop(leader)
	c.start(leader, false)
	s := c.node(leader)
	s.cfg.ApplyTimeout = time.Second
	_, err := s.Apply(context.Background(), command.CmdNodeUpsert, node("n1"))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("write without quorum: err = %v, want ErrNoLeader", err)
	}
	if !strings.Contains(err.Error(), "3 managers") {
		t.Errorf("error does not say how many managers there are: %v", err)
	}
}

// Cluster updates are compare-and-swap: of two managers that read the same row, the
// second to write is refused instead of silently undoing the first.
func TestClusterUpdateIsCompareAndSwap(t *testing.T) {
	c := newTestCluster(t, 1)
	leader := c.waitLeader()
	ctx := context.Background()
	if _, err := leader.Apply(ctx, command.CmdClusterUpsert, &model.Cluster{ID: "c1", Settings: model.DefaultSettings()}); err != nil {
		t.Fatal(err)
	}
	read, err := leader.State().ReadTxn().Cluster(nil)
	if err != nil {
		t.Fatal(err)
	}
	first := read.Copy()
	first.Autolock, first.UnlockKey, first.UnlockKeyGeneration = true, "key-a", 1
	if _, err := leader.Apply(ctx, command.CmdClusterUpdate, command.ClusterUpdate{ExpectModifyIndex: read.ModifyIndex, Cluster: first}); err != nil {
		t.Fatalf("first update: %v", err)
	}
	second := read.Copy()
	second.Autolock, second.UnlockKey, second.UnlockKeyGeneration = true, "key-b", 1
	if _, err := leader.Apply(ctx, command.CmdClusterUpdate, command.ClusterUpdate{ExpectModifyIndex: read.ModifyIndex, Cluster: second}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("stale update: err = %v, want state.ErrConflict", err)
	}
	got, _ := leader.State().ReadTxn().Cluster(nil)
	if got.UnlockKey != "key-a" {
		t.Fatalf("unlock key %q after the refused update, want key-a", got.UnlockKey)
	}
}

func TestNodeUpdateChangesRole(t *testing.T) {
	c := newTestCluster(t, 1)
	leader := c.waitLeader()
	ctx := context.Background()
	n := node("n1")
	n.Addr = "10.0.0.1:4270"
	if _, err := leader.Apply(ctx, command.CmdNodeUpsert, n); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Apply(ctx, command.CmdNodeUpdate, command.NodeUpdate{ID: "n1", Role: model.RoleManager, LabelsAdd: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := leader.State().ReadTxn().Node(nil, "n1")
	if got.Role != model.RoleManager || got.ManagerStatus == nil || got.ManagerStatus.Addr != n.Addr || got.Labels["a"] != "b" {
		t.Fatalf("promoted node: %+v", got)
	}
}
