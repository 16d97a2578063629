package reconciler

import (
	"net/netip"
	"testing"

	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
)

func TestAddressBookAssigns(t *testing.T) {
	nets := []*state.Network{
		{ID: "n1", Name: "web_default", Subnet: "10.0.0.0/24", Gateway: "10.0.0.1"},
		{ID: "n2", Name: "web_back", Subnet: "10.0.1.0/24", Gateway: "10.0.1.1"},
	}
	running := &state.Task{ID: "old", DesiredState: state.TaskRunning, Status: state.TaskStatus{State: state.TaskRunning},
		Networks: []state.Attachment{{Network: "n1", Addr: "10.0.0.2/24"}}}
	failed := &state.Task{ID: "gone", DesiredState: state.TaskShutdown, Status: state.TaskStatus{State: state.TaskFailed},
		Networks: []state.Attachment{{Network: "n1", Addr: "10.0.0.3/24"}}}
	b := newAddressBook([]*state.Task{running, failed})

	plan := orchestrator.Plan{Create: []*state.Task{{ID: "a"}, {ID: "b"}}}
	if err := b.assign(&plan, nets); err != nil {
		t.Fatal(err)
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
	stopped.Status.State = state.TaskShutdown
	b.remove(plan.Create[0])
	b.add(stopped)
	next := orchestrator.Plan{Create: []*state.Task{{ID: "c"}}}
	if err := b.assign(&next, nets[:1]); err != nil {
		t.Fatal(err)
	}
	if got := next.Create[0].Networks[0].Addr; got != "10.0.0.3/24" {
		t.Errorf("after a release: %s, want 10.0.0.3/24", got)
	}

	// A full subnet is an error that names it.
	tiny := []*state.Network{{ID: "n3", Name: "tiny", Subnet: "10.9.0.0/30", Gateway: "10.9.0.1"}}
	full := orchestrator.Plan{Create: []*state.Task{{ID: "x"}, {ID: "y"}}}
	if err := b.assign(&full, tiny); err == nil {
		t.Error("a /30 gave two task addresses beside its gateway")
	}
	if _, ok := b.used["n3"][netip.MustParseAddr("10.9.0.2")]; !ok {
		t.Error("the one address the /30 has was not given")
	}
}
