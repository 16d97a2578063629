package orchestrator

import (
	"slices"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/spec"
)

func TestHistoryCap(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		// history is the slot's stopped tasks, oldest first: "s" shut down and
		// stopped, "r" shut down but still running.
		history string
		deleted []int // indexes into history
	}{
		{"under the limit", 5, "sss", nil},
		{"oldest beyond the limit go", 5, "ssssssss", []int{0, 1, 2}},
		{"a task still stopping is kept", 2, "rsss", []int{1, 2}},
		{"zero keeps none", 0, "sss", []int{0, 1, 2}},
		{"negative keeps all", -1, "ssssssss", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			c.opts.TaskHistoryLimit = tt.limit
			c.addNode("a")
			svc := c.addService("api", replicas(1))
			var ids []string
			for _, k := range tt.history {
				task := c.stateTask(svc, 1, "a", model.TaskShutdown)
				task.DesiredState = model.TaskShutdown
				if k == 'r' {
					task.Status.State = model.TaskRunning
				}
				ids = append(ids, task.ID)
				c.advance(time.Second)
			}
			c.stateTask(svc, 1, "a", model.TaskRunning)
			p := c.plan(svc.ID)
			var want []string
			for _, i := range tt.deleted {
				want = append(want, ids[i])
			}
			if !slices.Equal(p.Delete, want) {
				t.Errorf("deleted %v, want %v", p.Delete, want)
			}
		})
	}
}

// History is capped per node for global services, and a crash-looping slot keeps only
// the last tasks while its restart count lives on.
func TestHistoryCapCrashLoop(t *testing.T) {
	c := newCluster(t)
	c.opts.TaskHistoryLimit = 2
	c.addNode("a")
	svc := c.addService("agent", mode(spec.ModeGlobal), restartPolicyOf(spec.RestartAny, 0, 0, 0))
	c.converge()
	for range 6 {
		c.fail(c.live(svc.ID)[0].ID, 1)
		c.converge()
		c.advance(MaxRestartBackoff) // the back-off grows even from delay 0
		c.converge()
	}
	if n := len(c.tasks); n != 3 {
		t.Errorf("tasks kept = %d, want 2 of history and the running one", n)
	}
	if got := c.live(svc.ID)[0].Restarts.Count; got != 6 {
		t.Errorf("restart count = %d, want 6 despite the trimmed history", got)
	}
}
