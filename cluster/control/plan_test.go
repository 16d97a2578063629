package control_test

import (
	"testing"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/statetest"
	"github.com/berthd/berth/spec"
)

// A source's plan is compared again only when the stacks changed since it was made:
// a push's plan applied by the sync it requests is still right, or is brought up to
// date without the revision being made again.
func TestSourcePlanIsComparedAgainOnlyWhenTheStacksMoved(t *testing.T) {
	st := statetest.PreviewCluster(t)
	src := &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "https://example.com/infra.git", Branch: "main", Prune: true}
	if err := command.Simulate(st, command.CmdSourceAdd, &command.SourceAdd{Source: src}); err != nil {
		t.Fatal(err)
	}
	web, _, err := spec.LoadChecked(t.Context(), spec.LoadOptions{Stack: "web",
		Files: []spec.File{{Name: "compose.yaml", Content: []byte("services:\n  app:\n    image: nginx:1\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := control.PlanSource(st.ReadTxn(), src, []spec.Checked{web}, nil, statetest.Counter())
	if err != nil {
		t.Fatal(err)
	}
	if plan.Unchanged() || plan.Summary().Added != 1 {
		t.Fatalf("plan of a new stack: unchanged %v, %+v", plan.Unchanged(), plan.Summary())
	}

	// A write that changes no stack (the push's own) leaves the plan as it is.
	if err := command.Simulate(st, command.CmdSourceUpdate, &command.SourceUpdate{Name: "infra", RequestSync: true}); err != nil {
		t.Fatal(err)
	}
	if cur, err := plan.Current(st.ReadTxn()); err != nil || cur != plan {
		t.Fatalf("after a write to no stack: %v, the same plan %v", err, cur == plan)
	}

	// Once the stack is there, the same commands change nothing.
	sync := control.SyncCommand(src, time.Now(), "", model.SyncSynced, model.SyncRecord{Revision: "r1"}, plan)
	if err := command.Simulate(st, command.CmdSourceSync, sync); err != nil {
		t.Fatal(err)
	}
	cur, err := plan.Current(st.ReadTxn())
	if err != nil {
		t.Fatal(err)
	}
	if cur == plan || !cur.Unchanged() || len(cur.Diffs()) != 0 {
		t.Fatalf("after the stack was written: a new plan %v, unchanged %v, diffs %d", cur != plan, cur.Unchanged(), len(cur.Diffs()))
	}
}
