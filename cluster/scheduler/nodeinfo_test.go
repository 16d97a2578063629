package scheduler

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestNodeInfosFromState(t *testing.T) {
	nodes := []*model.Node{
		{
			ID: "n1", Hostname: "one", Role: model.RoleManager, Availability: model.AvailabilityActive,
			Labels: map[string]string{"os": "linux"}, EngineLabels: map[string]string{"gpu": "true"},
			Platform:  model.Platform{OS: "linux", Arch: "amd64"},
			Resources: model.NodeResources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
			Addr:      "10.0.0.1:4270", Status: model.NodeStatus{State: model.NodeReady},
		},
		{ID: "n2", Hostname: "two", Addr: "fe80::1%eth0", Status: model.NodeStatus{State: model.NodeDown}},
		{ID: "n3", Hostname: "three", Addr: "node3.example"},
	}
	web := service(reserve(1e9, 1<<30), hostPort(80, "tcp"))
	services := func(id string) *spec.Service {
		if id == "web" {
			return web
		}
		return nil
	}
	failedAt := now.Add(-time.Minute)
	task := func(id, svc, node string, desired, observed model.TaskState) *model.Task {
		return &model.Task{ID: id, ServiceID: svc, NodeID: node, SpecVersion: 4, DesiredState: desired,
			Status: model.TaskStatus{State: observed, Timestamp: failedAt}}
	}
	tasks := []*model.Task{
		task("t1", "web", "n1", model.TaskRunning, model.TaskRunning),
		task("t2", "web", "n1", model.TaskRunning, model.TaskAssigned),
		// Being stopped for an update: still holds its reservation and port, but no
		// longer counts toward the service's tasks.
		task("t3", "web", "n1", model.TaskShutdown, model.TaskRunning),
		task("t4", "web", "n1", model.TaskShutdown, model.TaskShutdown), // gone
		task("t5", "web", "n1", model.TaskRunning, model.TaskFailed),
		task("t6", "job", "n1", model.TaskComplete, model.TaskStarting), // a job: active
		task("t7", "web", "", model.TaskRunning, model.TaskPending),     // not placed yet
		task("t8", "web", "n9", model.TaskRunning, model.TaskRunning),   // unknown node
		task("t9", "web", "n2", model.TaskRunning, model.TaskRejected),
		{ID: "t10", ServiceID: "web", NodeID: "n2", SpecVersion: 4, Status: model.TaskStatus{State: model.TaskFailed}, UpdatedAt: now},
	}
	got := NodeInfosFromState(nodes, tasks, services)
	want := []NodeInfo{
		{
			ID: "n1", Hostname: "one", Role: model.RoleManager, State: model.NodeReady,
			Availability: model.AvailabilityActive,
			Labels:       map[string]string{"os": "linux"}, EngineLabels: map[string]string{"gpu": "true"},
			Platform:     model.Platform{OS: "linux", Arch: "amd64"},
			Addr:         netip.MustParseAddr("10.0.0.1"),
			Total:        Resources{4e9, 8 << 30},
			Reserved:     Resources{3e9, 3 << 30},
			ServiceTasks: map[string]int{"web": 2, "job": 1},
			Tasks:        3,
			HostPorts:    map[HostPort]int{{"tcp", 80}: 3},
			Failures:     []Failure{{ServiceID: "web", SpecVersion: 4, At: failedAt}},
		},
		{
			ID: "n2", Hostname: "two", State: model.NodeDown, Addr: netip.MustParseAddr("fe80::1"),
			Failures: []Failure{{ServiceID: "web", SpecVersion: 4, At: failedAt}, {ServiceID: "web", SpecVersion: 4, At: now}},
		},
		{ID: "n3", Hostname: "three"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	for i, n := range nodes {
		if one := NodeInfoFromState(n, tasks, services); !reflect.DeepEqual(one, want[i]) {
			t.Errorf("NodeInfoFromState(%s):\n got %+v\nwant %+v", n.ID, one, want[i])
		}
	}
}

func TestNodeAddrForConstraints(t *testing.T) {
	for addr, want := range map[string]bool{
		"10.0.0.1":               true,
		"10.0.0.1:4270":          true,
		"[::ffff:10.0.0.1]:4270": true,
		"10.1.0.1":               false,
		"":                       false,
		"node.example:4270":      false,
	} {
		n := NodeInfoFromState(&model.Node{ID: "n1", Addr: addr, Status: model.NodeStatus{State: model.NodeReady}}, nil, nil)
		c := compileConstraint("node.ip == 10.0.0.0/16")
		if got := c.match(&n); got != want {
			t.Errorf("addr %q: got %v, want %v", addr, got, want)
		}
	}
}

// RemoveTask undoes AddTask exactly, whatever the task's state.
func TestAddRemoveTaskRoundTrip(t *testing.T) {
	svc := &spec.Service{Name: "api", Ports: []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeHost}},
		Deploy: spec.Deploy{Resources: spec.Resources{Reservations: &spec.Resource{CPUs: 5e8, MemoryBytes: 1 << 20}}}}
	lookup := func(string) *spec.Service { return svc }
	row := &model.Node{ID: "n1", Hostname: "n1", Status: model.NodeStatus{State: model.NodeReady}}
	base := NodeInfoFromState(row, nil, nil)
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, st := range model.TaskStates() {
		for _, desired := range []model.TaskState{model.TaskRunning, model.TaskShutdown} {
			task := &model.Task{ID: "t", ServiceID: "s", NodeID: "n1", DesiredState: desired,
				Status: model.TaskStatus{State: st, Timestamp: at}}
			n := NodeInfoFromState(row, nil, nil)
			n.AddTask(task, lookup)
			n.AddTask(task, lookup)
			n.RemoveTask(task, lookup)
			n.RemoveTask(task, lookup)
			if n.Reserved != base.Reserved || n.Tasks != 0 || len(n.ServiceTasks) != 0 || len(n.HostPorts) != 0 || len(n.Failures) != 0 {
				t.Errorf("%s/%s: after add and remove: %+v", st, desired, n)
			}
		}
	}
}
