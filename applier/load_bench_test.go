package applier

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/spec"
)

// benchStack is a stack of five services, each a little different, like a real one.
func benchStack(i int, tag string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for s := range 5 {
		fmt.Fprintf(&b, `  svc%d:
    image: registry.example.com/team%d/svc%d:%s
    environment:
      STACK: stack%03d
      LOG_LEVEL: info
    ports:
      - "%d:8080"
    deploy:
      replicas: %d
      placement:
        constraints: [node.labels.zone == z%d]
      resources:
        limits: {cpus: "0.5", memory: 256M}
`, s, i%7, s, tag, i, 20000+i*5+s, 1+s%3, s%2)
	}
	return b.String()
}

// BenchmarkDiffRevisions100Stacks measures what a sync of a source does before planning:
// read two revisions of a 100-stack repository out of Git, load and validate every
// stack, and diff them (10 stacks changed). "worktree" reads a local repository's loose
// objects; "clone" reads the packfile of a file:// clone, like a pulled source.
func BenchmarkDiffRevisions100Stacks(b *testing.B) {
	r := gittest.New(b)
	files := map[string]string{}
	for i := range 100 {
		files[fmt.Sprintf("stack%03d/compose.yaml", i)] = benchStack(i, "1.0")
	}
	r.Write(files)
	r.Commit("100 stacks")
	changed := map[string]string{}
	for i := 0; i < 100; i += 10 {
		changed[fmt.Sprintf("stack%03d/compose.yaml", i)] = benchStack(i, "1.1")
	}
	r.Write(changed)
	r.Commit("bump 10 stacks")

	b.Run("worktree", func(b *testing.B) { benchDiffRevisions(b, r.Dir) })
	b.Run("worktree-cached", func(b *testing.B) { benchSyncCached(b, r.Dir) })
	b.Run("clone", func(b *testing.B) {
		testenv.RequireCommand(b, "git", "go-git's file:// transport runs git-upload-pack")
		benchDiffRevisions(b, "file://"+r.Dir)
	})
}

func benchDiffRevisions(b *testing.B, location string) {
	ctx := context.Background()
	repo, err := OpenRepository(ctx, location)
	if err != nil {
		b.Fatal(err)
	}
	closeRepo(b, repo)
	load := func(rev string) []*spec.Stack {
		fsys, _, err := repo.TreeFS(rev)
		if err != nil {
			b.Fatal(err)
		}
		loaded, err := LoadStacks(ctx, fsys, ".", nil)
		if err != nil {
			b.Fatal(err)
		}
		return loaded.Stacks
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		diffs := spec.DiffStacks(load("HEAD~1"), load("HEAD"))
		if len(diffs) != 10 {
			b.Fatalf("%d stacks differ, want 10", len(diffs))
		}
	}
}

// benchSyncCached is the applier's steady state: the applied revision's stacks are in
// memory and its loader work is in the source's cache; the new revision is loaded with
// that cache and diffed against them.
func benchSyncCached(b *testing.B, location string) {
	ctx := context.Background()
	repo, err := OpenRepository(ctx, location)
	if err != nil {
		b.Fatal(err)
	}
	closeRepo(b, repo)
	load := func(rev string, cache *spec.Cache) []*spec.Stack {
		fsys, _, err := repo.TreeFS(rev)
		if err != nil {
			b.Fatal(err)
		}
		loaded, err := LoadStacks(ctx, fsys, ".", nil, WithCache(cache))
		if err != nil {
			b.Fatal(err)
		}
		return loaded.Stacks
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cache := spec.NewCache()
		applied := load("HEAD~1", cache)
		b.StartTimer()
		if diffs := spec.DiffStacks(applied, load("HEAD", cache)); len(diffs) != 10 {
			b.Fatalf("%d stacks differ, want 10", len(diffs))
		}
	}
}
