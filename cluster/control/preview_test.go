package control_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/statetest"
	"github.com/berthd/berth/spec"
)

// apiStack is a stack of one service, api, with 3 replicas placed as placement (YAML
// flow mapping) says.
func apiStack(t *testing.T, image, placement string) *api.StackDeployRequest {
	t.Helper()
	compose := fmt.Sprintf("services:\n  api:\n    image: %s\n    deploy:\n      replicas: 3\n      placement: %s\n", image, placement)
	st, _, err := spec.Load(t.Context(), spec.LoadOptions{Stack: "web", Files: []spec.File{{Name: "web/compose.yaml", Content: []byte(compose)}}})
	if err != nil {
		t.Fatal(err)
	}
	return api.NewStackDeployRequest(st, false)
}

func TestPreviewStacksPlacesWithoutWriting(t *testing.T) {
	st := statetest.PreviewCluster(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newID := statetest.Counter()
	const linuxOnePerNode = `{constraints: ["node.labels.os == linux"], max_replicas_per_node: 1}`
	const onePerNode = `{max_replicas_per_node: 1}`
	preview := func(req *api.StackDeployRequest) *api.PlanResponse {
		t.Helper()
		got, err := control.PreviewStacks(st, []*api.StackDeployRequest{req}, newID, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(what string, got *api.PlanResponse, want ...*api.ServicePlacement) {
		t.Helper()
		if !reflect.DeepEqual(got.Placement, want) || !got.Settled {
			t.Errorf("%s (settled %v):\n got %s\nwant %s", what, got.Settled, statetest.Dump(got.Placement), statetest.Dump(want))
		}
	}
	unplacedOne := []api.UnplacedTasks{{Count: 1, Reason: "no suitable node (max replicas per node limit reached on 2 nodes; " +
		"constraint node.labels.os == linux not satisfied on 1 node)"}}

	// A new stack: two replicas land on the linux nodes, the third is refused with
	// the scheduler's reason; nothing is written.
	linux := apiStack(t, "nginx:1", linuxOnePerNode)
	got := preview(linux)
	if len(got.Diffs) != 1 || got.Diffs[0].Stack != "web" {
		t.Fatalf("diffs %s", statetest.Dump(got.Diffs))
	}
	check("a new stack", got, &api.ServicePlacement{Service: "web_api",
		Tasks: []api.TaskPlacement{{Slot: 1, Node: "host-n1"}, {Slot: 2, Node: "host-n2"}}, Unplaced: unplacedOne})
	tx := st.ReadTxn()
	if stacks, _ := tx.Stacks(nil); len(stacks) != 0 {
		t.Fatalf("the preview wrote stacks: %+v", stacks)
	}
	if tasks, _ := tx.Tasks(nil); len(tasks) != 0 {
		t.Fatalf("the preview wrote tasks: %+v", tasks)
	}

	// Deployed for real: unchanged, the pending replica is still refused; a new
	// image would pause the rolling update on it, as the orchestrator would.
	deployForReal(t, st, linux, newID, now)
	got = preview(linux)
	if len(got.Diffs) != 0 {
		t.Errorf("an unchanged stack differs: %s", statetest.Dump(got.Diffs))
	}
	check("an unchanged stack", got, &api.ServicePlacement{Service: "web_api", Unplaced: unplacedOne})
	got = preview(apiStack(t, "nginx:2", linuxOnePerNode))
	if p := got.Placement; len(p) != 1 || len(p[0].Tasks) != 0 || !strings.HasPrefix(p[0].Update, "paused: update paused due to failure") {
		t.Errorf("a new image with a replica that cannot be placed: %s", statetest.Dump(p))
	}

	// Without the constraint the third replica finds the windows node; the changed
	// placement replaces the other two where they run.
	anywhere := apiStack(t, "nginx:1", onePerNode)
	got = preview(anywhere)
	check("without the constraint", got, &api.ServicePlacement{Service: "web_api", Tasks: []api.TaskPlacement{
		{Slot: 1, Node: "host-n1", Replaces: true}, {Slot: 2, Node: "host-n2", Replaces: true}, {Slot: 3, Node: "host-n3"}}})
	if !strings.Contains(statetest.Dump(got.Diffs), "constraints") {
		t.Errorf("diff without the constraint: %s", statetest.Dump(got.Diffs))
	}

	// Deployed, then kept off host-n1: its replica moves to a node with room.
	deployForReal(t, st, anywhere, newID, now)
	got = preview(apiStack(t, "nginx:1", `{constraints: ["node.hostname != host-n1"]}`))
	var moved []api.TaskPlacement
	for _, tp := range got.Placement[0].Tasks {
		if tp.From != "" {
			moved = append(moved, tp)
		}
	}
	if len(got.Placement) != 1 || len(moved) != 1 || moved[0].From != "host-n1" || moved[0].Node == "host-n1" || !got.Settled {
		t.Errorf("a replica kept off host-n1: %s", statetest.Dump(got.Placement))
	}
}

// deployForReal applies the stack to st and plays its rollout, as the leader and the
// agents would.
func deployForReal(t *testing.T, st *state.Store, req *api.StackDeployRequest, newID func() string, now time.Time) {
	t.Helper()
	before := st.ReadTxn()
	resp, err := control.PreviewStacks(st, []*api.StackDeployRequest{req}, newID, now)
	if err != nil || !resp.Settled {
		t.Fatalf("preview before deploying: %v (settled %v)", err, resp != nil && resp.Settled)
	}
	cmd, err := control.StackCommand(req, newID)
	if err != nil {
		t.Fatal(err)
	}
	if err := command.Simulate(st, command.CmdStackDeploy, cmd); err != nil {
		t.Fatal(err)
	}
	if _, settled, err := control.FollowRollout(before, st, []string{cmd.Stack.Name}, newID, now); err != nil || !settled {
		t.Fatalf("rollout: %v (settled %v)", err, settled)
	}
}
