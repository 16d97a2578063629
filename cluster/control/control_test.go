package control_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/spec"
)

func oneManager(t *testing.T) (*memcluster.Cluster, *memcluster.Manager) {
	t.Helper()
	c, err := memcluster.New(memcluster.Options{Managers: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m, err := c.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c, m
}

func stack(image, secret string, extra ...string) *api.StackDeployRequest {
	one := uint64(1)
	st := &spec.Stack{Name: "web",
		Services: map[string]*spec.Service{"api": {Name: "api", Image: image,
			Secrets: []spec.FileReference{{Source: "pw", Target: "/run/secrets/pw"}},
			Deploy:  spec.Deploy{Mode: spec.ModeReplicated, Replicas: &one, EndpointMode: "vip"}}},
		Networks: map[string]*spec.Network{"default": {Name: "web_default", Driver: "overlay"}},
		Secrets:  map[string]*spec.Secret{"pw": {FileObject: spec.FileObject{Name: "web_pw", File: "pw.txt"}}},
	}
	for _, name := range extra {
		st.Services[name] = &spec.Service{Name: name, Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &one, EndpointMode: "vip"}}
	}
	return &api.StackDeployRequest{Stack: st, SecretData: map[string][]byte{"pw": []byte(secret)}}
}

func actions(resp *api.StackDeployResponse) map[string]string {
	out := map[string]string{}
	for _, ch := range resp.Changes {
		out[ch.Kind+" "+ch.Name] = ch.Action
	}
	return out
}

func TestDeployStackReportsWhatChanged(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	resp, err := m.Control.DeployStack(ctx, stack("app:1", "hunter2", "worker"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"service web_api": "created", "service web_worker": "created", "network web_default": "created", "secret web_pw": "created"}
	if got := actions(resp); !equal(got, want) {
		t.Fatalf("first deploy: %v", got)
	}
	resp, err = m.Control.DeployStack(ctx, stack("app:1", "hunter2", "worker"))
	if err != nil {
		t.Fatal(err)
	}
	for k, a := range actions(resp) {
		if a != api.ActionUnchanged {
			t.Errorf("second deploy: %s %s", k, a)
		}
	}
	req := stack("app:1", "correct horse")
	req.Prune = true
	resp, err = m.Control.DeployStack(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"service web_api": "updated", "service web_worker": "removed", "network web_default": "unchanged", "secret web_pw": "updated"}
	if got := actions(resp); !equal(got, want) {
		t.Fatalf("deploy with a new secret and --prune: %v", got)
	}
	for _, ch := range resp.Changes {
		if ch.Kind == "secret" && ch.Version != 2 {
			t.Errorf("secret version %d, want 2", ch.Version)
		}
	}
	stacks, _, err := m.Control.Stacks(ctx, api.Query{})
	if err != nil || len(stacks) != 1 || stacks[0].Services != 1 {
		t.Errorf("stacks: %+v %v", stacks, err)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDeployStackRefusals(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		req  func() *api.StackDeployRequest
		want string
	}{
		"no content": {func() *api.StackDeployRequest { r := stack("a", "x"); r.SecretData = nil; return r }, "no content for secret pw"},
		"external with content": {func() *api.StackDeployRequest {
			r := stack("a", "x")
			r.Stack.Secrets["pw"].External = true
			return r
		}, "is external, but content was sent"},
		"bad name": {func() *api.StackDeployRequest { r := stack("a", "x"); r.Stack.Name = "Web!"; return r }, "invalid stack name"},
		"undefined ref": {func() *api.StackDeployRequest {
			r := stack("a", "x")
			delete(r.Stack.Secrets, "pw")
			r.SecretData = nil
			return r
		}, `secret "pw" is not defined`},
		"too big": {func() *api.StackDeployRequest {
			return stack("a", strings.Repeat("x", spec.MaxObjectBytes+1))
		}, "the limit is"},
		"spec too big": {func() *api.StackDeployRequest {
			r := stack("a", "x")
			r.Stack.Services["api"].Environment = map[string]string{"BIG": strings.Repeat("y", spec.MaxStackBytes)}
			return r
		}, "stack web: the stack encodes to 2097"},
		"path out of the container": {func() *api.StackDeployRequest {
			r := stack("a", "x")
			r.Stack.Services["api"].Secrets[0].Target = "/run/secrets/../../etc/shadow"
			return r
		}, "service api, secrets[0].target"},
	} {
		_, err := m.Control.DeployStack(ctx, tc.req())
		if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a bad request saying %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%s: the error carries the secret's content", name)
		}
	}
	if _, err := m.Control.RollbackService(ctx, "nope"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("rollback of a missing service: %v", err)
	}
	if _, err := m.Control.UpdateService(ctx, "nope", &api.ServiceUpdateRequest{}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("update of a missing service without --force: %v, want no such service", err)
	}
	if _, err := m.Control.DeployStack(ctx, stack("a", "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.RollbackService(ctx, "web_api"); !errors.Is(err, api.ErrRefused) || strings.HasPrefix(err.Error(), "refused") {
		t.Errorf("rollback without a previous spec: %v, want a refusal in the user's words", err)
	}
	if _, err := m.Control.UpdateService(ctx, "web_api", &api.ServiceUpdateRequest{}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("update without --force: %v", err)
	}
	if err := m.Control.ReportTaskStatus(ctx, "n1", []api.TaskStatusReport{{TaskID: "t", Status: model.TaskStatus{State: model.TaskAssigned}}}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("an agent reporting assigned: %v", err)
	}
}

// An agent's watch wakes for its own node's tasks only.
func TestNodeTasksWakeOnlyForTheNode(t *testing.T) {
	c, m := oneManager(t)
	ctx := context.Background()
	for _, id := range []string{"n1", "n2"} {
		if _, err := c.Apply(ctx, command.CmdNodeUpsert, memcluster.Node(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Control.DeployStack(ctx, stack("a", "x")); err != nil {
		t.Fatal(err)
	}
	// The reconciler placed web_api's one task on n1 or n2; wait until it has.
	deadline := time.Now().Add(10 * time.Second)
	var placedOn string
	for placedOn == "" && time.Now().Before(deadline) {
		all, _ := m.Store.State().ReadTxn().Tasks(nil)
		for _, t := range all {
			if t.NodeID != "" {
				placedOn = t.NodeID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	other := "n1"
	if placedOn == "n1" {
		other = "n2"
	}
	tasks, meta, err := m.Control.NodeTasks(ctx, other, api.Query{})
	if err != nil || len(tasks) != 0 {
		t.Fatalf("tasks of %s: %v %v", other, tasks, err)
	}
	// A write to the other node's task does not answer this node's watch.
	mine, _, _ := m.Control.NodeTasks(ctx, placedOn, api.Query{})
	if len(mine) != 1 {
		t.Fatalf("tasks of %s: %v", placedOn, mine)
	}
	if err := m.Control.ReportTaskStatus(ctx, placedOn, []api.TaskStatusReport{{TaskID: mine[0].ID, Status: model.TaskStatus{State: model.TaskRunning}}}); err != nil {
		t.Fatal(err)
	}
	_, meta2, err := m.Control.NodeTasks(ctx, other, api.Query{Index: meta.Index, Wait: 100 * time.Millisecond})
	if err != nil || meta2.Index != meta.Index {
		t.Errorf("the watch of %s moved from %d to %d on another node's write", other, meta.Index, meta2.Index)
	}
	got, meta3, err := m.Control.NodeTasks(ctx, placedOn, api.Query{Index: mine[0].ModifyIndex, Wait: 10 * time.Second})
	if err != nil || meta3.Index <= mine[0].ModifyIndex || got[0].Status.State != model.TaskRunning {
		t.Errorf("the watch of %s: %v %+v %v", placedOn, got, meta3, err)
	}
}

// A service that cannot start says why, once per distinct error: the error of each
// slot's latest attempt, for the slots that run nothing.
func TestServiceStatusFailing(t *testing.T) {
	four := uint64(4)
	svc := &model.Service{ID: "s", Name: "app_api", Spec: spec.Service{Image: "example/api:1", Deploy: spec.Deploy{Replicas: &four}}}
	hash := orchestrator.TaskHash(svc)
	const notFound = "image example/api:1: not found in the registry"
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	n := 0
	task := func(slot uint64, desired, st model.TaskState, err string) *model.Task {
		n++
		return &model.Task{Slot: slot, SpecHash: hash, DesiredState: desired, CreatedAt: at.Add(time.Duration(n) * time.Second),
			Status: model.TaskStatus{State: st, Err: err}}
	}
	rejected := func(slot uint64) *model.Task { return task(slot, model.TaskShutdown, model.TaskRejected, notFound) }
	oldSpec := task(5, model.TaskShutdown, model.TaskFailed, "exit 2")
	oldSpec.SpecHash = "a-previous-spec"
	st := control.ServiceStatus(svc, []*model.Task{
		rejected(1), task(1, model.TaskRunning, model.TaskRunning, ""), // runs now
		rejected(2), rejected(2), task(2, model.TaskRunning, model.TaskPending, ""), // waits for its restart delay
		rejected(3), task(3, model.TaskShutdown, model.TaskFailed, "task: non-zero exit (1)"), // the latest counts
		rejected(4),
		oldSpec,
		task(6, model.TaskRemove, model.TaskRejected, notFound), // scaled down
	}, nil)
	want := []api.PendingReason{{Reason: notFound, Tasks: 2}, {Reason: "task: non-zero exit (1)", Tasks: 1}}
	if !slices.Equal(st.Failing, want) {
		t.Errorf("failing %+v, want %+v", st.Failing, want)
	}
}

func TestServiceStatusCounts(t *testing.T) {
	five := uint64(5)
	svc := &model.Service{ID: "s", Name: "web_api", Spec: spec.Service{Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &five}}}
	task := func(desired, st model.TaskState, err string) *model.Task {
		return &model.Task{DesiredState: desired, Status: model.TaskStatus{State: st, Err: err}}
	}
	const reason = "no suitable node (no nodes available)"
	current, old := task(model.TaskRunning, model.TaskRunning, ""), task(model.TaskRunning, model.TaskRunning, "")
	current.SpecHash, old.SpecHash = orchestrator.TaskHash(svc), "a-previous-spec"
	st := control.ServiceStatus(svc, []*model.Task{
		current,
		old,
		task(model.TaskRunning, model.TaskAssigned, ""),
		task(model.TaskRunning, model.TaskPending, reason),
		task(model.TaskRunning, model.TaskPending, reason),
		task(model.TaskShutdown, model.TaskRunning, ""), // being stopped: not counted
		task(model.TaskRunning, model.TaskFailed, "exit 1"),
	}, nil)
	if st.Running != 2 || st.UpToDate != 1 || st.Desired != 5 || len(st.Pending) != 1 || st.Pending[0].Tasks != 2 || st.Pending[0].Reason != reason {
		t.Errorf("replicated: %+v", st)
	}
	svc.Spec.Deploy = spec.Deploy{Mode: spec.ModeGlobal}
	running := task(model.TaskRunning, model.TaskRunning, "")
	running.NodeID = "paused-node"
	// Two nodes qualify; a third, paused, still runs a task.
	st = control.ServiceStatus(svc, []*model.Task{running, task(model.TaskRunning, model.TaskPending, "insufficient resources (cpu)")}, []string{"n1", "n2"})
	if st.Running != 1 || st.Desired != 3 {
		t.Errorf("global: %+v", st)
	}
	// Right after a deploy, before the orchestrator made any task, a global service
	// already wants one per qualifying node.
	if st := control.ServiceStatus(svc, nil, []string{"n1", "n2"}); st.Desired != 2 || api.ConvergenceOf(st, true) != api.Converging {
		t.Errorf("global without tasks yet: %+v", st)
	}
}

func TestServiceStatusStuck(t *testing.T) {
	two := uint64(2)
	svc := &model.Service{ID: "s", Name: "web_api", Spec: spec.Service{Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &two}}}
	hash := orchestrator.TaskHash(svc)
	at := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	task := func(slot uint64, st model.TaskState, err string, sec int) *model.Task {
		return &model.Task{Slot: slot, SpecHash: hash, DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: st, Err: err, Timestamp: at.Add(time.Duration(sec) * time.Second)}}
	}
	const noNode = "no suitable node (1 node: constraint node.labels.zone == x)"
	const pull = `image "127.0.0.1:1/x:1": connection refused`
	oldSpec := task(2, model.TaskRejected, pull, 0)
	oldSpec.SpecHash = "a-previous-spec"
	for _, tc := range []struct {
		name    string
		tasks   []*model.Task
		stuck   bool
		reasons string
	}{
		{"both slots wait for a node", []*model.Task{task(1, model.TaskPending, noNode, 0), task(2, model.TaskPending, noNode, 0)}, true, "2 pending: " + noNode},
		{"one waits for a node, one rejected and replaced", []*model.Task{
			task(1, model.TaskPending, noNode, 0), task(2, model.TaskRejected, "first", 0), task(2, model.TaskRejected, pull, 1), task(2, model.TaskPreparing, "", 2),
		}, true, "1 pending: " + noNode + "; 1 failing: " + pull},
		{"a rejection, then the slot runs", []*model.Task{task(1, model.TaskRunning, "", 0), task(2, model.TaskRejected, pull, 0), task(2, model.TaskRunning, "", 1)}, false, ""},
		{"one rejected, the other still starting", []*model.Task{task(1, model.TaskPreparing, "", 0), task(2, model.TaskRejected, pull, 0)}, false, "1 failing: " + pull},
		{"a rejection of the previous spec", []*model.Task{task(1, model.TaskRunning, "", 0), oldSpec, task(2, model.TaskStarting, "", 1)}, false, ""},
		{"a failure of a slot scaled away", []*model.Task{task(1, model.TaskRunning, "", 0), task(2, model.TaskRunning, "", 0), task(3, model.TaskFailed, pull, 0)}, false, ""},
		{"converged", []*model.Task{task(1, model.TaskRunning, "", 0), task(2, model.TaskRunning, "", 0)}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := control.ServiceStatus(svc, tc.tasks, nil)
			if st.Stuck() != tc.stuck || st.StuckReasons() != tc.reasons {
				t.Errorf("Stuck %v, reasons %q; want %v, %q (%+v)", st.Stuck(), st.StuckReasons(), tc.stuck, tc.reasons, st)
			}
		})
	}
}

// TestBlockingReadEndsWithItsContext: a blocking read that waits longer than its
// caller's context returns the context's error, not an answer (a push's convergence
// loop took that answer for progress and never saw its own deadline).
func TestBlockingReadEndsWithItsContext(t *testing.T) {
	_, m := oneManager(t)
	_, meta, err := m.Control.Services(context.Background(), api.ServiceFilter{}, api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = m.Control.Services(ctx, api.ServiceFilter{}, api.Query{Index: meta.Index, Wait: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read past its context's deadline: err %v, want %v", err, context.DeadlineExceeded)
	}
}
