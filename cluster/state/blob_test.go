package state

import (
	"bytes"
	"github.com/berthd/berth/cluster/model"
	"testing"
)

// TestBlobSurvivesSnapshots: a push's pack (any bytes) comes back from a snapshot as
// it went in, and a copy of its row shares it.
func TestBlobSurvivesSnapshots(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	pack := []byte{'P', 'A', 'C', 'K', 0, 1, 0xff, '\n', '"'}
	if err := s.Update(1, func(tx *WriteTxn) error {
		return tx.UpsertSource(&model.Source{Name: "apps", Kind: model.SourceGitPush, Branch: "main", PushedRevision: "abc", PushPack: model.NewBlob(pack)})
	}); err != nil {
		t.Fatal(err)
	}
	src, err := roundTrip(t, s).ReadTxn().Source(nil, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src.PushPack.Bytes(), pack) {
		t.Errorf("restored pack %q, want %q", src.PushPack.Bytes(), pack)
	}
	if cp := src.Copy(); &cp.PushPack.Bytes()[0] != &src.PushPack.Bytes()[0] {
		t.Error("a copy of the row copied its pack")
	}
}
