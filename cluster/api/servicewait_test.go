package api

import (
	"testing"

	"github.com/berthd/berth/cluster/model"
)

// What a write waits for depends on the write: a rollback asked for is a
// create's or an update's failure but a manual rollback's progress, and an update
// status an earlier write left is no scale's failure.
func TestServiceChangeConvergence(t *testing.T) {
	st := func(state model.UpdateState, upToDate uint64) *ServiceStatus {
		return &ServiceStatus{Service: &model.Service{UpdateStatus: model.UpdateStatus{State: state}}, UpToDate: upToDate, Desired: 1}
	}
	tests := []struct {
		name string
		ch   ServiceChange
		s    *ServiceStatus
		want Convergence
	}{
		{"update running", ChangeSpec, st(model.UpdateCompleted, 1), Converged},
		{"update rolling back", ChangeSpec, st(model.UpdateRollbackStarted, 0), Failed},
		{"update paused", ChangeSpec, st(model.UpdatePaused, 0), Failed},
		{"scale after a rollback", ChangeScale, st(model.UpdateRollbackCompleted, 1), Converged},
		{"rollback under way", ChangeRollback, st(model.UpdateRollbackStarted, 0), Converging},
		{"rollback done", ChangeRollback, st(model.UpdateRollbackCompleted, 1), Converged},
		{"rollback paused", ChangeRollback, st(model.UpdateRollbackPaused, 0), Failed},
	}
	for _, tt := range tests {
		if got := tt.ch.convergence(tt.s); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
