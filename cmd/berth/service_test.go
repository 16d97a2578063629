package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cli/format"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestPrintServices(t *testing.T) {
	five, one := uint64(5), uint64(1)
	svcs := []*api.ServiceStatus{
		{Service: &model.Service{ID: "d7fdr1p0hz8ezlzu6z61jdyge", Name: "web_nginx", Spec: spec.Service{Image: "nginx:1.27-alpine",
			Ports:  []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: spec.PortModeIngress}, {Target: 9100, Published: 9100, Protocol: "tcp", Mode: spec.PortModeHost}},
			Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &five, Placement: spec.Placement{MaxReplicasPerNode: 1}}}},
			Running: 3, Desired: 5},
		{Service: &model.Service{ID: "abc", Name: "mon_agent", Spec: spec.Service{Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeGlobal}}},
			Running: 4, Desired: 4},
		{Service: &model.Service{ID: "def", Name: "db_migrate", Spec: spec.Service{Image: "migrate", Deploy: spec.Deploy{Mode: spec.ModeReplicatedJob, Replicas: &one}}},
			Running: 0, Desired: 1, Completed: 1},
		{Service: &model.Service{ID: "ghi", Name: "app_api", Spec: spec.Service{Image: "example/api:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &five}}},
			Running: 0, Desired: 5,
			Pending: []api.PendingReason{{Reason: "no suitable node (max replicas per node limit reached on 3 nodes)", Tasks: 1}},
			Failing: []api.PendingReason{{Reason: "image example/api:1: not found in the registry", Tasks: 3}, {Reason: "task: non-zero exit (1)", Tasks: 1}}},
	}
	var b bytes.Buffer
	if err := printServices(&b, svcs, false); err != nil {
		t.Fatal(err)
	}
	want := `ID             NAME         MODE             REPLICAS               IMAGE               PORTS
d7fdr1p0hz8e   web_nginx    replicated       3/5 (max 1 per node)   nginx:1.27-alpine   *:8080->80/tcp
abc            mon_agent    global           4/4                    busybox             
def            db_migrate   replicated job   0/1 (1/1 completed)    migrate             
ghi            app_api      replicated       0/5                    example/api:1       

app_api: 1 pending: no suitable node (max replicas per node limit reached on 3 nodes); 3 failing: image example/api:1: not found in the registry; 1 failing: task: non-zero exit (1)
`
	if b.String() != want {
		t.Errorf("service ls:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestPrintTasksHistory(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	task := func(id string, slot uint64, node, host string, desired, st model.TaskState, err string, ago time.Duration) *api.TaskInfo {
		return &api.TaskInfo{Task: &model.Task{ID: id, ServiceID: "svc", ServiceName: "web_nginx", Slot: slot, NodeID: node,
			DesiredState: desired, Status: model.TaskStatus{State: st, Err: err, Timestamp: now.Add(-ago)}},
			Name: (&model.Task{ServiceName: "web_nginx", Slot: slot}).Name(), NodeHostname: host, Image: "nginx:1.27"}
	}
	const reason = "no suitable node (max replicas per node limit reached on 3 nodes)"
	tasks := []*api.TaskInfo{
		task("aaaaaaaaaaaaaaaaaaaaaaaaa", 1, "n1", "node-1", model.TaskRunning, model.TaskRunning, "", 2*time.Minute),
		task("bbbbbbbbbbbbbbbbbbbbbbbbb", 1, "n2", "node-2", model.TaskShutdown, model.TaskFailed, "task: non-zero exit (1)", 3*time.Minute),
		task("ccccccccccccccccccccccccc", 2, "", "", model.TaskRunning, model.TaskPending, reason, 5*time.Second),
	}
	var b bytes.Buffer
	if err := printTasks(&b, tasks, taskOutput{}, now); err != nil {
		t.Fatal(err)
	}
	want := `ID             NAME              IMAGE        NODE     DESIRED STATE   CURRENT STATE           ERROR
aaaaaaaaaaaa   web_nginx.1       nginx:1.27   node-1   Running         Running 2 minutes ago   
bbbbbbbbbbbb    \_ web_nginx.1   nginx:1.27   node-2   Shutdown        Failed 3 minutes ago    "task: non-zero exit (1)"
cccccccccccc   web_nginx.2       nginx:1.27            Running         Pending 5 seconds ago   "no suitable node (max replica…"
`
	if b.String() != want {
		t.Errorf("service ps:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := printTasks(&b, tasks, taskOutput{quiet: true}, now); err != nil || strings.Count(b.String(), "\n") != 3 {
		t.Errorf("-q: %q %v", b.String(), err)
	}
}

// A slot that keeps failing with one error shows one row per run of that error, with
// a count, not a screenful of identical rows (whole errors with --no-trunc); --format
// json keeps every task.
func TestPrintTasksFoldsRepeatedFailures(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	const notFound = "image example/api:1: not found in the registry"
	n := 0
	task := func(slot uint64, host string, desired, st model.TaskState, err string, ago time.Duration) *api.TaskInfo {
		n++
		return &api.TaskInfo{Task: &model.Task{ID: fmt.Sprintf("task%08d", n), ServiceID: "svc", ServiceName: "app_api", Slot: slot,
			NodeID: host, DesiredState: desired, Status: model.TaskStatus{State: st, Err: err, Timestamp: now.Add(-ago)}},
			Name: (&model.Task{ServiceName: "app_api", Slot: slot}).Name(), NodeHostname: host, Image: "example/api:1"}
	}
	rejected := func(host string, ago time.Duration) *api.TaskInfo {
		return task(1, host, model.TaskShutdown, model.TaskRejected, notFound, ago)
	}
	tasks := []*api.TaskInfo{
		task(1, "", model.TaskRunning, model.TaskPending, "", 0),
		rejected("node-1", 20*time.Second), rejected("node-2", 40*time.Second), rejected("node-1", time.Minute),
		task(1, "node-1", model.TaskShutdown, model.TaskFailed, "task: non-zero exit (1)", 2*time.Minute),
		rejected("node-1", 3*time.Minute), rejected("node-1", 4*time.Minute),
		task(2, "node-2", model.TaskRunning, model.TaskRunning, "", time.Hour),
	}
	var b bytes.Buffer
	if err := printTasks(&b, tasks, taskOutput{noTrunc: true}, now); err != nil {
		t.Fatal(err)
	}
	want := `ID             NAME            IMAGE           NODE     DESIRED STATE   CURRENT STATE                    ERROR
task00000001   app_api.1       example/api:1            Running         Pending Less than a second ago   
task00000002    \_ app_api.1   example/api:1   node-1   Shutdown        Rejected 20 seconds ago          "` + notFound + `" (x3)
task00000005    \_ app_api.1   example/api:1   node-1   Shutdown        Failed 2 minutes ago             "task: non-zero exit (1)"
task00000006    \_ app_api.1   example/api:1   node-1   Shutdown        Rejected 3 minutes ago           "` + notFound + `" (x2)
task00000008   app_api.2       example/api:1   node-2   Running         Running About an hour ago        
`
	if b.String() != want {
		t.Errorf("service ps:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	jsonFormat, err := format.Parse("json")
	if err != nil {
		t.Fatal(err)
	}
	if err := printTasks(&b, tasks, taskOutput{format: jsonFormat}, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("--format json: %q is no JSON object", l)
		}
	}
	if len(lines) != len(tasks) {
		t.Errorf("--format json: %d tasks, want all %d", len(lines), len(tasks))
	}
}

// Each row shows the image its task ran, and the failures of two images are not
// folded into one row: the history tells which image failed how often.
func TestPrintTasksShowsEachTasksImage(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	n := 0
	task := func(image string, desired, st model.TaskState, err string) *api.TaskInfo {
		n++
		return &api.TaskInfo{Task: &model.Task{ID: fmt.Sprintf("task%08d", n), ServiceID: "svc", ServiceName: "app_api", Slot: 1,
			NodeID: "n1", DesiredState: desired, Status: model.TaskStatus{State: st, Err: err, Timestamp: now.Add(-time.Duration(n) * time.Minute)}},
			Name: "app_api.1", NodeHostname: "node-1", Image: image}
	}
	const exit1 = "task: non-zero exit (1)"
	tasks := []*api.TaskInfo{
		task("app:1.25", model.TaskRunning, model.TaskRunning, ""),
		task("app:1.27", model.TaskShutdown, model.TaskFailed, exit1),
		task("app:1.27", model.TaskShutdown, model.TaskFailed, exit1),
		task("app:1.26", model.TaskShutdown, model.TaskFailed, exit1),
		task("app:1.25", model.TaskShutdown, model.TaskShutdown, ""),
	}
	var b bytes.Buffer
	if err := printTasks(&b, tasks, taskOutput{}, now); err != nil {
		t.Fatal(err)
	}
	want := `ID             NAME            IMAGE      NODE     DESIRED STATE   CURRENT STATE                ERROR
task00000001   app_api.1       app:1.25   node-1   Running         Running About a minute ago   
task00000002    \_ app_api.1   app:1.27   node-1   Shutdown        Failed 2 minutes ago         "` + exit1 + `" (x2)
task00000004    \_ app_api.1   app:1.26   node-1   Shutdown        Failed 4 minutes ago         "` + exit1 + `"
task00000005    \_ app_api.1   app:1.25   node-1   Shutdown        Shutdown 5 minutes ago       
`
	if b.String() != want {
		t.Errorf("service ps:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgressLine(t *testing.T) {
	three := uint64(3)
	s := &api.ServiceStatus{Service: &model.Service{Name: "web_api", Spec: spec.Service{Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three}}},
		Running: 1, UpToDate: 1, Desired: 3, Pending: []api.PendingReason{{Reason: "no suitable node (no nodes available)", Tasks: 2}}}
	if got := progressLine(s, api.Converging); got != "1/3 running; 2 pending: no suitable node (no nodes available)" {
		t.Errorf("progress %q", got)
	}
	s.Pending, s.Failing = s.Pending[:1:1], []api.PendingReason{{Reason: "image example/api:1: not found", Tasks: 1}}
	s.Pending[0].Tasks = 1
	if got := progressLine(s, api.Converging); got != "1/3 running; 1 pending: no suitable node (no nodes available); 1 failing: image example/api:1: not found" {
		t.Errorf("progress with a failing slot %q", got)
	}
	s.Running, s.UpToDate, s.Pending, s.Failing = 3, 3, nil, nil
	if got := progressLine(s, api.ConvergenceOf(s, true)); got != "3/3 running; converged" {
		t.Errorf("progress %q", got)
	}
	s.UpdateStatus = model.UpdateStatus{State: model.UpdateRollbackCompleted, Message: "rollback completed"}
	if api.ConvergenceOf(s, true) != api.Failed || api.ConvergenceOf(s, false) != api.Converged {
		t.Error("a rollback is this deploy's failure only when the deploy changed the service")
	}
}
