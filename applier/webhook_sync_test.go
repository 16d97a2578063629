package applier_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/applier/webhook"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/memcluster"
)

const hookSecret = "hook-secret"

// hookTrigger is what a manager gives the webhook handler: the source's secret, and a
// sync request written through raft by a follower.
type hookTrigger struct{ c *memcluster.Cluster }

func (h hookTrigger) WebhookTarget(context.Context, string) ([]byte, string, error) {
	return []byte(hookSecret), "main", nil
}

func (h hookTrigger) RequestSync(ctx context.Context, name, _ string) error {
	m, err := h.c.Follower(ctx)
	if err != nil {
		return err
	}
	_, err = m.Control.UpdateSource(ctx, name, &api.SourceUpdateRequest{RequestSync: true})
	return err
}

// TestWebhookReplaysMakeOneSync sends one signed GitHub delivery 300 times through the
// webhook handler to a cluster running the applier: one sync request and one sync, each
// one raft write.
func TestWebhookReplaysMakeOneSync(t *testing.T) {
	const replays = 300
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	first := repo.Commit("web").String()
	addPullSource(t, c, "infra", repo, first)
	before := mustSource(t, c, "infra")

	h := webhook.NewHandler(hookTrigger{c})
	body := fmt.Sprintf(`{"ref": "refs/heads/main", "after": %q}`, first)
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(body))
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var wg sync.WaitGroup
	for range replays {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, webhook.PathPrefix+"infra", strings.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
			req.Header.Set("X-Hub-Signature-256", signature)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted && rec.Code != http.StatusOK {
				t.Errorf("delivery answered %d %s", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	eventually(t, c, "the request answered", sourceIs("infra", func(src *model.Source) error {
		if src.AnsweredRequests < src.SyncRequests || len(src.History) == len(before.History) {
			return fmt.Errorf("%d requests, %d answered, %d syncs recorded", src.SyncRequests, src.AnsweredRequests, len(src.History))
		}
		return nil
	}))
	after := mustSource(t, c, "infra")
	if requests, syncs := after.SyncRequests-before.SyncRequests, len(after.History)-len(before.History); requests != 1 || syncs != 1 {
		t.Errorf("%d replays of one delivery made %d sync requests and %d syncs; want 1 and 1", replays, requests, syncs)
	}
}

// holdingCluster holds the applier's first sync until release is closed, and counts syncs.
type holdingCluster struct {
	applier.Cluster
	held    chan struct{} // closed when the first sync waits
	release chan struct{}

	mu    sync.Mutex
	syncs int
}

func (h *holdingCluster) ApplySync(ctx context.Context, s *applier.Sync) error {
	h.mu.Lock()
	h.syncs++
	n := h.syncs
	h.mu.Unlock()
	if n == 1 {
		close(h.held)
		<-h.release
	}
	return h.Cluster.ApplySync(ctx, s)
}

func (h *holdingCluster) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.syncs
}

// TestSyncRequestsDuringASyncMakeOneMore: 20 requests that arrive while a sync runs
// make one more sync, which answers them all.
func TestSyncRequestsDuringASyncMakeOneMore(t *testing.T) {
	const requests = 20
	c, leader, ctx, cancel := leaderOf(t, memcluster.Options{Dir: t.TempDir()})
	cl := &holdingCluster{Cluster: memcluster.ApplierCluster{Store: leader.Store, Control: leader.Control}, held: make(chan struct{}), release: make(chan struct{})}
	runApplier(t, ctx, cancel, applier.Config{Cluster: cl, Dir: t.TempDir()})

	repo := gittest.New(t)
	repo.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	repo.Commit("web")
	if _, err := leader.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: "infra", Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Branch: "main"}}); err != nil {
		t.Fatal(err)
	}
	<-cl.held
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			if _, err := leader.Control.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{RequestSync: true}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(cl.release)
	eventually(t, c, "every request answered", sourceIs("infra", func(src *model.Source) error {
		if src.AnsweredRequests < src.SyncRequests {
			return fmt.Errorf("%d requests, %d answered", src.SyncRequests, src.AnsweredRequests)
		}
		return nil
	}))
	// A sync the loop would start after the answer starts at once; give it time to show.
	time.Sleep(500 * time.Millisecond)
	if n := cl.count(); n != 2 {
		t.Errorf("%d syncs; want 2: the one running and one for the %d requests that arrived meanwhile", n, requests)
	}
}
