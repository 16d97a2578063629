package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/runtime/executor"
	"github.com/berthd/berth/spec"
)

// The agent's collaborators, reduced to what prepare calls: this checks the order
// of the agent's own steps, not containerd or the kernel (their integration tests
// do).
type runtimeAPI struct {
	API
	rt *api.TaskRuntime
}

func (f runtimeAPI) TaskRuntime(context.Context, string) (*api.TaskRuntime, error) { return f.rt, nil }
func (f runtimeAPI) ReportTaskStatus(context.Context, []api.TaskStatusReport) error {
	return nil
}

type createRecorder struct {
	Executor
	created chan executor.Container
}

func (f createRecorder) EnsureImage(context.Context, string) error { return nil }
func (f createRecorder) Create(_ context.Context, c executor.Container) error {
	f.created <- c
	return nil
}

// failingSetup fails once the container exists, which it only can if the two run
// at once.
type failingSetup struct {
	Network
	created <-chan executor.Container
	got     chan executor.Container
}

var errNoPort = errors.New("no such port")

func (f failingSetup) Setup(context.Context, string, string, []netstack.Attachment, []netstack.PortMapping, ...netstack.SetupOption) (netstack.Sandbox, error) {
	select {
	case c := <-f.created:
		f.got <- c
		return netstack.Sandbox{}, errNoPort
	case <-time.After(30 * time.Second):
		return netstack.Sandbox{}, errors.New("the container was not created while the sandbox was set up")
	}
}

func (f failingSetup) Sandbox(id string) netstack.Sandbox {
	return netstack.Sandbox{NetNSPath: "/ns/" + id, HostsPath: "/files/" + id + "/hosts", ResolvConfPath: "/files/" + id + "/resolv.conf"}
}

func TestPrepareCreatesTheContainerWhileTheSandboxIsSetUp(t *testing.T) {
	created := make(chan executor.Container, 1)
	nw := failingSetup{created: created, got: make(chan executor.Container, 1)}
	task := &model.Task{ID: "t1", ServiceName: "web_api", Slot: 1, DesiredState: model.TaskRunning,
		Networks: []model.Attachment{{Network: "n1", Addr: "10.0.1.5/24"}}}
	rt := &api.TaskRuntime{Task: task, Stack: "web", Spec: spec.Service{Name: "web_api", Image: "busybox"},
		Networks: []*model.Network{{ID: "n1", Name: "web_default", Subnet: "10.0.1.0/24", Gateway: "10.0.1.1"}}}
	a, err := New(Config{API: runtimeAPI{rt: rt}, Executor: createRecorder{created: created}, Network: nw, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(a, task.ID)
	err = r.prepare(context.Background(), task)
	if !errors.Is(err, errNoPort) || !strings.HasPrefix(err.Error(), "network: ") {
		t.Fatalf("prepare: %v, want the sandbox's error", err)
	}
	// The container exists, so the task's removal must remove it.
	if !r.created {
		t.Error("the container created while the sandbox failed is not marked created")
	}
	c := <-nw.got
	if c.NetNSPath != "/ns/t1" {
		t.Errorf("container joins %q, want the sandbox's namespace", c.NetNSPath)
	}
	var binds []string
	for _, m := range c.Mounts {
		binds = append(binds, m.Source+":"+m.Destination)
	}
	if got := strings.Join(binds, " "); got != "/files/t1/hosts:/etc/hosts /files/t1/resolv.conf:/etc/resolv.conf" {
		t.Errorf("mounts %s", got)
	}
}
