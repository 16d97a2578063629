package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Starts, failures and exits are counted from the phases a task enters; an adopted
// container is no start, and a start is timed from when the task was seen.
func TestMetricsCountPhases(t *testing.T) {
	m := NewMetrics()
	seen := time.Now().Add(-2 * time.Second)
	for _, move := range []struct{ from, to phase }{
		{phaseNew, phaseCreated}, {phaseCreated, phaseRunning}, {phaseRunning, phaseExited},
		{phaseNew, phaseRejected}, {phaseAdopted, phaseRunning}, {phaseRunning, phaseDrained},
	} {
		m.entered(move.from, move.to, seen)
	}
	want := `# HELP berth_agent_tasks_total Tasks of this node that started (running), failed to start (rejected) or exited (exited).
# TYPE berth_agent_tasks_total counter
berth_agent_tasks_total{phase="exited"} 1
berth_agent_tasks_total{phase="rejected"} 1
berth_agent_tasks_total{phase="running"} 1
`
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collectors()...)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "berth_agent_tasks_total"); err != nil {
		t.Error(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "berth_agent_task_start_seconds" {
			continue
		}
		h := f.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 1 || h.GetSampleSum() < 2 {
			t.Errorf("start timings: %d, %.1fs in all; want 1 of 2s or more", h.GetSampleCount(), h.GetSampleSum())
		}
	}
	var nilMetrics *Metrics
	nilMetrics.entered(phaseCreated, phaseRunning, seen) // counts nothing, and does not fail
}
