package scheduler

import (
	"net/netip"
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// TestFilters places one task on one node, for each filter once on the passing side
// and once (or more) on the failing side; the failing side must read as the reason.
func TestFilters(t *testing.T) {
	tests := []struct {
		name      string
		node      []func(*NodeInfo)
		svc       []func(*spec.Service)
		platforms []model.Platform
		reason    string // "" means the task is placed
	}{
		{name: "ready"},
		{name: "down", node: []func(*NodeInfo){func(n *NodeInfo) { n.State = model.NodeDown }},
			reason: "no suitable node (down on 1 node)"},
		{name: "unknown state", node: []func(*NodeInfo){func(n *NodeInfo) { n.State = model.NodeUnknown }},
			reason: "no suitable node (not ready on 1 node)"},
		{name: "empty availability counts as active", node: []func(*NodeInfo){func(n *NodeInfo) { n.Availability = "" }}},
		{name: "paused", node: []func(*NodeInfo){func(n *NodeInfo) { n.Availability = model.AvailabilityPause }},
			reason: "no suitable node (paused on 1 node)"},
		{name: "draining", node: []func(*NodeInfo){func(n *NodeInfo) { n.Availability = model.AvailabilityDrain }},
			reason: "no suitable node (draining on 1 node)"},
		{name: "down wins over draining", node: []func(*NodeInfo){func(n *NodeInfo) {
			n.State, n.Availability = model.NodeDown, model.AvailabilityDrain
		}}, reason: "no suitable node (down on 1 node)"},

		{name: "platform listed", platforms: []model.Platform{{OS: "linux", Arch: "arm64"}, {OS: "linux", Arch: "amd64"}}},
		{name: "platform alias and case", platforms: []model.Platform{{OS: "Linux", Arch: "x86_64"}}},
		{name: "platform any arch", platforms: []model.Platform{{OS: "linux"}}},
		{name: "platform not listed", platforms: []model.Platform{{OS: "linux", Arch: "arm64"}},
			reason: "no suitable node (platform not supported by the image on 1 node)"},
		{name: "platform unknown on node", platforms: []model.Platform{{OS: "linux"}},
			node:   []func(*NodeInfo){func(n *NodeInfo) { n.Platform = model.Platform{} }},
			reason: "no suitable node (platform not supported by the image on 1 node)"},

		{name: "constraint satisfied", node: []func(*NodeInfo){labels("os", "linux")},
			svc: []func(*spec.Service){constraints("node.labels.os == linux")}},
		{name: "constraint not satisfied", node: []func(*NodeInfo){labels("os", "windows")},
			svc:    []func(*spec.Service){constraints("node.labels.os == linux")},
			reason: "no suitable node (constraint node.labels.os == linux not satisfied on 1 node)"},

		{name: "resources fit exactly", node: []func(*NodeInfo){func(n *NodeInfo) { n.Reserved = Resources{3e9, 6 << 30} }},
			svc: []func(*spec.Service){reserve(1e9, 2<<30)}},
		{name: "cpu short", node: []func(*NodeInfo){func(n *NodeInfo) { n.Reserved = Resources{3.5e9, 0} }},
			svc:    []func(*spec.Service){reserve(1e9, 2<<30)},
			reason: "no suitable node (insufficient resources (cpu) on 1 node)"},
		{name: "memory short", node: []func(*NodeInfo){func(n *NodeInfo) { n.Reserved = Resources{0, 7 << 30} }},
			svc:    []func(*spec.Service){reserve(1e9, 2<<30)},
			reason: "no suitable node (insufficient resources (memory) on 1 node)"},
		{name: "both short", node: []func(*NodeInfo){func(n *NodeInfo) { n.Reserved = Resources{4e9, 8 << 30} }},
			svc:    []func(*spec.Service){reserve(1, 1)},
			reason: "no suitable node (insufficient resources (cpu, memory) on 1 node)"},
		{name: "no reservation on a full node", node: []func(*NodeInfo){func(n *NodeInfo) { n.Reserved = Resources{5e9, 9 << 30} }}},
		{name: "reservation on a node that reports nothing", node: []func(*NodeInfo){func(n *NodeInfo) { n.Total = Resources{} }},
			svc:    []func(*spec.Service){reserve(0, 1)},
			reason: "no suitable node (insufficient resources (memory) on 1 node)"},

		{name: "below max per node", node: []func(*NodeInfo){running(2, 2)}, svc: []func(*spec.Service){maxPerNode(3)}},
		{name: "max per node reached", node: []func(*NodeInfo){running(2, 2)}, svc: []func(*spec.Service){maxPerNode(2)},
			reason: "no suitable node (max replicas per node limit reached on 1 node)"},
		{name: "other services do not count toward the cap", node: []func(*NodeInfo){func(n *NodeInfo) {
			n.ServiceTasks, n.Tasks = map[string]int{"other": 5}, 5
		}}, svc: []func(*spec.Service){maxPerNode(1)}},

		{name: "host port free", node: []func(*NodeInfo){hostPortsInUse(HostPort{"udp", 80}, HostPort{"tcp", 81})},
			svc: []func(*spec.Service){hostPort(80, "tcp")}},
		{name: "host port in use", node: []func(*NodeInfo){hostPortsInUse(HostPort{"tcp", 80})},
			svc:    []func(*spec.Service){hostPort(80, "tcp")},
			reason: "no suitable node (host port 80/tcp in use on 1 node)"},
		{name: "second host port in use", node: []func(*NodeInfo){hostPortsInUse(HostPort{"udp", 53})},
			svc:    []func(*spec.Service){hostPort(80, "tcp"), hostPort(53, "udp")},
			reason: "no suitable node (host port 53/udp in use on 1 node)"},
		{name: "ingress ports do not hold the node's port", node: []func(*NodeInfo){hostPortsInUse(HostPort{"tcp", 80})},
			svc: []func(*spec.Service){func(s *spec.Service) {
				s.Ports = []spec.Port{{Target: 80, Published: 80, Protocol: "tcp", Mode: spec.PortModeIngress}}
			}}},
		{name: "host mode without a published port", node: []func(*NodeInfo){hostPortsInUse(HostPort{"tcp", 80})},
			svc: []func(*spec.Service){func(s *spec.Service) {
				s.Ports = []spec.Port{{Target: 80, Protocol: "tcp", Mode: spec.PortModeHost}}
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(1, service(tt.svc...))
			req.Platforms = tt.platforms
			res := Schedule([]NodeInfo{node("n1", tt.node...)}, req, now)
			if tt.reason == "" {
				if len(res.Assignments) != 1 || res.Unplaced != 0 || res.Reason != "" {
					t.Fatalf("want the task placed, got %+v", res)
				}
				return
			}
			if len(res.Assignments) != 0 || res.Unplaced != 1 || res.Reason != tt.reason {
				t.Fatalf("got %+v\nwant unplaced with reason %q", res, tt.reason)
			}
		})
	}
}

func hostPortsInUse(ports ...HostPort) func(*NodeInfo) {
	return func(n *NodeInfo) {
		n.HostPorts = map[HostPort]int{}
		for _, p := range ports {
			n.HostPorts[p]++
		}
	}
}

func TestConstraintMatch(t *testing.T) {
	base := node("n1", labels("os", "linux", "zone", "a"), func(n *NodeInfo) {
		n.EngineLabels = map[string]string{"gpu": "true"}
	})
	v6 := node("n6", func(n *NodeInfo) { n.Addr = netip.MustParseAddr("fd00::5") })
	noAddr := node("n0", func(n *NodeInfo) { n.Addr = netip.Addr{} })
	manager := node("m1", func(n *NodeInfo) { n.Role = model.RoleManager })
	tests := []struct {
		expr string
		node NodeInfo
		want bool
	}{
		{"node.id == n1", base, true},
		{"node.id == n2", base, false},
		{"node.id != n2", base, true},
		{"node.id != n1", base, false},
		{"node.hostname == host-n1", base, true},
		{"node.hostname == HOST-N1", base, true}, // values compare without case, as in Swarm
		{"node.hostname != host-n1", base, false},
		{"node.role == worker", base, true},
		{"node.role == manager", base, false},
		{"node.role == manager", manager, true},
		{"node.role != manager", manager, false},
		{"node.platform.os == linux", base, true},
		{"node.platform.os != linux", base, false},
		{"node.platform.arch == amd64", base, true},
		{"node.platform.arch == arm64", base, false},
		{"node.ip == 10.0.0.5", base, true},
		{"node.ip == 10.0.0.6", base, false},
		{"node.ip != 10.0.0.6", base, true},
		{"node.ip == 10.0.0.0/24", base, true},
		{"node.ip != 10.0.0.0/24", base, false},
		{"node.ip == 10.1.0.0/16", base, false},
		{"node.ip != 10.1.0.0/16", base, true},
		{"node.ip == ::ffff:10.0.0.0/104", base, true}, // IPv4-mapped prefix reads as 10.0.0.0/8
		{"node.ip == ::ffff:10.0.0.5", base, true},
		{"node.ip == fd00::/64", v6, true},
		{"node.ip == fd00::5", v6, true},
		{"node.ip == fd00::/64", base, false},
		{"node.ip == 10.0.0.0/8", noAddr, false},
		{"node.ip != 10.0.0.0/8", noAddr, true},
		{"node.labels.os == linux", base, true},
		{"node.labels.os == LINUX", base, true},
		{"node.labels.os == windows", base, false},
		{"node.labels.os != windows", base, true},
		{"node.labels.os != linux", base, false},
		{"node.labels.rack == r1", base, false},  // a missing label fails ==
		{"node.labels.rack != r1", base, true},   // ... and passes !=
		{"node.labels.OS == linux", base, false}, // label names are case-sensitive
		{"NODE.LABELS.os == linux", base, true},  // the fixed part of the key is not
		{"engine.labels.gpu == true", base, true},
		{"engine.labels.gpu != true", base, false},
		{"engine.labels.os == linux", base, false}, // node labels are not engine labels
		{"engine.labels.tpu != true", base, true},
		{"node.labels.os==linux", base, true},
		// Refused by ParseConstraint: never satisfied, whatever the operator.
		{"node.foo == x", base, false},
		{"node.foo != x", base, false},
		{"node.ip == not-an-ip", base, false},
		{"node.labels.os >= linux", base, false},
		{"", base, false},
	}
	for _, tt := range tests {
		c := compileConstraint(tt.expr)
		if got := c.match(&tt.node); got != tt.want {
			t.Errorf("%q on %s: got %v, want %v", tt.expr, tt.node.ID, got, tt.want)
		}
	}
}

func TestConstraintTextInReasons(t *testing.T) {
	tests := []struct {
		expr, want string
	}{
		{"node.labels.os==linux", "constraint node.labels.os == linux not satisfied"},
		{"NODE.ROLE == Manager", "constraint node.role == manager not satisfied"},
		{"node.ip == FD00::0/64", "constraint node.ip == fd00::/64 not satisfied"},
		{" node.foo == x ", "invalid constraint node.foo == x"},
	}
	for _, tt := range tests {
		r := compile(&Request{Service: service(constraints(tt.expr))}, now)
		if got := r.condition(failure{kind: failConstraint}); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestPreferenceValue(t *testing.T) {
	n := node("n1", labels("zone", "a"), func(n *NodeInfo) { n.EngineLabels = map[string]string{"rack": "r1"} })
	tests := []struct {
		spread, want string
	}{
		{"node.labels.zone", "a"},
		{"engine.labels.rack", "r1"},
		{"node.labels.rack", ""},
		{"node.hostname", ""}, // refused by ParsePreference: one group for all
		{"", ""},
	}
	for _, tt := range tests {
		p := compilePreference(tt.spread)
		if got := p.value(&n); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.spread, got, tt.want)
		}
	}
}
