// Command netview measures the managers' network watch (issue 16) at scale: one real
// manager (`berth daemon`, its own agent simulated) and -nodes simulated nodes joined
// through /v1/join with their own certificates. Each simulated node runs a simulated
// agent over its own mutual-TLS client (heartbeats, its tasks by blocking query, its
// tasks reported running) and holds a blocking query on its network view, as a real
// agent does. A stack of -networks overlay networks with one replicated service on
// each spreads one task per node.
//
// It measures the manager's CPU and memory without the network watches, with them
// idle, and while -changes service updates each scale one service up or down by one
// (changing one network), and for each change the time from the update to each
// affected node (every node on that network) holding its new view (the network's
// ready endpoints as the new replica count says); it also counts the answers nodes
// on other networks got meanwhile (none should).
//
//	go run ./bench/netview [-nodes 5000] [-networks 10] [-changes 10] [-seconds 20] \
//	    [-beat 5s -daemon-args --heartbeat-period=5s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// watchWave is how many nodes start their network watch together.
const watchWave = 250

type options struct {
	nodes, networks, changes, seconds int
	beat                              time.Duration
	bin                               string
	daemonArgs                        []string
}

func main() {
	var o options
	var daemonArgs string
	flag.IntVar(&o.nodes, "nodes", 5000, "simulated nodes")
	flag.IntVar(&o.networks, "networks", 10, "overlay networks, one replicated service on each")
	flag.IntVar(&o.changes, "changes", 10, "service updates, each changing one network")
	flag.IntVar(&o.seconds, "seconds", 20, "length of each CPU measurement")
	flag.DurationVar(&o.beat, "beat", time.Second, "heartbeat period of the simulated agents (give the manager's with -daemon-args --heartbeat-period)")
	flag.StringVar(&o.bin, "berth", "", "berth binary built with -tags simagent (default: build one)")
	flag.StringVar(&daemonArgs, "daemon-args", "", "extra daemon flags, space-separated")
	flag.Parse()
	o.daemonArgs = strings.Fields(daemonArgs)
	if o.networks < 1 || o.nodes < o.networks || o.changes < 1 || o.seconds < 1 || o.beat <= 0 {
		fmt.Fprintln(os.Stderr, "netview: -networks, -changes, -seconds and -beat must be positive, -nodes at least -networks")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "netview:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	root, bin, remove, err := clustertest.BenchDir(ctx, "netview", o.bin)
	if err != nil {
		return err
	}
	defer remove()
	ports, err := clustertest.FreePorts(1)
	if err != nil {
		return err
	}
	mgr := clustertest.NewDaemon(bin, root, "manager", ports[0], append([]string{"--log-level", "warn", "--sim-agent"}, o.daemonArgs...)...)
	defer func() { _ = mgr.Kill() }()
	init, err := clustertest.StartInitialized(ctx, mgr)
	if err != nil {
		return err
	}
	fleet, err := startFleet(ctx, o, init)
	if err != nil {
		return err
	}
	defer fleet.stop()
	if err := deploy(ctx, o, root, mgr); err != nil {
		return fmt.Errorf("%w\n%s", err, mgr.LogTail(20))
	}
	fmt.Printf("%d simulated nodes (agents over mutual TLS, heartbeats every %s), %d networks x %d replicas, daemon flags %q\n",
		o.nodes, o.beat, o.networks, o.nodes/o.networks, strings.Join(o.daemonArgs, " "))

	without, err := measure(ctx, mgr, time.Duration(o.seconds)*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %s\n", "agents, no network watch:", without)
	tr := newTracker(o.nodes)
	start := time.Now()
	// In waves: 5,000 first views at once (100 KB each here) starve this
	// program's heartbeats on a small machine, and nodes going Down would then
	// change every view.
	for first := 0; first < o.nodes; first += watchWave {
		for i := first; i < min(first+watchWave, o.nodes); i++ {
			fleet.wg.Go(func() { watch(fleet.ctx, fleet.nodes[i], i, tr) })
		}
		if err := tr.waitSeen(ctx, min(first+watchWave, o.nodes), time.Now().Add(5*time.Minute)); err != nil {
			return err
		}
	}
	fmt.Printf("first view of every node after %s (%d watches at a time)\n", time.Since(start).Round(time.Millisecond), watchWave)
	idle, err := measure(ctx, mgr, time.Duration(o.seconds)*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %s\n", "agents + idle network watches:", idle)
	return measureChanges(ctx, o, mgr, tr, idle)
}

// fleet is the simulated nodes and what runs for them.
type fleet struct {
	nodes  []simagent.Joined
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// startFleet joins the nodes, each at its own underlay address in 198.18.0.0/15, and
// runs their simulated agents.
func startFleet(ctx context.Context, o options, init *api.InitResponse) (*fleet, error) {
	token, err := ca.ParseJoinToken(init.WorkerToken)
	if err != nil {
		return nil, err
	}
	root, err := ca.FetchAndVerifyCA(ctx, init.ManagerAddr, token.CADigest)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	nodes, err := simagent.JoinNodes(ctx, o.nodes, init, root, func(i int) string {
		return fmt.Sprintf("198.18.%d.%d:4270", i/250, i%250+1)
	})
	if err != nil {
		return nil, err
	}
	fmt.Printf("%d nodes joined in %s\n", len(nodes), time.Since(start).Round(time.Second))
	f := &fleet{nodes: nodes}
	f.ctx, f.cancel = context.WithCancel(ctx)
	for _, j := range nodes {
		a := simagent.New(simagent.Config{API: j.API(), NodeID: j.ID, HeartbeatPeriod: o.beat})
		f.wg.Go(func() { _ = a.Run(f.ctx) })
	}
	return f, nil
}

// deploy deploys the stack: network n<k> (a /20 each) and service s<k> on it, its
// replicas on the simulated nodes, and waits until every task runs.
func deploy(ctx context.Context, o options, root string, mgr *clustertest.Daemon) error {
	var b strings.Builder
	b.WriteString("services:\n")
	for k := range o.networks {
		fmt.Fprintf(&b, "  s%d:\n    image: example/api:1\n    networks: [n%d]\n    deploy:\n      replicas: %d\n"+
			"      placement:\n        constraints: [node.role == worker]\n", k, k, o.nodes/o.networks)
	}
	b.WriteString("networks:\n")
	for k := range o.networks {
		fmt.Fprintf(&b, "  n%d:\n    driver: overlay\n    ipam:\n      config:\n        - subnet: 10.%d.%d.0/20\n", k, 100+k/16, (k%16)*16)
	}
	file := filepath.Join(root, "compose.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := mgr.CLI(ctx, "", "stack", "deploy", "-c", file, "nv").Err(); err != nil {
		return err
	}
	want := o.networks * (o.nodes / o.networks)
	return clustertest.Eventually(ctx, 10*time.Minute, func() error {
		tasks, _, err := mgr.Client().Tasks(ctx, api.TaskFilter{Stack: "nv"}, api.Query{})
		if err != nil {
			return err
		}
		running := 0
		for _, t := range tasks {
			if t.DesiredState == model.TaskRunning && t.Status.State == model.TaskRunning {
				running++
			}
		}
		if running != want {
			return fmt.Errorf("%d of %d tasks running", running, want)
		}
		return nil
	})
}

// usage is the manager's CPU over a wall time, and its resident memory at the end.
type usage struct {
	cpu, wall time.Duration
	rssKiB    int64
}

func (u usage) String() string {
	return fmt.Sprintf("manager CPU %5.1f%% of a core over %s, RSS %d MiB",
		100*u.cpu.Seconds()/u.wall.Seconds(), u.wall.Round(time.Second), u.rssKiB/1024)
}

func measure(ctx context.Context, mgr *clustertest.Daemon, d time.Duration) (usage, error) {
	return during(mgr, func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	})
}

// during measures the manager's usage while fn runs.
func during(mgr *clustertest.Daemon, fn func() error) (usage, error) {
	cpu0, err := simagent.CPUTime(mgr.Pid())
	if err != nil {
		return usage{}, err
	}
	t0 := time.Now()
	if err := fn(); err != nil {
		return usage{}, err
	}
	cpu1, err := simagent.CPUTime(mgr.Pid())
	if err != nil {
		return usage{}, err
	}
	rss, err := rssKiB(mgr.Pid())
	return usage{cpu: cpu1 - cpu0, wall: time.Since(t0), rssKiB: rss}, err
}

// rssKiB is the resident memory of process pid (/proc/pid/status).
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// watch holds node i's network watch until ctx ends, handing every answer to tr.
func watch(ctx context.Context, j simagent.Joined, i int, tr *tracker) {
	var index uint64
	for ctx.Err() == nil {
		v, meta, err := j.Client.NodeNetworkView(ctx, j.ID, api.Query{Index: index, Wait: 5 * time.Minute})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			tr.failed.Add(1)
			index = 0
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		index = meta.Index
		tr.observe(i, ready(v))
	}
}

// counts are a network's task endpoints in a view: ready ones, and all.
type counts struct{ ready, all int }

// ready counts the task endpoints of each network of a view, by network name.
func ready(v *api.NetworkView) map[string]counts {
	out := make(map[string]counts, len(v.Networks))
	for _, n := range v.Networks {
		out[n.Name] = counts{}
	}
	for _, e := range v.Endpoints {
		if e.TaskID == "" {
			continue
		}
		name := networkName(v, e.Network)
		c := out[name]
		c.all++
		if e.Ready {
			c.ready++
		}
		out[name] = c
	}
	return out
}

func networkName(v *api.NetworkView, id string) string {
	for _, n := range v.Networks {
		if n.ID == id {
			return n.Name
		}
	}
	return id
}

// tracker keeps each node's last view (task endpoints by network name) and, during a
// change, when each node on the changed network got the view the change makes: its
// ready endpoints are as many as the new replica count (what DNS and the VIPs
// serve). A change is over once the ended tasks left too, so that their removal is
// not counted as the next change's.
type tracker struct {
	failed atomic.Int64

	mu      sync.Mutex
	views   []map[string]counts
	seen    int
	changed chan struct{}
	// The change under way: network net should have target ready endpoints.
	net     string
	target  int
	t0      time.Time
	had     map[int]bool          // nodes on net when the change began
	done    map[int]time.Duration // when each affected node had its new view
	outside int                   // answers to nodes never on net meanwhile
}

func newTracker(n int) *tracker {
	return &tracker{views: make([]map[string]counts, n), changed: make(chan struct{}, 1)}
}

func (tr *tracker) observe(i int, v map[string]counts) {
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.views[i] == nil {
		tr.seen++
	}
	tr.views[i] = v
	if tr.done != nil {
		count, on := v[tr.net]
		switch {
		case on && count.ready == tr.target, !on && tr.had[i]:
			if _, ok := tr.done[i]; !ok {
				tr.done[i] = now.Sub(tr.t0)
			}
		case !on && !tr.had[i]:
			tr.outside++
		}
	}
	select {
	case tr.changed <- struct{}{}:
	default:
	}
}

// waitSeen waits until n nodes had a first view.
func (tr *tracker) waitSeen(ctx context.Context, n int, deadline time.Time) error {
	return tr.waitFor(ctx, deadline, func() bool { return tr.seen >= n },
		func() string { return fmt.Sprintf("%d of %d nodes have a view", tr.seen, n) })
}

func (tr *tracker) waitFor(ctx context.Context, deadline time.Time, cond func() bool, state func() string) error {
	for {
		tr.mu.Lock()
		ok, st := cond(), state()
		tr.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tr.changed:
		case <-time.After(time.Until(deadline)):
			return errors.New(st + " at the deadline")
		}
	}
}

// begin starts tracking a change that makes net have target ready endpoints.
func (tr *tracker) begin(net string, target int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.net, tr.target, tr.t0, tr.outside = net, target, time.Now(), 0
	tr.had, tr.done = map[int]bool{}, map[int]time.Duration{}
	for i, v := range tr.views {
		if _, on := v[net]; on {
			tr.had[i] = true
		}
	}
}

// complete reports whether every node on net, before or now, has its new view, with
// no more endpoints than the replicas.
func (tr *tracker) complete() bool {
	for i, v := range tr.views {
		c, on := v[tr.net]
		if !on && !tr.had[i] {
			continue
		}
		if _, ok := tr.done[i]; !ok || (on && c.all != tr.target) {
			return false
		}
	}
	return true
}

// end stops tracking and returns the affected nodes' times and the outside answers.
func (tr *tracker) end() ([]time.Duration, int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]time.Duration, 0, len(tr.done))
	for _, d := range tr.done {
		out = append(out, d)
	}
	outside := tr.outside
	tr.done = nil
	return out, outside
}

// measureChanges scales service s<k> up by one and back, k in turn, timing each
// change's arrival at every node on its network, and the manager's usage throughout.
func measureChanges(ctx context.Context, o options, mgr *clustertest.Daemon, tr *tracker, idle usage) error {
	c := mgr.Client()
	base := o.nodes / o.networks
	// all are the times from the updates to the new views; fanout from the first
	// affected node's new view to each other's: the part the network watch adds
	// to the scheduling and the agents' reports.
	var all, fanout []time.Duration
	outside := 0
	fmt.Printf("%-6s %-8s %-8s %8s %9s %9s %9s %11s %8s\n", "change", "network", "replicas", "affected", "p50", "p99", "max", "fan-out p99", "outside")
	u, err := during(mgr, func() error {
		for r := range o.changes {
			k := (r / 2) % o.networks
			reps := base + 1 - r%2
			net := fmt.Sprintf("nv_n%d", k)
			tr.begin(net, reps)
			if _, err := c.ScaleService(ctx, fmt.Sprintf("nv_s%d", k), uint64(reps)); err != nil {
				return fmt.Errorf("change %d: %w", r+1, err)
			}
			err := tr.waitFor(ctx, time.Now().Add(2*time.Minute), tr.complete, func() string {
				return fmt.Sprintf("change %d: %d nodes of %s have the view with %d ready endpoints", r+1, len(tr.done), net, reps)
			})
			if err != nil {
				return err
			}
			times, out := tr.end()
			slices.Sort(times)
			fmt.Printf("%-6d %-8s %-8d %8d %8.0fms %8.0fms %8.0fms %9.0fms %8d\n", r+1, net, reps, len(times),
				ms(quantile(times, 0.5)), ms(quantile(times, 0.99)), ms(times[len(times)-1]),
				ms(quantile(times, 0.99)-times[0]), out)
			all = append(all, times...)
			for _, d := range times {
				fanout = append(fanout, d-times[0])
			}
			outside += out
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(all)
	// What the changes cost above the idle rate (heartbeats, mostly).
	above := u.cpu - time.Duration(float64(idle.cpu)*u.wall.Seconds()/idle.wall.Seconds())
	fmt.Printf("%-40s %s; %.0f ms of CPU per change above the idle rate\n", fmt.Sprintf("agents + watches, %d changes:", o.changes), u,
		ms(above)/float64(o.changes))
	fmt.Printf("update to new view, all %d affected node-views: p50 %.0f ms, p99 %.0f ms, max %.0f ms; answers to nodes off the network: %d; failed watch queries: %d\n",
		len(all), ms(quantile(all, 0.5)), ms(quantile(all, 0.99)), ms(all[len(all)-1]), outside, tr.failed.Load())
	slices.Sort(fanout)
	fmt.Printf("fan-out from the first affected node's new view: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		ms(quantile(fanout, 0.5)), ms(quantile(fanout, 0.99)), ms(fanout[len(fanout)-1]))
	down, err := downNodes(ctx, c)
	if err != nil {
		return err
	}
	// A node that went Down changed the views of its network's nodes: the
	// figures above then measured more than the changes.
	fmt.Printf("nodes Down at the end: %d\n", down)
	return nil
}

func downNodes(ctx context.Context, c *api.Client) (int, error) {
	nodes, _, err := c.Nodes(ctx, api.Query{})
	if err != nil {
		return 0, err
	}
	down := 0
	for _, n := range nodes {
		if n.Status.State == model.NodeDown {
			down++
		}
	}
	return down, nil
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
