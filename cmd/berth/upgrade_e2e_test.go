package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/testenv"
)

// A cluster of the previous release (the parent commit, or BERTH_UPGRADE_FROM) is
// upgraded to this build one node at a time while a writer keeps writing through
// every manager: no acknowledged write is lost, the stack keeps its replicas, and
// every node ends on this build's protocol.
func TestRollingUpgradeProcesses(t *testing.T) {
	oldBin, rev := previousRelease(t)
	managers := []string{"node-1", "node-2", "node-3"}
	nodes := append(slices.Clone(managers), "node-4")
	c := newProcCluster(t, nodes...)
	for _, name := range nodes {
		c.d(name).SetBinary(oldBin)
	}
	c.start(nodes...)
	c.initCluster("node-1", managers[1:], []string{"node-4"})
	c.must("node-1", "stack", "deploy", "-c", twoReplicaStack(t, t.TempDir()), "web")
	c.eventually(30*time.Second, func() error { return serviceRuns(c, "web_app", "2/2") })

	w := startWriter(c, managers)
	defer w.stop()
	for _, name := range nodes {
		c.upgrade(name, managers)
		if slices.Contains(managers, name) {
			// At least one write through each manager just upgraded, whatever the
			// writer managed meanwhile.
			w.writeVia(name)
		}
	}
	acked, refused := w.stop()
	t.Logf("upgraded from %s: %d writes acknowledged, %d not", rev, len(acked), refused)

	for _, name := range managers {
		cl := c.d(name).Client()
		c.eventually(30*time.Second, func() error { return hasSecrets(c.ctx, cl, acked) })
	}
	c.eventually(30*time.Second, func() error { return managersUp(c, "node-1", managers) })
	c.eventually(30*time.Second, func() error { return serviceRuns(c, "web_app", "2/2") })
	for _, name := range nodes {
		if v := c.info(name).Version; v == nil || v.Protocol != command.Version {
			t.Errorf("info on %s: version %+v, want protocol %d", name, v, command.Version)
		}
	}
	// The leader's record of its leadership is of this protocol: the gate held it
	// back while an older manager was left, and it lands once none is.
	c.eventually(60*time.Second, func() error {
		leader := c.info("node-1").Leader
		row, err := c.d("node-1").Client().Cluster(c.ctx)
		if err != nil {
			return err
		}
		if leader == nil || row.Leader.NodeID != leader.NodeID {
			return fmt.Errorf("the cluster records leader %+v, raft's is %+v", row.Leader, leader)
		}
		return nil
	})
	// The leader's gate reads the nodes' rows: each says it speaks this protocol.
	c.eventually(30*time.Second, func() error {
		rows, _, err := c.d("node-1").Client().Nodes(c.ctx, api.Query{})
		if err != nil {
			return err
		}
		for _, nd := range rows {
			if nd.Engine.Protocol != command.Version {
				return fmt.Errorf("node %s reports protocol %d, want %d", nd.Hostname, nd.Engine.Protocol, command.Version)
			}
		}
		return nil
	})
}

// previousRelease builds berth as of BERTH_UPGRADE_FROM, or the parent commit, and
// returns the binary and the commit.
func previousRelease(t *testing.T) (bin, rev string) {
	t.Helper()
	berthBinary(t) // skipped with -short, as the other process tests
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want := cmp.Or(os.Getenv("BERTH_UPGRADE_FROM"), "HEAD^")
	rev, err := clustertest.Revision(ctx, ".", want)
	if err != nil {
		testenv.Unavailable(t, fmt.Sprintf("no previous release to upgrade from (a shallow clone? set BERTH_UPGRADE_FROM): %v", err))
	}
	bin, err = clustertest.BuildRevision(ctx, ".", rev, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin, rev
}

// upgrade stops node name and starts it on the same data dir with this build, then
// waits until every manager is up again.
func (c *procCluster) upgrade(name string, managers []string) {
	c.t.Helper()
	d := c.d(name)
	if err := d.Stop(); err != nil {
		c.t.Fatalf("stop %s: %v", name, err)
	}
	d.SetBinary(c.bin)
	if err := d.Start(c.ctx); err != nil {
		c.t.Fatal(err)
	}
	via := name
	if !slices.Contains(managers, name) {
		via = managers[0]
	}
	c.eventually(60*time.Second, func() error {
		if err := managersUp(c, via, managers); err != nil {
			return err
		}
		rows, err := parseNodeLs(c.run(via, "node", "ls").Stdout)
		if err != nil {
			return err
		}
		if rows[name].status != "Ready" {
			return fmt.Errorf("%s is %q after its upgrade", name, rows[name].status)
		}
		return nil
	})
}

// managersUp checks `node ls` on via: one leader, the other managers reachable.
func managersUp(c *procCluster, via string, managers []string) error {
	r := c.run(via, "node", "ls")
	rows, err := parseNodeLs(r.Stdout)
	if err != nil {
		return fmt.Errorf("node ls on %s: %w (%s)", via, err, r.Stderr)
	}
	leaders := 0
	for _, m := range managers {
		switch rows[m].manager {
		case "Leader":
			leaders++
		case "Reachable":
		default:
			return fmt.Errorf("node ls on %s: manager %s is %q:\n%s", via, m, rows[m].manager, r.Stdout)
		}
	}
	if leaders != 1 {
		return fmt.Errorf("node ls on %s: %d leaders:\n%s", via, leaders, r.Stdout)
	}
	return nil
}

func hasSecrets(ctx context.Context, cl *api.Client, names []string) error {
	secrets, _, err := cl.Secrets(ctx, api.Query{})
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, s := range secrets {
		have[s.Name] = true
	}
	missing := 0
	for _, n := range names {
		if !have[n] {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d of %d acknowledged secrets missing", missing, len(names))
	}
	return nil
}

// writer creates secrets through the managers in turn until stopped, and keeps the
// names of those whose creation was acknowledged.
type writer struct {
	c        *procCluster
	managers []string
	done     chan struct{}
	finished chan struct{}
	once     sync.Once

	mu      sync.Mutex
	n       int
	acked   []string
	refused int
}

// maxWrites bounds the writer, whatever happens to the test.
const maxWrites = 20000

func startWriter(c *procCluster, managers []string) *writer {
	w := &writer{c: c, managers: managers, done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(w.finished)
		for i := 0; i < maxWrites; i++ {
			select {
			case <-w.done:
				return
			default:
			}
			if !w.write(w.managers[i%len(w.managers)]) {
				// A manager being upgraded: do not spin on it.
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	return w
}

// write creates one secret through manager name and says whether it was acknowledged.
func (w *writer) write(name string) bool {
	w.mu.Lock()
	w.n++
	secret := fmt.Sprintf("load-%05d", w.n)
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(w.c.ctx, 10*time.Second)
	defer cancel()
	_, err := w.c.d(name).Client().CreateSecret(ctx, api.ObjectCreateRequest{Name: secret, Data: []byte(secret)})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.refused++
		return false
	}
	w.acked = append(w.acked, secret)
	return true
}

// writeVia writes through name until one write is acknowledged (bounded).
func (w *writer) writeVia(name string) {
	w.c.t.Helper()
	w.c.eventually(30*time.Second, func() error {
		if !w.write(name) {
			return fmt.Errorf("no write acknowledged through %s", name)
		}
		return nil
	})
}

// stop stops the writer and returns the acknowledged writes and the count of the
// others.
func (w *writer) stop() (acked []string, refused int) {
	w.once.Do(func() { close(w.done) })
	<-w.finished
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), w.refused
}
