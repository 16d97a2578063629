package control

import (
	"testing"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/spec"
)

// `service ps` prints the image a task records; a row written before tasks recorded
// it falls back to the spec it was made from, when the service still has it.
func TestImageOfTask(t *testing.T) {
	// Updated nginx:1 -> nginx:2 -> nginx:3: the service knows only the last two.
	svc := &model.Service{Spec: spec.Service{Image: "nginx:3"}, PreviousSpec: &spec.Service{Image: "nginx:2"}}
	prev := &model.Service{Spec: *svc.PreviousSpec}
	cur, old := orchestrator.TaskHash(svc), orchestrator.TaskHash(prev)
	for _, tc := range []struct {
		name string
		task model.Task
		want string
	}{
		{"recorded, of a spec the service no longer has", model.Task{Image: "nginx:1", SpecHash: "gone"}, "nginx:1"},
		{"recorded, of the previous spec", model.Task{Image: "nginx:2", SpecHash: old}, "nginx:2"},
		{"unrecorded, of the current spec", model.Task{SpecHash: cur}, "nginx:3"},
		{"unrecorded, of the previous spec", model.Task{SpecHash: old}, "nginx:2"},
		{"unrecorded, of neither", model.Task{SpecHash: "gone"}, "nginx:3"},
	} {
		if got := imageOf(svc)(&tc.task); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
