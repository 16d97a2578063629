// Package gittest builds Git repositories for tests with go-git, through a work tree the
// way a user would, with fixed authors and times so that SHAs are the same on every run.
package gittest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Epoch is the fixed time of the first test commit; later ones are a minute apart,
// so that SHAs are the same on every run.
var Epoch = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Repo is a Git repository in a temporary directory, through a work tree, the
// way a user would.
type Repo struct {
	tb      testing.TB
	Dir     string
	Repo    *git.Repository
	wt      *git.Worktree
	commits int
}

func New(tb testing.TB) *Repo {
	tb.Helper()
	dir := tb.TempDir()
	files := osfs.New(dir)
	dot, err := files.Chroot(git.GitDirName)
	if err != nil {
		tb.Fatalf("repository directory: %v", err)
	}
	st := filesystem.NewStorage(renamingFS{dot}, cache.NewObjectLRUDefault())
	repo, err := git.InitWithOptions(st, files, git.InitOptions{DefaultBranch: plumbing.Main})
	if err != nil {
		tb.Fatalf("init repository: %v", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		tb.Fatalf("work tree: %v", err)
	}
	return &Repo{tb: tb, Dir: dir, Repo: repo, wt: wt}
}

// Write writes files (slash paths) into the work tree; an empty content removes the file.
func (r *Repo) Write(files map[string]string) {
	r.tb.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.tb.Fatalf("remove %s: %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.tb.Fatal(err)
		}
	}
}

func (r *Repo) Symlink(name, target string) {
	r.tb.Helper()
	p := filepath.Join(r.Dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		r.tb.Fatal(err)
	}
}

func (r *Repo) Chmod(name string, mode os.FileMode) {
	r.tb.Helper()
	if err := os.Chmod(filepath.Join(r.Dir, filepath.FromSlash(name)), mode); err != nil {
		r.tb.Fatal(err)
	}
}

// Commit stages everything (git add -A) and commits it on the current branch.
func (r *Repo) Commit(msg string) plumbing.Hash {
	r.tb.Helper()
	if err := r.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.tb.Fatalf("add: %v", err)
	}
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: Epoch.Add(time.Duration(r.commits) * time.Minute)}
	r.commits++
	h, err := r.wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		r.tb.Fatalf("commit %q: %v", msg, err)
	}
	return h
}

func (r *Repo) Branch(name string, h plumbing.Hash) {
	r.tb.Helper()
	if err := r.Repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), h)); err != nil {
		r.tb.Fatalf("branch %s: %v", name, err)
	}
}

// Tag makes an annotated tag, which Resolve must peel to its commit.
func (r *Repo) Tag(name string, h plumbing.Hash) {
	r.tb.Helper()
	_, err := r.Repo.CreateTag(name, h, &git.CreateTagOptions{
		Tagger:  &object.Signature{Name: "Test", Email: "test@example.com", When: Epoch},
		Message: "release " + name,
	})
	if err != nil {
		r.tb.Fatalf("tag %s: %v", name, err)
	}
}

// CopyToBare makes a bare repository holding every object and reference of r, without
// the git binary that a local clone would need.
func (r *Repo) CopyToBare() string {
	r.tb.Helper()
	dir := r.tb.TempDir()
	bare, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		r.tb.Fatalf("init bare repository: %v", err)
	}
	objects, err := r.Repo.Storer.IterEncodedObjects(plumbing.AnyObject)
	if err != nil {
		r.tb.Fatal(err)
	}
	err = objects.ForEach(func(o plumbing.EncodedObject) error {
		_, err := bare.Storer.SetEncodedObject(o)
		return err
	})
	if err != nil {
		r.tb.Fatalf("copy objects: %v", err)
	}
	refs, err := r.Repo.Storer.IterReferences()
	if err != nil {
		r.tb.Fatal(err)
	}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Name() == plumbing.HEAD {
			return nil
		}
		return bare.Storer.SetReference(ref)
	})
	if err != nil && !errors.Is(err, storer.ErrStop) {
		r.tb.Fatalf("copy references: %v", err)
	}
	return dir
}
