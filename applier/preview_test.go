package applier

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/statetest"
)

// berth.yaml's depends_on reaches the stack rows, and holds the dependent stack's tasks
// (pending, with the reason) while a service it waits for cannot run.
func TestDependsOnHoldsTheDependentStack(t *testing.T) {
	st := statetest.PreviewCluster(t)
	newID := statetest.Counter()
	loaded, err := LoadStacks(t.Context(), mapFS(map[string]string{
		"berth.yaml":       "stacks:\n  - name: web\n    depends_on: [db]\n  - name: db\n",
		"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n",
		"db/compose.yaml":  "services:\n  pg:\n    image: postgres:16\n    deploy:\n      placement: {constraints: [node.labels.db == yes]}\n",
	}), ".", nil)
	if err != nil {
		t.Fatal(err)
	}
	src := &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "https://example.com/infra.git", Branch: "main", Prune: true}
	if err := command.Simulate(st, command.CmdSourceAdd, &command.SourceAdd{Source: src}); err != nil {
		t.Fatal(err)
	}
	plan, err := control.PlanSource(st.ReadTxn(), src, loaded.Checked(), loaded.DependsOn, newID)
	if err != nil {
		t.Fatal(err)
	}
	before := st.ReadTxn()
	fork := st.Fork()
	sync := control.SyncCommand(src, time.Now(), "", model.SyncSynced, model.SyncRecord{Revision: "r1"}, plan)
	if err := command.Simulate(fork, command.CmdSourceSync, sync); err != nil {
		t.Fatal(err)
	}
	stacks, err := fork.ReadTxn().Stacks(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range stacks {
		if want := map[string]string{"web": "[db]", "db": "[]"}[c.Name]; fmt.Sprint(c.DependsOn) != want {
			t.Errorf("stack %s depends on %v, want %s", c.Name, c.DependsOn, want)
		}
	}
	placement, settled, err := control.FollowRollout(before, fork, []string{"db", "web"}, newID, time.Now())
	if err != nil || !settled {
		t.Fatalf("rollout: %v (settled %v)", err, settled)
	}
	want := []*api.ServicePlacement{
		{Service: "db_pg", Unplaced: []api.UnplacedTasks{{Count: 1, Reason: "no suitable node (constraint node.labels.db == yes not satisfied on 3 nodes)"}}},
		{Service: "web_app", Unplaced: []api.UnplacedTasks{{Count: 1, Reason: "waiting for stack db (depends_on): service db_pg runs 0 of 1 tasks"}}},
	}
	if !reflect.DeepEqual(placement, want) {
		t.Errorf("placement:\n got %s\nwant %s", statetest.Dump(placement), statetest.Dump(want))
	}
}
