package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/internal/gittest"
)

// sopsVectorPath is a file made by the real sops and age-keygen (see the README there).
func sopsVectorPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "applier", "sops", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sopsVectorText(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(sopsVectorPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const sopsComposeFile = `services:
  app:
    image: nginx:1
    secrets: [password]
    configs: [settings]
secrets:
  password:
    file: ./password.txt
configs:
  settings:
    file: ./settings.json
`

// TestSourceSOPSProcesses follows a repository whose secret and config files are
// encrypted with sops for age: without a key the sync fails naming the file; with
// `source update --age-key-file` the plaintext is deployed (the same plaintext
// encrypted again keeps the secret's version, a new one makes the next); a file
// encrypted for someone else fails the sync while the last good revision keeps running.
func TestSourceSOPSProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	commit := func(password string) string {
		repo.Write(map[string]string{"stacks/web/compose.yaml": sopsComposeFile,
			"stacks/web/password.txt": sopsVectorText(t, password), "stacks/web/settings.json": sopsVectorText(t, "app.enc.json")})
		return repo.Commit(password).String()
	}
	sourceIs := func(rev, status string) func() error {
		return func() error {
			out := c.must("node-1", "source", "ls").Stdout
			if !strings.Contains(out, rev[:7]) || !strings.Contains(out, status) {
				return fmt.Errorf("source ls, want %s %s:\n%s", rev[:7], status, out)
			}
			return nil
		}
	}
	secretVersion := func() string {
		for _, line := range strings.Split(c.must("node-1", "secret", "ls").Stdout, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[1] == "web_password" {
				return f[2]
			}
		}
		t.Fatal("secret ls has no web_password")
		return ""
	}
	syncFails := func(want ...string) {
		t.Helper()
		r := c.run("node-1", "source", "sync", "infra")
		t.Logf("source sync of a revision that cannot be decrypted:\n%s", r.Stderr)
		for _, w := range want {
			if r.Code == 0 || !strings.Contains(r.Stderr, w) {
				t.Fatalf("source sync: want a failure saying %q: %v", w, r)
			}
		}
	}

	first := commit("password.enc.txt")
	c.must("node-1", "source", "add", "infra", "--url", "file://"+repo.Dir, "--path", "stacks", "--interval", "0")
	syncFails("password.txt is encrypted with SOPS, and source infra has no age key", "berth source update infra --age-key-file FILE")

	c.fails("node-1", "", "source infra: --age-key-file holds no age identity", "source", "update", "infra", "--age-key-file", sopsVectorPath(t, "plain/password.txt"))
	c.must("node-1", "source", "update", "infra", "--age-key-file", sopsVectorPath(t, "test.agekey"))
	c.eventually(20*time.Second, sourceIs(first, "Synced"))
	inspect := c.must("node-1", "source", "inspect", "infra").Stdout
	if !strings.Contains(inspect, "age18kwlsf8vawj7cyj3np96d7cuvyr4hxae9r5lt7lypsunnr0pqeksaxr2u8") || strings.Contains(inspect, "AGE-SECRET-KEY") {
		t.Fatalf("source inspect must show the recipient and never the identity:\n%s", inspect)
	}
	// A config can be read back: it is the plaintext, not the sops document.
	if cfg := c.must("node-1", "config", "inspect", "--pretty", "web_settings").Stdout; !strings.Contains(cfg, `"pi": 3.5`) || strings.Contains(cfg, "ENC[") || strings.Contains(cfg, "sops") {
		t.Fatalf("config inspect:\n%s", cfg)
	}
	if v := secretVersion(); v != "1" {
		t.Fatalf("secret web_password version %s, want 1", v)
	}

	second := commit("password.reenc.txt")
	c.must("node-1", "source", "sync", "infra")
	c.eventually(20*time.Second, sourceIs(second, "Synced"))
	if v := secretVersion(); v != "1" {
		t.Fatalf("the same plaintext encrypted again made secret version %s, want 1", v)
	}
	third := commit("password2.enc.txt")
	c.must("node-1", "source", "sync", "infra")
	c.eventually(20*time.Second, sourceIs(third, "Synced"))
	if v := secretVersion(); v != "2" {
		t.Fatalf("a new plaintext made secret version %s, want 2", v)
	}

	commit("password.other.txt")
	c.fails("node-1", "", "web/password.txt is encrypted with SOPS for age10ew8", "diff", "--source", "infra")
	syncFails("web/password.txt is encrypted with SOPS for age10ew8ezms3h228f9u0tvsgvlhlp7rfupad9spf4uwejkv290729gqyas2e7, and the age key of source infra")
	c.eventually(20*time.Second, sourceIs(third, "Failed"))
	if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "web_app") {
		t.Fatalf("after a refused revision, service ls:\n%s", out)
	}
	if v := secretVersion(); v != "2" {
		t.Fatalf("a refused revision changed the secret: version %s, want 2", v)
	}
}
