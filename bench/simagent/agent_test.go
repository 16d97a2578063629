package simagent

import (
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
)

func TestAgentConverge(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Start: func(t *model.Task) Outcome {
		if t.ID == "crash" {
			return Outcome{Exit: true, ExitCode: 2}
		}
		return Outcome{}
	}})
	task := func(id string, desired, st model.TaskState, notBefore time.Time) *model.Task {
		return &model.Task{ID: id, DesiredState: desired, Status: model.TaskStatus{State: st}, NotBefore: notBefore}
	}
	a.Exit("exits", 0)
	reports, next := a.converge([]*model.Task{
		task("start", model.TaskRunning, model.TaskAssigned, time.Time{}),
		task("crash", model.TaskRunning, model.TaskAssigned, time.Time{}),
		task("later", model.TaskRunning, model.TaskAssigned, now.Add(time.Minute)),
		task("stop", model.TaskShutdown, model.TaskRunning, time.Time{}),
		task("pending", model.TaskRunning, model.TaskPending, time.Time{}),
		task("job", model.TaskComplete, model.TaskAssigned, time.Time{}),
		task("exits", model.TaskRunning, model.TaskRunning, time.Time{}),
		task("done", model.TaskShutdown, model.TaskShutdown, time.Time{}),
	})
	got := map[string]model.TaskStatus{}
	for _, r := range reports {
		got[r.TaskID] = r.Status
	}
	want := map[string]model.TaskState{"start": model.TaskRunning, "crash": model.TaskFailed, "stop": model.TaskShutdown,
		"job": model.TaskComplete, "exits": model.TaskComplete}
	if len(got) != len(want) {
		t.Errorf("reports %v", got)
	}
	for id, st := range want {
		if got[id].State != st || !got[id].Timestamp.Equal(now) {
			t.Errorf("%s: %+v, want %s", id, got[id], st)
		}
	}
	if got["crash"].ExitCode != 2 || got["crash"].Err != "task: non-zero exit (2)" {
		t.Errorf("crash: %+v", got["crash"])
	}
	if !next.Equal(now.Add(time.Minute)) {
		t.Errorf("next look at %v", next)
	}
}
