package applier_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/spec"
)

// `service update` and `service rm` on a source's service are drift, as `service
// scale` is: reported without self-heal, and a removed service re-created with it.
func TestDriftOfServiceUpdateAndRm(t *testing.T) {
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
	if _, err := m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "local", Kind: model.SourceDir, URL: dir, Prune: true}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "applied", sourceIs("local", func(src *model.Source) error {
		if src.Status != model.SyncSynced {
			return fmt.Errorf("status %s: %s", src.Status, src.Message)
		}
		return nil
	}))
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
	eventually(t, c, "update reported", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "local")
		if src.Status != model.SyncOutOfSync || !strings.Contains(src.Message, "service web_app: image is nginx:2, Git says nginx:1") {
			return fmt.Errorf("status %s: %q", src.Status, src.Message)
		}
		return nil
	})
	if _, err := m.Control.RemoveService(ctx, "web_app"); err != nil {
		t.Fatal(err)
	}
	requestSync(t, c, "local")
	eventually(t, c, "rm reported", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "local")
		if src.Status != model.SyncOutOfSync || !strings.Contains(src.Message, "service web_app is missing") {
			return fmt.Errorf("status %s: %q", src.Status, src.Message)
		}
		return nil
	})
}
