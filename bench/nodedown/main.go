// Command nodedown measures how fast a dead node's tasks move, on real processes: one
// manager and -workers workers, each a `berth daemon` on 127.0.0.1 with the cluster's
// default heartbeat settings, whose agents are simulated (`--sim-agent`: a task
// assigned to a node is reported running at once, no container starts, so the figure
// is the control plane's alone). A replicated stack runs on the workers; each run
// kills -9 the worker with the most tasks and measures the time until the manager
// records it Down and until every replica runs on another node, then restarts it.
//
//	go run ./bench/nodedown [-runs 5] [-workers 3] [-replicas 6]
//
// With -heartbeat-nodes N it instead measures the manager's CPU while N simulated
// nodes (joined with real certificates, each its own mutual-TLS client) heartbeat at
// the period the manager gives them:
//
//	go run ./bench/nodedown -heartbeat-nodes 5000 [-seconds 30]
//
// Each simulated node waits for an answer as long as a node of this build does
// (node.HeartbeatTimeout; -beat-timeout for an older build's behaviour), on one kept-alive
// connection; the program reports the new connections it opened while it measured.
//
// -berth runs another build (an older one, for a before/after), -daemon-args passes
// daemon flags (e.g. "--heartbeat-period=5s").
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/node"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/clustertest"
)

type options struct {
	runs, workers, replicas int
	bin                     string
	daemonArgs              []string
	heartbeatNodes          int
	seconds                 int
	beatTimeout             time.Duration
}

func main() {
	var o options
	var daemonArgs string
	flag.IntVar(&o.runs, "runs", 5, "worker kills")
	flag.IntVar(&o.workers, "workers", 3, "worker daemons")
	flag.IntVar(&o.replicas, "replicas", 6, "replicas of the service")
	flag.StringVar(&o.bin, "berth", "", "berth binary (default: build ./cmd/berth)")
	flag.StringVar(&daemonArgs, "daemon-args", "", "extra daemon flags, space-separated")
	flag.IntVar(&o.heartbeatNodes, "heartbeat-nodes", 0, "measure the manager's CPU with this many heartbeating nodes instead")
	flag.IntVar(&o.seconds, "seconds", 30, "length of the CPU measurement")
	flag.DurationVar(&o.beatTimeout, "beat-timeout", 0, "how long a simulated node waits for a heartbeat's answer (default: as this build's nodes)")
	flag.Parse()
	o.daemonArgs = strings.Fields(daemonArgs)
	if o.runs < 1 || o.workers < 2 || o.replicas < 1 || o.heartbeatNodes < 0 || o.seconds < 1 || o.beatTimeout < 0 {
		fmt.Fprintln(os.Stderr, "nodedown: -runs, -replicas and -seconds must be positive, -workers at least 2, -beat-timeout not negative")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "nodedown:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "berth-bench-nodedown-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	if o.bin == "" {
		if o.bin, err = clustertest.Build(ctx, root); err != nil {
			return err
		}
	}
	workers := o.workers
	if o.heartbeatNodes > 0 {
		workers = 0
	}
	ports, err := clustertest.FreePorts(workers + 1)
	if err != nil {
		return err
	}
	args := append([]string{"--log-level", "warn", "--sim-agent"}, o.daemonArgs...)
	mgr := clustertest.NewDaemon(o.bin, root, "manager", ports[0], args...)
	var ds []*clustertest.Daemon
	defer func() {
		for _, d := range append(ds, mgr) {
			_ = d.Kill()
		}
	}()
	if err := mgr.Start(ctx); err != nil {
		return err
	}
	init, err := mgr.Client().Init(ctx, api.InitRequest{})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if o.heartbeatNodes > 0 {
		return measureCPU(ctx, o, mgr, init)
	}
	for i := range workers {
		d := clustertest.NewDaemon(o.bin, root, fmt.Sprintf("worker-%d", i+1), ports[i+1], args...)
		ds = append(ds, d)
		if err := d.Start(ctx); err != nil {
			return err
		}
		if _, err := d.Client().Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.WorkerToken}); err != nil {
			return fmt.Errorf("join %s: %w", d.Name, err)
		}
	}
	return measureKills(ctx, o, root, mgr, ds)
}

// measureKills deploys the stack and kills a worker per run.
func measureKills(ctx context.Context, o options, root string, mgr *clustertest.Daemon, ds []*clustertest.Daemon) error {
	c := mgr.Client()
	if err := clustertest.AllReady(ctx, c, len(ds)+1); err != nil {
		return err
	}
	file := filepath.Join(root, "compose.yaml")
	compose := fmt.Sprintf("services:\n  api:\n    image: example/api:1\n    deploy:\n      replicas: %d\n"+
		"      placement:\n        constraints: [node.role == worker]\n", o.replicas)
	if err := os.WriteFile(file, []byte(compose), 0o600); err != nil {
		return err
	}
	if err := mgr.CLI(ctx, "", "stack", "deploy", "-c", file, "nd").Err(); err != nil {
		return err
	}
	if _, err := waitTasks(ctx, c, o.replicas, ""); err != nil {
		return err
	}
	fmt.Printf("1 manager + %d workers on 127.0.0.1 (simulated agents), %d replicas, daemon flags %q\n",
		len(ds), o.replicas, strings.Join(o.daemonArgs, " "))
	fmt.Printf("%-4s %-10s %6s %10s %12s\n", "run", "killed", "tasks", "down", "rescheduled")
	var downs, moves []time.Duration
	for i := range o.runs {
		victim, tasks, err := busiest(ctx, c, ds)
		if err != nil {
			return err
		}
		down, moved, err := killAndWait(ctx, c, victim, o.replicas)
		if err != nil {
			return fmt.Errorf("run %d: %w\n%s", i+1, err, mgr.LogTail(20))
		}
		downs, moves = append(downs, down), append(moves, moved)
		fmt.Printf("%-4d %-10s %6d %9.1fs %11.1fs\n", i+1, victim.Name, tasks, down.Seconds(), moved.Seconds())
		if err := victim.Start(ctx); err != nil {
			return err
		}
		if err := clustertest.AllReady(ctx, c, len(ds)+1); err != nil {
			return err
		}
	}
	fmt.Printf("down        p50 %.1fs  max %.1fs\n", p50(downs).Seconds(), slices.Max(downs).Seconds())
	fmt.Printf("rescheduled p50 %.1fs  max %.1fs\n", p50(moves).Seconds(), slices.Max(moves).Seconds())
	fmt.Printf("reschedule_p50_seconds=%.1f\n", p50(moves).Seconds())
	return nil
}

// killAndWait kills victim and returns how long until the manager recorded it Down,
// and until every replica ran elsewhere.
func killAndWait(ctx context.Context, c *api.Client, victim *clustertest.Daemon, replicas int) (down, moved time.Duration, err error) {
	start := time.Now()
	if err := victim.Kill(); err != nil {
		return 0, 0, err
	}
	var downAt atomic.Int64
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var idx uint64
		for dctx.Err() == nil {
			n, meta, err := c.Node(dctx, victim.Name, api.Query{Index: idx, Wait: 5 * time.Second})
			switch {
			case err != nil:
				sleep(dctx, 100*time.Millisecond)
			case n.Status.State == state.NodeDown:
				downAt.Store(int64(time.Since(start)))
				return
			default:
				idx = meta.Index
			}
		}
	}()
	if _, err := waitTasks(ctx, c, replicas, victim.Name); err != nil {
		return 0, 0, err
	}
	moved = time.Since(start)
	if err := clustertest.Eventually(ctx, 30*time.Second, func() error {
		if downAt.Load() == 0 {
			return errors.New("the killed node is not Down")
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	return time.Duration(downAt.Load()), moved, nil
}

// waitTasks waits (blocking queries) until replicas tasks run, none on node avoid.
func waitTasks(ctx context.Context, c *api.Client, replicas int, avoid string) ([]*api.TaskInfo, error) {
	var idx uint64
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		tasks, meta, err := c.Tasks(ctx, api.TaskFilter{Stack: "nd"}, api.Query{Index: idx, Wait: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("%d replicas running, none on %q: %w", replicas, avoid, err)
		}
		idx = meta.Index
		running := 0
		for _, t := range tasks {
			if t.DesiredState == state.TaskRunning && t.Status.State == state.TaskRunning && t.NodeHostname != avoid {
				running++
			}
		}
		if running == replicas {
			return tasks, nil
		}
	}
}

// busiest returns the worker running the most tasks of the stack.
func busiest(ctx context.Context, c *api.Client, ds []*clustertest.Daemon) (*clustertest.Daemon, int, error) {
	tasks, _, err := c.Tasks(ctx, api.TaskFilter{Stack: "nd"}, api.Query{})
	if err != nil {
		return nil, 0, err
	}
	count := map[string]int{}
	for _, t := range tasks {
		if t.DesiredState == state.TaskRunning && t.Status.State == state.TaskRunning {
			count[t.NodeHostname]++
		}
	}
	best := slices.MaxFunc(ds, func(a, b *clustertest.Daemon) int { return count[a.Name] - count[b.Name] })
	if count[best.Name] == 0 {
		return nil, 0, errors.New("no worker runs a task")
	}
	return best, count[best.Name], nil
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// measureCPU joins o.heartbeatNodes simulated nodes, lets them heartbeat, and reports
// the manager's CPU time per second of wall time.
func measureCPU(ctx context.Context, o options, mgr *clustertest.Daemon, init *api.InitResponse) error {
	token, err := ca.ParseJoinToken(init.WorkerToken)
	if err != nil {
		return err
	}
	root, err := ca.FetchAndVerifyCA(ctx, init.ManagerAddr, token.CADigest)
	if err != nil {
		return err
	}
	start := time.Now()
	clients, err := joinFleet(ctx, o.heartbeatNodes, init, root)
	if err != nil {
		return err
	}
	fmt.Printf("%d nodes joined in %s\n", len(clients), time.Since(start).Round(time.Second))
	var st beatStats
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() { heartbeat(fctx, cl, o.beatTimeout, &st) })
	}
	defer func() { stop(); wg.Wait() }()
	// Let every node beat once (Down -> Ready is a raft write) before measuring.
	if err := clustertest.AllReady(ctx, mgr.Client(), len(clients)+1); err != nil {
		return err
	}
	if !sleep(ctx, 5*time.Second) {
		return ctx.Err()
	}
	wentDown := watchDowns(fctx, mgr.Client())
	cpu0, err := cpuTime(mgr.Pid())
	if err != nil {
		return err
	}
	beats0, failures0, conns0, t0 := st.beats.Load(), st.failures.Load(), st.conns.Load(), time.Now()
	st.maxGap.Store(0)
	if !sleep(ctx, time.Duration(o.seconds)*time.Second) {
		return ctx.Err()
	}
	cpu1, err := cpuTime(mgr.Pid())
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	n, failed, conns := st.beats.Load()-beats0, st.failures.Load()-failures0, st.conns.Load()-conns0
	share := (cpu1 - cpu0).Seconds() / wall.Seconds()
	down := wentDown()
	fmt.Printf("daemon flags %q: %d nodes, %.0f heartbeats/s over %s, %d failed%s\n",
		strings.Join(o.daemonArgs, " "), len(clients), float64(n)/wall.Seconds(), wall.Round(time.Second), failed, st.firstError(failed))
	fmt.Printf("manager CPU %.1f%% of a core (%.1f µs per heartbeat); nodes that went Down meanwhile: %d\n",
		100*share, (cpu1-cpu0).Seconds()*1e6/float64(max(n, 1)), down)
	// A node whose generator goroutine waited longer than the Down deadline (5
	// periods) between two beats went Down through the generator's fault.
	fmt.Printf("new TLS connections meanwhile: %d; longest time between one node's heartbeats: %.1fs\n",
		conns, time.Duration(st.maxGap.Load()).Seconds())
	fmt.Printf("manager_cpu_percent=%.1f\n", 100*share)
	return nil
}

// watchDowns follows the nodes (blocking queries) until ctx ends; the function it
// returns counts the nodes seen Down so far.
func watchDowns(ctx context.Context, c *api.Client) func() int {
	var mu sync.Mutex
	down := map[string]bool{}
	go func() {
		var idx uint64
		for ctx.Err() == nil {
			nodes, meta, err := c.Nodes(ctx, api.Query{Index: idx, Wait: 5 * time.Second})
			if err != nil {
				sleep(ctx, 100*time.Millisecond)
				continue
			}
			idx = meta.Index
			mu.Lock()
			for _, nd := range nodes {
				if nd.Status.State == state.NodeDown {
					down[nd.ID] = true
				}
			}
			mu.Unlock()
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(down)
	}
}

// joinFleet joins n nodes with the worker token, 32 at a time, each with its own key
// and certificate, and returns a client per node.
func joinFleet(ctx context.Context, n int, init *api.InitResponse, root *x509.Certificate) ([]*api.Client, error) {
	anon, err := api.New(init.ManagerAddr, api.WithTLS(ca.ClientTLSConfig(root, tls.Certificate{}, ca.ManagerServerName)))
	if err != nil {
		return nil, err
	}
	clients := make([]*api.Client, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				cl, err := joinOne(ctx, anon, init, root, fmt.Sprintf("sim-%05d", i))
				if err != nil {
					errs <- err
					return
				}
				clients[i] = cl
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return clients, nil
}

func joinOne(ctx context.Context, anon *api.Client, init *api.InitResponse, root *x509.Certificate, hostname string) (*api.Client, error) {
	keyPEM, csr, err := ca.NewNodeKeyAndCSR(hostname)
	if err != nil {
		return nil, err
	}
	resp, err := anon.RequestJoin(ctx, api.NodeJoinRequest{Token: init.WorkerToken, CSR: csr, Hostname: hostname,
		Addr: "198.18.0.1:4270", Platform: state.Platform{OS: "linux", Arch: "amd64"}})
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", hostname, err)
	}
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
	if err != nil {
		return nil, err
	}
	return api.New(init.ManagerAddr, api.WithTLS(ca.ClientTLSConfig(root, cert, ca.ManagerServerName)))
}

// beatStats counts the fleet's heartbeats and the connections they opened.
type beatStats struct {
	beats, failures, conns atomic.Int64
	maxGap                 atomic.Int64 // nanoseconds
	first                  sync.Once
	err                    error
}

// gap records that a node sent two heartbeats d apart.
func (s *beatStats) gap(d time.Duration) {
	for {
		cur := s.maxGap.Load()
		if int64(d) <= cur || s.maxGap.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (s *beatStats) fail(err error) {
	s.failures.Add(1)
	s.first.Do(func() { s.err = err })
}

func (s *beatStats) firstError(failed int64) string {
	if failed == 0 {
		return ""
	}
	s.first.Do(func() {})
	return fmt.Sprintf(" (the first: %v)", s.err)
}

// heartbeat beats at the period the manager answers, from a random phase, waiting
// timeout for each answer (0: as a node of this build does).
func heartbeat(ctx context.Context, c *api.Client, timeout time.Duration, st *beatStats) {
	period := time.Second
	if !sleep(ctx, rand.N(period)) {
		return
	}
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			st.conns.Add(1)
		}
	}})
	var last time.Time
	for {
		if !last.IsZero() {
			st.gap(time.Since(last))
		}
		last = time.Now()
		bctx, cancel := context.WithTimeout(trace, cmp.Or(timeout, node.HeartbeatTimeout(period)))
		resp, err := c.Heartbeat(bctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			st.fail(err)
		default:
			st.beats.Add(1)
			if resp.Period > 0 {
				period = time.Duration(resp.Period)
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

// cpuTime is the user+system CPU time of process pid (/proc/pid/stat, clock ticks of
// 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: the fields after it follow its ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
