// Command c1m is berth's take on Nomad's million-container challenge, simulated: a
// 3-manager raft cluster in one process (real raft on its in-memory transport, real
// sealed boltdb logs, real FSM, state, scheduler and orchestrator), thousands of
// simulated nodes with labels, and services of many replicas with placement
// constraints and max_replicas_per_node. It measures the time from the first stack
// deploy until every task is assigned and reported running by the simulated agents,
// and prints placements per second and peak memory. The last line of its output is
// `placements_per_second=<N>`.
//
//	go run ./bench/c1m                                   # 5,000 nodes, 1,000 x 1,000
//	go run ./bench/c1m -nodes 1000 -services 100 -replicas 1000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/berthd/berth/bench/simagent"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/spec"
)

func main() {
	var (
		nodes      = flag.Int("nodes", 5000, "simulated nodes")
		services   = flag.Int("services", 1000, "services")
		replicas   = flag.Int("replicas", 1000, "replicas per service")
		perStack   = flag.Int("services-per-stack", 100, "services per stack (one raft entry per stack deploy)")
		managers   = flag.Int("managers", 3, "managers (raft voters)")
		timeout    = flag.Duration("timeout", 30*time.Minute, "give up after this long")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the measured part to this file")
		memProfile = flag.String("memprofile", "", "write a heap profile at the end to this file")
		verbose    = flag.Bool("v", false, "log the cluster at debug level")
	)
	flag.Parse()
	if err := run(*nodes, *services, *replicas, *perStack, *managers, *timeout, *cpuProfile, *memProfile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "c1m:", err)
		os.Exit(1)
	}
}

func run(nodes, services, replicas, perStack, managers int, timeout time.Duration, cpuProfile, memProfile string, verbose bool) error {
	if nodes <= 0 || services <= 0 || replicas <= 0 || perStack <= 0 {
		return fmt.Errorf("-nodes, -services, -replicas and -services-per-stack must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "berth-c1m-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	level := slog.LevelError
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	c, err := memcluster.New(memcluster.Options{Managers: managers, Dir: dir, Logger: logger,
		ElectionTimeout: time.Second, SnapshotThreshold: 1 << 20})
	if err != nil {
		return err
	}
	defer c.Close()
	leader, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	follower, err := c.Follower(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("cluster: %d managers (raft on the in-memory transport, sealed boltdb logs in %s), leader %s\n",
		managers, dir, leader.ID)

	start := time.Now()
	eligible, err := registerNodes(ctx, c, nodes)
	if err != nil {
		return err
	}
	fmt.Printf("nodes: %d registered in %s (%d linux workers eligible)\n", nodes, time.Since(start).Round(time.Millisecond), eligible)

	// The simulated agents talk to a follower, as most agents of a cluster do: their
	// reports are forwarded to the leader.
	fleet := simagent.NewFleet(simagent.FleetConfig{
		State: follower.Store.State,
		Report: func(ctx context.Context, nodeID string, reports []api.TaskStatusReport) error {
			return follower.Control.ReportTaskStatus(ctx, nodeID, reports)
		},
		Logger: logger,
	})
	fctx, fcancel := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() { defer fwg.Done(); _ = fleet.Run(fctx) }()
	defer func() { fcancel(); fwg.Wait() }()

	maxPerNode := max(2, (2*replicas+eligible-1)/max(eligible, 1))
	stacks := makeStacks(services, replicas, perStack, maxPerNode)
	total := int64(services) * int64(replicas)
	fmt.Printf("workload: %d services x %d replicas = %d tasks in %d stacks; constraints node.labels.os == linux, node.role == worker; max_replicas_per_node %d\n",
		services, replicas, total, len(stacks), maxPerNode)

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	runtime.GC()
	begin := time.Now()
	for _, st := range stacks {
		if _, err := follower.Control.DeployStack(ctx, &api.StackDeployRequest{Stack: st}); err != nil {
			return fmt.Errorf("deploy %s: %w", st.Name, err)
		}
	}
	deployed := time.Since(begin)
	fmt.Printf("deployed: %d stacks in %s\n", len(stacks), deployed.Round(time.Millisecond))

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for fleet.Running() < total {
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s only %d of %d tasks run", time.Since(begin).Round(time.Second), fleet.Running(), total)
		case <-tick.C:
			n := fleet.Running()
			el := time.Since(begin)
			fmt.Printf("  %6.1fs  %9d running  %7.0f/s  rss %s\n", el.Seconds(), n, float64(n)/el.Seconds(), mib(rss("VmRSS")))
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(begin)
	pprof.StopCPUProfile()
	rate := float64(total) / elapsed.Seconds()
	fmt.Printf("done: %d tasks assigned and running in %s\n", total, elapsed.Round(time.Millisecond))
	fmt.Printf("peak RSS (VmHWM): %s; Go heap now %s\n", mib(rss("VmHWM")), mib(heap()))
	if err := verify(leader, services, replicas, maxPerNode); err != nil {
		return err
	}
	if memProfile != "" {
		runtime.GC()
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	fmt.Printf("placements_per_second=%.0f\n", rate)
	return nil
}

// verify checks the outcome on the leader's state, outside the measured time: exactly
// the tasks asked for, all running, none on a node that does not qualify, none over
// max_replicas_per_node.
func verify(m *memcluster.Manager, services, replicas, maxPerNode int) error {
	tx := m.Store.State().ReadTxn()
	tasks, err := tx.Tasks(nil)
	if err != nil {
		return err
	}
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return err
	}
	eligible := map[string]bool{}
	for _, n := range nodes {
		eligible[n.ID] = n.Labels["os"] == "linux" && n.Role == model.RoleWorker
	}
	type key struct{ service, node string }
	perNode := map[key]int{}
	for _, t := range tasks {
		if t.Status.State != model.TaskRunning || t.DesiredState != model.TaskRunning {
			return fmt.Errorf("verify: task %s is %s (desired %s)", t.ID, t.Status.State, t.DesiredState)
		}
		if !eligible[t.NodeID] {
			return fmt.Errorf("verify: task %s runs on node %s, which its constraints exclude", t.ID, t.NodeID)
		}
		k := key{t.ServiceID, t.NodeID}
		if perNode[k]++; perNode[k] > maxPerNode {
			return fmt.Errorf("verify: more than %d tasks of service %s on node %s", maxPerNode, t.ServiceID, t.NodeID)
		}
	}
	if want := services * replicas; len(tasks) != want {
		return fmt.Errorf("verify: %d tasks, want %d", len(tasks), want)
	}
	fmt.Printf("verified: %d tasks, all running on eligible nodes, at most %d per service per node\n", len(tasks), maxPerNode)
	return nil
}

// registerNodes writes the nodes as joins would, many writes at once (raft batches
// them), and returns how many are linux workers.
func registerNodes(ctx context.Context, c *memcluster.Cluster, n int) (int, error) {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				os := "linux"
				if i%10 == 9 {
					os = "windows"
				}
				nd := memcluster.Node(fmt.Sprintf("node-%05d", i), map[string]string{"os": os, "zone": fmt.Sprintf("z%d", i%10)})
				nd.Resources = model.NodeResources{NanoCPUs: 256e9, MemoryBytes: 1 << 40}
				if i%1000 == 0 {
					nd.Role = model.RoleManager
				}
				if _, err := c.Apply(ctx, command.CmdNodeUpsert, nd); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	eligible := 0
	for i := range n {
		if i%10 != 9 && i%1000 != 0 {
			eligible++
		}
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return eligible, nil
}

func makeStacks(services, replicas, perStack, maxPerNode int) []*spec.Stack {
	var out []*spec.Stack
	for i := 0; i < services; i++ {
		if i%perStack == 0 {
			out = append(out, &spec.Stack{Name: fmt.Sprintf("c1m%03d", i/perStack), Services: map[string]*spec.Service{}})
		}
		st := out[len(out)-1]
		r := uint64(replicas)
		name := fmt.Sprintf("svc%04d", i)
		st.Services[name] = &spec.Service{
			Name:  name,
			Image: "registry.example/c1m/app:1",
			Deploy: spec.Deploy{
				Mode:     spec.ModeReplicated,
				Replicas: &r,
				Placement: spec.Placement{
					Constraints:        []string{"node.labels.os == linux", "node.role == worker"},
					MaxReplicasPerNode: uint64(maxPerNode),
				},
				Resources:    spec.Resources{Reservations: &spec.Resource{CPUs: 1e7, MemoryBytes: 16 << 20}},
				EndpointMode: "vip",
			},
		}
	}
	return out
}

// rss reads a field of /proc/self/status (VmRSS, VmHWM) in bytes.
func rss(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func heap() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
