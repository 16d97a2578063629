package command

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// applyTo encodes body as a command of type t and applies it at index.
func applyTo(t *testing.T, s *state.Store, index uint64, typ Type, body any) error {
	t.Helper()
	data, err := Encode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return s.Update(index, func(tx *state.WriteTxn) error { return Apply(tx, data) })
}

// The last leader record applied is the one the cluster row keeps, whatever its term:
// a restored backup counts terms from the start again.
func TestLeaderElectedKeepsTheLastRecord(t *testing.T) {
	s, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	if err := applyTo(t, s, 1, CmdLeaderElected, &model.LeaderRecord{NodeID: "n1", Term: 1, Since: at}); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("a record before the cluster row: %v, want not found", err)
	}
	if err := applyTo(t, s, 2, CmdClusterUpsert, &model.Cluster{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		rec  model.LeaderRecord
		want error
	}{
		{model.LeaderRecord{NodeID: "n1", Term: 7, Since: at}, nil},
		{model.LeaderRecord{NodeID: "n2", Term: 2, Since: at.Add(time.Minute)}, nil},
		{model.LeaderRecord{NodeID: "n3", Since: at}, state.ErrInvalid},
		{model.LeaderRecord{Term: 3, Since: at}, state.ErrInvalid},
	} {
		if err := applyTo(t, s, uint64(3+i), CmdLeaderElected, &tc.rec); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("record %+v: %v, want %v", tc.rec, err, tc.want)
		}
	}
	c, err := s.ReadTxn().Cluster(nil)
	if err != nil || c.Leader.NodeID != "n2" || c.Leader.Term != 2 {
		t.Fatalf("cluster row leader %+v (%v), want n2 in term 2", c.Leader, err)
	}
}

// A push source keeps the last push it refused, and only push sources take one.
func TestSourcePushRejectedKeepsTheLast(t *testing.T) {
	s, err := state.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, src := range []*model.Source{{Name: "apps", Kind: model.SourceGitPush, Branch: "main"}, {Name: "infra", Kind: model.SourceGitPull, URL: "file:///r", Branch: "main"}} {
		if err := applyTo(t, s, uint64(1+i), CmdSourceAdd, &SourceAdd{Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	rej := func(name, rev, reason string) *SourcePushRejected {
		return &SourcePushRejected{Name: name, Rejection: model.PushRejection{Revision: rev, Reason: reason, At: at}}
	}
	for i, tc := range []struct {
		name string
		r    *SourcePushRejected
		want error
	}{
		{"a refused push", rej("apps", "a1", "bad compose"), nil},
		{"the next one", rej("apps", "b2", "no image"), nil},
		{"a pull source", rej("infra", "a1", "bad compose"), state.ErrInvalid},
		{"no reason", rej("apps", "c3", ""), state.ErrInvalid},
		{"a reason too long", rej("apps", "c3", strings.Repeat("x", model.MaxPushRejectionReason+1)), state.ErrInvalid},
		{"no such source", rej("nope", "a1", "bad compose"), state.ErrNotFound},
	} {
		if err := applyTo(t, s, uint64(3+i), CmdSourcePushRejected, tc.r); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	src, err := s.ReadTxn().Source(nil, "apps")
	if err != nil || src.RejectedPush.Revision != "b2" || src.RejectedPush.Reason != "no image" {
		t.Fatalf("source apps keeps %+v (%v), want the refusal of b2", src.RejectedPush, err)
	}
}
