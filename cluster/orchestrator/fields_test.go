package orchestrator

import (
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/scheduler"
	"github.com/berthd/berth/spec"
)

// Rows written before Task.SpecHash existed are judged by their spec version: a task of
// the current version is up to date, any other is replaced by a rolling update.
func TestRowsWithoutSpecHashFallBackToVersion(t *testing.T) {
	svc := &model.Service{ID: "svc", Name: "web_api", Stack: "web", Spec: *service("api", replicas(2)), SpecVersion: 2}
	raw := []*model.Node{{ID: "a", Hostname: "a", Availability: model.AvailabilityActive,
		Status: model.NodeStatus{State: model.NodeReady}, Resources: model.NodeResources{NanoCPUs: 1e9}}}
	rows := []*model.Task{
		{ID: "old", ServiceID: "svc", Slot: 1, NodeID: "a", SpecVersion: 1, DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: model.TaskRunning}, CreatedAt: t0},
		{ID: "cur", ServiceID: "svc", Slot: 2, NodeID: "a", SpecVersion: 2, DesiredState: model.TaskRunning,
			Status: model.TaskStatus{State: model.TaskRunning}, CreatedAt: t0},
	}
	infos := scheduler.NodeInfosFromState(raw, rows, func(string) *spec.Service { return &svc.Spec })
	p := Reconcile(Input{Service: svc, Tasks: rows, Nodes: raw, NodeInfos: infos,
		Options: OptionsFromSettings(model.DefaultSettings()), Now: t0.Add(time.Minute), NewID: counter()})
	if p.Service == nil || p.Service.UpdateStatus.State != model.UpdateUpdating {
		t.Fatalf("service update %+v, want an update started", p.Service)
	}
	if len(p.Update) != 1 || p.Update[0].ID != "old" || p.Update[0].DesiredState != model.TaskShutdown {
		t.Errorf("updates %+v, want only the task of version 1 replaced", p.Update)
	}
}

func TestOptionsFromSettings(t *testing.T) {
	s := model.DefaultSettings()
	s.TaskHistoryLimit = 9
	o := OptionsFromSettings(s)
	if o.TaskHistoryLimit != 9 || o.NodeDownGrace != DefaultNodeDownGrace || o.OrphanAfter != DefaultOrphanAfter ||
		o.UpdateStepTimeout != DefaultUpdateStepTimeout || o.UpdateTimeout != 0 {
		t.Errorf("options = %+v", o)
	}
	n := Options{NodeDownGrace: time.Hour, OrphanAfter: time.Minute}.normalized()
	if n.OrphanAfter != time.Hour || n.UpdateStepTimeout != DefaultUpdateStepTimeout {
		t.Errorf("normalized = %+v, want OrphanAfter raised to the grace period and defaults filled", n)
	}
}

// The force counter and the pinned secret and config versions are part of what tasks
// are made from; a service with neither hashes like its spec.
func TestTaskHash(t *testing.T) {
	svc := &model.Service{ID: "svc", Name: "web_api", Stack: "web", Spec: *service("api", replicas(2))}
	base := TaskHash(svc)
	if base != TaskSpecHash(&svc.Spec) {
		t.Fatal("TaskHash of a plain service differs from TaskSpecHash")
	}
	forced := *svc
	forced.ForceUpdate = 1
	pinned := *svc
	pinned.Objects = map[string]uint64{model.ObjectKey("secret", "web_pw"): 1}
	repinned := *svc
	repinned.Objects = map[string]uint64{model.ObjectKey("secret", "web_pw"): 2}
	seen := map[string]string{base: "base"}
	for name, s := range map[string]*model.Service{"forced": &forced, "pinned": &pinned, "repinned": &repinned} {
		h := TaskHash(s)
		if other, dup := seen[h]; dup {
			t.Errorf("%s hashes like %s", name, other)
		}
		seen[h] = name
	}
	if TaskHash(&pinned) != TaskHash(&pinned) {
		t.Error("TaskHash is not stable")
	}
}
