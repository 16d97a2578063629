package applier

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, content := range files {
		m[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return m
}

func TestDiscoverStacksByFolder(t *testing.T) {
	fsys := mapFS(map[string]string{
		"compose.yaml":                     webV1,
		"web/compose.yaml":                 webV1,
		"web/.env":                         "TAG=1\n",
		"infra/db/docker-compose.yml":      dbV1,
		"infra/Cache Layer!/stack.yml":     dbV1,
		"infra/README.md":                  "no stack here\n",
		".github/compose.yaml":             webV1, // hidden: tooling, not a stack
		"web/.hidden/compose.yaml":         webV1,
		"docs/compose.yaml/not-a-file.txt": "a folder named like a Compose file\n",
	})
	tests := []struct {
		dir  string
		want []StackSource
	}{
		{"", []StackSource{
			{Name: "cachelayer", Dir: "infra/Cache Layer!", Files: []string{"infra/Cache Layer!/stack.yml"}},
			{Name: "db", Dir: "infra/db", Files: []string{"infra/db/docker-compose.yml"}},
			{Name: "default", Dir: ".", Files: []string{"compose.yaml"}},
			{Name: "web", Dir: "web", Files: []string{"web/compose.yaml"}, EnvFiles: []string{"web/.env"}},
		}},
		{"infra", []StackSource{
			{Name: "cachelayer", Dir: "infra/Cache Layer!", Files: []string{"infra/Cache Layer!/stack.yml"}},
			{Name: "db", Dir: "infra/db", Files: []string{"infra/db/docker-compose.yml"}},
		}},
		{"/infra/db/", []StackSource{
			{Name: "db", Dir: "infra/db", Files: []string{"infra/db/docker-compose.yml"}},
		}},
		{"docs", nil},
	}
	for _, tt := range tests {
		got, err := DiscoverStacks(fsys, tt.dir)
		if err != nil {
			t.Errorf("DiscoverStacks(%q): %v", tt.dir, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DiscoverStacks(%q) =\n%+v\nwant\n%+v", tt.dir, got, tt.want)
		}
	}
}

func TestDiscoverStacksErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		dir   string
		want  []string
	}{
		{"two compose files", map[string]string{"api/compose.yaml": webV1, "api/stack.yml": webV1},
			"", []string{"folder api", "holds compose.yaml and stack.yml", "keep one"}},
		{"same name twice", map[string]string{"a/web/compose.yaml": webV1, "b/Web/compose.yml": webV1},
			"", []string{"a/web and b/Web", `stack "web"`, "berth.yaml"}},
		{"missing dir", map[string]string{"web/compose.yaml": webV1},
			"stacks", []string{`source path "stacks"`, "no such directory"}},
		{"dir is a file", map[string]string{"web/compose.yaml": webV1},
			"web/compose.yaml", []string{"not a directory"}},
		{"outside", map[string]string{"web/compose.yaml": webV1},
			"../x", []string{"not a path inside the repository"}},
		{"berth.yml", map[string]string{"berth.yml": "stacks: []\n", "web/compose.yaml": webV1},
			"", []string{"berth.yml", "rename"}},
		{"unnamable folder", map[string]string{"___/compose.yaml": webV1},
			"", []string{"folder ___", "rename the folder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DiscoverStacks(mapFS(tt.files), tt.dir)
			assertErrorContains(t, err, tt.want...)
		})
	}
}

func assertErrorContains(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestDiscoverStacksBerthYAML(t *testing.T) {
	fsys := mapFS(map[string]string{
		"stacks/berth.yaml": `# the stacks of this repository
stacks:
  - name: web
    files: [web/compose.yml, web/prod.yml]
    env_files: [web/.env, common.env]
    depends_on: [db, cache]
  - name: db
    dir: database
  - name: cache
  - name: api
    files: api/stack.yml
    dir: api/run
    env_files: []
`,
		"stacks/web/compose.yml":          webV1,
		"stacks/web/prod.yml":             webV2,
		"stacks/web/.env":                 "A=1\n",
		"stacks/common.env":               "B=2\n",
		"stacks/database/compose.yaml":    dbV1,
		"stacks/database/.env":            "C=3\n",
		"stacks/cache/docker-compose.yml": dbV1,
		"stacks/api/stack.yml":            webV1,
		"stacks/api/run/.env":             "not read: env_files is []\n",
		"stacks/ignored/compose.yaml":     webV1, // berth.yaml lists the stacks: no discovery
	})
	got, err := DiscoverStacks(fsys, "stacks")
	if err != nil {
		t.Fatal(err)
	}
	want := []StackSource{
		{Name: "api", Dir: "stacks/api/run", Files: []string{"stacks/api/stack.yml"}},
		{Name: "cache", Dir: "stacks/cache", Files: []string{"stacks/cache/docker-compose.yml"}},
		{Name: "db", Dir: "stacks/database", Files: []string{"stacks/database/compose.yaml"}, EnvFiles: []string{"stacks/database/.env"}},
		{Name: "web", Dir: "stacks/web", Files: []string{"stacks/web/compose.yml", "stacks/web/prod.yml"},
			EnvFiles: []string{"stacks/web/.env", "stacks/common.env"}, DependsOn: []string{"db", "cache"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DiscoverStacks =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDiscoverStacksBerthYAMLErrors(t *testing.T) {
	files := map[string]string{
		"web/compose.yaml": webV1,
		"db/compose.yaml":  dbV1,
	}
	tests := []struct {
		name  string
		yaml  string
		extra map[string]string
		want  []string
	}{
		{"unknown field", "stacks:\n  - name: web\n    flies: [web/compose.yaml]\n",
			nil, []string{"berth.yaml", "line 3", `unknown field "flies"`, "known: name, files, dir, env_files, depends_on"}},
		{"unknown top-level field", "stack:\n  - name: web\n",
			nil, []string{"line 1", `unknown field "stack"`, "known: stacks"}},
		{"duplicate names", "stacks:\n  - name: web\n  - name: db\n  - name: web\n",
			nil, []string{"berth.yaml:4", `stack "web" is listed twice`, "first at line 2"}},
		{"missing file", "stacks:\n  - name: web\n    files: [web/compose.yaml, web/prod.yml]\n",
			nil, []string{"berth.yaml:2", `stack "web"`, "file web/prod.yml not found"}},
		{"missing env file", "stacks:\n  - name: web\n    env_files: [web/.env]\n",
			nil, []string{`stack "web"`, "env file web/.env not found"}},
		{"cycle", "stacks:\n  - name: web\n    depends_on: [db]\n  - name: db\n    depends_on: [web]\n",
			nil, []string{"cycle", "db -> web -> db"}},
		{"unknown dependency", "stacks:\n  - name: web\n    depends_on: [cache]\n",
			nil, []string{`stack "web" depends on "cache"`, "stacks: web"}},
		{"self dependency", "stacks:\n  - name: web\n    depends_on: [web]\n",
			nil, []string{"depends on itself"}},
		{"invalid name", "stacks:\n  - name: Web App\n    dir: web\n",
			nil, []string{`stack "Web App": invalid name`, `e.g. "webapp"`}},
		{"no name", "stacks:\n  - dir: web\n",
			nil, []string{"stacks[0]: name is required"}},
		{"no files and no folder", "stacks:\n  - name: cache\n",
			nil, []string{`stack "cache"`, "no folder cache", "set files"}},
		{"no compose file in dir", "stacks:\n  - name: web\n    dir: docs\n",
			map[string]string{"docs/README.md": "x"}, []string{"no Compose file in docs", "set files"}},
		{"escaping path", "stacks:\n  - name: web\n    files: [../web/compose.yaml]\n",
			nil, []string{`file "../web/compose.yaml" is not a path inside the repository`}},
		{"empty", "", nil, []string{"berth.yaml is empty"}},
		{"no stacks", "stacks: []\n", nil, []string{"lists no stacks"}},
		{"not a mapping", "- name: web\n", nil, []string{"berth.yaml", "line 1", "a mapping with `stacks:`"}},
		{"two documents", "stacks:\n  - name: web\n---\nstacks:\n  - name: db\n", nil, []string{"more than one YAML document"}},
		{"all problems at once", "stacks:\n  - name: web\n    files: [nope.yml]\n  - name: db\n    depends_on: [cache]\n",
			nil, []string{"nope.yml not found", `depends on "cache"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]string{"berth.yaml": tt.yaml}
			for k, v := range files {
				m[k] = v
			}
			for k, v := range tt.extra {
				m[k] = v
			}
			_, err := DiscoverStacks(mapFS(m), ".")
			assertErrorContains(t, err, tt.want...)
		})
	}
}
