package applier

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/spec"
)

const (
	// webInterpolated takes its tag from web/.env, or from the environment, which wins.
	webInterpolated = "services:\n  app:\n    image: nginx:${WEB_TAG}\n    deploy:\n      replicas: 2\n"
	// dbWithSecret reads a secret file relative to the stack's folder, through the FS.
	dbWithSecret = `services:
  postgres:
    image: postgres:17
    secrets: [pw]
secrets:
  pw:
    file: ./pw.txt
`
	// globl is a typo compose-go accepts and berth's validation must catch.
	webInvalid = "services:\n  app:\n    image: nginx:1.27\n    deploy:\n      mode: globl\n"
	dbInvalid  = "services:\n  postgres:\n    image: postgres:17\n    deploy:\n      mode: globl\n"
)

// loadFixture builds main: web 1.26 + db -> web 1.27 (the branch "broken" has both
// stacks invalid).
func loadFixture(t *testing.T) *Repository {
	t.Helper()
	r := gittest.New(t)
	r.Write(map[string]string{
		"web/compose.yaml": webInterpolated,
		"web/.env":         "WEB_TAG=1.26\n",
		"db/compose.yaml":  dbWithSecret,
		"db/pw.txt":        "s3cret\n",
		"README.md":        "two stacks\n",
	})
	r.Commit("web and db")
	r.Write(map[string]string{"web/.env": "WEB_TAG=1.27\n"})
	main := r.Commit("bump web")
	r.Write(map[string]string{"web/compose.yaml": webInvalid, "db/compose.yaml": dbInvalid})
	r.Branch("broken", r.Commit("break both"))
	// The work tree now holds the broken commit; main must not move with it.
	r.Branch("main", main)

	repo, err := OpenRepository(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	closeRepo(t, repo)
	return repo
}

func loadRevision(t *testing.T, repo *Repository, rev string, env map[string]string) (*LoadedStacks, error) {
	t.Helper()
	fsys, _, err := repo.TreeFS(rev)
	if err != nil {
		t.Fatal(err)
	}
	return LoadStacks(context.Background(), fsys, ".", env)
}

func stackNamesOf(stacks []*spec.Stack) []string {
	var names []string
	for _, s := range stacks {
		names = append(names, s.Name)
	}
	return names
}

func TestLoadStacks(t *testing.T) {
	repo := loadFixture(t)
	loaded, err := loadRevision(t, repo, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stackNamesOf(loaded.Stacks); !slices.Equal(got, []string{"db", "web"}) {
		t.Fatalf("stacks = %q, want [db web]", got)
	}
	web := loaded.Stacks[1]
	if app := web.Services["app"]; app == nil || app.Image != "nginx:1.27" {
		t.Errorf("web's app = %+v, want image nginx:1.27 from web/.env", app)
	}
	db := loaded.Stacks[0]
	if pg := db.Services["postgres"]; pg == nil {
		t.Errorf("db has no postgres service: %+v", db.Services)
	}
	// ./pw.txt resolves against db/, the stack's folder, inside the revision's tree.
	if pw := db.Secrets["pw"]; pw == nil || string(pw.Data) != "s3cret\n" {
		t.Errorf("db's secret pw = %+v, want db/pw.txt's content", pw)
	}
	for _, w := range loaded.Warnings {
		if w.Stack == "" {
			t.Errorf("warning without a stack: %v", w)
		}
	}

	// The caller's environment wins over the .env file.
	loaded, err = loadRevision(t, repo, "main", map[string]string{"WEB_TAG": "1.28"})
	if err != nil {
		t.Fatal(err)
	}
	if app := loaded.Stacks[1].Services["app"]; app == nil || app.Image != "nginx:1.28" {
		t.Errorf("web's app = %+v, want image nginx:1.28 from the environment", app)
	}
}

func TestLoadStacksCollectsEveryStacksProblems(t *testing.T) {
	repo := loadFixture(t)
	loaded, err := loadRevision(t, repo, "broken", nil)
	if err == nil {
		t.Fatalf("loading two invalid stacks succeeded: %q", stackNamesOf(loaded.Stacks))
	}
	verr, ok := err.(*spec.ValidationError)
	if !ok {
		t.Fatalf("err = %T %v, want a *spec.ValidationError", err, err)
	}
	bad := map[string]bool{}
	for _, p := range verr.Problems {
		bad[p.Stack] = true
	}
	if !bad["web"] || !bad["db"] || len(bad) != 2 {
		t.Errorf("problems are about stacks %v, want db and web:\n%v", bad, verr)
	}
	// Stack order, so the report reads the same on every run.
	if verr.Problems[0].Stack != "db" {
		t.Errorf("first problem is about %q, want db (stacks are reported by name)", verr.Problems[0].Stack)
	}
}

func TestLoadStacksDiffAcrossCommits(t *testing.T) {
	repo := loadFixture(t)
	old, err := loadRevision(t, repo, "main~1", nil)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := loadRevision(t, repo, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	diffs := spec.DiffStacks(old.Stacks, cur.Stacks)
	if len(diffs) != 1 || diffs[0].Stack != "web" {
		t.Fatalf("diffs = %+v, want one, for web", diffs)
	}
	changed := diffs[0].Services
	if len(changed) != 1 || !strings.HasSuffix(changed[0].Name, "app") || changed[0].Action != spec.ActionChange ||
		!slices.ContainsFunc(changed[0].Fields, func(f spec.FieldChange) bool { return f.Path == "image" && f.New == "nginx:1.27" }) {
		t.Errorf("web's diff = %+v, want service app's image changed to nginx:1.27", diffs[0])
	}
	if d := spec.DiffStacks(cur.Stacks, cur.Stacks); len(d) != 0 {
		t.Errorf("a revision differs from itself: %+v", d)
	}
}

func TestLoadStacksPlainErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		dir   string
		want  []string
	}{
		{"no stacks", map[string]string{"docs/README.md": "x"}, "docs",
			[]string{"no stacks found at docs/", "compose.yaml", "berth.yaml"}},
		{"no stacks at root", map[string]string{"README.md": "x"}, "",
			[]string{"no stacks found at the repository root"}},
		{"duplicate names", map[string]string{"a/web/compose.yaml": webV1, "b/web/compose.yaml": webV1}, "",
			[]string{`stack "web"`}},
		{"bad berth.yaml", map[string]string{"berth.yaml": "stacks:\n  - nme: web\n"}, "",
			[]string{"berth.yaml", "line 2", `unknown field "nme"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadStacks(context.Background(), mapFS(tt.files), tt.dir, nil)
			assertErrorContains(t, err, tt.want...)
			var verr *spec.ValidationError
			if errors.As(err, &verr) {
				t.Errorf("err is a *spec.ValidationError; a layout problem is not a stack's")
			}
		})
	}
}

func TestLoadStacksUnreadableFile(t *testing.T) {
	fsys := mapFS(map[string]string{"web/compose.yaml": webV1})
	_, err := LoadStacks(context.Background(), failingFS{fsys, "web/compose.yaml"}, "", nil)
	assertErrorContains(t, err, `stack "web"`, "read web/compose.yaml", "disk on fire")
}

// failingFS fails to read one file, as a broken object store would.
type failingFS struct {
	fs.FS
	bad string
}

func (f failingFS) Open(name string) (fs.File, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("disk on fire")}
	}
	return f.FS.Open(name)
}

func TestLoadStacksCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := LoadStacks(ctx, mapFS(map[string]string{"web/compose.yaml": webV1}), "", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// Many stacks load concurrently; the result must not depend on which finished first.
func TestLoadStacksDeterministic(t *testing.T) {
	files := map[string]string{}
	for i := range 24 {
		files[fmt.Sprintf("s%02d/compose.yaml", i)] = strings.ReplaceAll(webV1, "app:", fmt.Sprintf("app%d:", i))
	}
	fsys := mapFS(files)
	first, err := LoadStacks(context.Background(), fsys, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	names := stackNamesOf(first.Stacks)
	if !slices.IsSorted(names) || len(names) != 24 {
		t.Fatalf("stacks = %q, want 24 sorted by name", names)
	}
	for range 5 {
		again, err := LoadStacks(context.Background(), fsys, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := stackNamesOf(again.Stacks); !slices.Equal(got, names) {
			t.Fatalf("stacks = %q, then %q", names, got)
		}
		if len(spec.DiffStacks(first.Stacks, again.Stacks)) != 0 {
			t.Fatal("two loads of the same files differ")
		}
	}
}

// A problem of a stack read from a repository names its file by the path inside the
// repository, also below a source's path.
func TestLoadStacksNamesFilesByRepositoryPath(t *testing.T) {
	for _, tt := range []struct {
		name, dir string
		files     map[string]string
		want      []string // the files of the problems, in order
	}{
		{name: "stacks at the root", dir: ".",
			files: map[string]string{"web/compose.yaml": webInvalid, "db/compose.yaml": dbInvalid},
			want:  []string{"db/compose.yaml", "web/compose.yaml"}},
		{name: "stacks below the source's path", dir: "deploy",
			files: map[string]string{"deploy/stacks/web/compose.yaml": webInvalid},
			want:  []string{"deploy/stacks/web/compose.yaml"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadStacks(context.Background(), mapFS(tt.files), tt.dir, nil)
			verr, ok := err.(*spec.ValidationError)
			if !ok {
				t.Fatalf("err = %T %v, want a *spec.ValidationError", err, err)
			}
			var got []string
			for _, p := range verr.Problems {
				got = append(got, p.File)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("files = %q, want %q:\n%v", got, tt.want, verr)
			}
		})
	}
}
