package main

// Process tests: real `berth daemon`s on 127.0.0.1, driven by the real CLI. They need
// only the Go toolchain. Every wait is bounded; every daemon is killed and every
// directory removed when a test ends, failed or not.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

// berthBinary builds cmd/berth once per test binary run.
func berthBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		testenv.Unavailable(t, "process test: skipped with -short")
	}
	binOnce.Do(func() {
		// A prebuilt binary, e.g. one built with -race.
		if bin := os.Getenv("BERTH_TEST_BINARY"); bin != "" {
			binPath = bin
			return
		}
		binDir, binErr = os.MkdirTemp("", "berth-e2e-bin-")
		if binErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		binPath, binErr = clustertest.Build(ctx, binDir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func cleanupBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// testDaemonArgs make failures and failovers quick to observe: heartbeats every
// 500ms (down after 2.5s), writes wait 5s for a leader, snapshots every 32 entries so
// that restarts go through sealed snapshots too. The daemons of one machine would
// share containerd's namespace and the host's network, so these control-plane tests
// run simulated agents (the data plane has its own tests, one daemon each).
var testDaemonArgs = []string{"--heartbeat-period", "500ms", "--apply-timeout", "5s",
	"--raft-snapshot-threshold", "32", "--raft-snapshot-interval", "1s", "--log-level", "debug", "--sim-agent"}

type procCluster struct {
	t       *testing.T
	ctx     context.Context
	bin     string
	root    string
	daemons map[string]*clustertest.Daemon
}

func newProcCluster(t *testing.T, names ...string) *procCluster {
	t.Helper()
	return newProcClusterArgs(t, testDaemonArgs, names...)
}

// newProcClusterArgs is newProcCluster with other daemon flags.
func newProcClusterArgs(t *testing.T, args []string, names ...string) *procCluster {
	t.Helper()
	bin := berthBinary(t)
	ports, err := clustertest.FreePorts(len(names))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	c := &procCluster{t: t, ctx: ctx, bin: bin, root: t.TempDir(), daemons: map[string]*clustertest.Daemon{}}
	for i, name := range names {
		c.daemons[name] = clustertest.NewDaemon(bin, c.root, name, ports[i], args...)
	}
	// Registered after TempDir: runs first, so the daemons are gone before their
	// directories are removed.
	t.Cleanup(func() {
		cancel()
		for _, name := range names {
			d := c.daemons[name]
			_ = d.Kill()
			if t.Failed() {
				t.Logf("--- log of %s (last lines)\n%s", name, d.LogTail(40))
			}
		}
	})
	return c
}

func (c *procCluster) d(name string) *clustertest.Daemon { return c.daemons[name] }

func (c *procCluster) start(names ...string) {
	c.t.Helper()
	for _, n := range names {
		if err := c.d(n).Start(c.ctx); err != nil {
			c.t.Fatal(err)
		}
	}
}

// run runs the CLI against a daemon.
func (c *procCluster) run(name string, args ...string) clustertest.Result {
	return c.d(name).CLI(c.ctx, "", args...)
}

// must runs the CLI and fails the test if it fails.
func (c *procCluster) must(name string, args ...string) clustertest.Result {
	c.t.Helper()
	r := c.run(name, args...)
	if r.Code != 0 {
		c.t.Fatalf("on %s: %v", name, r)
	}
	return r
}

// fails runs the CLI, expects exit code 2 and an error containing want.
func (c *procCluster) fails(name, stdin, want string, args ...string) clustertest.Result {
	c.t.Helper()
	r := c.d(name).CLI(c.ctx, stdin, args...)
	if r.Code != 2 || !strings.Contains(r.Stderr, want) {
		c.t.Fatalf("on %s: want exit 2 and an error containing %q, got %v", name, want, r)
	}
	if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic") {
		c.t.Fatalf("on %s: a user must not see a Go stack trace: %v", name, r)
	}
	return r
}

func (c *procCluster) info(name string) *api.Info {
	c.t.Helper()
	var info api.Info
	r := c.must(name, "info", "--format", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
		c.t.Fatalf("info on %s: %v\n%s", name, err, r.Stdout)
	}
	return &info
}

func (c *procCluster) eventually(d time.Duration, fn func() error) {
	c.t.Helper()
	if err := clustertest.Eventually(c.ctx, d, fn); err != nil {
		c.t.Fatal(err)
	}
}

var joinCommand = regexp.MustCompile(`berth join --token (BERTH-1-\S+) (\S+)`)

// initCluster runs init on first and joins the others (managers, then workers), and
// returns the init output.
func (c *procCluster) initCluster(first string, managers, workers []string, initArgs ...string) string {
	c.t.Helper()
	out := c.must(first, append([]string{"init"}, initArgs...)...)
	m := joinCommand.FindAllStringSubmatch(out.Stdout, -1)
	if len(m) != 2 {
		c.t.Fatalf("init printed %d join commands, want 2 (worker, manager):\n%s", len(m), out.Stdout)
	}
	workerToken, managerToken, addr := m[0][1], m[1][1], m[0][2]
	if addr != c.d(first).Addr || m[1][2] != addr {
		c.t.Fatalf("join commands name %s and %s, want %s", addr, m[1][2], c.d(first).Addr)
	}
	if got := strings.TrimSpace(c.must(first, "join-token", "-q", "worker").Stdout); got != workerToken {
		c.t.Fatalf("join-token -q worker = %q, init printed %q", got, workerToken)
	}
	for _, name := range managers {
		r := c.must(name, "join", "--token", managerToken, addr)
		if !strings.Contains(r.Stdout, "as a manager") {
			c.t.Fatalf("join of %s: %v", name, r)
		}
	}
	for _, name := range workers {
		r := c.must(name, "join", "--token", workerToken, addr)
		if !strings.Contains(r.Stdout, "as a worker") {
			c.t.Fatalf("join of %s: %v", name, r)
		}
	}
	return out.Stdout
}

// nodeTable is `node ls` parsed: hostname -> columns.
type nodeRow struct{ id, status, availability, manager string }

func parseNodeLs(out string) (map[string]nodeRow, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID") {
		return nil, fmt.Errorf("no header in %q", out)
	}
	head := lines[0]
	col := func(name string) int { return strings.Index(head, name) }
	cols := []int{col("ID"), col("HOSTNAME"), col("STATUS"), col("AVAILABILITY"), col("MANAGER STATUS")}
	if slices.Contains(cols, -1) {
		return nil, fmt.Errorf("header %q lacks a Docker column", head)
	}
	field := func(line string, i int) string {
		end := len(line)
		if i+1 < len(cols) {
			end = min(cols[i+1], len(line))
		}
		if cols[i] >= len(line) {
			return ""
		}
		return strings.TrimSpace(line[cols[i]:end])
	}
	rows := map[string]nodeRow{}
	for _, line := range lines[1:] {
		rows[field(line, 1)] = nodeRow{id: field(line, 0), status: field(line, 2), availability: field(line, 3), manager: field(line, 4)}
	}
	return rows, nil
}

func randomMarker(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestClusterProcesses is the scenario on real processes: init, two manager
// joins and a worker join; node ls; the negative paths of joining and of the mTLS
// port; nothing secret on disk in the clear; kill -9 of the leader while writes go
// on, a new leader, the killed node back and caught up, nothing acknowledged lost;
// and the error a write gets when no majority is left.
func TestClusterProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3", "node-4", "loner", "other")
	c.start("node-1", "node-2", "node-3", "node-4", "loner", "other")

	c.fails("node-1", "", "this node is not part of a cluster: run `berth init` or `berth join`", "node", "ls")
	c.initCluster("node-1", []string{"node-2", "node-3"}, []string{"node-4"})

	// node ls as Docker shows it, from a follower.
	var table string
	c.eventually(20*time.Second, func() error {
		r := c.run("node-2", "node", "ls")
		if r.Code != 0 {
			return r.Err()
		}
		rows, err := parseNodeLs(r.Stdout)
		if err != nil {
			return err
		}
		if len(rows) != 4 {
			return fmt.Errorf("%d nodes listed:\n%s", len(rows), r.Stdout)
		}
		var leaders, reachable int
		for host, row := range rows {
			if row.status != "Ready" || row.availability != "Active" {
				return fmt.Errorf("%s: %+v", host, row)
			}
			switch row.manager {
			case "Leader":
				leaders++
			case "Reachable":
				reachable++
			}
		}
		if leaders != 1 || reachable != 2 || rows["node-4"].manager != "" || !strings.HasSuffix(rows["node-2"].id, " *") {
			return fmt.Errorf("manager status column wrong:\n%s", r.Stdout)
		}
		table = r.Stdout
		return nil
	})
	t.Logf("node ls on node-2:\n%s", table)
	// node-3 is a follower: its copy of the state may trail node-2's by a commit.
	c.eventually(10*time.Second, func() error {
		if info := c.info("node-3"); info.Managers != 3 || info.Nodes != 4 || info.Leader == nil || info.Role != model.RoleManager {
			return fmt.Errorf("info on node-3: %+v", info)
		}
		return nil
	})
	c.eventually(10*time.Second, func() error {
		out := c.must("node-1", "node", "ls", "--format", "json").Stdout
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !json.Valid([]byte(lines[0])) {
			return fmt.Errorf("node ls --format json: %q, want 4 JSON objects", out)
		}
		return nil
	})

	t.Run("join and port negative paths", func(t *testing.T) { testNegativePaths(t, c) })
	t.Run("no plaintext at rest", func(t *testing.T) { testPlaintextScan(t, c) })
	t.Run("quorum refusals", func(t *testing.T) { testQuorumRefusals(t, c) })
	t.Run("failover loses nothing", func(t *testing.T) { testFailover(t, c) })
}

func testNegativePaths(t *testing.T, c *procCluster) {
	ctx := c.ctx
	addr := c.d("node-1").Addr
	workerToken := strings.TrimSpace(c.must("node-1", "join-token", "-q", "worker").Stdout)

	// A well-formed token with a wrong secret: the manager refuses it.
	parts := strings.Split(workerToken, "-")
	parts[3] = strings.Repeat("0", len(parts[3]))
	c.fails("loner", "", "invalid join token", "join", "--token", strings.Join(parts, "-"), addr)

	// The token of another cluster: the joiner refuses the manager before sending it.
	c.must("other", "init")
	otherToken := strings.TrimSpace(c.must("other", "join-token", "-q", "worker").Stdout)
	c.fails("loner", "", "the token expects", "join", "--token", otherToken, addr)
	if info := c.info("loner"); info.Phase != api.PhaseInactive {
		t.Fatalf("loner joined something after two refused joins: %+v", info)
	}

	caPEM, err := os.ReadFile(filepath.Join(c.d("node-1").DataDir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.ParseCACert(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientWith := func(certOf string) *api.Client {
		cert := tls.Certificate{}
		if certOf != "" {
			dir := filepath.Join(c.d(certOf).DataDir, "certs")
			cert, err = tls.LoadX509KeyPair(filepath.Join(dir, "node.pem"), filepath.Join(dir, "node-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
		}
		cfg := ca.ClientTLSConfig(root, cert, ca.ManagerServerName)
		if certOf != "" {
			// Present the certificate whatever CAs the server asks for: crypto/tls
			// would otherwise quietly send none when it is of another CA.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		}
		cl, err := api.New(addr, api.WithTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	// No certificate: the handshake is let through (joins need that), the API is not.
	if _, _, err := clientWith("").Nodes(cctx, api.Query{}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("no client certificate: err = %v, want api.ErrUnauthorized", err)
	}
	// A certificate of another CA: refused in the handshake.
	if _, _, err := clientWith("other").Nodes(cctx, api.Query{}); err == nil || !strings.Contains(err.Error(), "refused this client's certificate") {
		t.Errorf("a certificate of another cluster's CA: err = %v, want a refusal in the handshake", err)
	} else {
		t.Logf("certificate of another CA: %v", err)
	}
	// A worker's certificate: good for node endpoints, not for manager ones.
	worker := clientWith("node-4")
	if _, err := worker.Info(cctx); err != nil {
		t.Errorf("worker certificate on a node endpoint: %v", err)
	}
	if _, _, err := worker.Nodes(cctx, api.Query{}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker certificate on a manager endpoint: err = %v, want api.ErrForbidden", err)
	}
	if _, err := worker.Apply(cctx, []byte{2, '{', '}'}); !errors.Is(err, api.ErrForbidden) {
		t.Errorf("worker certificate forwarding a raft command: err = %v, want api.ErrForbidden", err)
	}
	// A manager's certificate is what the API wants.
	if _, _, err := clientWith("node-2").Nodes(cctx, api.Query{}); err != nil {
		t.Errorf("manager certificate: %v", err)
	}
	// Local-only endpoints are not on the port at all.
	if err := clientWith("node-2").Unlock(cctx, "x"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unlock over the port: err = %v, want not found", err)
	}
	// The socket is root's alone.
	if fi, err := os.Stat(c.d("node-1").Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(c.d("node-1").DataDir, "certs", "node-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node key mode: %v %v", fi.Mode(), err)
	}
}

func testPlaintextScan(t *testing.T, c *procCluster) {
	ctx := c.ctx
	secret, label, config := randomMarker("secret-value-"), randomMarker("label-value-"), randomMarker("config-value-")
	cl := c.d("node-2").Client()
	if _, err := cl.CreateSecret(ctx, api.ObjectCreateRequest{Name: "db_password", Data: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateConfig(ctx, api.ObjectCreateRequest{Name: "app_conf", Data: []byte(config)}); err != nil {
		t.Fatal(err)
	}
	c.must("node-2", "node", "update", "--label-add", "marker="+label, "node-4")
	secrets, _, err := cl.Secrets(ctx, api.Query{})
	if err != nil || len(secrets) != 1 || secrets[0].Data != nil {
		t.Fatalf("secret listing: %v, %v", secrets, err)
	}
	configs, _, err := cl.Configs(ctx, api.Query{})
	if err != nil || len(configs) != 1 || configs[0].Data != nil {
		t.Fatalf("config listing: %v, %v", configs, err)
	}
	// Enough writes for a snapshot on every manager, so that snapshots are scanned too.
	for i := range 40 {
		c.must("node-1", "node", "update", "--label-add", fmt.Sprintf("filler-%d=x", i), "node-4")
	}
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		c.eventually(20*time.Second, func() error {
			snaps, _ := filepath.Glob(filepath.Join(c.d(name).DataDir, "raft", "snapshots", "*", "state.bin"))
			r := c.run(name, "node", "inspect", "node-4")
			if !strings.Contains(r.Stdout, label) || !strings.Contains(r.Stdout, "filler-39") {
				return fmt.Errorf("%s has not applied the label yet", name)
			}
			if len(snaps) == 0 {
				return fmt.Errorf("%s has taken no snapshot yet", name)
			}
			return nil
		})
	}
	needles := map[string][]byte{"secret": []byte(secret), "label": []byte(label), "config": []byte(config)}
	total := 0
	for _, name := range []string{"node-1", "node-2", "node-3", "node-4"} {
		d := c.d(name)
		found, scanned, err := clustertest.ScanFiles(d.DataDir, needles)
		if err != nil {
			t.Fatal(err)
		}
		total += scanned
		for what, files := range found {
			t.Errorf("the %s's plaintext is on %s's disk in %v", what, name, files)
		}
		// Control: the scan reads what is there (node.json holds the node's ID).
		ctl, _, _ := clustertest.ScanFiles(d.DataDir, map[string][]byte{"id": []byte(c.info(name).NodeID)})
		if len(ctl["id"]) == 0 {
			t.Fatalf("control: the scan of %s does not find the node ID: it is blind", name)
		}
	}
	t.Logf("scanned %d files under 4 data dirs: no plaintext of the secret, the label or the config", total)
	// Nor in what the API lists, nor in the daemons' logs.
	for _, name := range []string{"node-1", "node-2", "node-3", "node-4"} {
		logs, _ := os.ReadFile(c.d(name).LogPath)
		if strings.Contains(string(logs), secret) || strings.Contains(string(logs), config) {
			t.Errorf("%s's log holds secret data", name)
		}
	}
}

func testQuorumRefusals(t *testing.T, c *procCluster) {
	c.fails("node-1", "", "is a manager: demote it first", "node", "rm", "node-3")
	c.fails("node-1", "", "is not down", "node", "rm", "node-4")
	c.fails("node-2", "", "use --force", "leave")
	// Stop node-3: demoting node-2 would leave 1 of 2 managers reachable.
	if err := c.d("node-3").Kill(); err != nil {
		t.Fatal(err)
	}
	c.eventually(15*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err != nil {
			return err
		}
		if rows["node-3"].status != "Down" || rows["node-3"].manager != "Unreachable" {
			return fmt.Errorf("node-3 is %+v", rows["node-3"])
		}
		return nil
	})
	r := c.fails("node-1", "", "would leave 1 of 2 managers reachable", "node", "demote", "node-2")
	t.Logf("demote refused: %s", strings.TrimSpace(r.Stderr))
	c.start("node-3")
	c.eventually(20*time.Second, func() error {
		rows, err := parseNodeLs(c.must("node-1", "node", "ls").Stdout)
		if err != nil {
			return err
		}
		if rows["node-3"].status != "Ready" || rows["node-3"].manager != "Reachable" {
			return fmt.Errorf("node-3 is %+v", rows["node-3"])
		}
		return nil
	})
}

func testFailover(t *testing.T, c *procCluster) {
	names := map[string]string{} // node ID -> daemon name
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		names[c.info(name).NodeID] = name
	}
	info := c.info("node-1")
	if info.Leader == nil {
		t.Fatal("no leader")
	}
	oldLeader := names[info.Leader.NodeID]
	var writer string
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		if name != oldLeader {
			writer = name
			break
		}
	}
	t.Logf("leader %s; writing through %s", oldLeader, writer)

	var (
		mu        sync.Mutex
		acked     []int
		killedAt  = -1
		stop      = make(chan struct{})
		done      = make(chan struct{})
		seq       int
		failedMsg []string
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			seq++
			r := c.run(writer, "node", "update", "--label-add", fmt.Sprintf("seq-%d=%d", seq, seq), "node-4")
			mu.Lock()
			if r.Code == 0 {
				acked = append(acked, seq)
			} else {
				failedMsg = append(failedMsg, strings.TrimSpace(r.Stderr))
			}
			mu.Unlock()
		}
	}()
	ackedAfter := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		count := 0
		for _, s := range acked {
			if killedAt >= 0 && s > killedAt {
				count++
			}
		}
		return count >= n
	}
	c.eventually(20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 10 {
			return fmt.Errorf("%d writes acknowledged", len(acked))
		}
		return nil
	})
	if err := c.d(oldLeader).Kill(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	killedAt = seq
	mu.Unlock()
	t.Logf("killed %s (kill -9) after write %d", oldLeader, killedAt)

	// A new leader is elected and writes are accepted again.
	c.eventually(30*time.Second, func() error {
		info := c.info(writer)
		if info.Leader == nil || names[info.Leader.NodeID] == oldLeader {
			return fmt.Errorf("leader is still %+v", info.Leader)
		}
		if !ackedAfter(10) {
			return errors.New("fewer than 10 writes acknowledged since the kill")
		}
		return nil
	})
	close(stop)
	<-done
	mu.Lock()
	ackedCopy := slices.Clone(acked)
	t.Logf("%d writes acknowledged, %d failed during the failover (first failure: %v)", len(acked), len(failedMsg), firstOf(failedMsg))
	mu.Unlock()

	// The killed node comes back and catches up; every acknowledged write is on every
	// manager.
	c.start(oldLeader)
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		c.eventually(30*time.Second, func() error {
			var n model.Node
			r := c.run(name, "node", "inspect", "--format", "json", "node-4")
			if r.Code != 0 {
				return r.Err()
			}
			var list []model.Node
			if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || len(list) != 1 {
				return fmt.Errorf("inspect: %v", err)
			}
			n = list[0]
			for _, s := range ackedCopy {
				if n.Labels[fmt.Sprintf("seq-%d", s)] != fmt.Sprint(s) {
					return fmt.Errorf("%s lacks acknowledged write seq-%d", name, s)
				}
			}
			return nil
		})
	}
	c.eventually(20*time.Second, func() error {
		rows, err := parseNodeLs(c.must(writer, "node", "ls").Stdout)
		if err != nil {
			return err
		}
		if r := rows[oldLeader]; r.status != "Ready" || r.manager != "Reachable" {
			return fmt.Errorf("%s is %+v", oldLeader, r)
		}
		return nil
	})

	// Without a majority, a write fails within the bound and says why.
	var survivors []string
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		if name != writer {
			survivors = append(survivors, name)
		}
	}
	for _, name := range survivors {
		if err := c.d(name).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	r := c.fails(writer, "", "no leader: 1 of 3 managers reachable", "node", "update", "--label-add", "late=1", "node-4")
	t.Logf("write without a majority: %s", strings.TrimSpace(r.Stderr))
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// TestAutolockProcesses restarts autolocked managers: locked, a wrong key refused, the
// right key unlocks; after a rotation the old key no longer unlocks; with autolock
// off a restarted manager comes up unlocked.
func TestAutolockProcesses(t *testing.T) {
	c := newProcCluster(t, "lock-1", "lock-2")
	c.start("lock-1", "lock-2")
	out := c.initCluster("lock-1", []string{"lock-2"}, nil, "--autolock")
	key1 := regexp.MustCompile(`BERTHKEY-1-\S+`).FindString(out)
	if key1 == "" {
		t.Fatalf("init --autolock printed no unlock key:\n%s", out)
	}
	if got := strings.TrimSpace(c.must("lock-2", "unlock-key", "-q").Stdout); got != key1 {
		t.Fatalf("unlock-key on the joined manager = %q, want the one init printed", got)
	}
	generation := func(name string) uint64 {
		var nf struct {
			Gen uint64 `json:"keyring_generation"`
		}
		b, err := os.ReadFile(filepath.Join(c.d(name).DataDir, "node.json"))
		if err == nil {
			err = json.Unmarshal(b, &nf)
		}
		if err != nil {
			t.Fatal(err)
		}
		return nf.Gen
	}
	restart := func(name string) {
		t.Helper()
		if err := c.d(name).Stop(); err != nil {
			t.Fatal(err)
		}
		if code := c.d(name).ExitCode(); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", name, code)
		}
		c.start(name)
	}
	wrongKey := "BERTHKEY-1-" + strings.Repeat("A", 43)

	restart("lock-2")
	if info := c.info("lock-2"); info.Phase != api.PhaseLocked || !info.Locked {
		t.Fatalf("restarted autolocked manager: %+v", info)
	}
	c.fails("lock-2", "", "this node is locked: run `berth unlock`", "node", "ls")
	c.fails("lock-2", wrongKey+"\n", "invalid unlock key", "unlock")
	c.fails("lock-2", "SWMKEY-1-abc\n", "malformed unlock key", "unlock")
	c.d("lock-2").CLI(c.ctx, key1+"\n", "unlock")
	c.eventually(20*time.Second, func() error { return c.run("lock-2", "node", "ls").Err() })

	// Rotation: the old key no longer unlocks.
	key2 := strings.TrimSpace(c.must("lock-1", "unlock-key", "--rotate", "-q").Stdout)
	if key2 == key1 || !strings.HasPrefix(key2, "BERTHKEY-1-") {
		t.Fatalf("rotated key %q", key2)
	}
	c.eventually(10*time.Second, func() error {
		if g := generation("lock-2"); g != 2 {
			return fmt.Errorf("lock-2 follows unlock key generation %d", g)
		}
		return nil
	})
	restart("lock-2")
	c.fails("lock-2", key1+"\n", "invalid unlock key", "unlock")
	if r := c.d("lock-2").CLI(c.ctx, key2+"\n", "unlock"); r.Code != 0 {
		t.Fatalf("unlock with the rotated key: %v", r)
	}
	c.eventually(20*time.Second, func() error { return c.run("lock-2", "node", "ls").Err() })

	// Autolock off: a restart comes up unlocked.
	c.must("lock-1", "update", "--autolock=false")
	c.eventually(10*time.Second, func() error {
		if g := generation("lock-2"); g != 3 {
			return fmt.Errorf("lock-2 follows unlock key generation %d", g)
		}
		return nil
	})
	restart("lock-2")
	if info := c.info("lock-2"); info.Phase != api.PhaseManager || info.Locked {
		t.Fatalf("restart with autolock off: %+v", info)
	}
	c.fails("lock-2", key2+"\n", "not locked", "unlock")
	c.eventually(20*time.Second, func() error {
		r := c.run("lock-2", "unlock-key")
		if r.Code != 2 || !strings.Contains(r.Stderr, "autolock is off") {
			return fmt.Errorf("unlock-key with autolock off: %v", r)
		}
		return nil
	})
}

// TestDemoteProcesses: membership changes are one state machine on the leader.
// `node demote LEADER OTHER` through the leader's own socket demotes both (leadership
// moves in between), and right after it `node ls` and raft agree on who the managers
// are; a demotion followed at once by a promotion ends with the node a reachable
// manager again.
func TestDemoteProcesses(t *testing.T) {
	c := newProcCluster(t, "node-1", "node-2", "node-3")
	c.start("node-1", "node-2", "node-3")
	c.initCluster("node-1", []string{"node-2", "node-3"}, nil)
	managersAre := func(via string, want map[string]string) error {
		rows, err := parseNodeLs(c.must(via, "node", "ls").Stdout)
		if err != nil {
			return err
		}
		got := map[string]string{}
		for host, row := range rows {
			if row.manager != "" {
				got[host] = row.manager
			}
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("node ls on %s: managers %v, want %v", via, got, want)
		}
		// Raft's configuration, as `info` counts its voters, agrees with the roles.
		if info := c.info(via); info.Managers != len(want) {
			return fmt.Errorf("info on %s: raft counts %d managers, node ls %d", via, info.Managers, len(want))
		}
		return nil
	}
	c.eventually(20*time.Second, func() error {
		return managersAre("node-1", map[string]string{"node-1": "Leader", "node-2": "Reachable", "node-3": "Reachable"})
	})

	r := c.must("node-1", "node", "demote", "node-1", "node-2")
	for _, name := range []string{"node-1", "node-2"} {
		if !strings.Contains(r.Stdout, "Manager "+name+" demoted in the cluster.") {
			t.Errorf("demote output lacks %s:\n%s", name, r.Stdout)
		}
	}
	if err := managersAre("node-3", map[string]string{"node-3": "Leader"}); err != nil {
		t.Fatalf("right after the demote: %v", err)
	}

	// Promoted back, then demoted and promoted again at once.
	c.must("node-3", "node", "promote", "node-2")
	c.eventually(20*time.Second, func() error {
		return managersAre("node-3", map[string]string{"node-2": "Reachable", "node-3": "Leader"})
	})
	c.must("node-3", "node", "demote", "node-2")
	c.must("node-3", "node", "promote", "node-2")
	c.eventually(30*time.Second, func() error {
		return managersAre("node-3", map[string]string{"node-2": "Reachable", "node-3": "Leader"})
	})
	// node-1 saw its demotion through: it runs as a worker.
	c.eventually(20*time.Second, func() error {
		if info := c.info("node-1"); info.Phase != api.PhaseWorker {
			return fmt.Errorf("node-1 is %s", info.Phase)
		}
		return nil
	})
}
