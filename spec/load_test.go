package spec_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/berthd/berth/spec"
)

// testStack is the stack name every test loads under; object names are "app_<key>".
const testStack = "app"

// composeOpts builds LoadOptions for testStack from in-memory Compose files, merged in
// the order given, with an empty (not the host's) environment.
func composeOpts(files ...string) spec.LoadOptions {
	o := spec.LoadOptions{Stack: testStack, Environment: map[string]string{}}
	for i, f := range files {
		name := "compose.yml"
		if i > 0 {
			name = fmt.Sprintf("compose.override%d.yml", i)
		}
		o.Files = append(o.Files, spec.File{Name: name, Content: []byte(f)})
	}
	return o
}

func tryLoad(t *testing.T, o spec.LoadOptions) (*spec.Stack, []spec.Warning, error) {
	t.Helper()
	return spec.Load(t.Context(), o)
}

// mustLoad fails the test unless o loads cleanly.
func mustLoad(t *testing.T, o spec.LoadOptions) (*spec.Stack, []spec.Warning) {
	t.Helper()
	st, warns, err := tryLoad(t, o)
	if err != nil {
		t.Fatalf("Load: unexpected error: %v", err)
	}
	if st == nil {
		t.Fatal("Load returned neither a stack nor an error")
	}
	return st, warns
}

// mustFail fails the test unless o is refused with a *spec.ValidationError.
func mustFail(t *testing.T, o spec.LoadOptions) (*spec.ValidationError, []spec.Warning) {
	t.Helper()
	st, warns, err := tryLoad(t, o)
	if err == nil {
		t.Fatalf("Load succeeded, want a validation error; stack: %s", mustJSON(t, st))
	}
	if st != nil {
		t.Errorf("Load returned a stack together with error %v", err)
	}
	var ve *spec.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *spec.ValidationError", err, err)
	}
	if len(ve.Problems) == 0 {
		t.Fatal("ValidationError without problems")
	}
	return ve, warns
}

// want locates one expected problem: Service and Field must match exactly, Text must be
// part of the problem's String() (message and fix).
type want struct {
	Service, Field, Text string
}

func (w want) String() string {
	return fmt.Sprintf("service=%q field=%q text=%q", w.Service, w.Field, w.Text)
}

func findProblem(ps []spec.Problem, w want) bool {
	for _, p := range ps {
		if p.Service == w.Service && p.Field == w.Field && strings.Contains(p.String(), w.Text) {
			return true
		}
	}
	return false
}

func requireProblems(t *testing.T, kind string, got []spec.Problem, wants []want) {
	t.Helper()
	for _, w := range wants {
		if !findProblem(got, w) {
			t.Errorf("no %s matching %v; got:\n%s", kind, w, listProblems(got))
		}
	}
}

func listProblems(ps []spec.Problem) string {
	if len(ps) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  - [%s|%s] %s\n", p.Service, p.Field, p.String())
	}
	return b.String()
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// requireEqual compares with reflect.DeepEqual and shows both sides as JSON, which reads
// far better than %#v for nested pointers.
func requireEqual(t *testing.T, what string, got, wantV any) {
	t.Helper()
	if !reflect.DeepEqual(got, wantV) {
		t.Errorf("%s:\n got: %s\nwant: %s", what, mustJSON(t, got), mustJSON(t, wantV))
	}
}

func ptrTo[T any](v T) *T { return &v }

func dur(d time.Duration) *spec.Duration { return ptrTo(spec.Duration(d)) }

func service(t *testing.T, st *spec.Stack, name string) *spec.Service {
	t.Helper()
	s, ok := st.Services[name]
	if !ok {
		t.Fatalf("stack has no service %q; services: %v", name, slices.Sorted(maps.Keys(st.Services)))
	}
	return s
}

// problemCase is one input for Load and what must come out of it.
type problemCase struct {
	name       string
	files      []string          // Compose files, merged in order
	env        map[string]string // LoadOptions.Environment
	envFiles   []string          // LoadOptions.EnvFiles, in order
	fsys       fstest.MapFS      // LoadOptions.FS (nil: no FS)
	workingDir string
	errs       []want // nil: Load must succeed
	warns      []want // each must be among the warnings
	noWarnings bool   // the load must give no warning at all
	check      func(t *testing.T, st *spec.Stack)
}

func (c problemCase) opts() spec.LoadOptions {
	o := composeOpts(c.files...)
	if c.env != nil {
		o.Environment = c.env
	}
	for i, f := range c.envFiles {
		o.EnvFiles = append(o.EnvFiles, spec.File{Name: fmt.Sprintf("env%d.env", i), Content: []byte(f)})
	}
	if c.fsys != nil {
		o.FS = c.fsys
	}
	o.WorkingDir = c.workingDir
	return o
}

func runProblemCases(t *testing.T, cases []problemCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var warns []spec.Warning
			if c.errs == nil {
				var st *spec.Stack
				st, warns = mustLoad(t, c.opts())
				if c.check != nil {
					c.check(t, st)
				}
			} else {
				var ve *spec.ValidationError
				ve, warns = mustFail(t, c.opts())
				requireProblems(t, "error", ve.Problems, c.errs)
			}
			requireProblems(t, "warning", warns, c.warns)
			if c.noWarnings && len(warns) > 0 {
				t.Errorf("want no warnings, got:\n%s", listProblems(warns))
			}
		})
	}
}

func TestLoadMergesFilesInOrder(t *testing.T) {
	const base = `
services:
  web:
    image: nginx:1.26
    command: ["a", "b"]
    environment: {A: "1", B: "2"}
    cap_add: [NET_ADMIN]
    ports: ["80:80"]
    volumes: ["/a:/a", "/b:/b"]
    networks: [front]
    secrets: [s1]
    deploy:
      replicas: 2
      labels: {kept: "yes"}
      placement: {constraints: ["node.role == worker"]}
networks: {front: {}, back: {}}
secrets: {s1: {external: true}, s2: {external: true}}
`
	const override = `
services:
  web:
    image: nginx:1.27
    command: ["c"]
    environment: {B: "3", C: "4"}
    cap_add: [SYS_TIME]
    ports: ["443:443"]
    volumes: ["/c:/b"]
    networks: [back]
    secrets: [s2]
    deploy:
      replicas: 5
      placement: {constraints: ["node.labels.os == linux"]}
  extra:
    image: busybox
`
	t.Run("later file overrides scalars and merges lists", func(t *testing.T) {
		st, _ := mustLoad(t, composeOpts(base, override))
		web := service(t, st, "web")
		if web.Image != "nginx:1.27" {
			t.Errorf("image = %q, want the override's nginx:1.27", web.Image)
		}
		if web.Deploy.Replicas == nil || *web.Deploy.Replicas != 5 {
			t.Errorf("replicas = %v, want the override's 5", web.Deploy.Replicas)
		}
		// Compose replaces command as a whole, merges maps key by key, unions sets and
		// merges volumes by target.
		requireEqual(t, "command", web.Command, []string{"c"})
		requireEqual(t, "environment", web.Environment, map[string]string{"A": "1", "B": "3", "C": "4"})
		requireEqual(t, "cap_add", web.CapAdd, []string{"NET_ADMIN", "SYS_TIME"})
		requireEqual(t, "deploy.labels", web.Deploy.Labels, map[string]string{"kept": "yes"})
		requireEqual(t, "constraints", web.Deploy.Placement.Constraints, []string{"node.labels.os == linux", "node.role == worker"})
		requireEqual(t, "ports", web.Ports, []spec.Port{
			{Target: 80, Published: 80, Protocol: "tcp", Mode: "ingress"},
			{Target: 443, Published: 443, Protocol: "tcp", Mode: "ingress"},
		})
		requireEqual(t, "mounts", web.Mounts, []spec.Mount{
			{Type: "bind", Source: "/a", Target: "/a"},
			{Type: "bind", Source: "/c", Target: "/b"},
		})
		requireEqual(t, "networks", web.Networks, []spec.ServiceNetwork{{Name: "back"}, {Name: "front"}})
		requireEqual(t, "secrets", web.Secrets, []spec.FileReference{
			{Source: "s1", Target: "/run/secrets/s1"},
			{Source: "s2", Target: "/run/secrets/s2"},
		})
		if _, ok := st.Services["extra"]; !ok {
			t.Error("service added by the override file is missing")
		}
	})

	t.Run("order decides the winner", func(t *testing.T) {
		st, _ := mustLoad(t, composeOpts(override, base))
		web := service(t, st, "web")
		if web.Image != "nginx:1.26" || web.Deploy.Replicas == nil || *web.Deploy.Replicas != 2 {
			t.Errorf("with the base file last, got image %q replicas %v; want nginx:1.26 and 2", web.Image, web.Deploy.Replicas)
		}
		requireEqual(t, "command", web.Command, []string{"a", "b"})
	})
}

func TestLoadInterpolation(t *testing.T) {
	const imageFile = "services:\n  web:\n    image: nginx:${TAG}\n"
	imageIs := func(image string) func(t *testing.T, st *spec.Stack) {
		return func(t *testing.T, st *spec.Stack) {
			t.Helper()
			if got := service(t, st, "web").Image; got != image {
				t.Errorf("image = %q, want %q", got, image)
			}
		}
	}
	runProblemCases(t, []problemCase{
		{
			name: "variable from Environment", files: []string{imageFile},
			env: map[string]string{"TAG": "1.27"}, noWarnings: true, check: imageIs("nginx:1.27"),
		},
		{
			name: "variable from an env file", files: []string{imageFile},
			envFiles: []string{"TAG=1.25\n"}, noWarnings: true, check: imageIs("nginx:1.25"),
		},
		{
			name: "later env file wins", files: []string{imageFile},
			envFiles: []string{"TAG=1.25\n", "# comment\nTAG=1.26\n"}, noWarnings: true, check: imageIs("nginx:1.26"),
		},
		{
			name: "Environment wins over env files", files: []string{imageFile},
			env: map[string]string{"TAG": "1.27"}, envFiles: []string{"TAG=1.25\n"}, noWarnings: true, check: imageIs("nginx:1.27"),
		},
		{
			name: "env file refers to Environment", files: []string{imageFile},
			env: map[string]string{"BASE": "1.27"}, envFiles: []string{"TAG=${BASE}-alpine\n"}, check: imageIs("nginx:1.27-alpine"),
		},
		{
			name: "default used when unset", files: []string{"services:\n  web:\n    image: nginx:${TAG:-1.24}\n"},
			noWarnings: true, check: imageIs("nginx:1.24"),
		},
		{
			name: "default not used when set", files: []string{"services:\n  web:\n    image: nginx:${TAG:-1.24}\n"},
			env: map[string]string{"TAG": "1.27"}, noWarnings: true, check: imageIs("nginx:1.27"),
		},
		{
			name: "missing variable warns and names it", files: []string{"services:\n  web:\n    image: nginx${TAG}\n"},
			warns: []want{{"", "", "variable TAG is not set"}, {"", "", "${TAG:-value}"}}, check: imageIs("nginx"),
		},
		{
			name: "unbraced missing variable warns too", files: []string{"services:\n  web:\n    image: nginx\n    command: [\"echo\", \"$GREETING\"]\n"},
			warns: []want{{"", "", "variable GREETING is not set"}},
		},
		{
			name:       "$$ escapes a dollar without warning",
			files:      []string{"services:\n  web:\n    image: nginx\n    command: [\"sh\", \"-c\", \"echo $$HOME $${USER}\"]\n"},
			noWarnings: true,
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "command", service(t, st, "web").Command, []string{"sh", "-c", "echo $HOME ${USER}"})
			},
		},
	})

	t.Run("broken env file is an error naming it", func(t *testing.T) {
		o := composeOpts(imageFile)
		o.EnvFiles = []spec.File{{Name: "prod.env", Content: []byte("NOT A VALID LINE\n")}}
		_, _, err := tryLoad(t, o)
		if err == nil || !strings.Contains(err.Error(), "prod.env") {
			t.Fatalf("err = %v, want an error naming prod.env", err)
		}
	})

	t.Run("variable nested in a default warns when unset", func(t *testing.T) {
		_, warns := mustLoad(t, composeOpts("services:\n  web:\n    image: nginx${TAG:-${FALLBACK_TAG}}\n"))
		requireProblems(t, "warning", warns, []want{{"", "", "variable FALLBACK_TAG is not set"}})
	})
}

func TestLoadServiceEnvironment(t *testing.T) {
	envIs := func(wantEnv map[string]string) func(t *testing.T, st *spec.Stack) {
		return func(t *testing.T, st *spec.Stack) {
			t.Helper()
			requireEqual(t, "environment", service(t, st, "web").Environment, wantEnv)
		}
	}
	runProblemCases(t, []problemCase{
		{
			name:       "env_file relative to WorkingDir",
			files:      []string{"services:\n  web:\n    image: nginx\n    env_file: app.env\n"},
			workingDir: "stacks/web",
			fsys:       fstest.MapFS{"stacks/web/app.env": {Data: []byte("A=1\nB=two words\n")}},
			noWarnings: true,
			check:      envIs(map[string]string{"A": "1", "B": "two words"}),
		},
		{
			name:       "later env_file wins and environment wins over env_file",
			files:      []string{"services:\n  web:\n    image: nginx\n    env_file: [a.env, b.env]\n    environment: {A: x}\n"},
			fsys:       fstest.MapFS{"a.env": {Data: []byte("A=1\nB=1\nC=1\n")}, "b.env": {Data: []byte("B=2\n")}},
			noWarnings: true,
			check:      envIs(map[string]string{"A": "x", "B": "2", "C": "1"}),
		},
		{
			name:       "absolute env_file path is looked up from the FS root",
			files:      []string{"services:\n  web:\n    image: nginx\n    env_file: /shared/common.env\n"},
			workingDir: "stacks/web",
			fsys:       fstest.MapFS{"shared/common.env": {Data: []byte("COMMON=1\n")}},
			check:      envIs(map[string]string{"COMMON": "1"}),
		},
		{
			name:  "env_file values interpolate from Environment",
			files: []string{"services:\n  web:\n    image: nginx\n    env_file: app.env\n"},
			env:   map[string]string{"HOST": "db"},
			fsys:  fstest.MapFS{"app.env": {Data: []byte("URL=http://${HOST}:5432\n")}},
			check: envIs(map[string]string{"URL": "http://db:5432"}),
		},
		{
			name:       "entry without value taken from Environment",
			files:      []string{"services:\n  web:\n    image: nginx\n    environment: [LOG_LEVEL, MODE=prod]\n"},
			env:        map[string]string{"LOG_LEVEL": "debug"},
			noWarnings: true,
			check:      envIs(map[string]string{"LOG_LEVEL": "debug", "MODE": "prod"}),
		},
		{
			name:       "entry without value kept from env_file",
			files:      []string{"services:\n  web:\n    image: nginx\n    env_file: app.env\n    environment: [FROM_FILE]\n"},
			fsys:       fstest.MapFS{"app.env": {Data: []byte("FROM_FILE=1\n")}},
			noWarnings: true,
			check:      envIs(map[string]string{"FROM_FILE": "1"}),
		},
		{
			name:  "entry without value and unset is dropped with a warning",
			files: []string{"services:\n  web:\n    image: nginx\n    environment: [UNSET_VAR, MODE=prod]\n"},
			warns: []want{{"web", "environment.UNSET_VAR", "not set in the environment"}},
			check: envIs(map[string]string{"MODE": "prod"}),
		},
		{
			name:  "missing env_file",
			files: []string{"services:\n  web:\n    image: nginx\n    env_file: [nothere.env]\n"},
			fsys:  fstest.MapFS{},
			errs:  []want{{"web", "env_file[0]", "nothere.env does not exist"}},
		},
		{
			name:  "missing optional env_file is skipped",
			files: []string{"services:\n  web:\n    image: nginx\n    env_file: [{path: nothere.env, required: false}]\n"},
			fsys:  fstest.MapFS{},
			check: envIs(nil),
		},
		{
			name:  "env_file outside the FS",
			files: []string{"services:\n  web:\n    image: nginx\n    env_file: ../secret.env\n"},
			fsys:  fstest.MapFS{},
			errs:  []want{{"web", "env_file[0]", "outside the stack's file system"}},
		},
		{
			name:  "env_file without an FS",
			files: []string{"services:\n  web:\n    image: nginx\n    env_file: app.env\n"},
			errs:  []want{{"web", "env_file[0]", "no file system"}},
		},
	})
}

func TestLoadSecretsAndConfigs(t *testing.T) {
	// Bytes a text round trip would damage: a trailing newline, NUL and invalid UTF-8.
	secretBytes := []byte("s3cr3t\n\x00\xff")
	digest := func(b string) string {
		sum := sha256.Sum256([]byte(b))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	const refs = "services:\n  web:\n    image: nginx\n"
	runProblemCases(t, []problemCase{
		{
			name:       "secret from a file relative to WorkingDir",
			files:      []string{refs + "    secrets: [db]\nsecrets:\n  db: {file: ./db.txt}\n"},
			workingDir: "stacks/web",
			fsys:       fstest.MapFS{"stacks/web/db.txt": {Data: secretBytes}},
			noWarnings: true,
			check: func(t *testing.T, st *spec.Stack) {
				s := st.Secrets["db"]
				if s == nil {
					t.Fatal("secret db missing")
				}
				if string(s.Data) != string(secretBytes) {
					t.Errorf("Data = %q, want the file's bytes %q", s.Data, secretBytes)
				}
				if s.Name != "app_db" || s.File != "./db.txt" || s.External {
					t.Errorf("secret = %+v, want name app_db, file ./db.txt, not external", *s)
				}
			},
		},
		{
			name:  "secret from the environment",
			files: []string{refs + "secrets:\n  db: {environment: DB_PASSWORD}\n"},
			env:   map[string]string{"DB_PASSWORD": "hunter2"},
			check: func(t *testing.T, st *spec.Stack) {
				if s := st.Secrets["db"]; string(s.Data) != "hunter2" || s.Environment != "DB_PASSWORD" {
					t.Errorf("secret = %+v (data %q), want data hunter2 from DB_PASSWORD", *s, s.Data)
				}
			},
		},
		{
			name:  "external secrets carry no data",
			files: []string{refs + "secrets:\n  ext: {external: true}\n  named: {external: true, name: prod_db_pw}\n"},
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "ext", st.Secrets["ext"], &spec.Secret{FileObject: spec.FileObject{Name: "ext", External: true}})
				requireEqual(t, "named", st.Secrets["named"], &spec.Secret{FileObject: spec.FileObject{Name: "prod_db_pw", External: true}})
			},
		},
		{
			name:  "secret name: overrides the stack prefix",
			files: []string{refs + "secrets:\n  db: {environment: PW, name: shared_pw}\n"},
			env:   map[string]string{"PW": "x"},
			check: func(t *testing.T, st *spec.Stack) {
				if got := st.Secrets["db"].Name; got != "shared_pw" {
					t.Errorf("name = %q, want shared_pw", got)
				}
			},
		},
		{
			name:  "missing secret file",
			files: []string{refs + "secrets:\n  db: {file: ./missing.txt}\n"},
			fsys:  fstest.MapFS{},
			errs:  []want{{"", "secrets.db.file", "missing.txt does not exist"}},
		},
		{
			name:  "secret environment variable not set",
			files: []string{refs + "secrets:\n  db: {environment: NOT_SET_PW}\n"},
			errs:  []want{{"", "secrets.db.environment", "variable NOT_SET_PW is not set"}},
		},
		{
			name:  "config from a file gets data and digest",
			files: []string{refs + "configs:\n  nginx: {file: conf/nginx.conf}\n"},
			fsys:  fstest.MapFS{"conf/nginx.conf": {Data: []byte("worker_processes 1;\n")}},
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "config", st.Configs["nginx"], &spec.Config{
					FileObject: spec.FileObject{Name: "app_nginx", File: "conf/nginx.conf", Data: []byte("worker_processes 1;\n")},
					Digest:     digest("worker_processes 1;\n"),
				})
			},
		},
		{
			name:  "inline config content gets a digest",
			files: []string{refs + "configs:\n  motd: {content: hello}\n"},
			check: func(t *testing.T, st *spec.Stack) {
				c := st.Configs["motd"]
				if c.Digest != digest("hello") || string(c.Data) != "hello" {
					t.Errorf("config = %+v, want data hello and digest %s", *c, digest("hello"))
				}
				if !strings.HasPrefix(c.Digest, "sha256:") || len(c.Digest) != len("sha256:")+64 {
					t.Errorf("digest %q is not sha256:<64 hex>", c.Digest)
				}
			},
		},
		{
			name:  "external config has neither data nor digest",
			files: []string{refs + "configs:\n  ext: {external: true}\n"},
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "config", st.Configs["ext"], &spec.Config{FileObject: spec.FileObject{Name: "ext", External: true}})
			},
		},
		{
			name: "service references: default, relative and absolute targets",
			files: []string{refs + `    secrets:
      - db
      - {source: api, target: api_key}
      - {source: tls, target: /etc/tls/key.pem, uid: "100", gid: "101", mode: 0400}
    configs:
      - motd
      - {source: nginx, target: /etc/nginx/nginx.conf, mode: 0444}
secrets:
  db: {external: true}
  api: {external: true}
  tls: {external: true}
configs:
  motd: {content: hi}
  nginx: {content: conf}
`},
			check: func(t *testing.T, st *spec.Stack) {
				web := service(t, st, "web")
				// Sorted by target: the canonical order.
				requireEqual(t, "secrets", web.Secrets, []spec.FileReference{
					{Source: "tls", Target: "/etc/tls/key.pem", UID: "100", GID: "101", Mode: ptrTo(spec.FileMode(0o400))},
					{Source: "api", Target: "/run/secrets/api_key"},
					{Source: "db", Target: "/run/secrets/db"},
				})
				requireEqual(t, "configs", web.Configs, []spec.FileReference{
					{Source: "nginx", Target: "/etc/nginx/nginx.conf", Mode: ptrTo(spec.FileMode(0o444))},
					{Source: "motd", Target: "/motd"},
				})
			},
		},
	})
}

func TestLoadPorts(t *testing.T) {
	cases := []struct {
		name  string
		ports string // the YAML list under ports:
		want  []spec.Port
		errs  []want
		warns []want
	}{
		{
			name:  "short syntax",
			ports: `["8080:80", "53:53/udp", "9000"]`,
			want: []spec.Port{
				{Target: 53, Published: 53, Protocol: "udp", Mode: "ingress"},
				{Target: 80, Published: 8080, Protocol: "tcp", Mode: "ingress"},
				{Target: 9000, Protocol: "tcp", Mode: "ingress"},
			},
		},
		{
			name:  "long syntax with host mode",
			ports: `[{target: 443, published: 8443, protocol: tcp, mode: host}, {target: 80, published: "8080"}]`,
			want: []spec.Port{
				{Target: 80, Published: 8080, Protocol: "tcp", Mode: "ingress"},
				{Target: 443, Published: 8443, Protocol: "tcp", Mode: "host"},
			},
		},
		{
			name:  "short syntax range expands to one port per entry",
			ports: `["7000-7001:7000-7001"]`,
			want: []spec.Port{
				{Target: 7000, Published: 7000, Protocol: "tcp", Mode: "ingress"},
				{Target: 7001, Published: 7001, Protocol: "tcp", Mode: "ingress"},
			},
		},
		{
			name:  "host_ip is kept but warned about",
			ports: `["127.0.0.1:8080:80"]`,
			want:  []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: "ingress", HostIP: "127.0.0.1"}},
			warns: []want{{"web", "ports[0].host_ip", "host_ip is ignored"}},
		},
		{
			name:  "host mode honours host_ip",
			ports: `[{target: 80, published: 8080, mode: host, host_ip: "::"}, {target: 81, published: 8081, mode: host, host_ip: 192.0.2.10}]`,
			want: []spec.Port{{Target: 80, Published: 8080, Protocol: "tcp", Mode: "host", HostIP: "::"},
				{Target: 81, Published: 8081, Protocol: "tcp", Mode: "host", HostIP: "192.0.2.10"}},
		},
		{
			name:  "host mode on loopback",
			ports: `[{target: 80, published: 8080, mode: host, host_ip: 127.0.0.1}]`,
			errs:  []want{{"web", "ports[0].host_ip", "127.0.0.1 is a loopback address"}, {"web", "ports[0].host_ip", "leave host_ip out"}},
		},
		{
			name:  "published range onto one target",
			ports: `["8000-8001:80"]`,
			errs:  []want{{"web", "ports[0].published", `"8000-8001" is not a single port number`}},
		},
	}
	for _, c := range cases {
		runProblemCases(t, []problemCase{{
			name:  c.name,
			files: []string{"services:\n  web:\n    image: nginx\n    ports: " + c.ports + "\n"},
			errs:  c.errs, warns: c.warns, noWarnings: c.warns == nil,
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "ports", service(t, st, "web").Ports, c.want)
			},
		}})
	}
}

func TestLoadMounts(t *testing.T) {
	cases := []struct {
		name    string
		volumes string // the YAML list under volumes:
		want    []spec.Mount
	}{
		{
			name:    "short syntax bind and named volume",
			volumes: `["/srv/data:/data:ro", "cache:/var/cache"]`,
			want: []spec.Mount{
				{Type: "bind", Source: "/srv/data", Target: "/data", ReadOnly: true},
				{Type: "volume", Source: "cache", Target: "/var/cache"},
			},
		},
		{
			name:    "anonymous volume",
			volumes: `["/scratch"]`,
			want:    []spec.Mount{{Type: "volume", Target: "/scratch"}},
		},
		{
			name: "long syntax tmpfs, volume options and bind propagation",
			volumes: `
      - {type: tmpfs, target: /run/tmp, tmpfs: {size: 64m}}
      - {type: volume, source: cache, target: /v, volume: {nocopy: true, subpath: sub}}
      - {type: bind, source: /h, target: /h, read_only: true, bind: {propagation: rshared}}`,
			want: []spec.Mount{
				{Type: "bind", Source: "/h", Target: "/h", ReadOnly: true, Propagation: "rshared"},
				{Type: "tmpfs", Target: "/run/tmp", TmpfsSize: 64 << 20},
				{Type: "volume", Source: "cache", Target: "/v", NoCopy: true, Subpath: "sub"},
			},
		},
	}
	for _, c := range cases {
		runProblemCases(t, []problemCase{{
			name:  c.name,
			files: []string{"services:\n  web:\n    image: nginx\n    volumes: " + c.volumes + "\nvolumes:\n  cache: {}\n"},
			check: func(t *testing.T, st *spec.Stack) {
				requireEqual(t, "mounts", service(t, st, "web").Mounts, c.want)
			},
		}})
	}
}

func TestLoadDeploy(t *testing.T) {
	cases := []struct {
		name   string
		deploy string // the service's deploy section, or "" for none
		want   spec.Deploy
	}{
		{
			name: "no deploy section gets Swarm defaults",
			want: spec.Deploy{Mode: "replicated", Replicas: ptrTo[uint64](1), EndpointMode: "vip"},
		},
		{
			name:   "zero replicas stays zero",
			deploy: "{replicas: 0}",
			want:   spec.Deploy{Mode: "replicated", Replicas: ptrTo[uint64](0), EndpointMode: "vip"},
		},
		{
			name:   "global has no replica count",
			deploy: "{mode: global}",
			want:   spec.Deploy{Mode: "global", EndpointMode: "vip"},
		},
		{
			name: "every field",
			deploy: `
      mode: replicated
      replicas: 3
      endpoint_mode: dnsrr
      labels: {team: web}
      placement:
        constraints: ["node.role != manager", "node.labels.os==linux"]
        preferences: [{spread: node.labels.zone}, {spread: node.labels.rack}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.1", memory: 128M, pids: 100}
        reservations: {cpus: 1.5, memory: 64M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      update_config: {parallelism: 2, delay: 10s, failure_action: rollback, monitor: 1m, max_failure_ratio: 0.1, order: start-first}
      rollback_config: {parallelism: 1, failure_action: pause, order: stop-first}`,
			want: spec.Deploy{
				Mode:         "replicated",
				Replicas:     ptrTo[uint64](3),
				EndpointMode: "dnsrr",
				Labels:       map[string]string{"team": "web"},
				Placement: spec.Placement{
					// Canonical text, sorted.
					Constraints:        []string{"node.labels.os == linux", "node.role != manager"},
					Preferences:        []spec.Preference{{Spread: "node.labels.zone"}, {Spread: "node.labels.rack"}},
					MaxReplicasPerNode: 2,
				},
				Resources: spec.Resources{
					Limits:       &spec.Resource{CPUs: 100_000_000, MemoryBytes: 128 << 20, Pids: 100},
					Reservations: &spec.Resource{CPUs: 1_500_000_000, MemoryBytes: 64 << 20},
				},
				RestartPolicy: &spec.RestartPolicy{Condition: "on-failure", Delay: dur(5 * time.Second), MaxAttempts: ptrTo[uint64](3), Window: dur(2 * time.Minute)},
				UpdateConfig: &spec.UpdateConfig{
					Parallelism: ptrTo[uint64](2), Delay: spec.Duration(10 * time.Second), FailureAction: "rollback",
					Monitor: spec.Duration(time.Minute), MaxFailureRatio: 0.1, Order: "start-first",
				},
				RollbackConfig: &spec.UpdateConfig{Parallelism: ptrTo[uint64](1), FailureAction: "pause", Order: "stop-first"},
			},
		},
		{
			name:   "restart_policy without condition means any",
			deploy: "{restart_policy: {max_attempts: 2}}",
			want: spec.Deploy{
				Mode: "replicated", Replicas: ptrTo[uint64](1), EndpointMode: "vip",
				RestartPolicy: &spec.RestartPolicy{Condition: "any", MaxAttempts: ptrTo[uint64](2)},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := "services:\n  web:\n    image: nginx\n"
			if c.deploy != "" {
				y += "    deploy: " + c.deploy + "\n"
			}
			st, _ := mustLoad(t, composeOpts(y))
			requireEqual(t, "deploy", service(t, st, "web").Deploy, c.want)
		})
	}
}

func TestLoadServiceFields(t *testing.T) {
	st, warns := mustLoad(t, composeOpts(`
services:
  web:
    image: nginx
    command: nginx -g 'daemon off;'
    entrypoint: ["/docker-entrypoint.sh"]
    user: "101:101"
    working_dir: /srv
    hostname: web
    labels: [com.example.tier=front]
    stop_signal: SIGQUIT
    stop_grace_period: 1m30s
    init: true
    read_only: true
    cap_add: [SYS_TIME, NET_ADMIN]
    cap_drop: [ALL]
    sysctls: {net.core.somaxconn: 1024}
    healthcheck:
      test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
      interval: 30s
      timeout: 5s
      start_period: 1m
      retries: 3
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
    networks:
      front:
        aliases: [www, api]
      back:
networks:
  front: {}
  back: {}
`))
	if len(warns) != 0 {
		t.Errorf("unexpected warnings:\n%s", listProblems(warns))
	}
	got := service(t, st, "web")
	wantSvc := &spec.Service{
		Name:       "web",
		Image:      "nginx",
		Command:    []string{"nginx", "-g", "daemon off;"},
		Entrypoint: []string{"/docker-entrypoint.sh"},
		User:       "101:101", WorkingDir: "/srv", Hostname: "web",
		Labels:          map[string]string{"com.example.tier": "front"},
		StopSignal:      "SIGQUIT",
		StopGracePeriod: dur(90 * time.Second),
		Init:            ptrTo(true),
		ReadOnly:        true,
		CapAdd:          []string{"NET_ADMIN", "SYS_TIME"},
		CapDrop:         []string{"ALL"},
		Sysctls:         map[string]string{"net.core.somaxconn": "1024"},
		Healthcheck: &spec.Healthcheck{
			Test:     []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
			Interval: dur(30 * time.Second), Timeout: dur(5 * time.Second), StartPeriod: dur(time.Minute),
			Retries: ptrTo[uint64](3),
		},
		Ulimits: map[string]spec.Ulimit{
			"nproc":  {Soft: 65535, Hard: 65535}, // a single value sets both
			"nofile": {Soft: 20000, Hard: 40000},
		},
		Networks: []spec.ServiceNetwork{{Name: "back"}, {Name: "front", Aliases: []string{"api", "www"}}},
		Deploy:   spec.Deploy{Mode: "replicated", Replicas: ptrTo[uint64](1), EndpointMode: "vip"},
	}
	requireEqual(t, "service", got, wantSvc)
}

func TestLoadTopLevelObjects(t *testing.T) {
	st, _ := mustLoad(t, composeOpts(`
services:
  web:
    image: nginx
    networks: [front, back, ext, named]
    volumes: [local:/a, nfs:/b, ext:/c, extn:/d]
  solo:
    image: busybox
networks:
  front: {}
  back:
    internal: true
    attachable: true
    labels: {tier: back}
    ipam: {config: [{subnet: 10.10.0.0/24}, {subnet: 10.20.0.0/16}]}
  ext: {external: true}
  named: {name: custom-net, driver: bridge}
volumes:
  local: {}
  nfs:
    driver_opts: {type: nfs, o: "addr=10.0.0.5,rw", device: ":/export"}
  ext: {external: true}
  extn: {external: true, name: real-vol}
`))
	requireEqual(t, "networks", st.Networks, map[string]*spec.Network{
		"front": {Name: "app_front", Driver: "overlay"},
		"back": {Name: "app_back", Driver: "overlay", Internal: true, Attachable: true,
			Labels: map[string]string{"tier": "back"}, Subnets: []string{"10.10.0.0/24", "10.20.0.0/16"}},
		"ext":   {Name: "ext", External: true},
		"named": {Name: "custom-net", Driver: "bridge"},
		// Compose gives a service without networks the stack's default network.
		"default": {Name: "app_default", Driver: "overlay"},
	})
	requireEqual(t, "solo networks", service(t, st, "solo").Networks, []spec.ServiceNetwork{{Name: "default"}})
	requireEqual(t, "volumes", st.Volumes, map[string]*spec.Volume{
		"local": {Name: "app_local"},
		"nfs":   {Name: "app_nfs", DriverOpts: map[string]string{"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export"}},
		"ext":   {Name: "ext", External: true},
		"extn":  {Name: "real-vol", External: true},
	})
	// The service carries what its node mounts, so that a changed export updates it.
	requireEqual(t, "web mounts", service(t, st, "web").Mounts, []spec.Mount{
		{Type: "volume", Source: "local", Target: "/a"},
		{Type: "volume", Source: "nfs", Target: "/b", DriverOpts: map[string]string{"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export"}},
		{Type: "volume", Source: "ext", Target: "/c"},
		{Type: "volume", Source: "extn", Target: "/d"},
	})
}

func TestLoadWarnsAboutIgnoredKeys(t *testing.T) {
	svc := func(extra string) []string {
		return []string{"services:\n  web:\n    image: nginx\n" + extra}
	}
	runProblemCases(t, []problemCase{
		{name: "build", files: svc("    build: .\n"),
			warns: []want{{"web", "build", "berth does not build images"}}},
		{name: "container_name", files: svc("    container_name: my-web\n"),
			warns: []want{{"web", "container_name", "tasks are named <stack>_<service>.<slot>"}}},
		{name: "depends_on", files: svc("    depends_on: [db]\n  db:\n    image: postgres\n"),
			warns: []want{{"web", "depends_on", "use healthchecks"}}},
		{name: "links", files: svc("    links: [db]\n  db:\n    image: postgres\n"),
			warns: []want{{"web", "links", "reach each other by service name"}}},
		{name: "network_mode", files: svc("    network_mode: host\n"),
			warns: []want{{"web", "network_mode", "attach the service to stack networks"}}},
		{name: "restart", files: svc("    restart: always\n"),
			warns: []want{{"web", "restart", "use deploy.restart_policy"}}},
		{name: "mem_limit", files: svc("    mem_limit: 1g\n"),
			warns: []want{{"web", "mem_limit", "deploy.resources.limits.memory"}}},
		{name: "Compose key berth has no plan for", files: svc("    domainname: example.com\n"),
			warns: []want{{"web", "domainname", "does not act on `domainname` yet"}}},
		{name: "version", files: []string{"version: \"3.8\"\nservices:\n  web:\n    image: nginx\n"},
			warns: []want{{"", "version", "`version` is obsolete"}, {"", "version", "remove the `version` key"}}},
		{name: "top-level key the schema knows but berth ignores", files: []string{"services:\n  web:\n    image: nginx\nmodels: {}\n"},
			warns: []want{{"", "models", "berth does not act on the top-level key `models`"}}},
		{name: "unknown key of a top-level object", files: []string{"services:\n  web:\n    image: nginx\nnetworks:\n  n:\n    enable_ipv6: true\n"},
			warns: []want{{"", "networks.n.enable_ipv6", "does not act on `enable_ipv6`"}}},
		{name: "extension keys are silent", noWarnings: true,
			files: []string{"x-common: &c {image: nginx}\nservices:\n  web:\n    <<: *c\n    x-note: hi\n"}},
		// Keys the Compose schema does not know are errors, with the nearest valid key.
		{name: "unknown top-level key", files: []string{"services:\n  web:\n    image: nginx\nservice: 1\n"},
			errs: []want{{"", "service", "unknown top-level key `service`"}, {"", "service", "did you mean `services`?"}}},
		{name: "unknown service key", files: svc("    imagee: nginx\n"),
			errs: []want{{"web", "imagee", "unknown key `imagee`"}, {"web", "imagee", "did you mean `image`?"}}},
	})
}

func TestLoadRejectsBadInput(t *testing.T) {
	t.Run("stack names", func(t *testing.T) {
		for _, name := range []string{"a", "web", "web-1", "my_stack", "0day"} {
			o := composeOpts("services:\n  web:\n    image: nginx\n")
			o.Stack = name
			if _, _, err := tryLoad(t, o); err != nil {
				t.Errorf("stack name %q refused: %v", name, err)
			}
		}
		for _, name := range []string{"", "Web", "-web", "_web", "my stack", "my.stack", "web/1", "wéb"} {
			o := composeOpts("services:\n  web:\n    image: nginx\n")
			o.Stack = name
			_, _, err := tryLoad(t, o)
			if err == nil || !strings.Contains(err.Error(), "invalid stack name") {
				t.Errorf("stack name %q: err = %v, want invalid stack name", name, err)
			}
		}
	})

	t.Run("no files", func(t *testing.T) {
		_, _, err := tryLoad(t, composeOpts())
		if err == nil || !strings.Contains(err.Error(), "no compose file") {
			t.Fatalf("err = %v, want no compose file", err)
		}
	})

	// Every one of these must come back as an error, never a panic or a stack.
	for _, c := range []struct{ name, yaml, text string }{
		{"broken YAML", "services:\n  web:\n    image: [\n", "compose.yml"},
		{"tab indentation", "services:\n\tweb:\n", "compose.yml"},
		{"file is a list", "- a\n- b\n", "mapping"},
		{"file is a scalar", "just text\n", ""},
		{"services is a number", "services: 3\n", "services must be a mapping"},
		{"service is a number", "services:\n  web: 3\n", "service web: 3 is not valid here: it must be a mapping"},
		{"deploy is a list", "services:\n  web:\n    image: nginx\n    deploy: [1]\n", "deploy"},
		{"empty file", "", "empty compose file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ve, _ := mustFail(t, composeOpts(c.yaml))
			if !strings.Contains(ve.Error(), c.text) {
				t.Errorf("error %q does not mention %q", ve.Error(), c.text)
			}
		})
	}
}

// A file that berth's prescan rewrites (here because of `version`) must keep Compose's
// merge tags: !override replaces the base file's ports instead of adding to them.
func TestLoadKeepsMergeTagsOfRewrittenFiles(t *testing.T) {
	const base = "services:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n"
	const override = "services:\n  web:\n    ports: !override [\"443:443\"]\n"
	wantPorts := []spec.Port{{Target: 443, Published: 443, Protocol: "tcp", Mode: "ingress"}}

	t.Run("untouched file", func(t *testing.T) {
		st, _ := mustLoad(t, composeOpts(base, override))
		requireEqual(t, "ports", service(t, st, "web").Ports, wantPorts)
	})
	t.Run("file with version key", func(t *testing.T) {
		st, _ := mustLoad(t, composeOpts(base, "version: \"3.8\"\n"+override))
		requireEqual(t, "ports", service(t, st, "web").Ports, wantPorts)
	})
}

// Compose merges every YAML document of a file ("---" separated), as compose-go does
// when it reads the bytes itself.
func TestLoadReadsEveryDocumentOfAFile(t *testing.T) {
	st, _ := mustLoad(t, composeOpts("services:\n  a: {image: x}\n---\nservices:\n  b: {image: y}\n"))
	for _, name := range []string{"a", "b"} {
		if _, ok := st.Services[name]; !ok {
			t.Errorf("service %s missing; services: %v", name, slices.Sorted(maps.Keys(st.Services)))
		}
	}
}
