package control

import (
	"context"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// Each change of a row tells what `berth events` shows, or nothing.
func TestEventOf(t *testing.T) {
	svc := &model.Service{ID: "s1", Name: "web_api", SpecVersion: 1}
	svc2 := *svc
	svc2.SpecVersion = 2
	rolling := svc2
	rolling.UpdateStatus = model.UpdateStatus{State: model.UpdateRollbackStarted, Message: "task failed"}
	task := &model.Task{ID: "t1", ServiceID: "s1", ServiceName: "web_api", Slot: 1, NodeID: "n1", Status: model.TaskStatus{State: model.TaskRunning}}
	failed := *task
	failed.Status = model.TaskStatus{State: model.TaskFailed, Err: "exit 1"}
	again := failed
	again.Status.Message = "other words, same state"
	node := &model.Node{ID: "n1", Hostname: "node-1", Role: model.RoleWorker, Availability: model.AvailabilityActive, Status: model.NodeStatus{State: model.NodeReady}}
	down, drained, promoted := *node, *node, *node
	down.Status.State = model.NodeDown
	drained.Availability = model.AvailabilityDrain
	promoted.Role = model.RoleManager
	src := &model.Source{Name: "apps"}
	synced := *src
	synced.History = []model.SyncRecord{{Revision: "abc", Result: model.SyncApplied}}
	pushed := synced
	pushed.PushedRevision = "def"
	drifted := synced
	drifted.Status, drifted.Message = model.SyncOutOfSync, "web_api changed by hand"
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	rejected := synced
	rejected.RejectedPush = model.PushRejection{Revision: "0badc0de", Reason: "revision 0badc0d: stack web: service api: no image", At: at}
	cluster := &model.Cluster{ID: "c1", Leader: model.LeaderRecord{NodeID: "n1", Hostname: "node-1", Term: 2, Since: at}}
	elected, settings := *cluster, *cluster
	elected.Leader = model.LeaderRecord{NodeID: "n2", Hostname: "node-2", Term: 3, Since: at.Add(time.Minute)}
	settings.Settings.MaxReplicas = 7
	cl := &model.Cluster{ID: "c1", RootCACert: "old"}
	rotating := *cl
	rotating.RootCACert, rotating.RootRotation = "new", &model.RootRotation{Digest: "d2"}
	rotated := rotating
	rotated.RootRotation = nil
	cases := []struct {
		name           string
		before, after  any
		typ, action    string
		attr, attrWant string
	}{
		{"service created", nil, svc, "service", "create", "", ""},
		{"service updated", svc, &svc2, "service", "update", "", ""},
		{"rollback started", &svc2, &rolling, "service", "update-rollback_started", "message", "task failed"},
		{"service removed", svc, nil, "service", "remove", "", ""},
		{"task failed", task, &failed, "task", "failed", "error", "exit 1"},
		{"task same state", &failed, &again, "", "", "", ""},
		{"node down", node, &down, "node", "down", "", ""},
		{"node drained", node, &drained, "node", "drain", "", ""},
		{"node promoted", node, &promoted, "node", "promote", "", ""},
		{"node heartbeat", node, node, "", "", "", ""},
		{"source synced", src, &synced, "source", "sync-applied", "revision", "abc"},
		{"source pushed", &synced, &pushed, "source", "push", "revision", "def"},
		{"source drifted", &synced, &drifted, "source", "drift", "message", "web_api changed by hand"},
		{"push rejected", &synced, &rejected, "source", "push-rejected", "reason", "revision 0badc0d: stack web: service api: no image"},
		{"first leader", nil, cluster, "node", "leader", "term", "2"},
		{"leader changed", cluster, &elected, "node", "leader", "previous", "n1"},
		{"cluster settings", cluster, &settings, "", "", "", ""},
		{"ca rotation started", cl, &rotating, "cluster", "ca-rotate", "root", "d2"},
		{"ca rotation done", &rotating, &rotated, "cluster", "ca-rotated", "root", "d2"},
		{"cluster setting", cl, cl, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := eventOf(state.Change{Before: c.before, After: c.after})
			if c.typ == "" {
				if e != nil {
					t.Fatalf("want no event, got %+v", e)
				}
				return
			}
			if e == nil || e.Type != c.typ || e.Action != c.action || (c.attr != "" && e.Attributes[c.attr] != c.attrWant) {
				t.Fatalf("got %+v, want %s %s (%s=%s)", e, c.typ, c.action, c.attr, c.attrWant)
			}
		})
	}
}

// The log keeps its window, filters, and wakes a waiting reader.
func TestEventLogWindowAndWait(t *testing.T) {
	l := NewEventLog(3)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		typ := "service"
		if i%2 == 1 {
			typ = "task"
		}
		l.add([]*api.Event{{Index: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Minute), Type: typ}}, []state.Event{{Index: uint64(i + 1)}})
	}
	all, meta, err := l.Events(context.Background(), api.EventFilter{}, api.Query{})
	if err != nil || len(all) != 3 || all[0].Index != 3 || meta.Index != 5 {
		t.Fatalf("window: %d events from %v, index %d, %v; want the last 3 (3..5), index 5", len(all), all, meta.Index, err)
	}
	tasks, _, _ := l.Events(context.Background(), api.EventFilter{Types: []string{"task"}}, api.Query{})
	since, _, _ := l.Events(context.Background(), api.EventFilter{Since: at.Add(3 * time.Minute), Until: at.Add(4 * time.Minute)}, api.Query{})
	if len(tasks) != 1 || tasks[0].Index != 4 || len(since) != 1 || since[0].Index != 4 {
		t.Fatalf("filters: tasks %v, 10:03 to 10:04 %v; want event 4 each", tasks, since)
	}
	got := make(chan []*api.Event, 1)
	go func() {
		evs, _, _ := l.Events(context.Background(), api.EventFilter{}, api.Query{Index: 5, Wait: time.Minute})
		got <- evs
	}()
	time.Sleep(10 * time.Millisecond) // the reader waits, or reads the new event at once: both pass
	l.add([]*api.Event{{Type: "node"}}, []state.Event{{Index: 6}})
	if evs := <-got; len(evs) != 1 || evs[0].Index != 6 {
		t.Fatalf("a waiting reader got %v, want the new event 6", evs)
	}
}
