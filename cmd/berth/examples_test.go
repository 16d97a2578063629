package main

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api/plantext"
)

// examplesDir is the repository's examples/ folder, seen from this package.
const examplesDir = "../../examples"

// TestExamples validates every example as a user would, through the CLI: each on its own
// with -c, and all together from a Git repository by folder discovery.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d examples, want at least 6: %v", len(files), files)
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			r := runBerth(t, "", "validate", "-c", file)
			if r.code != 0 {
				t.Fatalf("got exit %d, want 0\n%s", r.code, r)
			}
			// Examples are what users copy: they must not teach anything berth warns about.
			if r.stderr != "" {
				t.Errorf("unexpected warnings:\n%s", r.stderr)
			}
		})
	}

	t.Run("repository", func(t *testing.T) {
		c := commit{message: "examples", files: map[string]*string{}}
		err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			content, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(examplesDir, p)
			if err != nil {
				return err
			}
			c.files[path.Join("examples", filepath.ToSlash(rel))] = text(string(content))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		dir, _ := newTestRepo(t, c)
		r := runBerth(t, "", "validate", "--repo", dir, "--path", "examples")
		if r.code != 0 {
			t.Fatalf("got exit %d, want 0\n%s", r.code, r)
		}
		if want := len(files); !strings.Contains(r.stdout, plantext.Plural(want, "stack", "stacks")+" valid") {
			t.Errorf("want %d stacks discovered:\n%s", want, r.stdout)
		}
	})

	t.Run("web previous version", func(t *testing.T) {
		// make demo shows this diff; it must stay a difference, not an error.
		r := runBerth(t, "", "diff", "-c", filepath.Join(examplesDir, "web", "compose.yaml"),
			"--against", filepath.Join(examplesDir, "web", "compose.previous.yaml"))
		if r.code != 1 {
			t.Fatalf("got exit %d, want 1\n%s", r.code, r)
		}
		if !strings.Contains(r.stdout, "stack web (changed)") {
			t.Errorf("stack not named after its folder:\n%s", r.stdout)
		}
	})
}
