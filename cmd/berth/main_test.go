package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestMain(m *testing.M) {
	// As main does: compose-go's log would only repeat the warnings berth prints.
	logrus.SetOutput(io.Discard)
	code := m.Run()
	cleanupBinary()
	os.Exit(code)
}

// result is what one run of the CLI left behind.
type result struct {
	code           int
	stdout, stderr string
}

func runBerth(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\n--- stdout\n" + r.stdout + "--- stderr\n" + r.stderr
}

// checkGolden compares got with testdata/golden/<name>.golden, or rewrites that file
// when the test runs with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/berth -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test ./cmd/berth -update to accept it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// setTestEnv gives the fixtures' interpolation variables a known state; the process
// environment wins over every env file.
func setTestEnv(t *testing.T) {
	t.Setenv("BERTH_TEST_REGION", "from-process")
	t.Setenv("BERTH_TEST_LOG_LEVEL", "debug")
}

func TestCLI(t *testing.T) {
	const (
		app      = "testdata/config/app/compose.yaml"
		appProd  = "testdata/config/app/prod.yaml"
		appExtra = "testdata/config/app/extra.env"
		oldFile  = "testdata/diff/old/compose.yaml"
		newFile  = "testdata/diff/new/compose.yaml"
		invalid  = "testdata/invalid/compose.yaml"
	)
	tests := []struct {
		name  string
		args  []string
		stdin string
		code  int
		// golden names the file stdout must equal; "" skips the comparison.
		golden string
		// goldenStderr names the file stderr must equal; "" skips the comparison.
		goldenStderr string
		// stdout and stderr hold patterns the output must match, line by line in any order.
		stdout, stderr []string
		// absent are strings that must appear in neither output.
		absent []string
	}{
		{
			name:   "config merges files and interpolates",
			args:   []string{"stack", "config", "-c", app, "-c", appProd, "--env-file", appExtra},
			golden: "config_app",
			absent: []string{"TOP-SECRET-FIXTURE-VALUE"},
		},
		{
			name:   "config json",
			args:   []string{"stack", "config", "-c", app, "-c", appProd, "--env-file", appExtra, "--stack", "shop", "-o", "json"},
			golden: "config_app_json",
			absent: []string{"TOP-SECRET-FIXTURE-VALUE"},
		},
		{
			name:   "config from standard input",
			args:   []string{"stack", "config", "-c", "-", "--stack", "piped"},
			stdin:  "services:\n  hello:\n    image: busybox:1.36\n",
			stdout: []string{`^name: piped$`, `^\s+image: busybox:1.36$`},
		},
		{
			name:   "config missing file",
			args:   []string{"stack", "config", "-c", "testdata/nope/compose.yaml"},
			code:   2,
			stderr: []string{`^berth: reading compose file: open testdata/nope/compose.yaml: no such file or directory$`},
		},
		{
			name:   "config needs -c",
			args:   []string{"stack", "config"},
			code:   2,
			stderr: []string{`^berth: required flag\(s\) "compose-file" not set$`},
		},
		{
			name:   "config unknown output format",
			args:   []string{"stack", "config", "-c", app, "-o", "toml"},
			code:   2,
			stderr: []string{`^berth: unknown output format "toml": use yaml or json$`},
		},
		{
			name:   "unknown flag",
			args:   []string{"validate", "--bogus"},
			code:   2,
			stderr: []string{`^berth: unknown flag: --bogus$`, `^See 'berth validate --help'.$`},
		},
		{
			name:   "unknown command",
			args:   []string{"deploy"},
			code:   2,
			stderr: []string{`^berth: unknown command "deploy" for "berth"`},
			absent: []string{"Did you mean"},
		},
		{
			name:   "source add refuses a URL berth cannot fetch, before asking the daemon",
			args:   []string{"source", "add", "x", "-H", "unix:///nonexistent/berth.sock", "--url", "ftp://x/y"},
			code:   2,
			stderr: []string{`^berth: unsupported Git URL "ftp://x/y": berth fetches Git over https://, http://, ssh://, git:// and file:// URLs and git@host:path, not ftp://$`},
		},
		{
			name:   "source add --ca-file is for --url",
			args:   []string{"source", "add", "x", "-H", "unix:///nonexistent/berth.sock", "--dir", "/srv/stacks", "--ca-file", "ca.pem"},
			code:   2,
			stderr: []string{`^berth: --token-file, --ssh-key, --known-hosts, --ca-file and --webhook-secret-file are for --url sources$`},
		},
		{
			name:   "version",
			args:   []string{"--version"},
			stdout: []string{`^berth version \S+$`},
		},
		{
			name:   "help",
			args:   []string{"--help"},
			stdout: []string{`^\s+config\s`, `^\s+validate\s`, `^\s+diff\s`},
		},
		{
			name:   "validate valid stack",
			args:   []string{"validate", "-c", app, "--env-file", appExtra},
			stdout: []string{`^stack app: valid \(2 services, 2 networks, 1 volume, 1 secret, 1 config\)$`},
		},
		{
			name: "validate quiet",
			args: []string{"validate", "-q", "-c", app, "--env-file", appExtra},
		},
		{
			name:         "validate places the Compose loader's errors in their files",
			args:         []string{"validate", "-c", "testdata/loadererrors/compose.yaml", "-c", "testdata/loadererrors/compose.override.yaml"},
			code:         2,
			goldenStderr: "validate_loader_errors",
		},
		{
			name: "validate lists every error",
			args: []string{"validate", "-c", invalid},
			code: 2,
			stderr: []string{
				`^error: testdata/invalid/compose\.yaml: stack invalid, service agent, deploy\.mode: .*globl`,
				`^error: testdata/invalid/compose\.yaml: stack invalid, service web, deploy\.placement\.constraints\[0\]: .*node\.labels\.os`,
				`^error: testdata/invalid/compose\.yaml: stack invalid, service api, networks.missing: .*missing`,
			},
		},
		{
			name:   "validate needs something",
			args:   []string{"validate"},
			code:   2,
			stderr: []string{`^berth: nothing to validate: use -c FILE or --repo REPO$`},
		},
		{
			name:   "validate -c and --repo",
			args:   []string{"validate", "-c", app, "--repo", "."},
			code:   2,
			stderr: []string{`^berth: -c and --repo are mutually exclusive`},
		},
		{
			name:   "diff compose files",
			args:   []string{"diff", "-c", newFile, "--against", oldFile, "--stack", "web"},
			code:   1,
			golden: "diff_compose",
			absent: []string{"OLD-SECRET-FIXTURE", "NEW-SECRET-FIXTURE"},
		},
		{
			name:   "diff compose files json",
			args:   []string{"diff", "-c", newFile, "--against", oldFile, "--stack", "web", "-o", "json"},
			code:   1,
			golden: "diff_compose_json",
			absent: []string{"OLD-SECRET-FIXTURE", "NEW-SECRET-FIXTURE"},
		},
		{
			name:   "diff stack named after the new files' folder",
			args:   []string{"diff", "-c", newFile, "--against", oldFile},
			code:   1,
			stdout: []string{`^stack new \(changed\)$`},
		},
		{
			name:   "diff without differences",
			args:   []string{"diff", "-c", oldFile, "--against", oldFile},
			stdout: []string{`^No differences\.$`},
		},
		{
			name:   "diff without differences json",
			args:   []string{"diff", "-c", oldFile, "--against", oldFile, "-o", "json"},
			stdout: []string{`^  "changed": false,$`, `^  "stacks": \[\]$`},
		},
		{
			name:   "diff invalid new version",
			args:   []string{"diff", "-c", invalid, "--against", oldFile},
			code:   2,
			stderr: []string{`^berth: new version$`, `^error: testdata/invalid/compose\.yaml: stack invalid, service agent, deploy\.mode: `},
		},
		{
			name:   "diff missing old version",
			args:   []string{"diff", "-c", newFile, "--against", "testdata/nope.yaml"},
			code:   2,
			stderr: []string{`^berth: old version \(--against\): reading compose file: open testdata/nope.yaml: no such file or directory$`},
		},
		{
			// Without --against, -c is compared with the live cluster.
			name:   "diff -c without --against asks the daemon",
			args:   []string{"diff", "-H", "unix:///nonexistent/berth.sock", "-c", newFile},
			code:   2,
			stderr: []string{`^berth: cannot connect to the berth daemon at unix:///nonexistent/berth.sock`},
		},
		{
			name:   "diff unknown output format",
			args:   []string{"diff", "-c", newFile, "--against", oldFile, "-o", "yaml"},
			code:   2,
			stderr: []string{`^berth: unknown output format "yaml": use text or json$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setTestEnv(t)
			r := runBerth(t, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("berth %s: got exit %d, want %d\n%s", strings.Join(tt.args, " "), r.code, tt.code, r)
			}
			if tt.golden != "" {
				checkGolden(t, tt.golden, r.stdout)
			}
			if tt.goldenStderr != "" {
				checkGolden(t, tt.goldenStderr, r.stderr)
			}
			matchLines(t, "stdout", r.stdout, tt.stdout)
			matchLines(t, "stderr", r.stderr, tt.stderr)
			if tt.code == 0 && len(tt.stderr) == 0 && r.stderr != "" {
				t.Errorf("unexpected stderr:\n%s", r.stderr)
			}
			for _, s := range tt.absent {
				if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
					t.Errorf("output shows %q, which it must never show\n%s", s, r)
				}
			}
		})
	}
}

// matchLines checks that every pattern matches at least one line of out.
func matchLines(t *testing.T, what, out string, patterns []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		found := false
		for _, l := range lines {
			if re.MatchString(l) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no line of %s matches %q:\n%s", what, p, out)
		}
	}
}

func TestValidateErrorsOnePerLine(t *testing.T) {
	r := runBerth(t, "", "validate", "-c", "testdata/invalid/compose.yaml")
	if r.code != 2 {
		t.Fatalf("got exit %d, want 2\n%s", r.code, r)
	}
	if r.stdout != "" {
		t.Errorf("stdout should be empty for an invalid stack:\n%s", r.stdout)
	}
	// Every line is an error or a warning: nothing else for scripts to trip over.
	for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "error: ") && !strings.HasPrefix(l, "warning: ") {
			t.Errorf("stray line on stderr: %q", l)
		}
	}
	if n := strings.Count(r.stderr, "error: "); n < 3 {
		t.Errorf("got %d errors, want all 3 mistakes reported in one run:\n%s", n, r.stderr)
	}
}

func TestEnvPrecedence(t *testing.T) {
	// .env gives BERTH_TEST_TAG=from-dotenv, extra.env overrides it, and the process
	// environment overrides both.
	t.Setenv("BERTH_TEST_REGION", "from-process")
	r := runBerth(t, "", "stack", "config", "-c", "testdata/config/app/compose.yaml")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{"image: nginx:from-dotenv", "REGION: from-process", "replicas: 2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runBerth(t, "", "stack", "config", "-c", "testdata/config/app/compose.yaml", "--env-file", "testdata/config/app/extra.env")
	if !strings.Contains(r.stdout, "image: nginx:1.27-alpine") {
		t.Errorf("--env-file does not override .env:\n%s", r)
	}
	t.Setenv("BERTH_TEST_TAG", "from-process")
	r = runBerth(t, "", "stack", "config", "-c", "testdata/config/app/compose.yaml", "--env-file", "testdata/config/app/extra.env")
	if !strings.Contains(r.stdout, "image: nginx:from-process") {
		t.Errorf("the process environment does not win over env files:\n%s", r)
	}
}

func TestGuardRecoversPanics(t *testing.T) {
	var stderr bytes.Buffer
	code := guard(&stderr, func() int { panic("boom") })
	if code != exitError {
		t.Errorf("got exit %d, want %d", code, exitError)
	}
	if got := stderr.String(); got != "berth: internal error: boom (this is a bug in berth, please report it)\n" {
		t.Errorf("got %q", got)
	}
}

func TestStackNameFromDir(t *testing.T) {
	for dir, want := range map[string]string{
		"/srv/web":        "web",
		"/srv/My App":     "myapp",
		"/srv/_Web.Prod":  "webprod",
		"/srv/api-v2_old": "api-v2_old",
		"/":               "",
	} {
		if got := stackNameFromDir(dir); got != want {
			t.Errorf("stackNameFromDir(%q) = %q, want %q", dir, got, want)
		}
	}
}

func TestRepoPath(t *testing.T) {
	for in, want := range map[string]string{"": ".", ".": ".", "/": ".", "./examples/": "examples", "/stacks/prod": "stacks/prod"} {
		if got := repoPath(in); got != want {
			t.Errorf("repoPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// -c resolves relative bind sources against the file's folder and ~ against the home
// of who runs berth, as `docker stack deploy -c` does (issue 18).
func TestComposeBindSources(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	file := filepath.Join(dir, "compose.yaml")
	const compose = "services:\n  web:\n    image: nginx\n    volumes: [\"./data:/data\", \"~/cache:/cache\", \"/srv:/srv\"]\n"
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBerth(t, "", "stack", "config", "-c", file, "-o", "json")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	for _, want := range []string{filepath.Join(dir, "data"), filepath.Join(home, "cache"), `"/srv"`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config output lacks %s:\n%s", want, r.stdout)
		}
	}
}

// A mistyped command gets cobra's did-you-mean, at the root and in every group.
func TestDidYouMean(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		golden string
	}{
		{[]string{"sevice", "ls"}, "did_you_mean_root"},
		{[]string{"service", "lss"}, "did_you_mean_group"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runBerth(t, "", tt.args...)
			if r.code != exitError || r.stdout != "" {
				t.Fatalf("berth %s:\n%s", strings.Join(tt.args, " "), r)
			}
			checkGolden(t, tt.golden, r.stderr)
		})
	}
}
