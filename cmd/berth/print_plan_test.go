package main

import (
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/api/plantext"
)

// A plan of thousands of new tasks lists the first ones and says how many more.
func TestPrintPlanSummarisesManyTasks(t *testing.T) {
	sp := &api.ServicePlacement{Service: "web_api"}
	for i := range 10_000 {
		sp.Tasks = append(sp.Tasks, api.TaskPlacement{Slot: uint64(i + 1), Node: "node-1"})
	}
	var b strings.Builder
	plantext.Plan(&b, &api.PlanResponse{Placement: []*api.ServicePlacement{sp}, Settled: true}, maxPlacementLines)
	out := b.String()
	if n := strings.Count(out, "(new)"); n != maxPlacementLines {
		t.Errorf("%d task lines, want %d", n, maxPlacementLines)
	}
	if !strings.Contains(out, "web_api.50 -> node-1 (new)\n    ... and 9950 other tasks (-o json lists every one)\n") {
		t.Errorf("no summary line after the 50th task:\n%s", out[len(out)-300:])
	}
}
