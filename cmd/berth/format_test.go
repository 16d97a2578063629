package main

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/berthd/berth/cli/filter"
	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

var formatNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func formatServices() []*api.ServiceStatus {
	three := uint64(3)
	return []*api.ServiceStatus{
		{Service: &model.Service{ID: "d7fdr1p0hz8ezlzu6z61jdyge", Name: "web_nginx", Spec: spec.Service{Image: "nginx:1.27-alpine",
			Ports:  []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}},
			Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three, Labels: map[string]string{"tier": "front"}}}},
			Running: 3, Desired: 3},
		{Service: &model.Service{ID: "k2m9x0q7w1e5r8t3y6u4i2o0p", Name: "mon_agent", Spec: spec.Service{Image: "busybox",
			Deploy: spec.Deploy{Mode: spec.ModeGlobal, Labels: map[string]string{"tier": "ops"}}}},
			Running: 1, Desired: 2},
	}
}

func formatTasks() []*api.TaskInfo {
	task := func(id string, slot uint64, host string, desired, st model.TaskState, err string, ago time.Duration) *api.TaskInfo {
		node := ""
		if host != "" {
			node = "id-" + host
		}
		return &api.TaskInfo{Task: &model.Task{ID: id, ServiceID: "svc", ServiceName: "web_nginx", Slot: slot, NodeID: node,
			DesiredState: desired, Status: model.TaskStatus{State: st, Err: err, Timestamp: formatNow.Add(-ago)}},
			Name: (&model.Task{ServiceName: "web_nginx", Slot: slot}).Name(), NodeHostname: host, Image: "nginx:1.27"}
	}
	return []*api.TaskInfo{
		task("aaaaaaaaaaaaaaaaaaaaaaaaa", 1, "node-1", model.TaskRunning, model.TaskRunning, "", 2*time.Minute),
		task("bbbbbbbbbbbbbbbbbbbbbbbbb", 1, "node-2", model.TaskShutdown, model.TaskFailed,
			"task: non-zero exit (1): the process was killed by the OOM killer", 3*time.Minute),
		task("ccccccccccccccccccccccccc", 2, "", model.TaskRunning, model.TaskPending,
			"no suitable node (max replicas per node limit reached on 3 nodes)", 5*time.Second),
	}
}

func formatNodes() []*model.Node {
	return []*model.Node{
		{ID: "n1n1n1n1n1n1n1n1n1n1n1n1n", Hostname: "node-1", Role: model.RoleManager, Availability: model.AvailabilityActive,
			Status: model.NodeStatus{State: model.NodeReady}, ManagerStatus: &model.ManagerStatus{Reachability: model.ReachabilityLeader},
			Labels: map[string]string{"os": "linux"}},
		{ID: "w2w2w2w2w2w2w2w2w2w2w2w2w", Hostname: "node-2", Role: model.RoleWorker, Availability: model.AvailabilityDrain,
			Status: model.NodeStatus{State: model.NodeDown}},
	}
}

// Each --format form, --filter and truncation on the listings, through the code the
// commands run, against golden files.
func TestFormatGoldens(t *testing.T) {
	services := func(opts listFlags) func(io.Writer) error {
		return func(w io.Writer) error {
			f, filters, err := opts.parse(filter.ParseServices)
			if err != nil {
				return err
			}
			return serviceListing(opts.noTrunc).print(w, f, opts.quiet, filter.Services(filters, formatServices()))
		}
	}
	tasks := func(opts psOptions) func(io.Writer) error {
		return func(w io.Writer) error {
			out, err := opts.output()
			if err != nil {
				return err
			}
			return printTasks(w, formatTasks(), out, formatNow)
		}
	}
	nodes := func(opts listFlags) func(io.Writer) error {
		return func(w io.Writer) error {
			f, filters, err := opts.parse(filter.ParseNodes)
			if err != nil {
				return err
			}
			return nodeListing("n1n1n1n1n1n1n1n1n1n1n1n1n").print(w, f, opts.quiet, filter.Nodes(filters, formatNodes()))
		}
	}
	stacks := func(tmpl string) func(io.Writer) error {
		return func(w io.Writer) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			return stackListing().print(w, f, false, []*api.StackSummary{{Name: "web", Services: 2}, {Name: "mon", Services: 1}})
		}
	}
	inspect := func(tmpl string) func(io.Writer) error {
		return func(w io.Writer) error {
			f, err := format.Parse(tmpl)
			if err != nil {
				return err
			}
			for _, s := range formatServices() {
				if err := f.WriteObject(w, s); err != nil {
					return err
				}
			}
			return nil
		}
	}
	tests := []struct {
		golden string
		print  func(io.Writer) error
	}{
		{"format_service_ls_template", services(listFlags{format: "{{.Name}}: {{.Replicas}} {{.Mode | upper}}"})},
		{"format_service_ls_table", services(listFlags{format: `table {{.ID}}\t{{.Replicas}}\t{{.Ports}}`})},
		{"format_service_ls_json", services(listFlags{format: "json"})},
		{"format_service_ls_filter", services(listFlags{filters: []string{"label=tier=front", "mode=replicated"}})},
		{"format_service_ls_quiet", services(listFlags{quiet: true})},
		{"format_service_ls_quiet_no_trunc", services(listFlags{quiet: true, noTrunc: true})},
		{"format_service_ps", tasks(psOptions{})},
		{"format_service_ps_no_trunc", tasks(psOptions{listFlags{noTrunc: true}})},
		{"format_service_ps_table", tasks(psOptions{listFlags{format: `table {{.ID}}\t{{.Name}}\t{{.Node}}\t{{.Error}}`}})},
		{"format_service_ps_json", tasks(psOptions{listFlags{format: "json"}})},
		{"format_service_ps_filter", tasks(psOptions{listFlags{format: "{{.Name}} {{.DesiredState}} {{.CurrentState}}",
			filters: []string{"desired-state=running", "desired-state=shutdown", "node=node-1", "node=id-node-2"}}})},
		{"format_service_ps_quiet", tasks(psOptions{listFlags{quiet: true, filters: []string{"desired-state=shutdown"}}})},
		{"format_node_ls_template", nodes(listFlags{format: "{{.Hostname}}{{if .Self}} (self){{end}}: {{.Status}} {{.ManagerStatus}}"})},
		{"format_node_ls_filter_json", nodes(listFlags{format: "json", filters: []string{"node.label=os=linux"}})},
		{"format_stack_ls_json", stacks("json")},
		{"format_service_inspect_template", inspect(`{{.Name}} {{.Spec.Image}} {{json .Spec.Deploy.Labels}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.print(&b); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, b.String())
		})
	}
}

// A filter key or a template the command cannot use is refused before the
// managers are asked, with what to type instead.
func TestFormatAndFilterErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service filter", []string{"service", "ls", "--filter", "colour=red"},
			"berth: invalid filter 'colour': use id, label, mode, name\n"},
		{"unknown task filter", []string{"service", "ps", "-f", "role=manager", "web_api"},
			"berth: invalid filter 'role': use desired-state, id, name, node\n"},
		{"filter without a value", []string{"node", "ls", "--filter", "role"},
			`berth: bad format of filter "role": expected key=value, one of the keys id, label, membership, name, node.label, role` + "\n"},
		{"template that does not parse", []string{"stack", "ls", "--format", "{{.Name"},
			`berth: invalid --format "{{.Name": template: :1: unclosed action; write json, a Go template such as '{{.Name}}', or 'table {{.ID}}\t{{.Name}}'` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The host is a socket that does not exist: the flags fail first.
			r := runBerth(t, "", append([]string{"-H", "unix:///nonexistent/berth.sock"}, tt.args...)...)
			if r.code == 0 || r.stderr != tt.want {
				t.Errorf("%v", r)
			}
		})
	}
}

// --format is every command's output flag; -o/--output stays where berth had it.
func TestFormatIsTheOutputFlag(t *testing.T) {
	const app = "testdata/config/app/compose.yaml"
	withO := runBerth(t, "", "stack", "config", "-c", app, "-o", "json")
	withFormat := runBerth(t, "", "stack", "config", "-c", app, "--format", "json")
	if withO.code != 0 || withFormat.code != 0 || withO.stdout != withFormat.stdout {
		t.Errorf("stack config -o json:\n%v\nstack config --format json:\n%v", withO, withFormat)
	}
}
