package store

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fsmHarness applies commands to an FSM at growing indexes, as raft would, with the
// encoding every manager decodes.
type fsmHarness struct {
	t     *testing.T
	f     *fsm
	index uint64
}

func newFSMHarness(t *testing.T) *fsmHarness {
	f, err := newFSM(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fsmHarness{t: t, f: f}
}

func (h *fsmHarness) apply(ct command.Type, body any) error {
	h.t.Helper()
	data, err := command.Encode(ct, body)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	if r := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}); r != nil {
		return r.(error)
	}
	return nil
}

func (h *fsmHarness) must(ct command.Type, body any) {
	h.t.Helper()
	if err := h.apply(ct, body); err != nil {
		h.t.Fatalf("%s: %v", ct, err)
	}
}

func (h *fsmHarness) tx() *state.ReadTxn { return h.f.State().ReadTxn() }

func ptr[T any](v T) *T { return &v }

// webStack is a stack with a service, a network, a secret and a config.
func webStack(image string, replicas uint64) *spec.Stack {
	return &spec.Stack{
		Name: "web",
		Services: map[string]*spec.Service{
			"api": {Name: "api", Image: image, Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(replicas), EndpointMode: "vip"},
				Networks: []spec.ServiceNetwork{{Name: "default"}},
				Secrets:  []spec.FileReference{{Source: "pw", Target: "/run/secrets/pw"}},
				Configs:  []spec.FileReference{{Source: "conf", Target: "/etc/app.conf"}}},
		},
		Networks: map[string]*spec.Network{"default": {Name: "web_default", Driver: "overlay"}},
		Secrets:  map[string]*spec.Secret{"pw": {FileObject: spec.FileObject{Name: "web_pw", File: "pw.txt"}}},
		Configs:  map[string]*spec.Config{"conf": {FileObject: spec.FileObject{Name: "web_conf", File: "app.conf"}, Digest: "sha256:x"}},
	}
}

var idSeq int

func deploy(st *spec.Stack, secret, config string, prune bool) *command.StackDeploy {
	idSeq++
	ids := map[string]string{}
	for k := range st.Services {
		ids[command.KindService+"/"+k] = fmt.Sprintf("svc-%s-%d", k, idSeq)
	}
	for k := range st.Networks {
		ids[command.KindNetwork+"/"+k] = fmt.Sprintf("net-%s-%d", k, idSeq)
	}
	for k := range st.Secrets {
		ids[command.KindSecret+"/"+k] = fmt.Sprintf("sec-%s-%d", k, idSeq)
	}
	for k := range st.Configs {
		ids[command.KindConfig+"/"+k] = fmt.Sprintf("cfg-%s-%d", k, idSeq)
	}
	return &command.StackDeploy{Stack: &model.Stack{Name: st.Name, Spec: st}, IDs: ids, Prune: prune,
		SecretData: map[string][]byte{"pw": []byte(secret)}, ConfigData: map[string][]byte{"conf": []byte(config)}}
}

func TestStackDeployCreatesUpdatesAndPrunes(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "hunter2", "a=1", false))
	tx := h.tx()
	svc, err := tx.ServiceByName(nil, "web_api")
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]uint64{"secret/web_pw": 1, "config/web_conf": 1}
	if svc.SpecVersion != 1 || svc.Stack != "web" || svc.PreviousSpec != nil || !reflect.DeepEqual(svc.Objects, pins) {
		t.Fatalf("new service: %+v", svc)
	}
	net, err := tx.NetworkByName(nil, "web_default")
	if err != nil || net.VNI != command.FirstVNI || net.Stack != "web" {
		t.Fatalf("network %+v, %v", net, err)
	}
	sec, _ := tx.Secret(nil, "web_pw")
	if string(sec.Data) != "hunter2" || sec.Stack != "web" {
		t.Fatalf("secret %v", sec)
	}
	stack, _ := tx.Stack(nil, "web")
	if stack.Spec.Secrets["pw"].Data != nil {
		t.Fatal("the stack row holds secret data")
	}

	// The same deploy again changes nothing.
	before := tx.Index()
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "hunter2", "a=1", false))
	if svc2, _ := h.tx().ServiceByName(nil, "web_api"); svc2.ModifyIndex != svc.ModifyIndex {
		t.Errorf("unchanged deploy rewrote the service (index %d -> %d)", svc.ModifyIndex, svc2.ModifyIndex)
	}
	if net2, _ := h.tx().NetworkByName(nil, "web_default"); net2.ModifyIndex > before {
		t.Error("unchanged deploy rewrote the network")
	}

	// A new secret content: new version, the service changes (it rolls to it).
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "correct horse", "a=1", false))
	svc3, _ := h.tx().ServiceByName(nil, "web_api")
	if svc3.SpecVersion != 2 || svc3.Objects["secret/web_pw"] != 2 || svc3.PreviousObjects["secret/web_pw"] != 1 || svc3.PreviousSpec == nil {
		t.Errorf("after a secret change: %+v", svc3)
	}
	if sec, _ := h.tx().Secret(nil, "web_pw"); sec.Version != 2 || string(sec.Data) != "correct horse" {
		t.Errorf("secret after change: %v", sec)
	}

	// A new image; the update status is cleared.
	svcRow := svc3.Copy()
	svcRow.UpdateStatus = model.UpdateStatus{State: model.UpdateCompleted}
	if err := h.f.State().Update(h.index+1, func(w *state.WriteTxn) error { return w.UpsertService(svcRow) }); err != nil {
		t.Fatal(err)
	}
	h.index++
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:2", 2), "correct horse", "a=1", false))
	svc4, _ := h.tx().ServiceByName(nil, "web_api")
	if svc4.SpecVersion != 3 || svc4.Spec.Image != "nginx:2" || svc4.PreviousSpec.Image != "nginx:1" || svc4.UpdateStatus.State != "" || svc4.ID != svc.ID {
		t.Errorf("after an image change: %+v", svc4)
	}

	// Without prune a service the files dropped stays; with prune it goes, and so
	// does a network no longer listed.
	small := webStack("nginx:2", 2)
	small.Services["worker"] = &spec.Service{Name: "worker", Image: "busybox", Deploy: spec.Deploy{Mode: spec.ModeReplicated, EndpointMode: "vip"}}
	h.must(command.CmdStackDeploy, deploy(small, "correct horse", "a=1", false))
	only := webStack("nginx:2", 2)
	delete(only.Services, "api")
	only.Services["worker"] = small.Services["worker"]
	only.Networks = nil
	h.must(command.CmdStackDeploy, deploy(only, "correct horse", "a=1", false))
	if svcs, _ := h.tx().ServicesByStack(nil, "web"); len(svcs) != 2 {
		t.Errorf("without prune: %d services, want 2", len(svcs))
	}
	h.must(command.CmdStackDeploy, deploy(only, "correct horse", "a=1", true))
	svcs, _ := h.tx().ServicesByStack(nil, "web")
	if len(svcs) != 1 || svcs[0].Name != "web_worker" {
		t.Errorf("after prune: %v", svcs)
	}
	if _, err := h.tx().NetworkByName(nil, "web_default"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("network after prune: %v", err)
	}
}

func TestStackDeployRefusals(t *testing.T) {
	h := newFSMHarness(t)
	// A secret of the same name created outside the stack.
	h.must(command.CmdSecretUpsert, &model.Secret{ID: "s1", Name: "web_pw", Version: 1, Data: []byte("outside")})
	err := h.apply(command.CmdStackDeploy, deploy(webStack("nginx:1", 1), "hunter2", "a", false))
	if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), "external") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("deploy over a foreign secret: %v", err)
	}
	if _, err := h.tx().Stack(nil, "web"); !errors.Is(err, state.ErrNotFound) {
		t.Fatal("a refused deploy wrote the stack")
	}
	// An external network that does not exist.
	st := webStack("nginx:1", 1)
	st.Secrets["pw"].External = true
	st.Networks["default"].External = true
	err = h.apply(command.CmdStackDeploy, deploy(st, "", "a", false))
	if !errors.Is(err, state.ErrNotFound) || !strings.Contains(err.Error(), "external network") {
		t.Fatalf("missing external network: %v", err)
	}
	// With it, the external secret's latest version is pinned.
	h.must(command.CmdSecretUpsert, &model.Secret{ID: "s2", Name: "web_pw", Version: 2, Data: []byte("v2")})
	h.must(command.CmdStackDeploy, withExternal(deploy(webStack("nginx:1", 1), "", "a", false)))
	svc, _ := h.tx().ServiceByName(nil, "web_api")
	if svc.Objects["secret/web_pw"] != 2 {
		t.Errorf("pins %v", svc.Objects)
	}
}

// withExternal marks the secret external and drops its content.
func withExternal(d *command.StackDeploy) *command.StackDeploy {
	d.Stack.Spec.Secrets["pw"].External = true
	delete(d.SecretData, "pw")
	return d
}

func TestStackRemove(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "pw", "c", false))
	h.must(command.CmdStackRemove, &command.StackRemove{Name: "web"})
	tx := h.tx()
	svcs, _ := tx.Services(nil)
	nets, _ := tx.Networks(nil)
	secs, _ := tx.Secrets(nil)
	cfgs, _ := tx.Configs(nil)
	if len(svcs)+len(nets)+len(secs)+len(cfgs) != 0 {
		t.Errorf("left after remove: %v %v %v %v", svcs, nets, secs, cfgs)
	}
	if err := h.apply(command.CmdStackRemove, &command.StackRemove{Name: "web"}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("remove of a missing stack: %v", err)
	}
}

func TestServiceScaleForceRollback(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "pw", "c", false))
	svc, _ := h.tx().ServiceByName(nil, "web_api")
	if err := h.apply(command.CmdServiceRollback, &command.ServiceRollback{ID: svc.ID, Now: now}); !errors.Is(err, state.ErrInvalid) {
		t.Errorf("rollback without a previous spec: %v", err)
	}
	h.must(command.CmdServiceScale, &command.ServiceScale{ID: svc.ID, Replicas: 5})
	s, _ := h.tx().Service(nil, svc.ID)
	if *s.Spec.Deploy.Replicas != 5 || s.SpecVersion != 2 || s.PreviousSpec != nil {
		t.Errorf("after scale: %+v", s)
	}
	h.must(command.CmdServiceForceUpdate, &command.ServiceForceUpdate{ID: svc.ID})
	s, _ = h.tx().Service(nil, svc.ID)
	if s.ForceUpdate != 1 || s.SpecVersion != 3 || s.PreviousSpec == nil {
		t.Errorf("after force: %+v", s)
	}
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:2", 5), "pw", "c", false))
	h.must(command.CmdServiceRollback, &command.ServiceRollback{ID: svc.ID, Now: now})
	s, _ = h.tx().Service(nil, svc.ID)
	if s.Spec.Image != "nginx:1" || s.PreviousSpec.Image != "nginx:2" || s.UpdateStatus.State != model.UpdateRollbackStarted ||
		s.UpdateStatus.Message != command.MsgManualRollback || !s.UpdateStatus.StartedAt.Equal(now) {
		t.Errorf("after rollback: %+v", s)
	}
	global := webStack("nginx:1", 1)
	global.Services["api"].Deploy.Mode = spec.ModeGlobal
	global.Services["api"].Deploy.Replicas = nil
	h.must(command.CmdStackDeploy, deploy(global, "pw", "c", false))
	if err := h.apply(command.CmdServiceScale, &command.ServiceScale{ID: svc.ID, Replicas: 3}); !errors.Is(err, state.ErrInvalid) {
		t.Errorf("scale of a global service: %v", err)
	}
}

// A scale is a change a rollback undoes, as in Docker (update nginx:1 -> nginx:2 with
// 2 replicas, scale to 5, rollback: nginx:2 with 2), when the entry says so; an entry
// written before (Undoable unset) applies as it did: the rollback returns to the spec
// before the update, with the replicas it had.
func TestServiceRollbackAfterScale(t *testing.T) {
	for _, tc := range []struct {
		name     string
		undoable bool
		image    string
		replicas uint64
	}{
		{"undoable scale", true, "nginx:2", 2},
		{"entry of an older build", false, "nginx:1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFSMHarness(t)
			h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "pw", "c", false))
			h.must(command.CmdStackDeploy, deploy(webStack("nginx:2", 2), "pw", "c", false))
			svc, _ := h.tx().ServiceByName(nil, "web_api")
			h.must(command.CmdServiceScale, &command.ServiceScale{ID: svc.ID, Replicas: 5, Undoable: tc.undoable})
			h.must(command.CmdServiceRollback, &command.ServiceRollback{ID: svc.ID, Now: now})
			s, _ := h.tx().Service(nil, svc.ID)
			if s.Spec.Image != tc.image || *s.Spec.Deploy.Replicas != tc.replicas {
				t.Errorf("after the rollback: %s with %d replicas, want %s with %d", s.Spec.Image, *s.Spec.Deploy.Replicas, tc.image, tc.replicas)
			}
		})
	}
}

func TestPlanApplyRules(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 2), "pw", "c", false))
	svc, _ := h.tx().ServiceByName(nil, "web_api")
	task := func(id string, slot uint64, st model.TaskState, node string) *model.Task {
		return &model.Task{ID: id, ServiceID: svc.ID, ServiceName: svc.Name, Slot: slot, NodeID: node, SpecVersion: 1,
			DesiredState: model.TaskRunning, Status: model.TaskStatus{State: st, Message: "m", Timestamp: now},
			CreatedAt: now, UpdatedAt: now, SpecHash: "h", Image: "nginx:1", NotBefore: now.Add(time.Second),
			Restarts: model.Restarts{Count: 2, Recent: []time.Time{now}}}
	}
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{
		{ServiceID: svc.ID, SpecVersion: 1, Create: []*model.Task{task("t1", 1, model.TaskAssigned, "n1"), task("t2", 2, model.TaskPending, "")}},
		// Stale: skipped whole.
		{ServiceID: svc.ID, SpecVersion: 7, Create: []*model.Task{task("t9", 3, model.TaskAssigned, "n1")}},
		// For a removed service that exists: skipped.
		{ServiceID: svc.ID, SpecVersion: 0, Delete: []string{"t1"}},
	}})
	tx := h.tx()
	t1, err := tx.Task(nil, "t1")
	if err != nil {
		t.Fatal(err)
	}
	want := task("t1", 1, model.TaskAssigned, "n1")
	want.Meta = t1.Meta
	if !reflect.DeepEqual(t1, want) {
		t.Errorf("created task\n got %+v\nwant %+v", t1, want)
	}
	if _, err := tx.Task(nil, "t9"); !errors.Is(err, state.ErrNotFound) {
		t.Error("a stale plan created a task")
	}
	// The agent reports t1 running; a plan computed before that assigns t2, tries to
	// assign t1 elsewhere (refused: it is past assigned), and moves desired states
	// forward only.
	h.must(command.CmdTaskStatus, &command.TaskStatusBatch{Reports: []command.TaskStatusReport{{NodeID: "n1", TaskID: "t1", Status: model.TaskStatus{State: model.TaskRunning, Timestamp: now}}}})
	later := now.Add(time.Minute)
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: 1,
		Service: &orchestrator.ServiceUpdate{UpdateStatus: model.UpdateStatus{State: model.UpdateUpdating, StartedAt: later}},
		Update: []orchestrator.TaskUpdate{
			{ID: "t1", NodeID: "n2", Status: &model.TaskStatus{State: model.TaskAssigned}, DesiredState: model.TaskShutdown, UpdatedAt: later},
			{ID: "t2", NodeID: "n2", Status: &model.TaskStatus{State: model.TaskAssigned, Message: "assigned"}, UpdatedAt: later},
			{ID: "gone", DesiredState: model.TaskShutdown, UpdatedAt: later},
		},
		Delete: []string{"also-gone"},
	}}})
	tx = h.tx()
	t1, _ = tx.Task(nil, "t1")
	t2, _ := tx.Task(nil, "t2")
	if t1.NodeID != "n1" || t1.Status.State != model.TaskRunning || t1.DesiredState != model.TaskShutdown || !t1.UpdatedAt.Equal(later) {
		t.Errorf("t1 = %+v", t1)
	}
	if t2.NodeID != "n2" || t2.Status.State != model.TaskAssigned {
		t.Errorf("t2 = %+v", t2)
	}
	if s, _ := tx.Service(nil, svc.ID); s.UpdateStatus.State != model.UpdateUpdating {
		t.Errorf("service update status %+v", s.UpdateStatus)
	}
	// A desired state never moves back.
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: 1,
		Update: []orchestrator.TaskUpdate{{ID: "t1", DesiredState: model.TaskRunning, UpdatedAt: later}}}}})
	if t1, _ := h.tx().Task(nil, "t1"); t1.DesiredState != model.TaskShutdown {
		t.Error("desired state moved back")
	}
	// An automatic rollback swaps the specs.
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:2", 2), "pw", "c", false))
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: 2,
		Service: &orchestrator.ServiceUpdate{Rollback: true, UpdateStatus: model.UpdateStatus{State: model.UpdateRollbackStarted}}}}})
	if s, _ := h.tx().Service(nil, svc.ID); s.Spec.Image != "nginx:1" || s.SpecVersion != 3 || s.UpdateStatus.State != model.UpdateRollbackStarted {
		t.Errorf("after an automatic rollback: %+v", s)
	}
}

func TestTaskStatusOnlyForTheReportingNode(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 1), "pw", "c", false))
	svc, _ := h.tx().ServiceByName(nil, "web_api")
	h.must(command.CmdPlanApply, &command.PlanApply{Plans: []*orchestrator.Plan{{ServiceID: svc.ID, SpecVersion: 1, Create: []*model.Task{
		{ID: "t1", ServiceID: svc.ID, Slot: 1, NodeID: "n1", SpecVersion: 1, DesiredState: model.TaskRunning, Status: model.TaskStatus{State: model.TaskAssigned}},
	}}}})
	h.must(command.CmdTaskStatus, &command.TaskStatusBatch{Reports: []command.TaskStatusReport{
		{NodeID: "n2", TaskID: "t1", Status: model.TaskStatus{State: model.TaskFailed}},
		{NodeID: "n1", TaskID: "missing", Status: model.TaskStatus{State: model.TaskRunning}},
		{NodeID: "n1", TaskID: "t1", Status: model.TaskStatus{State: model.TaskRunning, Message: "started"}},
	}})
	if t1, _ := h.tx().Task(nil, "t1"); t1.Status.State != model.TaskRunning || t1.Status.Message != "started" {
		t.Errorf("t1 = %+v", t1.Status)
	}
}

func TestStackDeployAssignsSubnets(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 1), "x", "a", false))
	net, err := h.tx().NetworkByName(nil, "web_default")
	if err != nil || net.Subnet != "10.0.0.0/24" || net.Gateway != "10.0.0.1" {
		t.Fatalf("first network: %+v, %v", net, err)
	}
	// A second stack's network gets the next free subnet, and one that asks for
	// a subnet gets it.
	other := webStack("nginx:1", 1)
	other.Name = "api"
	other.Secrets["pw"].Name, other.Configs["conf"].Name = "api_pw", "api_conf"
	other.Networks = map[string]*spec.Network{
		"default": {Name: "api_default", Driver: "overlay"},
		"fixed":   {Name: "api_fixed", Driver: "overlay", Subnets: []string{"10.20.0.0/16"}},
	}
	h.must(command.CmdStackDeploy, deploy(other, "x", "a", false))
	tx := h.tx()
	if n, _ := tx.NetworkByName(nil, "api_default"); n == nil || n.Subnet != "10.0.1.0/24" || n.Gateway != "10.0.1.1" {
		t.Errorf("second network: %+v", n)
	}
	if n, _ := tx.NetworkByName(nil, "api_fixed"); n == nil || n.Subnet != "10.20.0.0/16" || n.Gateway != "10.20.0.1" {
		t.Errorf("fixed network: %+v", n)
	}
	// Redeploying keeps the subnets; a subnet that overlaps another network's is
	// refused with both names.
	h.must(command.CmdStackDeploy, deploy(webStack("nginx:1", 1), "x", "a", false))
	if n, _ := h.tx().NetworkByName(nil, "web_default"); n.Subnet != "10.0.0.0/24" {
		t.Errorf("redeploy moved the subnet to %s", n.Subnet)
	}
	clash := webStack("nginx:1", 1)
	clash.Name = "db"
	clash.Secrets["pw"].Name, clash.Configs["conf"].Name = "db_pw", "db_conf"
	clash.Networks = map[string]*spec.Network{"default": {Name: "db_default", Driver: "overlay", Subnets: []string{"10.20.5.0/24"}}}
	err = h.apply(command.CmdStackDeploy, deploy(clash, "x", "a", false))
	if !errors.Is(err, state.ErrConflict) || !strings.Contains(err.Error(), "api_fixed") || !strings.Contains(err.Error(), "db_default") {
		t.Errorf("overlapping subnet: %v", err)
	}
}
