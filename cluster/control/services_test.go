package control_test

import (
	"context"
	"testing"
)

// `service rollback` after `service scale` undoes the scale alone, as in Docker:
// app:1 -> app:2 with 1 replica, scale to 5, rollback: app:2 with 1.
func TestRollbackAfterScaleUndoesTheScale(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	for _, image := range []string{"app:1", "app:2"} {
		if _, err := m.Control.DeployStack(ctx, stack(image, "hunter2")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Control.ScaleService(ctx, "web_api", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.RollbackService(ctx, "web_api"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Store.State().ReadTxn().ServiceByName(nil, "web_api")
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Image != "app:2" || *s.Spec.Deploy.Replicas != 1 {
		t.Errorf("after the rollback: %s with %d replicas, want app:2 with 1", s.Spec.Image, *s.Spec.Deploy.Replicas)
	}
	if s.PreviousSpec.Image != "app:2" || *s.PreviousSpec.Deploy.Replicas != 5 {
		t.Errorf("previous spec: %s with %d replicas, want the scaled one (app:2 with 5)", s.PreviousSpec.Image, *s.PreviousSpec.Deploy.Replicas)
	}
}
