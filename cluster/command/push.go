package command

import (
	"fmt"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// MaxPushPack bounds the pack a push replicates: every object of the pushed branch,
// carried by one raft entry and kept in the state (and its snapshots) while it is the
// branch's tip.
const MaxPushPack = 32 << 20

// SourcePush moves a push source's branch: Old is the revision the pusher saw (empty
// for the first push), New the pushed commit, and Pack every object reachable from
// New. It also asks for a sync of New, clearing a rollback's pin as a sync request does.
type SourcePush struct {
	Name string `json:"name"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new"`
	Pack []byte `json:"pack"`
}

func applySourcePush(tx *state.WriteTxn, p *SourcePush) error {
	cur, err := tx.Source(nil, p.Name)
	if err != nil {
		return err
	}
	switch {
	case cur.Kind != model.SourceGitPush:
		return fmt.Errorf("%w: source %s is a %s source: only push sources take a push", state.ErrInvalid, p.Name, cur.Kind)
	case p.New == "" || len(p.Pack) == 0:
		return fmt.Errorf("%w: a push to source %s without its revision or objects", state.ErrInvalid, p.Name)
	case len(p.Pack) > MaxPushPack:
		return fmt.Errorf("%w: the objects of the push to source %s take %d bytes, more than the limit of %d", state.ErrInvalid, p.Name, len(p.Pack), MaxPushPack)
	case cur.PushedRevision != "" && cur.PushedRevision != p.Old:
		// The leader checked the pusher's view against its repository; another
		// push got in between.
		return fmt.Errorf("stale info: the branch of source %s is now at %s; fetch first: %w", p.Name, cur.PushedRevision, state.ErrConflict)
	}
	next := cur.Copy()
	next.PushedRevision, next.PushPack = p.New, model.NewBlob(p.Pack)
	next.PinnedRevision = ""
	next.SyncRequests++
	return tx.UpsertSource(next)
}

// SourcePushRejected records the push a push source refused, replacing the one it
// recorded before.
type SourcePushRejected struct {
	Name      string              `json:"name"`
	Rejection model.PushRejection `json:"rejection"`
}

func applySourcePushRejected(tx *state.WriteTxn, r *SourcePushRejected) error {
	cur, err := tx.Source(nil, r.Name)
	if err != nil {
		return err
	}
	switch {
	case cur.Kind != model.SourceGitPush:
		return fmt.Errorf("%w: source %s is a %s source: only push sources refuse a push", state.ErrInvalid, r.Name, cur.Kind)
	case r.Rejection.Reason == "" || r.Rejection.At.IsZero():
		return fmt.Errorf("%w: a refused push to source %s without its reason or time", state.ErrInvalid, r.Name)
	case len(r.Rejection.Reason) > model.MaxPushRejectionReason || len(r.Rejection.Revision) > 64:
		return fmt.Errorf("%w: the record of a refused push to source %s is longer than the limits", state.ErrInvalid, r.Name)
	}
	next := cur.Copy()
	next.RejectedPush = r.Rejection
	return tx.UpsertSource(next)
}
