package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

// fakeWaiter reports statuses, then ends with err.
type fakeWaiter struct {
	statuses []*api.ServiceStatus
	err      error
}

func (f fakeWaiter) WaitService(_ context.Context, _ string, _ api.ServiceChange, _ uint64, report func(*api.ServiceStatus)) error {
	for _, s := range f.statuses {
		report(s)
	}
	return f.err
}

func status(upToDate, desired uint64, state model.UpdateState, pending ...api.PendingReason) *api.ServiceStatus {
	return &api.ServiceStatus{Service: &model.Service{Name: "web", Spec: spec.Service{Name: "web"}, UpdateStatus: model.UpdateStatus{State: state}},
		UpToDate: upToDate, Desired: desired, Pending: pending}
}

// The progress of a service write, as Docker prints it on a terminal that is not
// one: a line each time it changes, then the verdict.
func TestWaitServiceProgress(t *testing.T) {
	converging := fakeWaiter{statuses: []*api.ServiceStatus{
		status(0, 3, model.UpdateUpdating), status(0, 3, model.UpdateUpdating),
		status(1, 3, model.UpdateUpdating, api.PendingReason{Tasks: 2, Reason: "no suitable node"}),
		status(3, 3, model.UpdateCompleted),
	}}
	var out bytes.Buffer
	if err := waitService(context.Background(), converging, &out, "web", api.ChangeSpec, 1); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "service_wait_converged", out.String())

	failed := &api.NotConvergedError{Service: "web", Status: model.UpdateStatus{State: model.UpdateRollbackStarted, Message: "update rolled back"}}
	out.Reset()
	err := waitService(context.Background(), fakeWaiter{statuses: []*api.ServiceStatus{status(0, 1, model.UpdateRollbackStarted)}, err: failed}, &out, "web", api.ChangeSpec, 1)
	if !errors.Is(err, failed) || err.Error() != "service web did not converge: rollback started: update rolled back; see `berth service ps web`" {
		t.Errorf("err = %v", err)
	}
	checkGolden(t, "service_wait_rolled_back", out.String())
}
