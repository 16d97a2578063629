package scheduler

import (
	"net/netip"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// now is the fixed instant tests schedule at.
var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const testService = "svc-1"

// node returns a ready, active linux/amd64 worker with 4 CPUs and 8 GiB, changed by
// mods.
func node(id string, mods ...func(*NodeInfo)) NodeInfo {
	n := NodeInfo{
		ID:           id,
		Hostname:     "host-" + id,
		Role:         model.RoleWorker,
		State:        model.NodeReady,
		Availability: model.AvailabilityActive,
		Platform:     model.Platform{OS: "linux", Arch: "amd64"},
		Addr:         netip.MustParseAddr("10.0.0.5"),
		Total:        Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
	}
	for _, m := range mods {
		m(&n)
	}
	return n
}

func labels(kv ...string) func(*NodeInfo) {
	return func(n *NodeInfo) {
		n.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			n.Labels[kv[i]] = kv[i+1]
		}
	}
}

// running gives the node svc tasks of testService and total tasks overall.
func running(svc, total int) func(*NodeInfo) {
	return func(n *NodeInfo) {
		n.ServiceTasks = map[string]int{testService: svc}
		n.Tasks = total
	}
}

// service returns a replicated service spec changed by mods.
func service(mods ...func(*spec.Service)) *spec.Service {
	s := &spec.Service{Name: "api", Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip"}}
	for _, m := range mods {
		m(s)
	}
	return s
}

func constraints(cs ...string) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Placement.Constraints = cs }
}

func maxPerNode(m uint64) func(*spec.Service) {
	return func(s *spec.Service) { s.Deploy.Placement.MaxReplicasPerNode = m }
}

func spread(keys ...string) func(*spec.Service) {
	return func(s *spec.Service) {
		for _, k := range keys {
			s.Deploy.Placement.Preferences = append(s.Deploy.Placement.Preferences, spec.Preference{Spread: k})
		}
	}
}

func reserve(cpus spec.NanoCPUs, mem int64) func(*spec.Service) {
	return func(s *spec.Service) {
		s.Deploy.Resources.Reservations = &spec.Resource{CPUs: cpus, MemoryBytes: mem}
	}
}

func hostPort(port uint32, proto string) func(*spec.Service) {
	return func(s *spec.Service) {
		s.Ports = append(s.Ports, spec.Port{Target: port, Published: port, Protocol: proto, Mode: spec.PortModeHost})
	}
}

func newRequest(replicas int, svc *spec.Service) Request {
	return Request{ServiceID: testService, Service: svc, SpecVersion: 2, Replicas: replicas}
}

// placedOn lists the node of every assignment, in task order.
func placedOn(res Result) []string {
	out := make([]string, len(res.Assignments))
	for i, a := range res.Assignments {
		out[i] = a.NodeID
	}
	return out
}

// perNode counts assignments per node.
func perNode(res Result) map[string]int {
	out := map[string]int{}
	for _, a := range res.Assignments {
		out[a.NodeID]++
	}
	return out
}
