package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/internal/gittest"
)

// posts is an HTTP server on loopback that keeps the JSON documents POSTed to it,
// with the path and Authorization header they came with.
type posts struct {
	*httptest.Server
	mu  sync.Mutex
	got []string // "PATH AUTH reason-or-state revision-or-context: message-or-description"
}

func newPosts(t *testing.T) *posts {
	p := &posts{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var d map[string]string
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &d) != nil {
			t.Errorf("%s %s, Content-Type %q: %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"), b)
		}
		line := fmt.Sprintf("%s %s %s%s %s%s: %s%s", r.URL.Path, r.Header.Get("Authorization"),
			d["reason"], d["state"], d["revision"], d["context"], d["message"], d["description"])
		p.mu.Lock()
		p.got = append(p.got, line)
		p.mu.Unlock()
	}))
	t.Cleanup(p.Close)
	return p
}

// has reports whether some document received so far holds every one of want, in
// the order of the documents.
func (p *posts) has(want ...string) func() error {
	return func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		i := 0
		for _, line := range p.got {
			if i < len(want) && strings.Contains(line, want[i]) {
				i++
			}
		}
		if i < len(want) {
			return fmt.Errorf("no document with %q, after those before it, in:\n%s", want[i], strings.Join(p.got, "\n"))
		}
		return nil
	}
}

// TestSourceNotifyProcesses follows a source with a notification target and Gitea
// commit statuses on a real daemon: a good commit is told as SyncSucceeded, with
// statuses pending then success on its SHA; a broken one as SyncFailed with a
// failure status naming the file, to the source's target and the cluster's.
func TestSourceNotifyProcesses(t *testing.T) {
	c := newProcClusterArgs(t, testDaemonArgs, "node-1")
	c.start("node-1")
	c.initCluster("node-1", nil, nil)

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:1\n"})
	good := repo.Commit("web").String()
	root := t.TempDir()
	bare := filepath.Join(root, "ops", "stacks.git")
	repo.Publish(bare)
	git := gittest.NewHTTPBackend(t, root)
	hooks, forge := newPosts(t), newPosts(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("gitea-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c.must("node-1", "source", "add", "infra", "--url", git.RepoURL("ops/stacks.git"), "--interval", "0",
		"--notify", hooks.URL+"/hook", "--commit-status", "gitea", "--commit-status-url", forge.URL+"/api/v1",
		"--commit-status-token-file", tokenFile)
	c.must("node-1", "source", "sync", "infra")
	c.eventually(30*time.Second, hooks.has("/hook  SyncSucceeded "+good))
	statuses := "/api/v1/repos/ops/stacks/statuses/"
	c.eventually(30*time.Second, forge.has(statuses+good+" token gitea-t0ken pending berth/infra",
		statuses+good+" token gitea-t0ken success berth/infra"))
	if out := c.must("node-1", "source", "inspect", "infra").Stdout; strings.Contains(out, "gitea-t0ken") || !strings.Contains(out, hooks.URL+"/hook") {
		t.Fatalf("source inspect shows the token, or not the target:\n%s", out)
	}

	// Cluster-wide targets hear of every source.
	c.must("node-1", "swarm", "update", "--notify", hooks.URL+"/all")
	c.fails("node-1", "", "has no --notify", "swarm", "update", "--notify-rm", hooks.URL+"/none")

	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    image: nginx:2\n    deploy:\n      replicas: -1\n"})
	bad := repo.Commit("broken").String()
	repo.Publish(bare)
	c.fails("node-1", "", "replicas", "source", "sync", "infra")
	c.eventually(30*time.Second, hooks.has("/hook  SyncFailed "+bad))
	c.eventually(30*time.Second, hooks.has("/all  SyncFailed "+bad))
	c.eventually(30*time.Second, forge.has(statuses+bad+" token gitea-t0ken failure berth/infra: sync failed: web/compose.yaml"))

	c.must("node-1", "swarm", "update", "--notify-rm", hooks.URL+"/all")
	c.must("node-1", "source", "update", "infra", "--notify-rm", hooks.URL+"/hook", "--no-commit-status")
	if out := c.must("node-1", "source", "inspect", "infra").Stdout; strings.Contains(out, `"notify"`) || strings.Contains(out, `"commit_status"`) {
		t.Fatalf("source inspect after --notify-rm and --no-commit-status:\n%s", out)
	}
}
