package gittest_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/gittest"
)

// A commit replaces the branch's ref file, as git does, rather than rewriting it in
// place: a reader that opened it before the commit reads the old tip whole, and one
// that opens it after reads the new tip, never an empty or half-written file.
func TestCommitReplacesTheRefWhole(t *testing.T) {
	repo := gittest.New(t)
	repo.Write(map[string]string{"a": "1"})
	first := repo.Commit("one").String()
	ref := filepath.Join(repo.Dir, ".git", "refs", "heads", "main")
	f, err := os.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	repo.Write(map[string]string{"a": "2"})
	second := repo.Commit("two").String()

	held, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(held)); got != first {
		t.Errorf("the ref opened before the commit reads %q, want the old tip %s: the commit rewrote the file in place", got, first)
	}
	out, err := exec.Command("git", "-C", repo.Dir, "rev-parse", "refs/heads/main").CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != second {
		t.Errorf("git rev-parse main: %q, %v; want %s", got, err, second)
	}
	if out, err := exec.Command("git", "-C", repo.Dir, "fsck", "--strict").CombinedOutput(); err != nil {
		t.Errorf("git fsck: %v\n%s", err, out)
	}
	left, _ := filepath.Glob(filepath.Join(repo.Dir, ".git", "refs", "heads", ".tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
