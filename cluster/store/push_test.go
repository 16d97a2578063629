package store

import (
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

func TestSourcePushMovesTheBranchFromWhatThePusherSaw(t *testing.T) {
	h := newFSMHarness(t)
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "apps", Kind: model.SourceGitPush, Branch: "main", PinnedRevision: "r0"}})
	h.must(command.CmdSourceAdd, &command.SourceAdd{Source: &model.Source{Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Branch: "main"}})
	for _, tc := range []struct {
		name string
		push *command.SourcePush
		want error // nil: applied
	}{
		{"the first push", &command.SourcePush{Name: "apps", New: "a", Pack: []byte("pack a")}, nil},
		{"a push from a stale view", &command.SourcePush{Name: "apps", New: "x", Pack: []byte("pack x")}, state.ErrConflict},
		{"the next push", &command.SourcePush{Name: "apps", Old: "a", New: "b", Pack: []byte("pack b")}, nil},
		{"a push that does not know b", &command.SourcePush{Name: "apps", Old: "a", New: "c", Pack: []byte("pack c")}, state.ErrConflict},
		{"a pull source", &command.SourcePush{Name: "infra", New: "a", Pack: []byte("pack a")}, state.ErrInvalid},
		{"no objects", &command.SourcePush{Name: "apps", Old: "b", New: "c"}, state.ErrInvalid},
		{"too many objects", &command.SourcePush{Name: "apps", Old: "b", New: "c", Pack: make([]byte, command.MaxPushPack+1)}, state.ErrInvalid},
		{"no such source", &command.SourcePush{Name: "nope", New: "a", Pack: []byte("pack a")}, state.ErrNotFound},
	} {
		if err := h.apply(command.CmdSourcePush, tc.push); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	src, err := h.tx().Source(nil, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if src.PushedRevision != "b" || string(src.PushPack.Bytes()) != "pack b" || src.PinnedRevision != "" || src.SyncRequests != 2 {
		t.Errorf("after two pushes: revision %q, pack %q, pin %q, %d sync requests", src.PushedRevision, src.PushPack.Bytes(), src.PinnedRevision, src.SyncRequests)
	}
}
