package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// runtimeRecorder stands in for a node's container runtime where only the cluster's
// plumbing is tested (the runtime's own tests run containerd): it answers logs with
// the task and node, and records the archives it is given.
type runtimeRecorder struct {
	mu       sync.Mutex
	archives map[string][]byte // by node name
}

func (r *runtimeRecorder) on(name string) func(*Config) {
	return func(c *Config) {
		c.TaskLogs = func(_ context.Context, taskID string, _ api.LogOptions, w io.Writer) error {
			_, err := fmt.Fprintf(w, "task %s on %s\n", taskID, name)
			return err
		}
		c.LoadImage = func(_ context.Context, archive io.Reader) ([]string, error) {
			b, err := io.ReadAll(archive)
			if err != nil {
				return nil, err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.archives[name] = b
			return []string{"loaded-by-" + name}, nil
		}
	}
}

// A manager reads the logs of a task on a worker, and loads an image into every
// node, through the nodes' ports.
func TestManagerReachesWorkersRuntime(t *testing.T) {
	dir := shortTempDir(t)
	ctx := context.Background()
	rec := &runtimeRecorder{archives: map[string][]byte{}}
	m1 := startNode(t, dir, "m1", rec.on("m1"))
	w1 := startNode(t, dir, "w1", rec.on("w1"))
	init, err := m1.c.Init(ctx, api.InitRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w1.c.Join(ctx, api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: init.WorkerToken}); err != nil {
		t.Fatal(err)
	}
	w1Info, err := w1.c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}

	st := &spec.Stack{Name: "app", Services: map[string]*spec.Service{
		"agent": {Name: "agent", Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeGlobal, EndpointMode: "vip"}}}}
	if _, err := m1.c.DeployStack(ctx, &api.StackDeployRequest{Stack: st}); err != nil {
		t.Fatal(err)
	}
	var onWorker *api.TaskInfo
	eventually(t, 10*time.Second, func() error {
		tasks, _, err := m1.c.Tasks(ctx, api.TaskFilter{Node: w1Info.NodeID}, api.Query{})
		if err != nil {
			return err
		}
		for _, tk := range tasks {
			if tk.NodeID == w1Info.NodeID && tk.DesiredState == model.TaskRunning {
				onWorker = tk
				return nil
			}
		}
		return fmt.Errorf("no task on w1 yet among %d", len(tasks))
	})

	var logs bytes.Buffer
	if err := m1.c.TaskLogs(ctx, onWorker.ID, api.LogOptions{}, &logs); err != nil {
		t.Fatalf("logs of a task on the worker, through the manager: %v", err)
	}
	if want := "task " + onWorker.ID + " on w1\n"; logs.String() != want {
		t.Errorf("logs through the manager = %q, want %q", logs.String(), want)
	}

	archive := bytes.Repeat([]byte("an image archive "), 10000)
	resp, err := m1.c.LoadImage(ctx, bytes.NewReader(archive), api.ImageLoadOptions{AllNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, nd := range resp.Nodes {
		got = append(got, fmt.Sprintf("%s:%s:%s", nd.Hostname, strings.Join(nd.Images, ","), nd.Error))
	}
	if want := "m1:loaded-by-m1: w1:loaded-by-w1:"; strings.Join(got, " ") != want {
		t.Errorf("load into all nodes = %v, want %s", got, want)
	}
	rec.mu.Lock()
	for _, name := range []string{"m1", "w1"} {
		if !bytes.Equal(rec.archives[name], archive) {
			t.Errorf("%s got %d bytes of the %d-byte archive", name, len(rec.archives[name]), len(archive))
		}
	}
	rec.mu.Unlock()

	// all_nodes is the CLI's to ask: a worker does not fan out.
	if _, err := w1.c.LoadImage(ctx, bytes.NewReader(archive), api.ImageLoadOptions{AllNodes: true}); err == nil || !strings.Contains(err.Error(), "needs a manager") {
		t.Errorf("load into all nodes on a worker: %v, want an error saying it needs a manager", err)
	}
}
