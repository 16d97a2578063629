package main

import (
	"strings"
	"testing"

	"github.com/berthd/berth/internal/gittest"
)

// commit is one commit of a test repository: files to write (path -> content) and
// files to delete (content nil).
type commit struct {
	message string
	files   map[string]*string
}

func text(s string) *string { return &s }

// newTestRepo builds a repository, one commit per entry, and returns its directory and
// the commits' SHAs.
func newTestRepo(t *testing.T, commits ...commit) (string, []string) {
	t.Helper()
	repo := gittest.New(t)
	var shas []string
	for _, c := range commits {
		files := make(map[string]string, len(c.files))
		for name, content := range c.files {
			files[name] = "" // gittest removes files written empty
			if content != nil {
				files[name] = *content
			}
		}
		repo.Write(files)
		shas = append(shas, repo.Commit(c.message).String())
	}
	return repo.Dir, shas
}

// The history the repository tests share: web changes, db goes, cache comes.
var repoHistory = []commit{
	{
		message: "web and db",
		files: map[string]*string{
			"README.md": text("stacks of a test cluster\n"),
			"stacks/web/compose.yaml": text(`services:
  api:
    image: nginx:1.25-alpine
    networks: [front]
    deploy:
      replicas: 3
networks:
  front:
    driver: overlay
  old:
    driver: overlay
`),
			"stacks/db/compose.yaml": text(`services:
  postgres:
    image: postgres:16
    deploy:
      placement:
        constraints: [node.labels.os == linux]
`),
		},
	},
	{
		message: "web: nginx 1.27, 5 replicas, a worker",
		files: map[string]*string{
			"stacks/web/compose.yaml": text(`services:
  api:
    image: nginx:1.27-alpine
    networks: [front]
    deploy:
      replicas: 5
  worker:
    image: busybox:1.36
    command: ["sleep", "3600"]
    networks: [front]
networks:
  front:
    driver: overlay
`),
		},
	},
	{
		message: "replace db with cache",
		files: map[string]*string{
			"stacks/db/compose.yaml": nil,
			"stacks/cache/compose.yaml": text(`services:
  redis:
    image: redis:7-alpine
`),
		},
	},
}

func TestRepo(t *testing.T) {
	dir, shas := newTestRepo(t, repoHistory...)
	first, second, head := shas[0], shas[1], shas[2]

	tests := []struct {
		name           string
		args           []string
		code           int
		golden         string
		stdout, stderr []string
	}{
		{
			name: "validate HEAD",
			args: []string{"validate", "--repo", dir, "--path", "stacks"},
			stdout: []string{
				`^stack cache: valid \(1 service, 1 network\)$`,
				`^stack web: valid \(2 services, 1 network\)$`,
				`^2 stacks valid at HEAD \(` + head[:12] + `\)$`,
			},
		},
		{
			name: "validate an older revision",
			args: []string{"validate", "--repo", dir, "--path", "/stacks/", "--rev", first},
			stdout: []string{
				`^stack db: valid \(1 service, 1 network\)$`,
				`^stack web: valid \(1 service, 2 networks\)$`,
				`^2 stacks valid at ` + first[:12] + `$`,
			},
		},
		{
			name:   "validate a path without stacks",
			args:   []string{"validate", "--repo", dir, "--path", "nothing-here"},
			code:   2,
			stderr: []string{`^berth: `},
		},
		{
			name:   "validate an unknown revision",
			args:   []string{"validate", "--repo", dir, "--rev", "no-such-branch"},
			code:   2,
			stderr: []string{`^berth: revision no-such-branch: .*no-such-branch`},
		},
		{
			name:   "validate not a repository",
			args:   []string{"validate", "--repo", t.TempDir()},
			code:   2,
			stderr: []string{`^berth: open repository `},
		},
		{
			name:   "diff two revisions",
			args:   []string{"diff", "--repo", dir, "--path", "stacks", "--from", first, "--to", second},
			code:   1,
			golden: "diff_repo",
		},
		{
			name:   "diff against HEAD json",
			args:   []string{"diff", "--repo", dir, "--path", "stacks", "--from", first, "-o", "json"},
			code:   1,
			golden: "diff_repo_json",
		},
		{
			name:   "diff relative revision",
			args:   []string{"diff", "--repo", dir, "--path", "stacks", "--from", "HEAD~1"},
			code:   1,
			stdout: []string{`^stack cache \(new\)$`, `^stack db \(removed\)$`},
		},
		{
			name:   "diff in sync",
			args:   []string{"diff", "--repo", dir, "--path", "stacks", "--from", head, "--to", "HEAD"},
			stdout: []string{`^No differences\.$`},
		},
		{
			name:   "diff needs --from",
			args:   []string{"diff", "--repo", dir},
			code:   2,
			stderr: []string{`^berth: --repo needs --from REV`},
		},
		{
			name:   "diff unknown revision",
			args:   []string{"diff", "--repo", dir, "--path", "stacks", "--from", "v9.9.9"},
			code:   2,
			stderr: []string{`^berth: revision v9.9.9: `},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBerth(t, "", tt.args...)
			if r.code != tt.code {
				t.Fatalf("berth %s: got exit %d, want %d\n%s", strings.Join(tt.args, " "), r.code, tt.code, r)
			}
			if tt.golden != "" {
				checkGolden(t, tt.golden, r.stdout)
			}
			matchLines(t, "stdout", r.stdout, tt.stdout)
			matchLines(t, "stderr", r.stderr, tt.stderr)
		})
	}
}

func TestRepoInvalidRevision(t *testing.T) {
	history := append(repoHistory[:len(repoHistory):len(repoHistory)], commit{
		message: "break two stacks",
		files: map[string]*string{
			"stacks/web/compose.yaml": text(`services:
  api:
    image: nginx:1.27-alpine
    deploy:
      mode: globl
`),
			"stacks/cache/compose.yaml": text(`services:
  redis:
    image: redis:7-alpine
    deploy:
      placement:
        constraints: [node.lables.os == linux]
`),
		},
	})
	dir, shas := newTestRepo(t, history...)

	// Every problem of every stack of the revision, in one run.
	r := runBerth(t, "", "validate", "--repo", dir, "--path", "stacks")
	if r.code != 2 {
		t.Fatalf("got exit %d, want 2\n%s", r.code, r)
	}
	matchLines(t, "stderr", r.stderr, []string{
		`^berth: revision HEAD \(` + shas[3][:12] + `\)`,
		`^error: stacks/web/compose\.yaml: stack web, service api, deploy\.mode: `,
		`^error: stacks/cache/compose\.yaml: stack cache, service redis, deploy\.placement\.constraints\[0\]: `,
	})

	// The previous revision is still fine, and a diff to the broken one is an error, not
	// a difference.
	if r := runBerth(t, "", "validate", "--repo", dir, "--path", "stacks", "--rev", "HEAD~1"); r.code != 0 {
		t.Errorf("HEAD~1: got exit %d, want 0\n%s", r.code, r)
	}
	if r := runBerth(t, "", "diff", "--repo", dir, "--path", "stacks", "--from", "HEAD~1"); r.code != 2 {
		t.Errorf("diff to an invalid revision: got exit %d, want 2\n%s", r.code, r)
	}
}
