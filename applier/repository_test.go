package applier

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/testenv"
)

const (
	webV1 = "services:\n  app:\n    image: nginx:1.26\n    deploy:\n      replicas: 2\n"
	webV2 = "services:\n  app:\n    image: nginx:1.27\n    deploy:\n      replicas: 2\n"
	dbV1  = "services:\n  postgres:\n    image: postgres:17\n"
)

// history is the fixture repository's commits, oldest first.
type history struct {
	first, addDB, bumpWeb plumbing.Hash
}

// fixtureRepo builds main: first (tag v1, branch dev) -> add db -> bump web, with a
// symlink, a symlinked directory and an executable in the last commit.
func fixtureRepo(t *testing.T) (*gittest.Repo, history) {
	t.Helper()
	r := gittest.New(t)
	var h history
	r.Write(map[string]string{"web/compose.yaml": webV1, "README.md": "stacks\n"})
	h.first = r.Commit("first")
	r.Tag("v1", h.first)
	r.Branch("dev", h.first)
	r.Write(map[string]string{"db/compose.yaml": dbV1})
	h.addDB = r.Commit("add db")
	r.Write(map[string]string{
		"web/compose.yaml": webV2,
		"shared/app.env":   "TAG=1.27\n",
		"bin/run.sh":       "#!/bin/sh\nexit 0\n",
	})
	r.Chmod("bin/run.sh", 0o755)
	r.Symlink("web/app.env", "../shared/app.env")
	r.Symlink("current", "web")
	h.bumpWeb = r.Commit("bump web")
	return r, h
}

func TestOpenRepositoryWorkTree(t *testing.T) {
	r, h := fixtureRepo(t)
	for _, loc := range []string{r.Dir, filepath.Join(r.Dir, ".git"), filepath.Join(r.Dir, "web")} {
		t.Run(filepath.Base(loc), func(t *testing.T) {
			repo, err := OpenRepository(context.Background(), loc)
			if err != nil {
				t.Fatal(err)
			}
			closeRepo(t, repo)
			got, err := repo.Resolve("HEAD")
			if err != nil {
				t.Fatal(err)
			}
			if got != h.bumpWeb.String() {
				t.Errorf("HEAD = %s, want %s", got, h.bumpWeb)
			}
		})
	}
}

func TestOpenRepositoryBare(t *testing.T) {
	r, h := fixtureRepo(t)
	bare := r.CopyToBare()
	repo, err := OpenRepository(context.Background(), bare)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	for rev, want := range map[string]plumbing.Hash{"HEAD": h.bumpWeb, "main": h.bumpWeb, "dev": h.first, "v1": h.first} {
		got, err := repo.Resolve(rev)
		if err != nil {
			t.Errorf("Resolve(%q): %v", rev, err)
		} else if got != want.String() {
			t.Errorf("Resolve(%q) = %s, want %s", rev, got, want)
		}
	}
}

func TestOpenRepositoryNotARepository(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenRepository(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "no Git repository") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want one naming %s and saying there is no Git repository", err, dir)
	}
}

func TestOpenRepositoryCloneFileURL(t *testing.T) {
	testenv.RequireCommand(t, "git", "go-git's file:// transport runs git-upload-pack")
	r, h := fixtureRepo(t)
	repo, err := OpenRepository(context.Background(), "file://"+r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp := repo.tmpDir
	if tmp == "" {
		t.Fatal("a clone has no temporary directory")
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("clone directory: %v", err)
	}
	want := map[string]plumbing.Hash{
		"HEAD": h.bumpWeb, "main": h.bumpWeb, "origin/main": h.bumpWeb,
		"dev": h.first, "origin/dev": h.first, "v1": h.first, "HEAD~2": h.first,
	}
	for rev, w := range want {
		got, err := repo.Resolve(rev)
		if err != nil {
			t.Errorf("Resolve(%q): %v", rev, err)
		} else if got != w.String() {
			t.Errorf("Resolve(%q) = %s, want %s", rev, got, w)
		}
	}
	fsys, _, err := repo.TreeFS("origin/main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readString(fsys, "db/compose.yaml"); err != nil {
		t.Error(err)
	}

	if err := repo.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("clone directory %s still there after Close (stat: %v)", tmp, err)
	}
	if err := repo.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenRepositoryCloneFailureCleansUp(t *testing.T) {
	testenv.RequireCommand(t, "git", "go-git's file:// transport runs git-upload-pack")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := OpenRepository(context.Background(), "file://"+filepath.Join(tmp, "missing"))
	if err == nil {
		t.Fatal("cloning a missing repository succeeded")
	}
	if !strings.Contains(err.Error(), "clone file://") {
		t.Errorf("err = %v, want it to name the URL", err)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("temporary directory left behind: %v", left)
	}
}

func TestIsURL(t *testing.T) {
	for loc, want := range map[string]bool{
		"https://git.example.com/ops/stacks.git": true,
		"http://localhost:3000/x":                true,
		"ssh://git@host/x.git":                   true,
		"git@github.com:ops/stacks.git":          true,
		"file:///srv/git/stacks":                 true,
		"/srv/git/stacks":                        false,
		"./stacks":                               false,
		"stacks":                                 false,
		"dir/with@at:colon":                      false,
	} {
		if got := isURL(loc); got != want {
			t.Errorf("isURL(%q) = %v, want %v", loc, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	r, h := fixtureRepo(t)
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	tests := map[string]plumbing.Hash{
		"main":                                h.bumpWeb,
		"refs/heads/main":                     h.bumpWeb,
		"dev":                                 h.first,
		"v1":                                  h.first,
		"refs/tags/v1":                        h.first,
		"HEAD":                                h.bumpWeb,
		"HEAD~1":                              h.addDB,
		"main~2":                              h.first,
		"HEAD^":                               h.addDB,
		"HEAD^^":                              h.first,
		"v1^{}":                               h.first,
		"main~1^{commit}":                     h.addDB,
		h.addDB.String():                      h.addDB,
		h.addDB.String()[:7]:                  h.addDB,
		h.first.String()[:12]:                 h.first,
		strings.ToUpper(h.first.String()[:9]): h.first,
	}
	for rev, want := range tests {
		got, err := repo.Resolve(rev)
		if err != nil {
			t.Errorf("Resolve(%q): %v", rev, err)
		} else if got != want.String() {
			t.Errorf("Resolve(%q) = %s, want %s", rev, got, want)
		}
	}
}

// A branch whose name is also a SHA prefix is the branch, as in git rev-parse.
func TestResolvePrefersRefsOverShortSHA(t *testing.T) {
	r, h := fixtureRepo(t)
	prefix := h.bumpWeb.String()[:4]
	r.Branch(prefix, h.first)
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	got, err := repo.Resolve(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if got != h.first.String() {
		t.Errorf("Resolve(%q) = %s, want branch %s at %s", prefix, got, prefix, h.first)
	}
	if _, err := repo.Resolve(h.bumpWeb.String()[:3]); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("a 3-digit SHA prefix resolved (err %v); git needs 4 digits", err)
	}
}

func TestResolveErrors(t *testing.T) {
	r, _ := fixtureRepo(t)
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	tests := []struct {
		rev  string
		want []string
	}{
		{"mian", []string{`unknown revision "mian"`, "branches: dev, main", "tags: v1"}},
		{"HEAD~5", []string{`"HEAD~5"`, "unknown revision", "HEAD is", "no ancestor ~5", "history too short"}},
		{"main@{upstream}", []string{`"main@{upstream}"`, `"@{upstream}" is not supported`}},
		{"main^{tree}", []string{`"^{tree}" is not supported`}},
		{"HEAD:web", []string{`":web" is not supported`}},
		{"", []string{"empty revision"}},
		{"0123456789abcdef0123456789abcdef01234567", []string{"unknown revision"}},
	}
	for _, tt := range tests {
		_, err := repo.Resolve(tt.rev)
		if err == nil {
			t.Errorf("Resolve(%q) succeeded", tt.rev)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Resolve(%q) error %q does not contain %q", tt.rev, err, w)
			}
		}
		if tt.rev != "" && !strings.Contains(err.Error(), "not supported") && !errors.Is(err, ErrUnknownRevision) {
			t.Errorf("Resolve(%q) error %v is not ErrUnknownRevision", tt.rev, err)
		}
	}
	if _, _, err := repo.TreeFS("mian"); !errors.Is(err, ErrUnknownRevision) {
		t.Errorf("TreeFS(mian): err = %v, want ErrUnknownRevision", err)
	}
}

func TestResolveEmptyRepository(t *testing.T) {
	r := gittest.New(t)
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	_, err = repo.Resolve("HEAD")
	if !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), "no commits") {
		t.Errorf("err = %v, want ErrUnknownRevision saying the repository has no commits", err)
	}
}
