package scheduler

import (
	"fmt"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// benchCluster is the million-task challenge's cluster: 5,000 nodes in 10 zones and
// 4 racks each, one in ten a Windows node, a few managers, each already running tasks
// of busy other services so that map lookups cost what they will in production.
func benchCluster(nodes, otherServices int) []NodeInfo {
	out := make([]NodeInfo, nodes)
	for i := range out {
		os := "linux"
		if i%10 == 9 {
			os = "windows"
		}
		role := model.RoleWorker
		if i%1000 == 0 {
			role = model.RoleManager
		}
		n := NodeInfo{
			ID:           fmt.Sprintf("node-%05d-%08x", i, uint32(i)*2654435761),
			Hostname:     fmt.Sprintf("host-%05d", i),
			Role:         role,
			State:        model.NodeReady,
			Availability: model.AvailabilityActive,
			Labels:       map[string]string{"os": os, "zone": fmt.Sprintf("z%d", i%10), "rack": fmt.Sprintf("r%d", i%4)},
			Platform:     model.Platform{OS: "linux", Arch: "amd64"},
			Total:        Resources{NanoCPUs: 64e9, MemoryBytes: 256 << 30},
			ServiceTasks: make(map[string]int, otherServices),
		}
		for s := range otherServices {
			n.ServiceTasks[fmt.Sprintf("other-%04d", s)] = 1
		}
		n.Tasks = otherServices
		n.Reserved = Resources{NanoCPUs: spec.NanoCPUs(otherServices) * 1e7, MemoryBytes: int64(otherServices) << 24}
		out[i] = n
	}
	return out
}

func benchService(mods ...func(*spec.Service)) *spec.Service {
	return service(append([]func(*spec.Service){
		constraints("node.labels.os == linux", "node.role == worker"),
		maxPerNode(2),
		reserve(1e7, 16<<20),
	}, mods...)...)
}

func reportPlacements(b *testing.B, placed int) {
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}

func BenchmarkSchedule1000ReplicasOn5000Nodes(b *testing.B) {
	nodes := benchCluster(5000, 50)
	req := Request{ServiceID: "bench", Service: benchService(), SpecVersion: 1, Replicas: 1000}
	placed := 0
	for b.Loop() {
		res := Schedule(nodes, req, now)
		if res.Unplaced != 0 {
			b.Fatal(res.Reason)
		}
		placed += len(res.Assignments)
	}
	reportPlacements(b, placed)
}

// The same with two spread levels (zone, then rack): the tree's extra heaps.
func BenchmarkSchedule1000ReplicasOn5000NodesSpread(b *testing.B) {
	nodes := benchCluster(5000, 50)
	req := Request{ServiceID: "bench", Service: benchService(spread("node.labels.zone", "node.labels.rack")), SpecVersion: 1, Replicas: 1000}
	placed := 0
	for b.Loop() {
		res := Schedule(nodes, req, now)
		if res.Unplaced != 0 {
			b.Fatal(res.Reason)
		}
		placed += len(res.Assignments)
	}
	reportPlacements(b, placed)
}

func BenchmarkScheduleGlobal5000Nodes(b *testing.B) {
	nodes := benchCluster(5000, 50)
	svc := benchService()
	svc.Deploy.Mode = spec.ModeGlobal
	req := Request{ServiceID: "bench", Service: svc, SpecVersion: 1}
	placed := 0
	for b.Loop() {
		eligible, _ := ScheduleGlobal(nodes, req, now)
		placed += len(eligible)
	}
	reportPlacements(b, placed)
}

// BenchmarkScheduleMillionTasks is the scheduler's share of the million-task challenge:
// 1,000 services of 1,000 replicas each, scheduled one after the other onto 5,000
// nodes, every result applied before the next service is scheduled. Raft and the
// orchestrator are not in it.
func BenchmarkScheduleMillionTasks(b *testing.B) {
	const services, replicas = 1000, 1000
	reqs := make([]Request, services)
	for s := range reqs {
		svc := benchService()
		if s%4 == 0 {
			svc.Deploy.Placement.Preferences = []spec.Preference{{Spread: "node.labels.zone"}}
		}
		reqs[s] = Request{ServiceID: fmt.Sprintf("svc-%04d", s), Service: svc, SpecVersion: 1, Replicas: replicas}
	}
	placed := 0
	for b.Loop() {
		b.StopTimer()
		nodes := benchCluster(5000, 0)
		b.StartTimer()
		for _, req := range reqs {
			res := Schedule(nodes, req, now)
			if res.Unplaced != 0 {
				b.Fatal(res.Reason)
			}
			Apply(nodes, req, res)
			placed += len(res.Assignments)
		}
	}
	reportPlacements(b, placed)
}
