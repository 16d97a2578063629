package applier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/gittest"
)

// TestMaterializePush: a manager's copy of a push repository follows the replicated
// state, whatever it held before: empty, behind, ahead with a revision never
// acknowledged, or left by a removed source of the same name.
func TestMaterializePush(t *testing.T) {
	work := gittest.New(t)
	work.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	a := work.Commit("A")
	work.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:2\n"})
	b := work.Commit("B")
	packOf := func(h plumbing.Hash) []byte {
		t.Helper()
		pack, err := packBranch(filepath.Join(work.Dir, ".git"), h, command.MaxPushPack)
		if err != nil {
			t.Fatal(err)
		}
		return pack
	}
	at := func(h plumbing.Hash) *model.Source {
		src := &model.Source{Name: "apps", Kind: model.SourceGitPush, Branch: "main"}
		if !h.IsZero() {
			src.PushedRevision, src.PushPack = h.String(), model.NewBlob(packOf(h))
		}
		return src
	}
	tip := func(dir string) string {
		t.Helper()
		repo, err := git.PlainOpen(dir)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := repo.Reference(plumbing.NewBranchReferenceName("main"), false)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return ref.Hash().String()
	}
	dir := filepath.Join(t.TempDir(), "apps", "push.git")
	for _, step := range []struct {
		name  string
		state *model.Source
		want  string
	}{
		{"nothing pushed", at(plumbing.ZeroHash), "none"},
		{"A pushed", at(a), a.String()},
		{"again: nothing to do", at(a), a.String()},
		{"B pushed, A's objects already here", at(b), b.String()},
		{"the state says A (this copy ran ahead)", at(a), a.String()},
		{"the source was removed and added again", at(plumbing.ZeroHash), "none"},
		{"B pushed to the new source", at(b), b.String()},
	} {
		if err := materializePush(dir, step.state); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := tip(dir); got != step.want {
			t.Fatalf("%s: main at %s, want %s", step.name, got, step.want)
		}
	}
	// The copy holds B's whole tree, from the pack alone.
	repo, err := OpenRepository(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRepo(t, repo)
	fsys, _, err := repo.TreeFS(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(fsys, "web/compose.yaml"); err != nil || !bytes.Contains(got, []byte("nginx:2")) {
		t.Fatalf("web/compose.yaml of B: %q, %v", got, err)
	}
}

// BenchmarkPushPack measures what replicating a push adds on the leader (packing every
// object of the branch) and on each manager (writing that pack into its copy), for a
// repository of 20 stacks and 200 commits.
func BenchmarkPushPack(b *testing.B) {
	work := gittest.New(b)
	for i := range 200 {
		work.Write(map[string]string{filepath.Join(fmt.Sprintf("stack%02d", i%20), "compose.yaml"): fmt.Sprintf("services:\n  app:\n    image: nginx:%d\n    deploy:\n      replicas: %d\n", i, i%5+1)})
		work.Commit(fmt.Sprintf("commit %d", i))
	}
	head, err := work.Repo.Head()
	if err != nil {
		b.Fatal(err)
	}
	pack, err := packBranch(filepath.Join(work.Dir, ".git"), head.Hash(), command.MaxPushPack)
	if err != nil {
		b.Fatal(err)
	}
	src := &model.Source{Name: "apps", Kind: model.SourceGitPush, Branch: "main", PushedRevision: head.Hash().String(), PushPack: model.NewBlob(pack)}
	// A push repository holds packs, as received, not loose objects.
	dir := filepath.Join(b.TempDir(), "push.git")
	if err := materializePush(dir, src); err != nil {
		b.Fatal(err)
	}
	b.Run("pack", func(b *testing.B) {
		for b.Loop() {
			if _, err := packBranch(dir, head.Hash(), command.MaxPushPack); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(pack)), "pack-bytes")
	})
	b.Run("materialize", func(b *testing.B) {
		for b.Loop() {
			if err := materializePush(filepath.Join(b.TempDir(), "push.git"), src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
