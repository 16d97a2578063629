package control_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// The manager's metrics say what `service ls`, `node ls` and `source ls` say, from the
// state alone.
func TestClusterMetrics(t *testing.T) {
	rs := newRowStore(t)
	three := uint64(3)
	svc := &model.Service{ID: "svc1", Name: "web_api", Stack: "web", SpecVersion: 1,
		Spec: spec.Service{Name: "api", Image: "app:1", Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three,
			EndpointMode: "vip", Placement: spec.Placement{Constraints: []string{"node.labels.os == linux"}}}}}
	hash := orchestrator.TaskHash(svc)
	task := func(id string, slot uint64, st model.TaskState, node, reason string) *model.Task {
		return &model.Task{ID: id, ServiceID: svc.ID, Slot: slot, NodeID: node, SpecVersion: 1, SpecHash: hash,
			DesiredState: model.TaskRunning, Status: model.TaskStatus{State: st, Err: reason}}
	}
	applied := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rs.write(func(w *state.WriteTxn) error {
		for _, n := range []*model.Node{
			{ID: "n1", Hostname: "n1", Role: model.RoleManager, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}},
			{ID: "n2", Hostname: "n2", Role: model.RoleWorker, Availability: model.AvailabilityDrain, Status: model.NodeStatus{State: model.NodeReady}},
		} {
			if err := w.UpsertNode(n); err != nil {
				return err
			}
		}
		if err := w.UpsertService(svc); err != nil {
			return err
		}
		if err := w.UpsertTasks([]*model.Task{
			task("t1", 1, model.TaskRunning, "n1", ""),
			task("t2", 2, model.TaskRunning, "n1", ""),
			task("t3", 3, model.TaskPending, "", "no suitable node (constraint node.labels.os == linux not satisfied on 2 nodes)"),
		}); err != nil {
			return err
		}
		return w.UpsertSource(&model.Source{Name: "apps", Kind: model.SourceGitPush, Status: model.SyncSynced,
			LastAppliedRevision: "abc123", LastAppliedAt: applied,
			History: []model.SyncRecord{{Revision: "abc123", Time: applied, Result: model.SyncApplied},
				{Revision: "def456", Time: applied.Add(time.Minute), Result: model.SyncRejected}}})
	})
	c := control.New(control.Config{Store: rs})
	want := `
# HELP berth_nodes Nodes by role, state and availability.
# TYPE berth_nodes gauge
berth_nodes{availability="active",role="manager",state="ready"} 1
berth_nodes{availability="drain",role="worker",state="ready"} 1
# HELP berth_service_replicas_desired Tasks a service asks for (for a global service, the nodes that qualify).
# TYPE berth_service_replicas_desired gauge
berth_service_replicas_desired{service="web_api",stack="web"} 3
# HELP berth_service_replicas_running Tasks of a service that run.
# TYPE berth_service_replicas_running gauge
berth_service_replicas_running{service="web_api",stack="web"} 2
# HELP berth_source_info A source's sync status and the revision it last applied (value 1).
# TYPE berth_source_info gauge
berth_source_info{kind="git-push",revision="abc123",source="apps",status="synced"} 1
# HELP berth_source_last_applied_timestamp_seconds When a source last applied a revision (Unix time).
# TYPE berth_source_last_applied_timestamp_seconds gauge
berth_source_last_applied_timestamp_seconds{source="apps"} 1.7966448e+09
# HELP berth_source_last_sync_timestamp_seconds When a source's last sync of each result ended (Unix time), from its history.
# TYPE berth_source_last_sync_timestamp_seconds gauge
berth_source_last_sync_timestamp_seconds{result="applied",source="apps"} 1.7966448e+09
berth_source_last_sync_timestamp_seconds{result="rejected",source="apps"} 1.79664486e+09
# HELP berth_tasks Tasks by state and desired state.
# TYPE berth_tasks gauge
berth_tasks{desired_state="running",state="pending"} 1
berth_tasks{desired_state="running",state="running"} 2
# HELP berth_tasks_pending Tasks waiting for a node, by the class of the scheduler's reason.
# TYPE berth_tasks_pending gauge
berth_tasks_pending{reason="constraint"} 1
`
	if err := testutil.CollectAndCompare(c.Collector(), strings.NewReader(want),
		"berth_nodes", "berth_service_replicas_desired", "berth_service_replicas_running", "berth_source_info",
		"berth_source_last_applied_timestamp_seconds", "berth_source_last_sync_timestamp_seconds", "berth_tasks", "berth_tasks_pending"); err != nil {
		t.Error(err)
	}
	// The collector passes the registry's own consistency checks.
	if problems, err := testutil.CollectAndLint(c.Collector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
