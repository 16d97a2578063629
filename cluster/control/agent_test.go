package control_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/ca"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/spec"
)

// placedTask waits for the reconciler to place the one task of the stack.
func placedTask(t *testing.T, m *memcluster.Manager, hash string) *model.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		all, _ := m.Store.State().ReadTxn().Tasks(nil)
		for _, task := range all {
			if task.NodeID != "" && task.SpecHash == hash && task.DesiredState == model.TaskRunning {
				return task
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no task of spec %s was placed", hash)
	return nil
}

func TestTaskRuntime(t *testing.T) {
	c, m := oneManager(t)
	ctx := context.Background()
	if _, err := c.Apply(ctx, command.CmdNodeUpsert, memcluster.Node("n1", nil)); err != nil {
		t.Fatal(err)
	}
	req := stack("app:1", "hunter2")
	req.Stack.Volumes = map[string]*spec.Volume{"data": {Name: "web_data"}, "named": {Name: "shared-name"}}
	req.Stack.Services["api"].Mounts = []spec.Mount{
		{Type: spec.MountVolume, Source: "data", Target: "/data"},
		{Type: spec.MountVolume, Source: "named", Target: "/shared"},
		{Type: spec.MountTmpfs, Target: "/tmp"},
	}
	if _, err := m.Control.DeployStack(ctx, req); err != nil {
		t.Fatal(err)
	}
	first := placedTask(t, m, svcHash(t, m, "web_api"))

	rt, err := m.Control.TaskRuntime(ctx, "n1", first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rt.Spec.Image != "app:1" || rt.Stack != "web" || rt.Task.ID != first.ID {
		t.Errorf("runtime: image %q stack %q task %q", rt.Spec.Image, rt.Stack, rt.Task.ID)
	}
	if len(rt.Secrets) != 1 || string(rt.Secrets[0].Data) != "hunter2" || rt.Secrets[0].Name != "web_pw" ||
		rt.Secrets[0].Version != 1 || rt.Secrets[0].Target != "/run/secrets/pw" {
		t.Errorf("secrets: %v", rt.Secrets)
	}
	if rt.Volumes["data"] != "web_data" || rt.Volumes["named"] != "shared-name" || len(rt.Volumes) != 2 {
		t.Errorf("volumes: %v", rt.Volumes)
	}

	// Another node never receives the task's secrets.
	if _, err := m.Control.TaskRuntime(ctx, "n2", first.ID); !errors.Is(err, ca.ErrForbidden) {
		t.Errorf("another node's call: %v, want ErrForbidden", err)
	}
	if _, err := m.Control.TaskRuntime(ctx, "n1", "no-such-task"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("unknown task: %v, want ErrNotFound", err)
	}

	// A new secret version and image: the old task resolves to the previous spec and
	// the old secret version, the new one to the current ones.
	req = stack("app:2", "correct horse")
	req.Stack.Volumes = map[string]*spec.Volume{"data": {Name: "web_data"}}
	if _, err := m.Control.DeployStack(ctx, req); err != nil {
		t.Fatal(err)
	}
	rt, err = m.Control.TaskRuntime(ctx, "n1", first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rt.Spec.Image != "app:1" || string(rt.Secrets[0].Data) != "hunter2" || rt.Secrets[0].Version != 1 {
		t.Errorf("old task after the update: image %q secret %v", rt.Spec.Image, rt.Secrets)
	}
	// Stop-first: the replacement is made once the old task reports it stopped.
	if err := m.Control.ReportTaskStatus(ctx, "n1", []api.TaskStatusReport{{TaskID: first.ID, Status: model.TaskStatus{State: model.TaskShutdown}}}); err != nil {
		t.Fatal(err)
	}
	second := placedTask(t, m, svcHash(t, m, "web_api"))
	rt, err = m.Control.TaskRuntime(ctx, "n1", second.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rt.Spec.Image != "app:2" || string(rt.Secrets[0].Data) != "correct horse" || rt.Secrets[0].Version != 2 {
		t.Errorf("new task: image %q secret %v", rt.Spec.Image, rt.Secrets)
	}

	// Two updates later the first task's spec is gone: it is outdated.
	if _, err := m.Control.DeployStack(ctx, stack("app:3", "correct horse")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.TaskRuntime(ctx, "n1", first.ID); err != nil && !errors.Is(err, api.ErrTaskOutdated) && !errors.Is(err, state.ErrNotFound) {
		t.Errorf("outdated task: %v, want ErrTaskOutdated (or ErrNotFound once reaped)", err)
	} else if err == nil {
		t.Errorf("outdated task %s resolved", first.ID)
	}
}

func svcHash(t *testing.T, m *memcluster.Manager, name string) string {
	t.Helper()
	svc, err := m.Store.State().ReadTxn().ServiceByName(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	return orchestrator.TaskHash(svc)
}
