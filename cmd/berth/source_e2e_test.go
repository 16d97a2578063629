package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/testenv"

	"github.com/berthd/berth/internal/gittest"
)

// TestSourceProcesses follows a Git source on a real daemon (simulated agent): add,
// sync, a GitHub-signed webhook moving it to the next commit, a bad signature
// refused, a broken revision refused with the field named while the last good one
// stays, history, and rm --prune.
func TestSourceProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{"stacks/web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	first := repo.Commit("web").String()
	secretFile := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(secretFile, []byte("s3cret-hook\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "source", "add", "infra", "--url", "file://"+repo.Dir, "--path", "stacks", "--interval", "0", "--webhook-secret-file", secretFile)
	r := c.must("node-1", "source", "sync", "infra")
	if !strings.Contains(r.Stdout, first[:7]) {
		t.Fatalf("source sync:\n%s", r.Stdout)
	}
	sourceRow := func(want ...string) func() error {
		return func() error {
			out := c.must("node-1", "source", "ls").Stdout
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "infra ") {
					for _, w := range want {
						if !strings.Contains(line, w) {
							return fmt.Errorf("source ls lacks %q:\n%s", w, out)
						}
					}
					return nil
				}
			}
			return fmt.Errorf("no row for infra:\n%s", out)
		}
	}
	c.eventually(20*time.Second, sourceRow("git-pull", first[:7], "Synced"))
	if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "web_app") || !strings.Contains(out, "nginx:1") {
		t.Fatalf("service ls:\n%s", out)
	}

	// A webhook, on the manager's port, without a client certificate.
	repo.Write(map[string]string{"stacks/web/compose.yaml": "services:\n  app:\n    image: nginx:2\n"})
	second := repo.Commit("web 2").String()
	payload := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":"%s"}`, second))
	hook := func(secret string) int {
		t.Helper()
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(payload)
		req, err := http.NewRequest(http.MethodPost, "https://"+c.d("node-1").Addr+"/v1/hooks/infra", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hookClient(t, c.d("node-1").DataDir).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := hook("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a webhook with a bad signature: %d, want 401", code)
	}
	if got := c.must("node-1", "source", "inspect", "infra").Stdout; strings.Contains(got, second) {
		t.Fatalf("a refused webhook moved the source:\n%s", got)
	}
	if code := hook("s3cret-hook"); code != http.StatusAccepted {
		t.Fatalf("a signed webhook: %d, want 202", code)
	}
	c.eventually(20*time.Second, sourceRow(second[:7], "Synced"))

	// A broken revision: refused, the field named, nginx:2 keeps running.
	repo.Write(map[string]string{"stacks/web/compose.yaml": "services:\n  app:\n    image: nginx:3\n    deploy:\n      replicas: -1\n"})
	repo.Commit("broken")
	r = c.run("node-1", "source", "sync", "infra")
	if r.Code == 0 || !strings.Contains(r.Stderr, "replicas") {
		t.Fatalf("sync of a broken revision: %v", r)
	}
	c.eventually(20*time.Second, sourceRow(second[:7], "Failed", "replicas"))
	if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "nginx:2") {
		t.Fatalf("after a refused revision, service ls:\n%s", out)
	}
	hist := c.must("node-1", "source", "history", "infra").Stdout
	t.Logf("source history:\n%s", hist)
	if lines := strings.Count(strings.TrimSpace(hist), "\n"); lines < 3 || !strings.Contains(hist, "rejected") || !strings.Contains(hist, "applied") {
		t.Fatalf("source history:\n%s", hist)
	}
	if strings.Contains(c.must("node-1", "source", "inspect", "infra").Stdout, "s3cret-hook") {
		t.Fatal("source inspect shows the webhook secret")
	}

	c.must("node-1", "source", "rm", "--prune", "infra")
	c.eventually(20*time.Second, func() error {
		if out := c.must("node-1", "stack", "ls").Stdout; strings.Contains(out, "web") {
			return fmt.Errorf("stack ls after rm --prune:\n%s", out)
		}
		return nil
	})
}

// hookClient trusts the cluster's CA and has no client certificate, as a Git
// server sending webhooks would.
// pushRemote sets up the git remote of dir named remote, as `berth source remote` on
// node prints it, and
// returns how to run git in dir: with a home of its own, without GIT_SSL_CAINFO (it
// would win over the remote's sslCAInfo; some machines export it), and killed when
// ctx ends, so that a push that never returns fails the test.
func pushRemote(t *testing.T, c *procCluster, node, source, remote, dir string) func(ctx context.Context, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	gitCmd := func(ctx context.Context, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		// git's helper (git-remote-https) holds the output open after git is killed.
		cmd.WaitDelay = 5 * time.Second
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GIT_SSL_CAINFO=") }),
			"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, line := range strings.Split(strings.TrimSpace(c.must(node, "source", "remote", "--name", remote, source).Stdout), "\n") {
		args := strings.Fields(line)
		if len(args) < 2 || args[0] != "git" {
			t.Fatalf("source remote printed %q", line)
		}
		if out, err := gitCmd(c.ctx, args[1:]...); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	return gitCmd
}

func hookClient(t *testing.T, dataDir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in ca.pem")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
}

// TestPushSourceProcesses pushes with the real git command line to a push source on
// a real daemon (simulated agent): the push prints the plan and the rollout; a broken
// revision is rejected with berth's reason and changes nothing; a wrong token is
// refused; `git clone` of the remote gets what was pushed.
func TestPushSourceProcesses(t *testing.T) {
	testenv.RequireCommand(t, "git", "the push test runs the real git command line")
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)
	c.must("node-1", "source", "add", "apps", "--push")

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n    deploy:\n      replicas: 2\n"})
	first := repo.Commit("web").String()
	gitCtx := pushRemote(t, c, "node-1", "apps", "berth", repo.Dir)
	gitCmd := func(args ...string) (string, error) { return gitCtx(c.ctx, args...) }

	out, err := gitCmd("push", "berth", "main")
	t.Logf("git push:\n%s", out)
	if err != nil {
		t.Fatalf("git push: %v", err)
	}
	// The plan reads as berth diff prints it, then the placement preview.
	for _, want := range []string{"remote: berth: revision " + first, "remote: berth:   + service web_app", "remote: berth:     web_app.1 -> node-1 (new)",
		"applied", "web_app 2/2 running", "all services running"} {
		if !strings.Contains(out, want) {
			t.Errorf("git push output lacks %q", want)
		}
	}
	if ls := c.must("node-1", "service", "ls").Stdout; !strings.Contains(ls, "web_app") || !strings.Contains(ls, "2/2") {
		t.Fatalf("service ls:\n%s", ls)
	}

	// Broken: rejected before the ref moves, the reason on the client.
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:2\n    deploy:\n      replicas: -1\n"})
	repo.Commit("broken")
	out, err = gitCmd("push", "berth", "main")
	t.Logf("git push of a broken revision:\n%s", out)
	if err == nil || !strings.Contains(out, "[remote rejected]") || !strings.Contains(out, "replicas") {
		t.Fatalf("a broken push: err %v", err)
	}
	if ls := c.must("node-1", "service", "ls").Stdout; !strings.Contains(ls, "nginx:1") {
		t.Fatalf("after a rejected push, service ls:\n%s", ls)
	}
	// Only the source's branch is replicated, so only it is taken.
	out, err = gitCmd("push", "berth", first+":refs/heads/other")
	if err == nil || !strings.Contains(out, "[remote rejected]") || !strings.Contains(out, "branch main only") {
		t.Fatalf("a push to another branch: err %v\n%s", err, out)
	}

	// The live dry run of the source: its revision, in sync (exit 0); an unknown
	// revision is an error that names it.
	if r := c.must("node-1", "diff", "--source", "apps"); !strings.Contains(r.Stdout, "revision "+first) || !strings.Contains(r.Stdout, "No differences.") {
		t.Errorf("diff --source apps: %v", r)
	}
	c.fails("node-1", "", "no-such-rev", "diff", "--source", "apps", "--rev", "no-such-rev")

	// The remote holds the first revision only; a wrong token gets nothing.
	remote := strings.TrimSpace(strings.Fields(c.must("node-1", "source", "token", "apps").Stdout)[1])
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := gitCmd("-c", "http.sslVerify=false", "clone", strings.Replace(remote, "https://", "https://berth:wrong@", 1), clone); err == nil {
		t.Fatalf("clone with a wrong token worked:\n%s", out)
	}
	if out, err := gitCmd("fetch", "berth"); err != nil {
		t.Fatalf("git fetch: %v\n%s", err, out)
	}
	if out, _ := gitCmd("rev-parse", "berth/main"); strings.TrimSpace(out) != first {
		t.Fatalf("the remote's main is %s, want %s", out, first)
	}
}

// TestSourceDiffSyncRollbackProcesses runs on a real daemon (simulated agent) what
// broke a source: `diff --source` of a new commit, then `source sync` (the preview
// and the sync share the mirror); `source rollback --to` a revision that does not
// exist (refused, nothing pinned); and a folder source healing drift on its
// interval, with no file changed.
func TestSourceDiffSyncRollbackProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	web := func(image string) string {
		repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: " + image + "\n"})
		return repo.Commit(image).String()
	}
	first := web("nginx:1")
	c.must("node-1", "source", "add", "rp", "--url", "file://"+repo.Dir, "--interval", "0")
	if r := c.must("node-1", "source", "sync", "rp"); !strings.Contains(r.Stdout, first[:7]) {
		t.Fatalf("source sync: %v", r)
	}
	second := web("nginx:2")
	if r := c.run("node-1", "diff", "--source", "rp"); r.Code != 1 || !strings.Contains(r.Stdout, "nginx:2") {
		t.Fatalf("diff --source rp of a new commit: want exit 1 and the new image, got %v", r)
	}
	if r := c.must("node-1", "source", "sync", "rp"); !strings.Contains(r.Stdout, second[:7]) {
		t.Fatalf("source sync after diff: %v", r)
	}

	c.fails("node-1", "", `revision "deadbeef" not found in file://`+repo.Dir+" branch main", "source", "rollback", "rp", "--to", "deadbeef")
	if out := c.must("node-1", "source", "ls").Stdout; strings.Contains(out, "pinned") || strings.Contains(out, "Failed") || !strings.Contains(out, second[:7]) {
		t.Fatalf("after a refused rollback, source ls:\n%s", out)
	}

	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "api"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api", "compose.yaml"), []byte("services:\n  app:\n    image: api:1\n    deploy:\n      replicas: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "source", "add", "local", "--dir", dir, "--interval", "1s", "--self-heal")
	c.eventually(20*time.Second, func() error {
		if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "api_app") {
			return fmt.Errorf("service ls:\n%s", out)
		}
		return nil
	})
	c.must("node-1", "service", "scale", "api_app=5")
	c.eventually(20*time.Second, func() error {
		if out := c.must("node-1", "source", "history", "local").Stdout; !strings.Contains(out, "self-heal reverted changes made outside Git: service api_app: deploy.replicas") {
			return fmt.Errorf("source history local:\n%s", out)
		}
		return nil
	})
}

// TestSourceRollbackThroughFollowerProcesses sends `source rollback` to a manager
// that does not lead: a revision that does not exist is refused with its reason and
// pins nothing; one that exists pins its commit, and `source sync` ends the pin.
func TestSourceRollbackThroughFollowerProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1", "node-2")
	c.start("node-1", "node-2")
	c.initCluster("node-1", []string{"node-2"}, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	first := repo.Commit("web 1").String()
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:2\n"})
	second := repo.Commit("web 2").String()
	c.must("node-1", "source", "add", "rp", "--url", "file://"+repo.Dir, "--interval", "0")
	if r := c.must("node-1", "source", "sync", "rp"); !strings.Contains(r.Stdout, second[:7]) {
		t.Fatalf("source sync: %v", r)
	}

	c.fails("node-2", "", `revision "deadbeef" not found in file://`+repo.Dir+" branch main", "source", "rollback", "rp", "--to", "deadbeef")
	if out := c.must("node-2", "source", "ls").Stdout; strings.Contains(out, "pinned") || !strings.Contains(out, second[:7]) {
		t.Fatalf("after a refused rollback, source ls:\n%s", out)
	}
	if r := c.must("node-2", "source", "rollback", "rp", "--to", first[:7]); !strings.Contains(r.Stdout, first[:7]) {
		t.Fatalf("source rollback --to %s: %v", first[:7], r)
	}
	if out := c.must("node-2", "source", "inspect", "rp").Stdout; !strings.Contains(out, first) {
		t.Fatalf("source inspect after a rollback does not show the pinned commit %s:\n%s", first, out)
	}
	if r := c.must("node-2", "source", "sync", "rp"); !strings.Contains(r.Stdout, second[:7]) {
		t.Fatalf("source sync after a rollback: %v", r)
	}
	if out := c.must("node-1", "source", "ls").Stdout; strings.Contains(out, "pinned") {
		t.Fatalf("source sync left the pin:\n%s", out)
	}
}

// TestSourcePrivateCAProcesses follows an HTTPS remote whose certificate no system
// trusts: without --ca-file the sync fails and says to give it; with it, given to
// source add or later to source update, the source syncs, and inspect shows it by its
// fingerprint until --no-ca removes it; a CA for a URL that is not https:// is refused.
func TestSourcePrivateCAProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	first := repo.Commit("web").String()
	root := t.TempDir()
	repo.Publish(filepath.Join(root, "stacks.git"))
	srv := gittest.NewHTTPBackend(t, root, gittest.WithTLS())
	url := srv.RepoURL("stacks.git")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	c.must("node-1", "source", "add", "noca", "--url", url, "--interval", "0")
	c.fails("node-1", "", "--ca-file", "source", "sync", "noca")
	c.must("node-1", "source", "update", "noca", "--ca-file", caFile)
	if r := c.must("node-1", "source", "sync", "noca"); !strings.Contains(r.Stdout, first[:7]) {
		t.Fatalf("source sync after source update --ca-file: %v", r)
	}
	c.must("node-1", "source", "rm", "--prune", "noca")

	c.must("node-1", "source", "add", "withca", "--url", url, "--interval", "0", "--ca-file", caFile)
	if r := c.must("node-1", "source", "sync", "withca"); !strings.Contains(r.Stdout, first[:7]) {
		t.Fatalf("source sync with the CA: %v", r)
	}
	// inspect shows the CA by subject and fingerprint; --no-ca removes it.
	if out := c.must("node-1", "source", "inspect", "withca").Stdout; strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "SHA256 ") {
		t.Fatalf("source inspect shows the CA's PEM, or not its fingerprint:\n%s", out)
	}
	c.must("node-1", "source", "update", "withca", "--no-ca")
	if out := c.must("node-1", "source", "inspect", "withca").Stdout; strings.Contains(out, `"ca"`) {
		t.Fatalf("source inspect after --no-ca still shows a CA:\n%s", out)
	}
	c.fails("node-1", "", "--ca-file", "source", "sync", "withca")
	plain := "file://" + filepath.Join(root, "stacks.git")
	c.fails("node-1", "", "--ca-file is for https:// URLs", "source", "add", "plain", "--url", plain, "--ca-file", caFile)
	c.must("node-1", "source", "add", "plain", "--url", plain, "--interval", "0", "--path", "none")
	c.fails("node-1", "", "--ca-file is for https:// URLs", "source", "update", "plain", "--ca-file", caFile)
}
