package scheduler

import (
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestReasons(t *testing.T) {
	linux := labels("os", "linux")
	tests := []struct {
		name      string
		nodes     []NodeInfo
		svc       *spec.Service
		replicas  int
		platforms []model.Platform
		placed    int
		reason    string
	}{
		{
			name:     "no nodes",
			svc:      service(),
			replicas: 2,
			reason:   "no suitable node (no nodes available)",
		},
		{
			name:     "max per node below replicas (the seed scenario)",
			nodes:    []NodeInfo{node("n1"), node("n2"), node("n3")},
			svc:      service(maxPerNode(1)),
			replicas: 5,
			placed:   3,
			reason:   "no suitable node (max replicas per node limit reached on 3 nodes)",
		},
		{
			name:     "the issue's example",
			nodes:    []NodeInfo{node("n1", linux, running(1, 1)), node("n2", linux, running(1, 1)), node("n3")},
			svc:      service(constraints("node.labels.os == linux"), maxPerNode(1)),
			replicas: 1,
			reason:   "no suitable node (max replicas per node limit reached on 2 nodes; constraint node.labels.os == linux not satisfied on 1 node)",
		},
		{
			name: "every filter, in filter order",
			nodes: []NodeInfo{
				node("n1", linux, func(n *NodeInfo) { n.State = model.NodeDown }),
				node("n2", linux, func(n *NodeInfo) { n.Availability = model.AvailabilityDrain }),
				node("n3", linux, func(n *NodeInfo) { n.Availability = model.AvailabilityPause }),
				node("n4", labels("os", "windows")),
				node("n5"),
				node("n6", linux, func(n *NodeInfo) { n.State = model.NodeUnknown }),
				node("n7", linux, running(1, 1)),
				node("n8", linux, func(n *NodeInfo) { n.Reserved = Resources{MemoryBytes: 8 << 30} }),
				node("n9", linux, hostPortsInUse(HostPort{"tcp", 443})),
				node("n10", linux, func(n *NodeInfo) { n.Platform.Arch = "arm64" }),
			},
			svc:       service(constraints("node.labels.os == linux"), maxPerNode(1), reserve(0, 1<<30), hostPort(443, "tcp")),
			replicas:  3,
			platforms: []model.Platform{{OS: "linux", Arch: "amd64"}},
			reason: "no suitable node (constraint node.labels.os == linux not satisfied on 2 nodes; " +
				"down on 1 node; not ready on 1 node; paused on 1 node; draining on 1 node; " +
				"platform not supported by the image on 1 node; " +
				"insufficient resources (memory) on 1 node; max replicas per node limit reached on 1 node; " +
				"host port 443/tcp in use on 1 node)",
		},
		{
			name: "each node counts under the first constraint it fails; ties in filter order",
			nodes: []NodeInfo{
				node("n1", labels("os", "windows", "zone", "b")),
				node("n2", labels("os", "windows")),
				node("n3", labels("os", "linux", "zone", "b")),
				node("n4", labels("os", "linux", "zone", "c")),
			},
			svc:      service(constraints("node.labels.os == linux", "node.labels.zone == a")),
			replicas: 1,
			reason:   "no suitable node (constraint node.labels.os == linux not satisfied on 2 nodes; constraint node.labels.zone == a not satisfied on 2 nodes)",
		},
		{
			name:     "invalid constraint",
			nodes:    []NodeInfo{node("n1"), node("n2")},
			svc:      service(constraints("node.role == worker", "node.colour == blue")),
			replicas: 1,
			reason:   "no suitable node (invalid constraint node.colour == blue on 2 nodes)",
		},
		{
			name:     "resources run out while placing",
			nodes:    []NodeInfo{node("n1"), node("n2", func(n *NodeInfo) { n.Total.NanoCPUs = 1e9 })},
			svc:      service(reserve(1.5e9, 0)),
			replicas: 4,
			placed:   2,
			reason:   "no suitable node (insufficient resources (cpu) on 2 nodes)",
		},
		{
			name:     "host ports hold one task per node",
			nodes:    []NodeInfo{node("n1"), node("n2")},
			svc:      service(hostPort(8080, "tcp"), hostPort(8081, "udp")),
			replicas: 3,
			placed:   2,
			reason:   "no suitable node (host port 8080/tcp in use on 2 nodes)",
		},
		{
			name:     "caps reached during the call and before it",
			nodes:    []NodeInfo{node("n1", running(2, 2)), node("n2"), node("n3", func(n *NodeInfo) { n.State = model.NodeDown })},
			svc:      service(maxPerNode(2)),
			replicas: 3,
			placed:   2,
			reason:   "no suitable node (max replicas per node limit reached on 2 nodes; down on 1 node)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(tt.replicas, tt.svc)
			req.Platforms = tt.platforms
			res := Schedule(tt.nodes, req, now)
			if len(res.Assignments) != tt.placed || res.Unplaced != tt.replicas-tt.placed {
				t.Fatalf("placed %d, unplaced %d; want %d placed of %d", len(res.Assignments), res.Unplaced, tt.placed, tt.replicas)
			}
			if res.Reason != tt.reason {
				t.Fatalf("reason\n got %q\nwant %q", res.Reason, tt.reason)
			}
		})
	}
}

func TestNoReasonWhenEverythingIsPlaced(t *testing.T) {
	res := Schedule([]NodeInfo{node("n1"), node("n2", func(n *NodeInfo) { n.State = model.NodeDown })}, newRequest(3, service()), now)
	if len(res.Assignments) != 3 || res.Unplaced != 0 || res.Reason != "" {
		t.Fatalf("got %+v", res)
	}
	if res := Schedule(nil, newRequest(0, service()), now); res.Unplaced != 0 || res.Reason != "" || len(res.Assignments) != 0 {
		t.Fatalf("zero replicas: got %+v", res)
	}
}

func TestReasonOrder(t *testing.T) {
	r := compile(&Request{Service: service(constraints("node.labels.a == 1", "node.labels.b == 2"), maxPerNode(1))}, now)
	counts := make([]int, len(r.buckets))
	set := func(f failure, n int) { counts[r.bucket(f)] = n }
	set(failure{kind: failDraining}, 1)
	set(failure{kind: failConstraint, sub: 1}, 3)
	set(failure{kind: failConstraint, sub: 0}, 1)
	set(failure{kind: failMaxReplicas}, 3)
	want := "no suitable node (constraint node.labels.b == 2 not satisfied on 3 nodes; max replicas per node limit reached on 3 nodes; " +
		"draining on 1 node; constraint node.labels.a == 1 not satisfied on 1 node)"
	if got := r.reason(counts); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
