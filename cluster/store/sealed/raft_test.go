package sealed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// TestPlaintextScan stores log entries and a snapshot carrying the marker
// through the sealed stores, closes everything, and reads every file
// under the data dir looking for it. A control run through the plain
// stores proves the scan would have found it.
func TestPlaintextScan(t *testing.T) {
	for _, sealedRun := range []bool{false, true} {
		name := map[bool]string{false: "control: plain stores", true: "sealed stores"}[sealedRun]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
			if err != nil {
				t.Fatal(err)
			}
			var logs raft.LogStore = bolt
			var snaps raft.SnapshotStore = newFileSnapshots(t, dir)
			if sealedRun {
				kr, _ := mustCreate(t, dir, true)
				logs, snaps = NewLogStore(logs, kr), NewSnapshotStore(snaps, kr)
			}

			var batch []*raft.Log
			for i := uint64(1); i <= 100; i++ {
				batch = append(batch, testLog(i, fmt.Sprintf("%s/entry-%d", marker, i)))
			}
			batch[7].Extensions = marker
			if err := logs.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
			_, trans := raft.NewInmemTransport("")
			sink, err := snaps.Create(1, 100, 3, raft.Configuration{}, 0, trans)
			if err != nil {
				t.Fatal(err)
			}
			sink.Write(bytes.Repeat(marker, 5000))
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			// Deleted entries must not linger in bolt's free pages either.
			if err := logs.DeleteRange(1, 50); err != nil {
				t.Fatal(err)
			}
			if err := bolt.Close(); err != nil {
				t.Fatal(err)
			}

			needles := map[string][]byte{"marker": marker}
			if !sealedRun {
				found, _ := findInFiles(t, dir, needles)
				if len(found["marker"]) < 2 {
					t.Fatalf("control run: marker found only in %v; the scan is blind", found["marker"])
				}
				t.Logf("control run: marker found in %v", found["marker"])
				return
			}
			assertNotOnDisk(t, dir, needles)
		})
	}
}

// memFSM is a trivial FSM that keeps every applied command.
type memFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *memFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return nil
}

func (f *memFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return memSnapshot(slices.Clone(f.applied)), nil
}

func (f *memFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var applied []string
	if err := json.NewDecoder(rc).Decode(&applied); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = applied
	return nil
}

func (f *memFSM) state() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

type memSnapshot []string

func (s memSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode([]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (memSnapshot) Release() {}

// node is one single-server raft over sealed stores in dir.
type node struct {
	raft *raft.Raft
	fsm  *memFSM
	bolt *raftboltdb.BoltStore
}

func startNode(t *testing.T, dir string, kr *Keyring, bootstrap bool) (*node, error) {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = "manager-1"
	conf.Logger = hclog.NewNullLogger()
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
	conf.SnapshotInterval = time.Hour

	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	snaps := newFileSnapshots(t, dir)
	logs := NewLogStore(bolt, kr)
	sealedSnaps := NewSnapshotStore(snaps, kr)
	addr, trans := raft.NewInmemTransport("")
	if bootstrap {
		err := raft.BootstrapCluster(conf, logs, bolt, sealedSnaps, trans, raft.Configuration{
			Servers: []raft.Server{{ID: conf.LocalID, Address: addr}},
		})
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	fsm := &memFSM{}
	r, err := raft.NewRaft(conf, fsm, logs, bolt, sealedSnaps, trans)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	return &node{raft: r, fsm: fsm, bolt: bolt}, nil
}

func (n *node) waitLeader(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.raft.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *node) apply(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if err := n.raft.Apply([]byte(c), 5*time.Second).Error(); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := n.bolt.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRaftEndToEnd runs a real single-node raft on the sealed stores with
// autolock on, rotates the data key and the unlock key along the way,
// snapshots, restarts locked, and checks that the state comes back from
// snapshot plus log once unlocked, and that nothing readable was on disk.
func TestRaftEndToEnd(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, true)

	n, err := startNode(t, dir, kr, true)
	if err != nil {
		t.Fatal(err)
	}
	n.waitLeader(t)
	cmd := func(i int) string { return fmt.Sprintf("%s/cmd-%d", marker, i) }
	var want []string
	for i := range 10 {
		want = append(want, cmd(i))
	}

	n.apply(t, want[:4]...) // sealed with data key 1
	if err := kr.RotateDEK(); err != nil {
		t.Fatal(err)
	}
	n.apply(t, want[4:7]...) // data key 2
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	n.apply(t, want[7:]...) // after the snapshot: only in the log
	key, err := kr.RotateUnlockKey()
	if err != nil {
		t.Fatal(err)
	}
	if got := n.fsm.state(); !slices.Equal(got, want) {
		t.Fatalf("FSM before restart: %q", got)
	}
	n.stop(t)

	kek, _ := parseUnlockKey(key)
	needles := map[string][]byte{"marker": marker, "unlock key": []byte(key), "kek": kek}
	for id, dk := range kr.deks {
		needles[fmt.Sprint("dek ", id)] = dk.raw
	}
	assertNotOnDisk(t, dir, needles)

	// Restart: the keyring comes up locked and raft cannot start on it.
	locked := mustOpenKeyring(t, dir)
	if !locked.Locked() {
		t.Fatal("autolocked keyring opened unlocked")
	}
	if n, err := startNode(t, dir, locked, false); err == nil {
		n.stop(t)
		t.Fatal("raft started on a locked keyring")
	} else {
		t.Logf("raft on a locked keyring: %v", err)
	}

	if err := locked.Unlock(key); err != nil {
		t.Fatal(err)
	}
	n, err = startNode(t, dir, locked, false)
	if err != nil {
		t.Fatalf("restart after unlock: %v", err)
	}
	defer n.stop(t)
	if got := n.fsm.state(); !slices.Equal(got, want[:7]) {
		t.Fatalf("FSM right after restart = %q, want the snapshot's %q", got, want[:7])
	}
	n.waitLeader(t)
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if got := n.fsm.state(); !slices.Equal(got, want) {
		t.Fatalf("FSM after restart = %q, want %q", got, want)
	}
	// And the restarted node keeps writing.
	n.apply(t, "after restart")
	if got := n.fsm.state(); got[len(got)-1] != "after restart" {
		t.Fatalf("apply after restart not in FSM: %q", got)
	}
}
