package applier_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/memcluster"
	"github.com/berthd/berth/spec"
)

// `service update` and `service rm` on a source's service are drift, as `service
// scale` is: reported without self-heal, and a removed service re-created with it.
func TestDriftOfServiceUpdateAndRm(t *testing.T) {
	ctx := context.Background()
	c, m := appliedDirSource(t, false, 0)
	svc, _, err := m.Control.Service(ctx, "web_app", api.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next := spec.Clone(&svc.Spec)
	next.Image = "nginx:2"
	if _, err := m.Control.UpdateService(ctx, "web_app", &api.ServiceUpdateRequest{Spec: next}); err != nil {
		t.Fatal(err)
	}
	requestSync(t, c, "local")
	eventually(t, c, "update reported", outOfSync("service web_app: image is nginx:2, Git says nginx:1"))
	if _, err := m.Control.RemoveService(ctx, "web_app"); err != nil {
		t.Fatal(err)
	}
	requestSync(t, c, "local")
	eventually(t, c, "rm reported", outOfSync("service web_app is missing"))
}

// outOfSync checks that source local is out of sync, saying want.
func outOfSync(want string) func(tx *state.ReadTxn) error {
	return func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "local")
		if src.Status != model.SyncOutOfSync || !strings.Contains(src.Message, want) {
			return fmt.Errorf("status %s: %q", src.Status, src.Message)
		}
		return nil
	}
}

// appliedDirSource adds folder source local, whose stack web runs nginx:1 in
// service web_app, and waits until it applied it.
func appliedDirSource(t *testing.T, selfHeal bool, interval time.Duration) (*memcluster.Cluster, *memcluster.Manager) {
	t.Helper()
	c := newAppliedCluster(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web", "compose.yaml"), []byte(compose("nginx:1")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "local", Kind: model.SourceDir, URL: dir,
		Prune: true, SelfHeal: selfHeal, Interval: spec.Duration(interval)}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "applied", sourceIs("local", func(src *model.Source) error {
		if src.Status != model.SyncSynced {
			return fmt.Errorf("status %s: %s", src.Status, src.Message)
		}
		return nil
	}))
	return c, m
}
