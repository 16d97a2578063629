package control_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
)

// revisionsOf knows the commits of some revisions, as the applier would.
type revisionsOf map[string]string

func (r revisionsOf) ResolveRevision(_ context.Context, source, rev string) (string, error) {
	if sha, ok := r[rev]; ok {
		return sha, nil
	}
	return "", fmt.Errorf("%w: source %s: revision %q not found", api.ErrBadRequest, source, rev)
}

// A rollback pins the commit its revision names, once the revision is found; one
// that is not found changes nothing; unpinning needs no revision.
func TestRollbackPinsOnlyARevisionFound(t *testing.T) {
	_, m := oneManager(t)
	ctx := context.Background()
	sha := strings.Repeat("3f", 20)
	ctl := control.New(control.Config{Store: m.Store, Revisions: revisionsOf{"v1": sha}})
	if _, err := ctl.AddSource(ctx, &api.SourceAddRequest{Source: &model.Source{Name: "apps", Kind: model.SourceGitPush}}); err != nil {
		t.Fatal(err)
	}
	row := func() *model.Source {
		t.Helper()
		src, err := m.Store.State().ReadTxn().Source(nil, "apps")
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	before := row()
	pin := func(rev string) error {
		_, err := ctl.UpdateSource(ctx, "apps", &api.SourceUpdateRequest{Pin: &rev, RequestSync: true})
		return err
	}

	if err := pin("deadbeef"); !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), `revision "deadbeef" not found`) {
		t.Fatalf("rollback to an unknown revision: %v", err)
	}
	if after := row(); after.PinnedRevision != "" || after.SyncRequests != before.SyncRequests {
		t.Fatalf("a refused rollback wrote: pinned %q, %d sync requests (were %d)", after.PinnedRevision, after.SyncRequests, before.SyncRequests)
	}
	if err := pin("v1"); err != nil {
		t.Fatal(err)
	}
	if got := row().PinnedRevision; got != sha {
		t.Fatalf("pinned %q, want the commit %s", got, sha)
	}
	if err := pin(""); err != nil {
		t.Fatalf("unpin: %v", err)
	}
	if got := row().PinnedRevision; got != "" {
		t.Fatalf("pinned %q after an unpin", got)
	}
}
