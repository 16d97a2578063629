package applier_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/berthd/berth/applier"
	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/gittest"
	"github.com/berthd/berth/internal/memcluster"
)

// countingCluster counts the revisions the applier has the cluster plan, and plan
// again.
type countingCluster struct {
	applier.Cluster
	mu             sync.Mutex
	plans, replans int
}

func (c *countingCluster) Plan(ctx context.Context, src *model.Source, stacks *applier.LoadedStacks) (applier.Plan, error) {
	c.mu.Lock()
	c.plans++
	c.mu.Unlock()
	return c.Cluster.Plan(ctx, src, stacks)
}

func (c *countingCluster) Replan(ctx context.Context, plan applier.Plan) (applier.Plan, error) {
	c.mu.Lock()
	c.replans++
	c.mu.Unlock()
	return c.Cluster.Replan(ctx, plan)
}

func (c *countingCluster) counts() (plans, replans int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plans, c.replans
}

// addPushSource adds the push source apps and returns its token.
func addPushSource(t *testing.T, ctx context.Context, leader *memcluster.Manager) string {
	t.Helper()
	add := &api.SourceAddRequest{Source: &model.Source{Name: "apps", Kind: model.SourceGitPush, Branch: "main", Prune: true}}
	if _, err := leader.Control.AddSource(ctx, add); err != nil {
		t.Fatal(err)
	}
	token, err := leader.Control.SourceToken(ctx, "apps", false)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// leaderOf starts a cluster, closed when the test ends, and returns its leader and a
// context for the test (cancel ends it).
func leaderOf(t *testing.T, opts memcluster.Options) (*memcluster.Cluster, *memcluster.Manager, context.Context, context.CancelFunc) {
	t.Helper()
	c, err := memcluster.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithCancel(context.Background())
	leader, err := c.Leader(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return c, leader, ctx, cancel
}

// runApplier runs the applier until the test ends, when it cancels ctx.
func runApplier(t *testing.T, ctx context.Context, cancel context.CancelFunc, cfg applier.Config) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- applier.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("applier: %v", err)
		}
	})
}

// TestPushIsPlannedOnce: the sync a push requests applies the plan the push's
// pre-receive made, brought up to date, rather than loading and planning the
// revision again.
func TestPushIsPlannedOnce(t *testing.T) {
	c, leader, ctx, cancel := leaderOf(t, memcluster.Options{Managers: 1, Dir: t.TempDir()})
	token := addPushSource(t, ctx, leader)
	cl := &countingCluster{Cluster: memcluster.ApplierCluster{Store: leader.Store, Control: leader.Control}}
	dir, plans, metrics := t.TempDir(), applier.NewPushPlans(), applier.NewMetrics()
	h, err := applier.NewPushHandler(applier.PushConfig{Cluster: cl, Dir: dir, Plans: plans, MaxPack: command.MaxPushPack, Converge: time.Second, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	runApplier(t, ctx, cancel, applier.Config{Cluster: cl, Dir: dir, PushPlans: plans})

	work := gittest.New(t)
	work.Write(map[string]string{"web/compose.yaml": compose("nginx:1")})
	sha := work.Commit("web 1").String()
	if _, err := work.Repo.CreateRemote(&config.RemoteConfig{Name: "berth", URLs: []string{srv.URL + "/git/apps.git"}}); err != nil {
		t.Fatal(err)
	}
	err = work.Repo.PushContext(ctx, &git.PushOptions{RemoteName: "berth",
		Auth: &githttp.BasicAuth{Username: "berth", Password: token}, RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	eventually(t, c, "the pushed revision applied", sourceIs("apps", func(s *model.Source) error {
		if s.LastAppliedRevision != sha {
			return errors.New("last applied " + s.LastAppliedRevision)
		}
		return nil
	}))
	if plans, replans := cl.counts(); plans != 1 || replans != 1 {
		t.Errorf("the push was planned %d times and brought up to date %d times; want 1 and 1", plans, replans)
	}
	want := "# HELP berth_source_pushes_total git pushes this manager received, by push source and result (accepted, rejected).\n" +
		"# TYPE berth_source_pushes_total counter\n" + `berth_source_pushes_total{result="accepted",source="apps"} 1` + "\n"
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.Collectors()...)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "berth_source_pushes_total"); err != nil {
		t.Error(err)
	}
}

// A push the pre-receive refuses is recorded in its source's row, with the pushed
// revision and the first line of the reason the pusher saw.
func TestRefusedPushIsRecorded(t *testing.T) {
	c, leader, ctx, cancel := leaderOf(t, memcluster.Options{Managers: 1, Dir: t.TempDir()})
	defer cancel()
	token := addPushSource(t, ctx, leader)
	cl := memcluster.ApplierCluster{Store: leader.Store, Control: leader.Control}
	h, err := applier.NewPushHandler(applier.PushConfig{Cluster: cl, Dir: t.TempDir(), MaxPack: command.MaxPushPack, Converge: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	work := gittest.New(t)
	work.Write(map[string]string{"web/compose.yaml": "services:\n  web:\n    image: [nginx\n"})
	sha := work.Commit("broken web").String()
	if _, err := work.Repo.CreateRemote(&config.RemoteConfig{Name: "berth", URLs: []string{srv.URL + "/git/apps.git"}}); err != nil {
		t.Fatal(err)
	}
	err = work.Repo.PushContext(ctx, &git.PushOptions{RemoteName: "berth",
		Auth: &githttp.BasicAuth{Username: "berth", Password: token}, RefSpecs: []config.RefSpec{"refs/heads/main:refs/heads/main"}})
	if err == nil {
		t.Fatal("the push of a broken compose file was accepted")
	}
	eventually(t, c, "the refused push recorded", sourceIs("apps", func(s *model.Source) error {
		r := s.RejectedPush
		if r.Revision != sha || !strings.HasPrefix(r.Reason, "revision "+sha[:7]+": ") || strings.Contains(r.Reason, "\n") || r.At.IsZero() {
			return fmt.Errorf("rejected push %+v, want revision %s and the first line of the reason", r, sha)
		}
		return nil
	}))
}
