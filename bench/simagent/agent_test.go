package simagent

import (
	"testing"
	"time"

	"github.com/berthd/berth/cluster/state"
)

func TestAgentConverge(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := New(Config{Now: func() time.Time { return now }, Start: func(t *state.Task) Outcome {
		if t.ID == "crash" {
			return Outcome{Exit: true, ExitCode: 2}
		}
		return Outcome{}
	}})
	task := func(id string, desired, st state.TaskState, notBefore time.Time) *state.Task {
		return &state.Task{ID: id, DesiredState: desired, Status: state.TaskStatus{State: st}, NotBefore: notBefore}
	}
	a.Exit("exits", 0)
	reports, next := a.converge([]*state.Task{
		task("start", state.TaskRunning, state.TaskAssigned, time.Time{}),
		task("crash", state.TaskRunning, state.TaskAssigned, time.Time{}),
		task("later", state.TaskRunning, state.TaskAssigned, now.Add(time.Minute)),
		task("stop", state.TaskShutdown, state.TaskRunning, time.Time{}),
		task("pending", state.TaskRunning, state.TaskPending, time.Time{}),
		task("job", state.TaskComplete, state.TaskAssigned, time.Time{}),
		task("exits", state.TaskRunning, state.TaskRunning, time.Time{}),
		task("done", state.TaskShutdown, state.TaskShutdown, time.Time{}),
	})
	got := map[string]state.TaskStatus{}
	for _, r := range reports {
		got[r.TaskID] = r.Status
	}
	want := map[string]state.TaskState{"start": state.TaskRunning, "crash": state.TaskFailed, "stop": state.TaskShutdown,
		"job": state.TaskComplete, "exits": state.TaskComplete}
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
