package orchestrator

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

// benchNodes is the million-task challenge's cluster: 5,000 ready, active nodes in 10
// zones, one in ten labelled windows, a few managers.
func benchNodes(n int) []*model.Node {
	out := make([]*model.Node, n)
	for i := range out {
		os := "linux"
		if i%10 == 9 {
			os = "windows"
		}
		role := model.RoleWorker
		if i%1000 == 0 {
			role = model.RoleManager
		}
		out[i] = &model.Node{
			ID:           fmt.Sprintf("node-%05d-%08x", i, uint32(i)*2654435761),
			Hostname:     fmt.Sprintf("host-%05d", i),
			Role:         role,
			Availability: model.AvailabilityActive,
			Labels:       map[string]string{"os": os, "zone": fmt.Sprintf("z%d", i%10)},
			Platform:     model.Platform{OS: "linux", Arch: "amd64"},
			Resources:    model.NodeResources{NanoCPUs: 256e9, MemoryBytes: 1 << 40},
			Status:       model.NodeStatus{State: model.NodeReady},
		}
	}
	return out
}

func benchServices(n int, replicas uint64) []*model.Service {
	out := make([]*model.Service, n)
	for i := range out {
		name := fmt.Sprintf("svc%04d", i)
		s := service(name, func(s *spec.Service) {
			s.Deploy.Replicas = &replicas
			s.Deploy.Placement.Constraints = []string{"node.labels.os == linux", "node.role == worker"}
			s.Deploy.Placement.MaxReplicasPerNode = 2
			s.Deploy.Resources.Reservations = &spec.Resource{CPUs: 1e7, MemoryBytes: 16 << 20}
		})
		out[i] = &model.Service{ID: "id-" + name, Name: "bench_" + name, Stack: "bench", Spec: *s, SpecVersion: 1}
	}
	return out
}

// BenchmarkReconcile1000x1000On5000Nodes plans 1,000 services of 1,000 replicas each
// on 5,000 nodes from an empty task table, in one pass: the orchestrator's share of
// the million-task goal (no raft, no state writes).
func BenchmarkReconcile1000x1000On5000Nodes(b *testing.B) {
	benchmarkReconcile(b, 1000, 1000, 5000)
}

// BenchmarkReconcile100x1000On5000Nodes is the same at a tenth of the size, for quick
// runs.
func BenchmarkReconcile100x1000On5000Nodes(b *testing.B) {
	benchmarkReconcile(b, 100, 1000, 5000)
}

func benchmarkReconcile(b *testing.B, services int, replicas uint64, nodes int) {
	ns := benchNodes(nodes)
	svcs := benchServices(services, replicas)
	b.ReportAllocs()
	tasks := 0
	pending := 0
	for b.Loop() {
		infos := scheduler.NodeInfosFromState(ns, nil, nil)
		n := 0
		p := NewPass(ns, infos, DefaultOptions(), t0, func() string { n++; return "t" + strconv.Itoa(n) })
		tasks, pending = 0, 0
		for _, s := range svcs {
			plan := p.Reconcile(s, nil)
			tasks += len(plan.Create)
			for _, t := range plan.Create {
				if t.Status.State == model.TaskPending {
					pending++
				}
			}
		}
	}
	if want := services * int(replicas); tasks != want || pending != 0 {
		b.Fatalf("planned %d tasks (%d pending), want %d placed", tasks, pending, want)
	}
	b.ReportMetric(float64(tasks)*float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkReconcileHugeService is one pass over a service that asks for 100,000,000
// replicas on 5,000 nodes: the pass makes one batch (MaxNewTasks), so its memory is a
// batch's, whatever the count asks for.
func BenchmarkReconcileHugeService(b *testing.B) {
	ns := benchNodes(5000)
	svc := benchServices(1, 100_000_000)[0]
	b.ReportAllocs()
	for b.Loop() {
		infos := scheduler.NodeInfosFromState(ns, nil, nil)
		n := 0
		p := NewPass(ns, infos, DefaultOptions(), t0, func() string { n++; return "t" + strconv.Itoa(n) })
		if plan := p.Reconcile(svc, nil); len(plan.Create) != DefaultMaxNewTasks {
			b.Fatalf("planned %d tasks, want a batch of %d", len(plan.Create), DefaultMaxNewTasks)
		}
	}
}
