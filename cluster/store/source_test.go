package store

import (
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// sourceStack is a one-service stack of a source's revision.
func sourceStack(source, rev, name, image string) *command.StackDeploy {
	st := &spec.Stack{
		Name: name,
		Services: map[string]*spec.Service{
			"app": {Name: "app", Image: image, Deploy: spec.Deploy{Mode: spec.ModeReplicated, Replicas: ptr(uint64(1)), EndpointMode: "vip"}},
		},
	}
	d := deploy(st, "", "", true)
	d.SecretData, d.ConfigData = nil, nil
	d.Stack.Source, d.Stack.Revision = source, rev
	return d
}

func syncOf(source, rev string, prune bool, stacks ...*command.StackDeploy) *command.SourceSync {
	return &command.SourceSync{Name: source, Now: now, Fetched: rev, Status: model.SyncSynced, Apply: true, Prune: prune, Stacks: stacks,
		Record: model.SyncRecord{Revision: rev, Result: model.SyncApplied}}
}

func (h *fsmHarness) stackNames() map[string]string {
	h.t.Helper()
	stacks, err := h.tx().Stacks(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range stacks {
		out[s.Name] = s.Source + "@" + s.Revision
	}
	return out
}

func TestSourceSyncAppliesARevisionWholeOrNotAtAll(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Branch: "main", Prune: true}})
	if err := h.apply(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceDir}}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second add of a name: %v, want ErrConflict", err)
	}

	h.must(command.CmdSourceSync, syncOf("infra", "r1", true, sourceStack("infra", "r1", "web", "nginx:1"), sourceStack("infra", "r1", "db", "postgres:16")))
	if got := h.stackNames(); len(got) != 2 || got["web"] != "infra@r1" || got["db"] != "infra@r1" {
		t.Fatalf("after r1: %v", got)
	}
	src, _ := h.tx().Source(nil, "infra")
	if src.LastAppliedRevision != "r1" || src.Status != model.SyncSynced || len(src.History) != 1 {
		t.Fatalf("source after r1: %+v", src)
	}

	// r2 changes web and breaks db (no service spec): nothing of r2 lands, r1 stays.
	broken := sourceStack("infra", "r2", "db", "postgres:17")
	broken.Stack.Spec.Services["app"] = nil
	if err := h.apply(command.CmdSourceSync, syncOf("infra", "r2", true, sourceStack("infra", "r2", "web", "nginx:2"), broken)); err == nil {
		t.Fatal("a revision with a broken stack was applied")
	}
	web, _ := h.tx().ServiceByName(nil, "web_app")
	if web.Spec.Image != "nginx:1" {
		t.Errorf("web's image is %s after a refused revision, want nginx:1", web.Spec.Image)
	}
	if got := h.stackNames(); got["web"] != "infra@r1" || got["db"] != "infra@r1" {
		t.Errorf("stacks after a refused revision: %v", got)
	}

	// r3 drops db: pruned. A stack of another source is refused, whole.
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "apps", Kind: model.SourceGitPush}})
	if err := h.apply(command.CmdSourceSync, syncOf("apps", "a1", true, sourceStack("apps", "a1", "web", "httpd:2"))); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("a source taking another's stack: %v, want ErrConflict", err)
	}
	h.must(command.CmdSourceSync, syncOf("infra", "r3", true, sourceStack("infra", "r3", "web", "nginx:3")))
	if got := h.stackNames(); len(got) != 1 || got["web"] != "infra@r3" {
		t.Fatalf("after r3 with prune: %v", got)
	}
	if _, err := h.tx().ServiceByName(nil, "db_app"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("db's service after the prune: %v", err)
	}

	// Without prune the dropped stack stays, still the source's, at its old revision.
	h.must(command.CmdSourceSync, syncOf("infra", "r4", false, sourceStack("infra", "r4", "cache", "redis:7")))
	if got := h.stackNames(); got["web"] != "infra@r3" || got["cache"] != "infra@r4" {
		t.Fatalf("after r4 without prune: %v", got)
	}
}

func TestSourceSyncRecordsFailuresAndHistory(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull}})
	h.must(command.CmdSourceSync, syncOf("infra", "r1", true, sourceStack("infra", "r1", "web", "nginx:1")))
	for i := range model.SourceHistoryLimit + 2 {
		h.must(command.CmdSourceSync, &command.SourceSync{Name: "infra", Now: now, Fetched: "r2", Status: model.SyncFailed, Answered: uint64(i),
			Record: model.SyncRecord{Revision: "r2", Result: model.SyncRejected, Message: "stack web: services.app.image: required"}})
	}
	src, _ := h.tx().Source(nil, "infra")
	if src.LastAppliedRevision != "r1" || src.LastFetchedRevision != "r2" || src.Status != model.SyncFailed || src.Message == "" {
		t.Errorf("after failures: %+v", src)
	}
	if len(src.History) != model.SourceHistoryLimit || src.AnsweredRequests != model.SourceHistoryLimit+1 {
		t.Errorf("history %d records, answered %d", len(src.History), src.AnsweredRequests)
	}
	if err := h.apply(command.CmdSourceSync, &command.SourceSync{Name: "nope", Now: now}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("sync of an unknown source: %v", err)
	}
}

func TestSourceUpdateAndRemove(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull}})
	h.must(command.CmdSourceUpdate, &command.SourceUpdate{Name: "infra", Pin: ptr("r0"), RequestSync: true})
	h.must(command.CmdSourceUpdate, &command.SourceUpdate{Name: "infra", Suspended: ptr(true), RequestSync: true})
	src, _ := h.tx().Source(nil, "infra")
	if !src.Suspended || src.PinnedRevision != "r0" || src.SyncRequests != 2 {
		t.Fatalf("after pin and suspend: %+v", src)
	}
	h.must(command.CmdSourceUpdate, &command.SourceUpdate{Name: "infra", Suspended: ptr(false)})
	if src, _ = h.tx().Source(nil, "infra"); src.Suspended || src.PinnedRevision != "" {
		t.Fatalf("resume keeps %+v", src)
	}

	h.must(command.CmdSourceSync, syncOf("infra", "r1", true, sourceStack("infra", "r1", "web", "nginx:1"), sourceStack("infra", "r1", "db", "pg:1")))
	h.must(command.CmdSourceRemove, &command.SourceRemove{Name: "infra"})
	if got := h.stackNames(); got["web"] != "@" || got["db"] != "@" {
		t.Fatalf("removing a source without prune must keep its stacks, detached: %v", got)
	}
	apps := &model.Source{Name: "apps", Kind: model.SourceGitPull, AuthRef: "source-apps-credentials"}
	cred := &model.Secret{ID: "sec-apps", Name: "source-apps-credentials", Version: 1, Data: []byte(`{"token":"t0k"}`)}
	if err := h.apply(command.CmdSourceAdd, &command.SourceAdd{Source: apps, Secrets: []*model.Secret{{ID: "x", Name: "other", Version: 1}}}); !errors.Is(err, state.ErrInvalid) {
		t.Fatalf("a source bringing a secret it does not use: %v", err)
	}
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: apps, Secrets: []*model.Secret{cred}})
	if got, err := h.tx().Secret(nil, "source-apps-credentials"); err != nil || string(got.Data) != `{"token":"t0k"}` {
		t.Fatalf("the source's credentials: %v %v", got, err)
	}
	h.must(command.CmdSourceSync, syncOf("apps", "a1", true, sourceStack("apps", "a1", "web", "nginx:2")))
	h.must(command.CmdSourceRemove, &command.SourceRemove{Name: "apps", Prune: true})
	if got := h.stackNames(); len(got) != 1 || got["db"] != "@" {
		t.Fatalf("after remove --prune: %v", got)
	}
	if _, err := h.tx().Secret(nil, "source-apps-credentials"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("the removed source's credentials: %v, want gone", err)
	}
	if err := h.apply(command.CmdSourceRemove, &command.SourceRemove{Name: "apps"}); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}
