package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// Store is what control needs of a manager's raft store (*store.Store has it all).
type Store interface {
	// State is the current state store (it changes on a snapshot restore).
	State() *state.Store
	// Apply writes a command through raft (forwarded to the leader from a
	// follower) and returns its index.
	Apply(ctx context.Context, t store.CommandType, body any) (uint64, error)
	// StateIndex is the index of the last entry applied to State.
	StateIndex() uint64
}

// Config is what New needs. Zero fields get defaults.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock (time.Now); the times it gives go into commands in UTC.
	Now func() time.Time
	// NewID makes IDs (state.NewID).
	NewID func() string
	// MaxReportBatch bounds the task status reports of one raft entry (1024).
	MaxReportBatch int
	// ApplyTimeout bounds the wait for a write to be applied here (10s).
	ApplyTimeout time.Duration
	// Revisions checks the revision of a `source rollback` before it is pinned
	// (nil: not checked).
	Revisions Revisions
}

// Control serves one manager's stack, service and task operations.
type Control struct {
	st      Store
	logger  *slog.Logger
	now     func() time.Time
	newID   func() string
	timeout time.Duration
	reports *batcher
	revs    Revisions
	nets    *netViews
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
		cfg.NewID = state.NewID
	}
	if cfg.MaxReportBatch <= 0 {
		cfg.MaxReportBatch = 1024
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	c := &Control{st: cfg.Store, logger: cfg.Logger, now: cfg.Now, newID: cfg.NewID, timeout: cfg.ApplyTimeout, revs: cfg.Revisions}
	c.reports = newBatcher(c, cfg.MaxReportBatch)
	c.nets = newNetViews(c)
	return c
}

func (c *Control) clock() time.Time { return c.now().UTC() }

// apply writes a command and waits until this manager has applied it, so that whoever
// wrote through this manager reads the write here at once.
func (c *Control) apply(ctx context.Context, t store.CommandType, body any) (uint64, error) {
	idx, err := c.st.Apply(ctx, t, body)
	if err != nil {
		return idx, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for d := 200 * time.Microsecond; c.st.StateIndex() < idx; d = min(2*d, 5*time.Millisecond) {
		select {
		case <-ctx.Done():
			return idx, fmt.Errorf("the write was committed at index %d but this manager has not applied it yet: %w", idx, ctx.Err())
		case <-time.After(d):
		}
	}
	return idx, nil
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

func (e *notFoundError) Error() string        { return "no such " + e.what + ": " + e.ref }
func (e *notFoundError) Is(target error) bool { return target == state.ErrNotFound }

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", api.ErrBadRequest, fmt.Sprintf(format, args...))
}

// resolveService finds a service by ID, name or unique ID prefix, as Docker does.
func resolveService(tx *state.ReadTxn, ref string) (*state.Service, error) {
	if ref == "" {
		return nil, badRequest("no service given")
	}
	s, n, err := state.LookupRef(ref,
		func(id string) (*state.Service, error) { return tx.Service(nil, id) },
		func(name string) (*state.Service, error) { return tx.ServiceByName(nil, name) },
		func() ([]*state.Service, error) { return tx.Services(nil) },
		func(s *state.Service) string { return s.ID })
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

// resolveNode finds a node by ID, hostname or unique ID prefix.
func resolveNode(tx *state.ReadTxn, ref string) (*state.Node, error) {
	if ref == "" {
		return nil, badRequest("no node given")
	}
	if n, err := tx.Node(nil, ref); err == nil {
		return n, nil
	}
	if n, err := tx.NodeByHostname(nil, ref); err == nil {
		return n, nil
	}
	all, err := tx.Nodes(nil)
	if err != nil {
		return nil, err
	}
	var matches []*state.Node
	for _, n := range all {
		if strings.HasPrefix(n.ID, ref) {
			matches = append(matches, n)
		}
	}
	switch len(matches) {
	case 0:
		return nil, &notFoundError{"node", ref}
	case 1:
		return matches[0], nil
	default:
		return nil, badRequest("node %q is ambiguous: %d node IDs start with it; give more of the ID", ref, len(matches))
	}
}
