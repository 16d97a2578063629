package agent

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestHealthArgv(t *testing.T) {
	for name, tc := range map[string]struct {
		check *spec.Healthcheck
		want  []string
	}{
		"none":      {nil, nil},
		"disabled":  {&spec.Healthcheck{Test: []string{"CMD", "true"}, Disable: true}, nil},
		"NONE":      {&spec.Healthcheck{Test: []string{"NONE"}}, nil},
		"CMD":       {&spec.Healthcheck{Test: []string{"CMD", "curl", "-f", "http://localhost"}}, []string{"curl", "-f", "http://localhost"}},
		"CMD-SHELL": {&spec.Healthcheck{Test: []string{"CMD-SHELL", "curl -f localhost || exit 1"}}, []string{"/bin/sh", "-c", "curl -f localhost || exit 1"}},
		"bare":      {&spec.Healthcheck{Test: []string{"pg_isready"}}, []string{"/bin/sh", "-c", "pg_isready"}},
	} {
		if got := healthArgv(tc.check); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestExitStatus(t *testing.T) {
	if st := exitStatus(0); st.State != model.TaskComplete || st.Err != "" {
		t.Errorf("exit 0: %+v", st)
	}
	if st := exitStatus(137); st.State != model.TaskFailed || st.ExitCode != 137 || st.Err != "task: non-zero exit (137)" {
		t.Errorf("exit 137: %+v", st)
	}
}

// recordingAPI records the batches of status reports it is sent.
type recordingAPI struct {
	API
	mu      sync.Mutex
	batches [][]api.TaskStatusReport
	sent    chan struct{}
}

func (r *recordingAPI) ReportTaskStatus(_ context.Context, reports []api.TaskStatusReport) error {
	r.mu.Lock()
	r.batches = append(r.batches, reports)
	r.mu.Unlock()
	r.sent <- struct{}{}
	return nil
}

func TestReporterBatchesTheNewestStatePerTask(t *testing.T) {
	rec := &recordingAPI{sent: make(chan struct{}, 10)}
	rep := newReporter(rec, 50*time.Millisecond, nil)
	// Reports that arrive together go in one batch, one per task: the newest
	// state, never one that goes back.
	rep.report("a", model.TaskStatus{State: model.TaskPreparing})
	rep.report("a", model.TaskStatus{State: model.TaskRunning})
	rep.report("a", model.TaskStatus{State: model.TaskStarting})
	rep.report("b", model.TaskStatus{State: model.TaskFailed, ExitCode: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.run(ctx)
	<-rec.sent
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(rec.batches))
	}
	got := map[string]model.TaskState{}
	for _, r := range rec.batches[0] {
		got[r.TaskID] = r.Status.State
	}
	if len(got) != 2 || got["a"] != model.TaskRunning || got["b"] != model.TaskFailed {
		t.Errorf("batch %v", rec.batches[0])
	}
}

func TestReporterSendsOnceTheLastStartingTaskGetsThere(t *testing.T) {
	rec := &recordingAPI{sent: make(chan struct{}, 10)}
	// A delay no test waits out: a batch that goes before it was cut short.
	rep := newReporter(rec, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.run(ctx)
	waitBatch := func(what string) []api.TaskStatusReport {
		t.Helper()
		select {
		case <-rec.sent:
		case <-time.After(30 * time.Second):
			t.Fatalf("no batch %s", what)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.batches[len(rec.batches)-1]
	}
	// The first report after a quiet spell goes at once.
	rep.report("a", model.TaskStatus{State: model.TaskFailed})
	waitBatch("for the first report")

	rep.starting(true)
	rep.starting(true)
	rep.report("b", model.TaskStatus{State: model.TaskRunning})
	rep.starting(false)
	rep.report("c", model.TaskStatus{State: model.TaskRunning})
	rep.starting(false)
	batch := waitBatch("once no task was on its way to running")
	got := map[string]model.TaskState{}
	for _, r := range batch {
		got[r.TaskID] = r.Status.State
	}
	if len(got) != 2 || got["b"] != model.TaskRunning || got["c"] != model.TaskRunning {
		t.Errorf("batch %v, want b and c running", batch)
	}
}
