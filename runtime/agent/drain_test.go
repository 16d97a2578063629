package agent

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/runtime/executor"
)

// stopExecutor records the containers it is asked to stop.
type stopExecutor struct {
	Executor
	stops chan string
}

func (e *stopExecutor) Stop(_ context.Context, id string) error {
	e.stops <- id
	return nil
}

// taskAPI serves a task's runtime and records the agent's reports.
type taskAPI struct {
	API
	reports chan api.TaskStatusReport
}

func (f *taskAPI) TaskRuntime(context.Context, string) (*api.TaskRuntime, error) {
	return &api.TaskRuntime{}, nil
}

func (f *taskAPI) ReportTaskStatus(_ context.Context, reports []api.TaskStatusReport) error {
	for _, r := range reports {
		f.reports <- r
	}
	return nil
}

// lines hands the test every log line.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// drainFixture runs a runner for a running container the agent adopted (task t1,
// on network na when onNetwork), with the given drain delay.
type drainFixture struct {
	r       *runner
	ex      *stopExecutor
	api     *taskAPI
	logs    lines
	running *model.Task
}

func newDrainFixture(t *testing.T, delay time.Duration, onNetwork bool) *drainFixture {
	t.Helper()
	f := &drainFixture{ex: &stopExecutor{stops: make(chan string, 10)},
		api: &taskAPI{reports: make(chan api.TaskStatusReport, 10)}, logs: make(lines, 100)}
	a, err := New(Config{API: f.api, Executor: f.ex, RunDir: t.TempDir(), DrainDelay: delay,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { a.rep.run(ctx); done <- struct{}{} }()
	f.r = newRunner(a, "t1")
	f.r.adopted = &executor.Info{TaskID: "t1", State: executor.StateRunning}
	go func() { f.r.run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	f.running = &model.Task{ID: "t1", ServiceID: "s1", NodeID: "n1", DesiredState: model.TaskRunning,
		Status: model.TaskStatus{State: model.TaskRunning}}
	if onNetwork {
		f.running.Networks = []model.Attachment{{Network: "na", Addr: "10.0.1.5/24"}}
	}
	f.r.update(f.running)
	return f
}

// shutdown asks the task to stop, as the managers do.
func (f *drainFixture) shutdown() {
	t := f.running.Copy()
	t.DesiredState = model.TaskShutdown
	f.r.update(t)
}

// waitLog waits up to d for a log line containing s (d 0: among the lines logged
// already), and reports whether one came.
func (f *drainFixture) waitLog(s string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case l := <-f.logs:
			if strings.Contains(l, s) {
				return true
			}
			continue
		default:
		}
		if d == 0 {
			return false
		}
		select {
		case l := <-f.logs:
			if strings.Contains(l, s) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func (f *drainFixture) waitReport(t *testing.T, st model.TaskState) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r := <-f.api.reports:
			if r.Status.State == st {
				return
			}
		case <-deadline:
			t.Fatalf("no %s report within 20s", st)
		}
	}
}

// A running task on a network waits out the drain delay before its stop signal; an
// exit during the drain ends it, with nothing left to stop.
func TestDrainHoldsTheStopOfATaskOnANetwork(t *testing.T) {
	f := newDrainFixture(t, time.Hour, true)
	f.shutdown()
	if !f.waitLog("draining", 20*time.Second) {
		t.Fatal("the task was not drained")
	}
	select {
	case <-f.ex.stops:
		t.Fatal("stopped while draining")
	default:
	}
	f.r.exited(executor.Exit{TaskID: "t1", Code: 0})
	f.waitReport(t, model.TaskShutdown)
	select {
	case <-f.ex.stops:
		t.Error("a container that exited while draining was stopped")
	default:
	}
}

func TestDrainEndsWithTheStop(t *testing.T) {
	f := newDrainFixture(t, 10*time.Millisecond, true)
	f.shutdown()
	if !f.waitLog("draining", 20*time.Second) {
		t.Fatal("the task was not drained")
	}
	select {
	case <-f.ex.stops:
	case <-time.After(20 * time.Second):
		t.Fatal("not stopped within 20s of a 10ms drain")
	}
	f.waitReport(t, model.TaskShutdown)
}

// A task on no network is in no DNS and behind no VIP: it stops at once.
func TestNoDrainOffTheNetworks(t *testing.T) {
	f := newDrainFixture(t, time.Hour, false)
	f.shutdown()
	select {
	case <-f.ex.stops:
	case <-time.After(20 * time.Second):
		t.Fatal("a task on no network was not stopped within 20s")
	}
	if f.waitLog("draining", 0) {
		t.Error("a task on no network was drained")
	}
}
