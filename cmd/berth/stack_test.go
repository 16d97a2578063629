package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// fakeWatcher hands waitConverged one list of services per call of fn, then waits
// for ctx to end, as a blocking query that sees no change would.
type fakeWatcher struct {
	rounds [][]*api.ServiceStatus
	calls  int
}

func (f *fakeWatcher) WatchServices(ctx context.Context, _ string, fn func([]*api.ServiceStatus) (bool, error)) error {
	for _, svcs := range f.rounds {
		f.calls++
		if done, err := fn(svcs); done || err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestWaitConvergedOnlyChangedServices(t *testing.T) {
	three := uint64(3)
	svc := func(name string, running, upToDate uint64, update model.UpdateState) *api.ServiceStatus {
		return &api.ServiceStatus{
			Service: &model.Service{Name: name, Spec: spec.Service{Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: &three}}, UpdateStatus: model.UpdateStatus{State: update}},
			Running: running, UpToDate: upToDate, Desired: 3,
			Pending: func() []api.PendingReason {
				if running < 3 {
					return []api.PendingReason{{Reason: "no suitable node", Tasks: int(3 - running)}}
				}
				return nil
			}(),
		}
	}
	// web_stuck was left alone by the deploy and stays pending for good.
	stuck := svc("web_stuck", 1, 1, "")
	changes := []api.ObjectChange{
		{Kind: "network", Name: "web_default", Action: api.ActionCreated},
		{Kind: "service", Name: "web_stuck", Action: api.ActionUnchanged},
		{Kind: "service", Name: "web_api", Action: api.ActionUpdated},
		{Kind: "service", Name: "web_new", Action: api.ActionCreated},
		{Kind: "service", Name: "web_old", Action: api.ActionRemoved},
	}
	tests := []struct {
		name    string
		changes []api.ObjectChange
		rounds  [][]*api.ServiceStatus
		wantErr string
		want    []string
		notWant []string
	}{{
		name:    "the changed services converge, an unchanged one stays pending",
		changes: changes,
		rounds: [][]*api.ServiceStatus{
			{stuck, svc("web_api", 3, 1, model.UpdateUpdating), svc("web_new", 0, 0, "")},
			{stuck, svc("web_api", 3, 3, model.UpdateCompleted), svc("web_new", 3, 3, "")},
		},
		want:    []string{"web_api: 3/3 running (1 updated); updating", "web_api: 3/3 running; converged", "web_new: 3/3 running; converged", "Stack web converged."},
		notWant: []string{"web_stuck"},
	}, {
		name:    "a stale read lacks a created service",
		changes: changes,
		rounds: [][]*api.ServiceStatus{
			{stuck, svc("web_api", 3, 3, model.UpdateCompleted)},
		},
		wantErr: "did not converge within",
		notWant: []string{"web_stuck", "Stack web converged."},
	}, {
		name:    "a changed service that cannot converge is named, the unchanged one is not",
		changes: changes,
		rounds: [][]*api.ServiceStatus{
			{stuck, svc("web_api", 3, 3, model.UpdateCompleted), svc("web_new", 2, 2, "")},
		},
		wantErr: "stack web did not converge within 1ms: web_new 2/3 running, 1 pending: no suitable node",
		notWant: []string{"web_stuck"},
	}, {
		name:    "a failed update",
		changes: changes,
		rounds: [][]*api.ServiceStatus{
			{stuck, svc("web_api", 3, 0, model.UpdatePaused), svc("web_new", 3, 3, "")},
		},
		wantErr: "the update of web_api failed",
	}, {
		name:    "nothing changed, nothing to wait for",
		changes: []api.ObjectChange{{Kind: "service", Name: "web_stuck", Action: api.ActionUnchanged}},
		rounds:  [][]*api.ServiceStatus{{stuck}},
		notWant: []string{"web_stuck"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := waitConverged(context.Background(), &fakeWatcher{rounds: tt.rounds}, &b, "web", &api.StackDeployResponse{Changes: tt.changes}, time.Millisecond)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("waitConverged: %v\n%s", err, b.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("waitConverged: %v, want an error with %q\n%s", err, tt.wantErr, b.String())
			}
			all := b.String()
			if err != nil {
				all += err.Error()
			}
			for _, s := range tt.want {
				if !strings.Contains(all, s) {
					t.Errorf("output lacks %q:\n%s", s, all)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(all, s) {
					t.Errorf("output has %q:\n%s", s, all)
				}
			}
		})
	}
}
