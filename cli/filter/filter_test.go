package filter

import (
	"slices"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		parse func([]string) (Args, error)
		want  string
	}{
		{"unknown key", []string{"colour=red"}, ParseServices, "invalid filter 'colour': use id, label, mode, name"},
		{"no equals sign", []string{"name"}, ParseServices, `bad format of filter "name": expected key=value`},
		{"unknown mode", []string{"mode=sometimes"}, ParseServices, "invalid filter 'mode=sometimes': use replicated, global"},
		{"unknown desired state", []string{"desired-state=sleeping"}, ParseTasks, "invalid filter 'desired-state=sleeping'"},
		{"unknown role", []string{"role=boss"}, ParseNodes, "invalid filter 'role=boss': use manager, worker"},
		{"node key on tasks", []string{"role=manager"}, ParseTasks, "invalid filter 'role': use desired-state, id, name, node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.parse(tt.flags); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// keptCase is a listing's --filter flags and the names of the items that pass them.
type keptCase struct {
	flags []string
	want  []string
}

// checkKept runs each case through parse and keep, naming the kept items by name.
func checkKept[T any](t *testing.T, cases []keptCase, parse func([]string) (Args, error), keep func(Args) []T, name func(T) string) {
	t.Helper()
	for _, tt := range cases {
		a, err := parse(tt.flags)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range keep(a) {
			got = append(got, name(it))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: %v, want %v", tt.flags, got, tt.want)
		}
	}
}

func svc(id, name, mode string, labels map[string]string) *api.ServiceStatus {
	return &api.ServiceStatus{Service: &model.Service{ID: id, Name: name,
		Spec: spec.Service{Deploy: spec.Deploy{Mode: mode, Labels: labels}}}}
}

func TestServices(t *testing.T) {
	svcs := []*api.ServiceStatus{
		svc("aaa111", "web_api", spec.ModeReplicated, map[string]string{"tier": "front"}),
		svc("aab222", "web_db", "", map[string]string{"tier": "back", "backup": ""}),
		svc("bbb333", "mon_agent", spec.ModeGlobal, nil),
	}
	cases := []keptCase{
		{nil, []string{"web_api", "web_db", "mon_agent"}},
		{[]string{"name=web_"}, []string{"web_api", "web_db"}},
		{[]string{"id=aa", "mode=replicated"}, []string{"web_api", "web_db"}},
		{[]string{"mode=global"}, []string{"mon_agent"}},
		{[]string{"label=tier=back"}, []string{"web_db"}},
		{[]string{"label=backup"}, []string{"web_db"}},
		{[]string{"name=web_api", "name=mon"}, []string{"web_api", "mon_agent"}},
		{[]string{"name=web", "label=tier=front"}, []string{"web_api"}},
	}
	checkKept(t, cases, ParseServices, func(a Args) []*api.ServiceStatus { return Services(a, svcs) },
		func(s *api.ServiceStatus) string { return s.Name })
}

func TestTasks(t *testing.T) {
	task := func(id, name, node, host string, desired model.TaskState) *api.TaskInfo {
		return &api.TaskInfo{Task: &model.Task{ID: id, NodeID: node, DesiredState: desired}, Name: name, NodeHostname: host}
	}
	tasks := []*api.TaskInfo{
		task("t1", "web_api.1", "n1", "node-1", model.TaskRunning),
		task("t2", "web_api.1", "n2", "node-2", model.TaskShutdown),
		task("u3", "web_api.2", "n2", "node-2", model.TaskRunning),
	}
	cases := []keptCase{
		{[]string{"desired-state=running"}, []string{"t1", "u3"}},
		{[]string{"desired-state=Shutdown"}, []string{"t2"}},
		{[]string{"node=node-2"}, []string{"t2", "u3"}},
		{[]string{"node=n1"}, []string{"t1"}},
		{[]string{"id=t"}, []string{"t1", "t2"}},
		{[]string{"name=web_api.2"}, []string{"u3"}},
	}
	checkKept(t, cases, ParseTasks, func(a Args) []*api.TaskInfo { return Tasks(a, tasks) },
		func(tk *api.TaskInfo) string { return tk.ID })
}

func TestNodes(t *testing.T) {
	nodes := []*model.Node{
		{ID: "m1", Hostname: "node-1", Role: model.RoleManager, Labels: map[string]string{"os": "linux"}},
		{ID: "w2", Hostname: "node-2", Role: model.RoleWorker, EngineLabels: map[string]string{"ssd": "true"}},
	}
	cases := []keptCase{
		{[]string{"role=manager"}, []string{"node-1"}},
		{[]string{"node.label=os=linux"}, []string{"node-1"}},
		{[]string{"label=ssd"}, []string{"node-2"}},
		{[]string{"name=node-"}, []string{"node-1", "node-2"}},
		{[]string{"id=w"}, []string{"node-2"}},
		{[]string{"membership=accepted"}, []string{"node-1", "node-2"}},
		{[]string{"membership=pending"}, nil},
	}
	checkKept(t, cases, ParseNodes, func(a Args) []*model.Node { return Nodes(a, nodes) },
		func(n *model.Node) string { return n.Hostname })
}
