package reconciler

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

func TestAddressBookAssigns(t *testing.T) {
	nets := []*model.Network{
		{ID: "n1", Name: "web_default", Subnet: "10.0.0.0/24", Gateway: "10.0.0.1"},
		{ID: "n2", Name: "web_back", Subnet: "10.0.1.0/24", Gateway: "10.0.1.1"},
	}
	running := &model.Task{ID: "old", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskRunning},
		Networks: []model.Attachment{{Network: "n1", Addr: "10.0.0.2/24"}}}
	failed := &model.Task{ID: "gone", DesiredState: model.TaskShutdown, Status: model.TaskStatus{State: model.TaskFailed},
		Networks: []model.Attachment{{Network: "n1", Addr: "10.0.0.3/24"}}}
	b := newAddressBook([]*model.Task{running, failed}, nil, nil)
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	tx := st.ReadTxn()
	now := time.Unix(1000, 0)

	plan := orchestrator.Plan{Create: []*model.Task{{ID: "a"}, {ID: "b"}}}
	if b.assign(tx, &plan, nets, nil, false, now) {
		t.Fatal("tasks wait for addresses on roomy subnets")
	}
	want := map[string][]string{
		// .2 is held by a running task; .3 was released when its task failed.
		"a": {"10.0.0.3/24", "10.0.1.2/24"},
		"b": {"10.0.0.4/24", "10.0.1.3/24"},
	}
	for _, task := range plan.Create {
		if len(task.Networks) != 2 {
			t.Fatalf("task %s: %v", task.ID, task.Networks)
		}
		for i, a := range task.Networks {
			if a.Addr != want[task.ID][i] || a.Network != nets[i].ID || a.MAC == "" {
				t.Errorf("task %s attachment %d: %+v, want %s on %s", task.ID, i, a, want[task.ID][i], nets[i].ID)
			}
		}
	}

	// A task that stops releases its addresses for the next one.
	stopped := plan.Create[0].Copy()
	stopped.Status.State = model.TaskShutdown
	b.remove(plan.Create[0])
	b.add(stopped)
	next := orchestrator.Plan{Create: []*model.Task{{ID: "c"}}}
	if b.assign(tx, &next, nets[:1], nil, false, now) {
		t.Fatal("a task waits for an address on a roomy subnet")
	}
	if got := next.Create[0].Networks[0].Addr; got != "10.0.0.3/24" {
		t.Errorf("after a release: %s, want 10.0.0.3/24", got)
	}

	// On a full subnet the task that finds no address stays pending, holding none
	// on any network, and says which network is full and what to do.
	tiny := []*model.Network{
		{ID: "n4", Name: "web_roomy", Subnet: "10.8.0.0/24", Gateway: "10.8.0.1"},
		{ID: "n3", Name: "web_tiny", Subnet: "10.9.0.0/30", Gateway: "10.9.0.1"},
	}
	full := orchestrator.Plan{Create: []*model.Task{
		{ID: "x", NodeID: "node-1", Status: model.TaskStatus{State: model.TaskAssigned}},
		{ID: "y", NodeID: "node-1", Status: model.TaskStatus{State: model.TaskAssigned}},
	}}
	if !b.assign(tx, &full, tiny, nil, false, now) {
		t.Error("a /30 gave two task addresses beside its gateway, and nobody waits")
	}
	x, y := full.Create[0], full.Create[1]
	if len(x.Networks) != 2 || x.Networks[1].Addr != "10.9.0.2/30" || x.Status.State != model.TaskAssigned {
		t.Errorf("the first task: %+v %v, want both addresses, .2 on the /30, assigned", x.Networks, x.Status)
	}
	if len(y.Networks) != 0 || y.NodeID != "" || y.Status.State != model.TaskPending {
		t.Errorf("the second task: %+v on %q %v, want no address, no node, pending", y.Networks, y.NodeID, y.Status)
	}
	for _, w := range []string{"network web_tiny", "10.9.0.0/30", "bigger subnet"} {
		if !strings.Contains(y.Status.Err, w) {
			t.Errorf("the pending reason %q does not say %q", y.Status.Err, w)
		}
	}
	if b.used["n4"][netip.MustParseAddr("10.8.0.3")] {
		t.Error("the pending task kept the address it got on the roomy network")
	}
}

// TestAddressBookSkipsVIPsAndEndpoints: tasks never get an address a service's VIP
// or a node's ingress endpoint holds, and get it once the holder lets it go.
func TestAddressBookSkipsVIPsAndEndpoints(t *testing.T) {
	nets := []*model.Network{{ID: "n1", Name: "web_tiny", Subnet: "10.0.0.0/29", Gateway: "10.0.0.1"}}
	svc := &model.Service{ID: "s1", Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "n1", Addr: "10.0.0.2/29"}}}}
	node := &model.Node{ID: "node-1", Networks: []model.Attachment{{Network: "n1", Addr: "10.0.0.3/29"}}}
	b := newAddressBook(nil, []*model.Service{svc}, []*model.Node{node})
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	tx, now := st.ReadTxn(), time.Unix(1000, 0)
	plan := orchestrator.Plan{Create: []*model.Task{{ID: "a"}}}
	if b.assign(tx, &plan, nets, nil, false, now) {
		t.Fatal("a task waits on a subnet with free addresses")
	}
	if got := plan.Create[0].Networks[0].Addr; got != "10.0.0.4/29" {
		t.Fatalf("task address %s, want 10.0.0.4/29 (the VIP holds .2, the node .3)", got)
	}

	// The service switches to dnsrr (its VIP goes) and the node leaves.
	dnsrr := svc.Copy()
	dnsrr.Endpoint.VIPs = nil
	b.serviceChanged(svc, dnsrr)
	b.nodeChanged(node, nil)
	next := orchestrator.Plan{Create: []*model.Task{{ID: "b"}, {ID: "c"}}}
	b.assign(tx, &next, nets, nil, false, now)
	if a, c := next.Create[0].Networks[0].Addr, next.Create[1].Networks[0].Addr; a != "10.0.0.2/29" || c != "10.0.0.3/29" {
		t.Errorf("after the VIP and the endpoint went: %s and %s, want .2 and .3", a, c)
	}
}

// TestAddressBookIngressLowerHalf: tasks get addresses on the ingress network from
// the lower half of its subnet only (command.TaskRange), the upper half being the
// nodes' endpoints' and the VIPs'.
func TestAddressBookIngressLowerHalf(t *testing.T) {
	ingress := []*model.Network{{ID: "ing", Name: command.IngressName, Ingress: true, Subnet: "10.255.0.0/29", Gateway: "10.255.0.1"}}
	b := newAddressBook(nil, nil, nil)
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	plan := orchestrator.Plan{Create: []*model.Task{{ID: "a"}, {ID: "b"}}}
	if !b.assign(st.ReadTxn(), &plan, ingress, nil, false, time.Unix(1000, 0)) {
		t.Error("two tasks got addresses in the lower half of a /29 (.2 and the broadcast of the /30 only)")
	}
	if a := plan.Create[0].Networks; len(a) != 1 || a[0].Addr != "10.255.0.2/29" {
		t.Errorf("first task %+v, want 10.255.0.2/29", a)
	}
	if len(plan.Create[1].Networks) != 0 {
		t.Errorf("second task %+v: want none, the upper half is not the tasks'", plan.Create[1].Networks)
	}
}

// TestServiceNetworksIngressLast: a service that publishes a port in ingress mode
// attaches to the ingress network after its own, so that its default route stays on
// the first of its own; one that publishes none, or only in host mode, does not.
func TestServiceNetworksIngressLast(t *testing.T) {
	st, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	stackSpec := &spec.Stack{Name: "web", Networks: map[string]*spec.Network{
		"back": {Name: "web_back", Driver: "overlay"}, "front": {Name: "web_front", Driver: "overlay"}}}
	err = st.Update(1, func(tx *state.WriteTxn) error {
		for _, n := range []*model.Network{
			{ID: "ingressid", Name: command.IngressName, Driver: "overlay", Ingress: true, Subnet: "10.255.0.0/18"},
			{ID: "backid", Name: "web_back", Driver: "overlay", Subnet: "10.0.0.0/24", Stack: "web"},
			{ID: "frontid", Name: "web_front", Driver: "overlay", Subnet: "10.0.1.0/24", Stack: "web"},
		} {
			if err := tx.UpsertNetwork(n); err != nil {
				return err
			}
		}
		return tx.UpsertStack(&model.Stack{Name: "web", Spec: stackSpec})
	})
	if err != nil {
		t.Fatal(err)
	}
	published := []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}}
	tests := []struct {
		name string
		spec spec.Service
		want []string
	}{
		{"ingress last", spec.Service{Name: "api", Ports: published,
			Networks: []spec.ServiceNetwork{{Name: "front"}, {Name: "back"}}}, []string{"frontid", "backid", "ingressid"}},
		{"ingress only", spec.Service{Name: "api", Ports: published}, []string{"ingressid"}},
		{"host mode", spec.Service{Name: "api", Networks: []spec.ServiceNetwork{{Name: "back"}},
			Ports: []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeHost}}}, []string{"backid"}},
		{"not published", spec.Service{Name: "api", Networks: []spec.ServiceNetwork{{Name: "back"}},
			Ports: []spec.Port{{Target: 80, Protocol: "tcp", Mode: spec.PortModeIngress}}}, []string{"backid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nets, err := serviceNetworks(st.ReadTxn(), &model.Service{Name: "web_api", Stack: "web", Spec: tt.spec})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range nets {
				got = append(got, n.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("networks %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAddressBookReportsClash: a VIP or an endpoint written on an address the book
// gave a task (whose plan the FSM then skips) is reported, so that the loop reads
// its view anew; one on a free address is not.
func TestAddressBookReportsClash(t *testing.T) {
	task := &model.Task{ID: "a", DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned},
		Networks: []model.Attachment{{Network: "n1", Addr: "10.0.0.2/24"}}}
	b := newAddressBook([]*model.Task{task}, nil, nil)
	free := &model.Service{ID: "s1", Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "n1", Addr: "10.0.0.254/24"}}}}
	if b.serviceChanged(nil, free) {
		t.Error("a VIP on a free address is reported as a clash")
	}
	clash := &model.Service{ID: "s2", Endpoint: model.Endpoint{VIPs: []model.VIP{{Network: "n1", Addr: "10.0.0.2/24"}}}}
	if !b.serviceChanged(nil, clash) {
		t.Error("a VIP on a task's address is not reported")
	}
	node := &model.Node{ID: "node-1", Networks: []model.Attachment{{Network: "n1", Addr: "10.0.0.2/24"}}}
	if !b.nodeChanged(nil, node) {
		t.Error("an endpoint on a task's address is not reported")
	}
}
