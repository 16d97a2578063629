package scheduler

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// The seed scenario of section 8: max_replicas_per_node 1 with more replicas than
// nodes leaves the rest pending with the reason.
func TestSeedMaxReplicasPerNode(t *testing.T) {
	nodes := []NodeInfo{node("n1"), node("n2"), node("n3")}
	res := Schedule(nodes, newRequest(5, service(maxPerNode(1))), now)
	if got := perNode(res); !maps.Equal(got, map[string]int{"n1": 1, "n2": 1, "n3": 1}) {
		t.Fatalf("placed %v", got)
	}
	if res.Unplaced != 2 || res.Reason != "no suitable node (max replicas per node limit reached on 3 nodes)" {
		t.Fatalf("unplaced %d, reason %q", res.Unplaced, res.Reason)
	}
}

// The seed scenario of node labels: nothing carries the label, then one node gets it.
func TestSeedConstraintThenLabelAdded(t *testing.T) {
	nodes := []NodeInfo{node("n1"), node("n2"), node("n3")}
	req := newRequest(2, service(constraints("node.labels.os == linux")))
	res := Schedule(nodes, req, now)
	if len(res.Assignments) != 0 || res.Unplaced != 2 ||
		res.Reason != "no suitable node (constraint node.labels.os == linux not satisfied on 3 nodes)" {
		t.Fatalf("before the label: %+v", res)
	}
	nodes[1].Labels = map[string]string{"os": "linux"}
	res = Schedule(nodes, req, now)
	if got := placedOn(res); !slices.Equal(got, []string{"n2", "n2"}) || res.Unplaced != 0 {
		t.Fatalf("after the label: %+v", res)
	}
}

func TestScheduleIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		nodes, req := randomCase(rng)
		before := cloneNodes(nodes)
		a := Schedule(nodes, req, now)
		b := Schedule(nodes, req, now)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two runs differ:\n%+v\n%+v", a, b)
		}
		if !reflect.DeepEqual(nodes, before) {
			t.Fatal("Schedule modified its input")
		}
	}
}

func cloneNodes(nodes []NodeInfo) []NodeInfo {
	out := slices.Clone(nodes)
	for i := range out {
		out[i].Labels = maps.Clone(out[i].Labels)
		out[i].ServiceTasks = maps.Clone(out[i].ServiceTasks)
		out[i].HostPorts = maps.Clone(out[i].HostPorts)
		out[i].Failures = slices.Clone(out[i].Failures)
	}
	return out
}

// Apply carries one call's placements into the next: the cap holds across calls and
// the next service sees the reservations, counts and ports.
func TestApply(t *testing.T) {
	nodes := []NodeInfo{node("n1"), node("n2", func(n *NodeInfo) { n.Total.NanoCPUs = 2e9 })}
	web := newRequest(2, service(maxPerNode(1), reserve(1e9, 1<<30), hostPort(80, "tcp")))
	res := Schedule(nodes, web, now)
	if len(res.Assignments) != 2 {
		t.Fatalf("first call: %+v", res)
	}
	Apply(nodes, web, res)
	for _, n := range nodes {
		if n.ServiceTasks[testService] != 1 || n.Tasks != 1 || n.HostPorts[HostPort{"tcp", 80}] != 1 ||
			n.Reserved != (Resources{1e9, 1 << 30}) {
			t.Fatalf("after Apply: %+v", n)
		}
	}
	if res := Schedule(nodes, newRequest(1, web.Service), now); res.Unplaced != 1 ||
		res.Reason != "no suitable node (max replicas per node limit reached on 2 nodes)" {
		t.Fatalf("second call: %+v", res)
	}

	// Another service with a larger reservation only fits where the first left room,
	// and prefers nodes with fewer tasks overall.
	other := Request{ServiceID: "svc-2", Service: service(reserve(2e9, 0)), Replicas: 3}
	res = Schedule(nodes, other, now)
	if got := placedOn(res); !slices.Equal(got, []string{"n1"}) ||
		res.Reason != "no suitable node (insufficient resources (cpu) on 2 nodes)" {
		t.Fatalf("other service: %v %q", got, res.Reason)
	}

	// Assignments whose index no longer matches are found by ID.
	swapped := []NodeInfo{nodes[1], nodes[0]}
	Apply(swapped, other, res)
	if swapped[1].ServiceTasks["svc-2"] != 1 || swapped[1].Tasks != 2 || swapped[0].Tasks != 1 {
		t.Fatalf("apply by ID: %+v", swapped)
	}
}

func TestScheduleGlobal(t *testing.T) {
	svc := service(constraints("node.role == worker"), reserve(0, 4<<30), hostPort(9100, "tcp"))
	svc.Deploy.Mode = spec.ModeGlobal
	svc.Deploy.Placement.MaxReplicasPerNode = 1 // ignored for global services
	full := func(n *NodeInfo) { n.Reserved.MemoryBytes = 6 << 30 }
	nodes := []NodeInfo{
		node("n5", full, running(1, 3)), // full, but of its own task: stays eligible
		node("n1"),
		node("n2", func(n *NodeInfo) { n.Availability = model.AvailabilityDrain }),
		node("n3", func(n *NodeInfo) { n.State = model.NodeDown }),
		node("n4", func(n *NodeInfo) { n.Role = model.RoleManager }),
		node("n6", full),
		node("n7", hostPortsInUse(HostPort{"tcp", 9100})),
		node("n8", running(1, 1), func(n *NodeInfo) { n.Availability = model.AvailabilityPause }),
		node("n9", func(n *NodeInfo) { n.State = model.NodeUnknown }),
		node("n0", running(0, 7)),
	}
	eligible, reasons := ScheduleGlobal(nodes, Request{ServiceID: testService, Service: svc, Replicas: 99}, now)
	if want := []string{"n0", "n1", "n5"}; !slices.Equal(eligible, want) {
		t.Errorf("eligible %v, want %v", eligible, want)
	}
	want := map[string]string{
		"n2": "node is draining",
		"n3": "node is down",
		"n4": "constraint node.role == worker not satisfied",
		"n6": "insufficient resources (memory)",
		"n7": "host port 9100/tcp in use",
		"n8": "node is paused",
		"n9": "node is not ready",
	}
	if !maps.Equal(reasons, want) {
		t.Errorf("reasons\n got %v\nwant %v", reasons, want)
	}

	platforms := Request{ServiceID: testService, Service: service(), Platforms: []model.Platform{{OS: "windows"}}}
	eligible, reasons = ScheduleGlobal([]NodeInfo{node("n1")}, platforms, now)
	if len(eligible) != 0 || reasons["n1"] != "node platform not supported by the image" {
		t.Errorf("platform: %v %v", eligible, reasons)
	}
	eligible, reasons = ScheduleGlobal(nil, platforms, now)
	if len(eligible) != 0 || len(reasons) != 0 {
		t.Errorf("no nodes: %v %v", eligible, reasons)
	}
}

func TestNilService(t *testing.T) {
	res := Schedule([]NodeInfo{node("n1"), node("n2")}, Request{ServiceID: testService, Replicas: 3}, now)
	if got := placedOn(res); !slices.Equal(got, []string{"n1", "n2", "n1"}) {
		t.Fatalf("got %v", got)
	}
}

// A request for far more tasks than the nodes can hold sizes its result by what fits.
func TestHugeRequestOnCappedNodes(t *testing.T) {
	res := Schedule([]NodeInfo{node("n1"), node("n2")}, newRequest(1<<40, service(maxPerNode(3))), now)
	if len(res.Assignments) != 6 || cap(res.Assignments) != 6 || res.Unplaced != 1<<40-6 {
		t.Fatalf("placed %d (cap %d), unplaced %d", len(res.Assignments), cap(res.Assignments), res.Unplaced)
	}
}
