package applier_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/memcluster"
)

// received is one request a test's endpoint took.
type received struct {
	path, auth string
	body       map[string]any
}

// recorder is an HTTP server on loopback that hands every request it takes to the test.
func recorder(t *testing.T) (*httptest.Server, chan received) {
	ch := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s (Content-Type %q) with a body that is not JSON: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
		}
		ch <- received{r.URL.EscapedPath(), r.Header.Get("Authorization"), body}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func expect(t *testing.T, ch chan received, what string, ok func(received) bool) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-ch:
			if ok(r) {
				return
			}
			t.Logf("not %s: %s %v", what, r.path, r.body)
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

// A sync is told to the source's targets and its forge, a rollout that cannot end as
// stuck, and an endpoint that never answers holds up neither the sync nor the other
// targets.
func TestSyncsNotifyTargetsAndForge(t *testing.T) {
	metrics := applier.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collectors()...)
	c, err := memcluster.New(memcluster.Options{Dir: t.TempDir(), Applier: &applier.Config{Dir: t.TempDir(), Metrics: metrics}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	first := repo.Commit("web").String()
	root := t.TempDir()
	bare := filepath.Join(root, "ops", "stacks.git")
	repo.Publish(bare)
	git := gittest.NewHTTPBackend(t, root)

	hooks, hookCh := recorder(t)
	forge, statusCh := recorder(t)
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); slow.Close() })

	ctx := context.Background()
	m, err := c.Follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: "infra", Kind: model.SourceGitPull, URL: git.RepoURL("ops/stacks.git"), Branch: "main", Prune: true,
		SourceNotify: model.SourceNotify{
			Notify:       []model.NotifyTarget{{Format: model.NotifyGeneric, URL: slow.URL + "/slow"}, {Format: model.NotifyGeneric, URL: hooks.URL + "/hook"}},
			CommitStatus: &model.CommitStatus{Provider: model.CommitStatusGitea, URL: forge.URL + "/api/v1"},
		}}, CommitStatusToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, hookCh, "SyncSucceeded of the first revision", func(r received) bool {
		return r.path == "/hook" && r.body["reason"] == "SyncSucceeded" && r.body["revision"] == first
	})
	expect(t, statusCh, "a pending status of the first revision", func(r received) bool {
		return r.path == "/api/v1/repos/ops/stacks/statuses/"+first && r.auth == "token tok" && r.body["state"] == "pending" && r.body["context"] == "berth/infra"
	})

	// The cluster has no node for the tasks: the rollout is stuck.
	expect(t, hookCh, "RolloutStuck of the first revision", func(r received) bool {
		msg, _ := r.body["message"].(string)
		return r.body["reason"] == "RolloutStuck" && r.body["revision"] == first && strings.Contains(msg, "pending")
	})
	expect(t, statusCh, "a failure status of the first revision", func(r received) bool {
		return strings.HasSuffix(r.path, "/statuses/"+first) && r.body["state"] == "failure"
	})

	repo.Write(map[string]string{"web/compose.yaml": "services:\n  app:\n    deploy:\n      replicas: two\n"})
	broken := repo.Commit("break web").String()
	repo.Publish(bare)
	requestSync(t, c, "infra")
	expect(t, hookCh, "SyncFailed of the broken revision", func(r received) bool {
		msg, _ := r.body["message"].(string)
		return r.body["reason"] == "SyncFailed" && r.body["revision"] == broken && r.body["severity"] == "error" && strings.Contains(msg, "web")
	})
	expect(t, statusCh, "a failure status of the broken revision", func(r received) bool {
		desc, _ := r.body["description"].(string)
		return strings.HasSuffix(r.path, "/statuses/"+broken) && r.body["state"] == "failure" && strings.Contains(desc, "web")
	})
	for _, kind := range []string{"generic", "gitea"} {
		waitCounted(t, reg, kind, 2)
	}
}

// waitCounted waits until berth_notifications_total counts at least want deliveries of
// kind sent.
func waitCounted(t *testing.T, reg *prometheus.Registry, kind string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		for _, f := range families {
			if f.GetName() != "berth_notifications_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["kind"] == kind && labels["result"] == "sent" {
					got = m.GetCounter().GetValue()
				}
			}
		}
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth_notifications_total{kind=%q,result=\"sent\"} = %v, want at least %v", kind, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
