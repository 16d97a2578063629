package applier_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/internal/gittest"
)

// TestSyncNeverMovesBackwards: a branch moved back to an older commit (a force push, or
// a mirror left behind by a failover) is refused with both revisions named; the last
// applied revision keeps running until `source rollback --to` asks for the older one.
func TestSyncNeverMovesBackwards(t *testing.T) {
	c := newAppliedCluster(t)
	repo := gittest.New(t)
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:1")})
	older := repo.Commit("web 1")
	repo.Write(map[string]string{"stacks/web/compose.yaml": compose("nginx:2")})
	newer := repo.Commit("web 2").String()

	ctx := context.Background()
	m, err := c.Follower(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Control.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{
		Name: "infra", Kind: model.SourceGitPull, URL: "file://" + repo.Dir, Branch: "main", Path: "stacks", Prune: true}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "the newer revision applied", sourceIs("infra", func(src *model.Source) error {
		if src.LastAppliedRevision != newer {
			return fmt.Errorf("applied %q: %s", src.LastAppliedRevision, src.Message)
		}
		return nil
	}))

	repo.Branch("main", older)
	requestSync(t, c, "infra")
	eventually(t, c, "the older revision refused", sourceIs("infra", func(src *model.Source) error {
		if src.Status != model.SyncFailed {
			return fmt.Errorf("source %s, applied %s: %s", src.Status, src.LastAppliedRevision, src.Message)
		}
		for _, want := range []string{older.String()[:7], newer[:7], "source rollback infra --to"} {
			if !strings.Contains(src.Message, want) {
				return fmt.Errorf("the message lacks %q: %s", want, src.Message)
			}
		}
		return nil
	}))
	eventually(t, c, "the newer revision still runs", func(tx *state.ReadTxn) error {
		src, _ := tx.Source(nil, "infra")
		if got := imageOf(tx, "web_app"); got != "nginx:2" || src.LastAppliedRevision != newer {
			return fmt.Errorf("web runs %s, applied %s", got, src.LastAppliedRevision)
		}
		return nil
	})

	pin := older.String()
	if _, err := m.Control.UpdateSource(ctx, "infra", &api.SourceUpdateRequest{Pin: &pin, RequestSync: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "the rollback applies the older revision", func(tx *state.ReadTxn) error {
		if got := imageOf(tx, "web_app"); got != "nginx:1" {
			return fmt.Errorf("web runs %s", got)
		}
		return nil
	})
}
