package store

import (
	"errors"
	"testing"

	"github.com/berthd/berth/cluster/state"
)

func TestSourcePushMovesTheBranchFromWhatThePusherSaw(t *testing.T) {
	h := newFSMHarness(t)
	h.must(CmdSourceAdd, &SourceAdd{Source: &state.Source{Name: "apps", Kind: state.SourceGitPush, Branch: "main", PinnedRevision: "r0"}})
	h.must(CmdSourceAdd, &SourceAdd{Source: &state.Source{Name: "infra", Kind: state.SourceGitPull, URL: "file:///r", Branch: "main"}})
	for _, tc := range []struct {
		name string
		push *SourcePush
		want error // nil: applied
	}{
		{"the first push", &SourcePush{Name: "apps", New: "a", Pack: []byte("pack a")}, nil},
		{"a push from a stale view", &SourcePush{Name: "apps", New: "x", Pack: []byte("pack x")}, state.ErrConflict},
		{"the next push", &SourcePush{Name: "apps", Old: "a", New: "b", Pack: []byte("pack b")}, nil},
		{"a push that does not know b", &SourcePush{Name: "apps", Old: "a", New: "c", Pack: []byte("pack c")}, state.ErrConflict},
		{"a pull source", &SourcePush{Name: "infra", New: "a", Pack: []byte("pack a")}, state.ErrInvalid},
		{"no objects", &SourcePush{Name: "apps", Old: "b", New: "c"}, state.ErrInvalid},
		{"too many objects", &SourcePush{Name: "apps", Old: "b", New: "c", Pack: make([]byte, MaxPushPack+1)}, state.ErrInvalid},
		{"no such source", &SourcePush{Name: "nope", New: "a", Pack: []byte("pack a")}, state.ErrNotFound},
	} {
		if err := h.apply(CmdSourcePush, tc.push); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
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
