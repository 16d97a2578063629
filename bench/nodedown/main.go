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
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthd/berth/bench/simagent"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/model"
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
	flag.StringVar(&o.bin, "berth", "", "berth binary built with -tags simagent (default: build one)")
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
	root, bin, remove, err := clustertest.BenchDir(ctx, "nodedown", o.bin)
	if err != nil {
		return err
	}
	defer remove()
	o.bin = bin
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
	init, err := clustertest.StartInitialized(ctx, mgr)
	if err != nil {
		return err
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
			case n.Status.State == model.NodeDown:
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
			if t.DesiredState == model.TaskRunning && t.Status.State == model.TaskRunning && t.NodeHostname != avoid {
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
		if t.DesiredState == model.TaskRunning && t.Status.State == model.TaskRunning {
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
	clients, err := simagent.JoinNodes(ctx, o.heartbeatNodes, init, root, func(int) string { return "198.18.0.1:4270" })
	if err != nil {
		return err
	}
	fmt.Printf("%d nodes joined in %s\n", len(clients), time.Since(start).Round(time.Second))
	var st simagent.BeatStats
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() { simagent.Heartbeat(fctx, cl.Client, o.beatTimeout, &st) })
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
	cpu0, err := simagent.CPUTime(mgr.Pid())
	if err != nil {
		return err
	}
	beats0, failures0, conns0, t0 := st.Beats.Load(), st.Failures.Load(), st.Conns.Load(), time.Now()
	st.MaxGap.Store(0)
	if !sleep(ctx, time.Duration(o.seconds)*time.Second) {
		return ctx.Err()
	}
	cpu1, err := simagent.CPUTime(mgr.Pid())
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	n, failed, conns := st.Beats.Load()-beats0, st.Failures.Load()-failures0, st.Conns.Load()-conns0
	share := (cpu1 - cpu0).Seconds() / wall.Seconds()
	down := wentDown()
	fmt.Printf("daemon flags %q: %d nodes, %.0f heartbeats/s over %s, %d failed%s\n",
		strings.Join(o.daemonArgs, " "), len(clients), float64(n)/wall.Seconds(), wall.Round(time.Second), failed, st.FirstError(failed))
	fmt.Printf("manager CPU %.1f%% of a core (%.1f µs per heartbeat); nodes that went Down meanwhile: %d\n",
		100*share, (cpu1-cpu0).Seconds()*1e6/float64(max(n, 1)), down)
	// A node whose generator goroutine waited longer than the Down deadline (5
	// periods) between two beats went Down through the generator's fault.
	fmt.Printf("new TLS connections meanwhile: %d; longest time between one node's heartbeats: %.1fs\n",
		conns, time.Duration(st.MaxGap.Load()).Seconds())
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
				if nd.Status.State == model.NodeDown {
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
