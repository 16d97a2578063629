package applier

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/berthd/berth/internal/gittest"
)

func readString(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	return string(b), err
}

func openTreeFS(t *testing.T, r *gittest.Repo, rev string) (fs.FS, string) {
	t.Helper()
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	fsys, sha, err := repo.TreeFS(rev)
	if err != nil {
		t.Fatalf("TreeFS(%q): %v", rev, err)
	}
	return fsys, sha
}

func TestTreeFSReadFile(t *testing.T) {
	r, h := fixtureRepo(t)
	fsys, sha := openTreeFS(t, r, "HEAD")
	if sha != h.bumpWeb.String() {
		t.Errorf("sha = %s, want %s", sha, h.bumpWeb)
	}
	for name, want := range map[string]string{
		"web/compose.yaml": webV2,
		"db/compose.yaml":  dbV1,
		"web/app.env":      "TAG=1.27\n", // through a symlink
		"current/app.env":  "TAG=1.27\n", // through a symlinked directory
	} {
		got, err := readString(fsys, name)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", name, err)
		} else if got != want {
			t.Errorf("ReadFile(%s) = %q, want %q", name, got, want)
		}
	}

	old, _ := openTreeFS(t, r, "v1")
	if got, _ := readString(old, "web/compose.yaml"); got != webV1 {
		t.Errorf("v1 web/compose.yaml = %q, want %q", got, webV1)
	}
	if _, err := fs.ReadFile(old, "db/compose.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v1 db/compose.yaml: err = %v, want fs.ErrNotExist", err)
	}
}

func TestTreeFSReadDirAndStat(t *testing.T) {
	r, _ := fixtureRepo(t)
	fsys, _ := openTreeFS(t, r, "main")

	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fs.FormatDirEntry(e))
	}
	want := []string{"- README.md", "d bin/", "L current", "d db/", "d shared/", "d web/"}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir(.) = %q, want %q", got, want)
	}

	info, err := fs.Stat(fsys, "web/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name() != "compose.yaml" || info.Size() != int64(len(webV2)) || info.Mode() != 0o644 || info.IsDir() {
		t.Errorf("Stat(web/compose.yaml) = %s", fs.FormatFileInfo(info))
	}
	if !info.ModTime().Equal(gittest.Epoch.Add(2 * 60e9)) {
		t.Errorf("ModTime = %v, want the commit's time", info.ModTime())
	}
	if info, err := fs.Stat(fsys, "bin/run.sh"); err != nil || info.Mode() != 0o755 {
		t.Errorf("Stat(bin/run.sh) = %v, %v; want mode 0755", info, err)
	}
	if info, err := fs.Stat(fsys, "web"); err != nil || !info.IsDir() {
		t.Errorf("Stat(web) = %v, %v; want a directory", info, err)
	}
	if info, err := fs.Stat(fsys, "current"); err != nil || !info.IsDir() || info.Name() != "current" {
		t.Errorf("Stat(current) = %v, %v; want the directory it links to, named current", info, err)
	}
	if info, err := fs.Lstat(fsys, "current"); err != nil || info.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(current) = %v, %v; want a symlink", info, err)
	}
	if target, err := fs.ReadLink(fsys, "web/app.env"); err != nil || target != "../shared/app.env" {
		t.Errorf("ReadLink(web/app.env) = %q, %v", target, err)
	}
}

func TestTreeFSMissingAndInvalid(t *testing.T) {
	r, _ := fixtureRepo(t)
	fsys, _ := openTreeFS(t, r, "HEAD")
	for _, name := range []string{"nope", "web/nope.yaml", "README.md/x", "nope/compose.yaml"} {
		if _, err := fsys.Open(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%s): err = %v, want fs.ErrNotExist", name, err)
		}
		if _, err := fs.ReadFile(fsys, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s): err = %v, want fs.ErrNotExist", name, err)
		}
		if _, err := fs.Stat(fsys, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s): err = %v, want fs.ErrNotExist", name, err)
		}
		var pe *fs.PathError
		if _, err := fs.ReadDir(fsys, name); !errors.As(err, &pe) || pe.Path != name {
			t.Errorf("ReadDir(%s): err = %v, want a *fs.PathError naming the path", name, err)
		}
	}
	for _, name := range []string{"/web", "../x", "web/", "./web", ""} {
		if _, err := fsys.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q): err = %v, want fs.ErrInvalid", name, err)
		}
	}
	if _, err := fs.ReadFile(fsys, "web"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if _, err := fs.ReadDir(fsys, "web/compose.yaml"); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
}

func TestTreeFSFSTest(t *testing.T) {
	r, _ := fixtureRepo(t)
	fsys, _ := openTreeFS(t, r, "HEAD")
	err := fstest.TestFS(fsys,
		"README.md", "web/compose.yaml", "web/app.env", "db/compose.yaml", "shared/app.env", "bin/run.sh", "current")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := fs.Sub(fsys, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "compose.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestTreeFSSymlinksOutsideTheTree(t *testing.T) {
	r := gittest.New(t)
	r.Write(map[string]string{"web/compose.yaml": webV1})
	r.Symlink("web/passwd", "/etc/passwd")
	r.Symlink("web/up", "../../outside")
	r.Symlink("loop", "loop")
	r.Commit("links")
	fsys, _ := openTreeFS(t, r, "HEAD")
	for _, name := range []string{"web/passwd", "web/up"} {
		_, err := fs.ReadFile(fsys, name)
		if !errors.Is(err, errSymlinkEscapes) {
			t.Errorf("ReadFile(%s): err = %v, want it refused as outside the repository", name, err)
		}
	}
	if _, err := fs.ReadFile(fsys, "loop"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("ReadFile(loop): err = %v, want too many levels of symbolic links", err)
	}
	if info, err := fs.Lstat(fsys, "web/passwd"); err != nil || info.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(web/passwd) = %v, %v; want the link itself", info, err)
	}
}

// LoadStacks reads one TreeFS from several goroutines; go-git's storage alone would
// race (run with -race).
func TestTreeFSConcurrentReads(t *testing.T) {
	r, _ := fixtureRepo(t)
	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rev := []string{"HEAD", "HEAD~1", "v1", "dev"}[i%4]
			fsys, _, err := repo.TreeFS(rev)
			if err != nil {
				t.Error(err)
				return
			}
			for range 20 {
				if _, err := fs.ReadFile(fsys, "web/compose.yaml"); err != nil {
					t.Error(err)
				}
				if _, err := fs.ReadDir(fsys, "."); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
