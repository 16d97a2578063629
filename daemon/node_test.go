package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/store/sealed"
	"github.com/berthd/berth/internal/syncbuf"
)

type testNode struct {
	name   string
	n      *Node
	c      *api.Client
	addr   string
	cancel context.CancelFunc
	done   chan error
	log    *syncbuf.Buffer
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode runs a node in this process on 127.0.0.1, with fast heartbeats and raft
// timeouts, until the test ends.
func startNode(t testing.TB, dir, name string, opts ...func(*Config)) *testNode {
	t.Helper()
	logs := &syncbuf.Buffer{}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cfg := Config{
		DataDir: filepath.Join(dir, name), Socket: filepath.Join(dir, name+".sock"), ListenAddr: addr, Hostname: name,
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HeartbeatPeriod: 200 * time.Millisecond, ApplyTimeout: 5 * time.Second,
		RaftHeartbeatTimeout: 300 * time.Millisecond, RaftElectionTimeout: 300 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{name: name, n: n, addr: addr, cancel: cancel, done: make(chan error, 1), log: logs}
	go func() { tn.done <- n.Run(ctx) }()
	tn.c, err = api.New("unix://" + cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tn.stop(t)
		if t.Failed() {
			t.Logf("--- log of %s\n%s", name, tn.log.String())
		}
	})
	eventually(t, 10*time.Second, func() error {
		_, err := tn.c.Info(context.Background())
		return err
	})
	return tn
}

func (tn *testNode) stop(t testing.TB) {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	tn.cancel = nil
	select {
	case err := <-tn.done:
		if err != nil {
			t.Errorf("%s: Run: %v", tn.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20s", tn.name)
	}
}

// shortTempDir is a temporary directory with a short path: unix socket paths are
// limited to about 100 bytes, and t.TempDir's can be longer.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-node-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInProcessCluster drives three managers and a worker in one process through the
// API: joins, forwarding from followers, token rotation, blocking queries, demoting
// the leader itself (leadership is handed over first) and promoting it back, leave,
// and autolock key rotation.
func TestInProcessCluster(t *testing.T) {
	dir := shortTempDir(t)
	ctx := context.Background()
	nodes := map[string]*testNode{}
	for _, name := range []string{"m1", "m2", "m3", "w1"} {
		nodes[name] = startNode(t, dir, name)
	}
	m1, m2, m3, w1 := nodes["m1"], nodes["m2"], nodes["m3"], nodes["w1"]

	init, err := m1.c.Init(ctx, api.InitRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*testNode{m2, m3} {
		resp, err := tn.c.Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.ManagerToken})
		if err != nil || resp.Role != model.RoleManager {
			t.Fatalf("join %s: %+v %v", tn.name, resp, err)
		}
	}
	if _, err := m2.c.Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.ManagerToken}); !errors.Is(err, api.ErrAlreadyInCluster) {
		t.Errorf("second join: %v", err)
	}

	// A rotated worker token: the old one is refused, the new one works.
	rotated, err := m2.c.JoinToken(ctx, model.RoleWorker, true)
	if err != nil || rotated.Token == init.WorkerToken {
		t.Fatalf("rotate worker token: %+v %v", rotated, err)
	}
	if _, err := w1.c.Join(ctx, api.JoinRequest{RemoteAddr: m2.addr, Token: init.WorkerToken}); !errors.Is(err, api.ErrInvalidToken) {
		t.Fatalf("join with the rotated-away token: %v", err)
	}
	if resp, err := w1.c.Join(ctx, api.JoinRequest{RemoteAddr: m2.addr, Token: rotated.Token}); err != nil || resp.Role != model.RoleWorker {
		t.Fatalf("join w1: %+v %v", resp, err)
	}

	// Reads on a follower, writes forwarded; a blocking query wakes up on the write.
	var index uint64
	eventually(t, 10*time.Second, func() error {
		list, meta, err := m3.c.Nodes(ctx, api.Query{})
		if err != nil {
			return err
		}
		if len(list) != 4 {
			return fmt.Errorf("%d nodes", len(list))
		}
		index = meta.Index
		return nil
	})
	woken := make(chan error, 1)
	go func() {
		list, meta, err := m3.c.Nodes(ctx, api.Query{Index: index, Wait: 20 * time.Second})
		if err == nil && meta.Index <= index {
			err = fmt.Errorf("woke at index %d, not after %d", meta.Index, index)
		}
		for _, n := range list {
			if n.Hostname == "w1" && n.Labels["zone"] != "a" {
				err = fmt.Errorf("woke without the label: %v", n.Labels)
			}
		}
		woken <- err
	}()
	if _, err := m3.c.UpdateNode(ctx, "w1", api.NodeUpdateRequest{LabelsAdd: map[string]string{"zone": "a"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("blocking query not woken")
	}
	if _, err := m3.c.UpdateNode(ctx, "nope", api.NodeUpdateRequest{LabelsAdd: map[string]string{"a": "b"}}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("update of a missing node: %v", err)
	}

	// Demote the leader through its own socket: it hands leadership over first.
	leader := func(via *testNode) string {
		info, err := via.c.Info(ctx)
		if err != nil || info.Leader == nil {
			return ""
		}
		return info.Leader.Hostname
	}
	var old *testNode
	eventually(t, 10*time.Second, func() error {
		if l := leader(m1); nodes[l] != nil {
			old = nodes[l]
			return nil
		}
		return errors.New("no leader")
	})
	if _, err := old.c.DemoteNode(ctx, old.name); err != nil {
		t.Fatalf("demote the leader %s: %v", old.name, err)
	}
	var other *testNode
	for _, tn := range []*testNode{m1, m2, m3} {
		if tn != old {
			other = tn
			break
		}
	}
	eventually(t, 15*time.Second, func() error {
		info, err := old.c.Info(ctx)
		if err != nil {
			return err
		}
		if info.Phase != api.PhaseWorker {
			return fmt.Errorf("%s is %s", old.name, info.Phase)
		}
		oi, err := other.c.Info(ctx)
		if err != nil {
			return err
		}
		if oi.Managers != 2 || oi.Leader == nil || oi.Leader.Hostname == old.name {
			return fmt.Errorf("managers %d, leader %+v", oi.Managers, oi.Leader)
		}
		return nil
	})
	// And back: it gets a manager certificate and joins raft again.
	if _, err := other.c.PromoteNode(ctx, old.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		info, err := old.c.Info(ctx)
		if err != nil {
			return err
		}
		if info.Phase != api.PhaseManager || info.Managers != 3 {
			return fmt.Errorf("%s is %s, sees %d managers", old.name, info.Phase, info.Managers)
		}
		return nil
	})
	if resp, err := other.c.PromoteNode(ctx, old.name); err != nil || !resp.Unchanged {
		t.Errorf("promote a manager: %+v %v", resp, err)
	}

	// Autolock on, rotation, off; the answering manager's keyring follows at once.
	upd, err := other.c.UpdateCluster(ctx, api.ClusterUpdateRequest{Autolock: ptr(true)})
	if err != nil || sealed.ValidateUnlockKey(upd.UnlockKey) != nil {
		t.Fatalf("autolock on: %+v %v", upd, err)
	}
	if k, err := other.c.UnlockKey(ctx, false); err != nil || k != upd.UnlockKey {
		t.Errorf("unlock key: %q %v", k, err)
	}
	k2, err := other.c.UnlockKey(ctx, true)
	if err != nil || k2 == upd.UnlockKey {
		t.Fatalf("rotate: %q %v", k2, err)
	}
	if kr := other.n.mgr.kr; !kr.Autolock() {
		t.Error("the answering manager's keyring is not autolocked")
	} else if cur, _ := kr.UnlockKey(); cur != k2 {
		t.Error("the answering manager's keyring does not use the rotated key")
	}
	if c, err := other.c.Cluster(ctx); err != nil || c.UnlockKey != "" || c.RootCAKey != "" || c.JoinTokens.Worker != "" {
		t.Errorf("cluster answer carries secrets or failed: %v", err)
	}
	if _, err := other.c.UpdateCluster(ctx, api.ClusterUpdateRequest{Autolock: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.c.UnlockKey(ctx, false); !errors.Is(err, api.ErrAutolockOff) {
		t.Errorf("unlock key with autolock off: %v", err)
	}

	// A worker leaves; its record stays (down) until removed.
	if err := w1.c.Leave(ctx, false); err != nil {
		t.Fatal(err)
	}
	if info, err := w1.c.Info(ctx); err != nil || info.Phase != api.PhaseInactive {
		t.Fatalf("after leave: %+v %v", info, err)
	}
	eventually(t, 10*time.Second, func() error {
		n, _, err := other.c.Node(ctx, "w1", api.Query{})
		if err != nil {
			return err
		}
		if n.Status.State != model.NodeDown {
			return fmt.Errorf("w1 is %s", n.Status.State)
		}
		return nil
	})
	if err := other.c.RemoveNode(ctx, "w1", false); err != nil {
		t.Fatal(err)
	}
	if err := other.c.Leave(ctx, false); !errors.Is(err, api.ErrRefused) {
		t.Errorf("manager leave without --force: %v", err)
	}
	// With --force it leaves raft first, so the two others keep a working majority.
	if err := other.c.Leave(ctx, true); err != nil {
		t.Fatal(err)
	}
	var rest []*testNode
	for _, tn := range []*testNode{m1, m2, m3} {
		if tn != other {
			rest = append(rest, tn)
		}
	}
	eventually(t, 15*time.Second, func() error {
		info, err := rest[0].c.Info(ctx)
		if err != nil {
			return err
		}
		if info.Managers != 2 || info.Leader == nil {
			return fmt.Errorf("after a manager left: %d managers, leader %+v", info.Managers, info.Leader)
		}
		return nil
	})
	if _, err := rest[1].c.UpdateNode(ctx, rest[0].name, api.NodeUpdateRequest{LabelsAdd: map[string]string{"after": "leave"}}); err != nil {
		t.Fatalf("write after a manager left: %v", err)
	}
	if info, err := other.c.Info(ctx); err != nil || info.Phase != api.PhaseInactive {
		t.Fatalf("the node that left: %+v %v", info, err)
	}
	if _, err := os.Stat(filepath.Join(dir, other.name, raftDir)); !os.IsNotExist(err) {
		t.Errorf("the node that left kept its raft state: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
