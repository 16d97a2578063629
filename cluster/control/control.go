package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
)

// Store is what control needs of a manager's raft store (*store.Store has it all).
type Store interface {
	// State is the current state store (it changes on a snapshot restore).
	State() *state.Store
	// Apply writes a command through raft (forwarded to the leader from a
	// follower) and returns its index.
	Apply(ctx context.Context, t command.Type, body any) (uint64, error)
	// StateIndex is the index of the last entry applied to State.
	StateIndex() uint64
}

// Config is what New needs. Zero fields get defaults.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock (time.Now); the times it gives go into commands in UTC.
	Now func() time.Time
	// NewID makes IDs (model.NewID).
	NewID func() string
	// MaxReportBatch bounds the task status reports of one raft entry (1024).
	MaxReportBatch int
	// ApplyTimeout bounds the wait for a write to be applied here (10s).
	ApplyTimeout time.Duration
	// Revisions checks the revision of a `source rollback` before it is pinned
	// (nil: not checked).
	Revisions Revisions
	// Raft, Peers and Keyring serve the cluster, node, join and membership
	// requests; a Control without them serves stacks, services, tasks and sources.
	Raft    Raft
	Peers   Peers
	Keyring Keyring
	// Events is the manager's window of events (nil: GET /v1/events says there is none).
	Events *EventLog
}

// Control serves every request of one manager.
type Control struct {
	st      Store
	logger  *slog.Logger
	now     func() time.Time
	newID   func() string
	timeout time.Duration
	reports *batcher
	revs    Revisions
	nets    *netViews
	raft    Raft
	peers   Peers
	keyring Keyring
	events  *EventLog
	// membership, of capacity one, is held by the membership change under way
	// on the leader (membershipChange).
	membership chan struct{}
}

// New returns a Control for the manager's store.
func New(cfg Config) *Control {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = model.NewID
	}
	if cfg.MaxReportBatch <= 0 {
		cfg.MaxReportBatch = 1024
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	c := &Control{st: cfg.Store, logger: cfg.Logger, now: cfg.Now, newID: cfg.NewID, timeout: cfg.ApplyTimeout, revs: cfg.Revisions,
		raft: cfg.Raft, peers: cfg.Peers, keyring: cfg.Keyring, events: cfg.Events, membership: make(chan struct{}, 1)}
	c.reports = newBatcher(c, cfg.MaxReportBatch)
	c.nets = newNetViews(c)
	return c
}

func (c *Control) clock() time.Time { return c.now().UTC() }

// apply writes a command and waits until this manager has applied it, so that whoever
// wrote through this manager reads the write here at once (and a rotated token is
// refused here at once).
func (c *Control) apply(ctx context.Context, t command.Type, body any) (uint64, error) {
	idx, err := c.st.Apply(ctx, t, body)
	if err != nil {
		return idx, err
	}
	return idx, c.waitApplied(ctx, idx)
}

// waitApplied waits, within the apply timeout, until this manager has applied index.
// Followers apply an entry within a round trip of the leader, so it polls briefly
// first, then backs off.
func (c *Control) waitApplied(ctx context.Context, idx uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for d := 200 * time.Microsecond; c.st.StateIndex() < idx; d = min(2*d, 5*time.Millisecond) {
		if sleepCtx(ctx, d); ctx.Err() != nil {
			return fmt.Errorf("the write was committed at index %d but this manager has not applied it yet: %w", idx, ctx.Err())
		}
	}
	return nil
}

// blocking runs a blocking query on the current state store, starting over on a
// store replaced by a snapshot restore. The end of q.Wait is an answer; the end of
// ctx is an error, which the store's Blocking does not tell from the former.
func (c *Control) blocking(ctx context.Context, q api.Query, tables []string, fn func(*state.ReadTxn, memdb.WatchSet) (uint64, error)) (uint64, error) {
	wctx := ctx
	if q.Wait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, q.Wait)
		defer cancel()
	}
	for {
		idx, err := c.st.State().Blocking(wctx, q.Index, tables, fn)
		if errors.Is(err, state.ErrAbandoned) {
			continue
		}
		if err == nil && ctx.Err() != nil {
			return idx, ctx.Err()
		}
		return idx, err
	}
}

// notFoundError names what an operator asked for; it matches state.ErrNotFound.
type notFoundError struct{ what, ref string }

// Error says where the names are listed, so that a mistyped one can be found.
func (e *notFoundError) Error() string {
	list := "berth " + e.what + " ls"
	if e.what == "task" {
		list = "berth service ps SERVICE"
	}
	return fmt.Sprintf("no such %s: %s (%s lists them)", e.what, e.ref, list)
}

func (e *notFoundError) Is(target error) bool { return target == state.ErrNotFound }

// badRequest is a request refused for what it asks: the message is the whole answer
// (a sentence about the user's object), without the code's name in front of it.
func badRequest(format string, args ...any) error {
	return api.BadRequest(fmt.Errorf(format, args...))
}

// resolveService finds a service by ID, name or unique ID prefix, as Docker does.
func resolveService(tx *state.ReadTxn, ref string) (*model.Service, error) {
	if ref == "" {
		return nil, badRequest("no service given")
	}
	s, n, err := state.LookupRef(ref,
		func(id string) (*model.Service, error) { return tx.Service(nil, id) },
		func(name string) (*model.Service, error) { return tx.ServiceByName(nil, name) },
		func() ([]*model.Service, error) { return tx.Services(nil) },
		func(s *model.Service) string { return s.ID })
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, &notFoundError{"service", ref}
	case n > 1:
		return nil, badRequest("service %q is ambiguous: %d service IDs start with it; give more of the ID", ref, n)
	}
	return s, nil
}

// resolveNode finds a node by ID, hostname or unique ID prefix, as Docker does.
func resolveNode(tx *state.ReadTxn, ref string) (*model.Node, error) {
	if ref == "" {
		return nil, badRequest("no node given")
	}
	nd, n, err := state.LookupRef(ref,
		func(id string) (*model.Node, error) { return tx.Node(nil, id) },
		func(host string) (*model.Node, error) { return tx.NodeByHostname(nil, host) },
		func() ([]*model.Node, error) { return tx.Nodes(nil) },
		func(nd *model.Node) string { return nd.ID })
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, &notFoundError{"node", ref}
	case n > 1:
		return nil, badRequest("node %q is ambiguous: %d node IDs start with it; give more of the ID", ref, n)
	}
	return nd, nil
}
