package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotFound: no row has the key asked for.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write would break a uniqueness rule (hostname, service
	// or network name, secret name and version, volume name on a node, the
	// single cluster row).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the row is missing a required field or has an unknown value.
	ErrInvalid = errors.New("invalid")
	// ErrTxnClosed: the transaction was committed or aborted.
	ErrTxnClosed = errors.New("transaction closed")
	// ErrAbandoned: the store was replaced (snapshot restore); ask the FSM for
	// the current one and retry.
	ErrAbandoned = errors.New("state store abandoned")
)

// MaxBlockingWait bounds how long Blocking waits, whatever the context says,
// so that a client asking for a long wait still gets an answer and a retry
// point now and then (Consul caps at 10 minutes too).
const MaxBlockingWait = 10 * time.Minute

// Store is the state database. It is safe for concurrent use: any number of
// read transactions run alongside at most one write transaction.
type Store struct {
	db *memdb.MemDB
	// tasks is the committed task table. rootMu makes a commit publish it and
	// memdb's root together, so that a reader sees both as of the same commit.
	rootMu sync.RWMutex
	tasks  *taskTable

	nodeWatches nodeWatches

	abandonOnce sync.Once
	abandonCh   chan struct{}

	// writeMu is held by the open write transaction. Feed takes it, so that a
	// transaction that began before a feed opened and did not track its changes
	// commits before the feed's consumer reads the state it then follows.
	writeMu sync.Mutex

	// feeds are the open change feeds; nfeeds lets write transactions skip
	// change tracking without taking the lock when there are none.
	feedMu sync.Mutex
	feeds  []*Feed
	nfeeds atomic.Int32
}

// New returns an empty store.
func New() (*Store, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("state: schema: %w", err)
	}
	return &Store{db: db, tasks: newTaskTable(), abandonCh: make(chan struct{})}, nil
}

// ReadTxn opens a read transaction: a consistent, unchanging view of the store
// as of now. It holds no lock and needs no closing.
func (s *Store) ReadTxn() *ReadTxn {
	s.rootMu.RLock()
	defer s.rootMu.RUnlock()
	return &ReadTxn{txn: s.db.Txn(false), tasks: s.tasks, store: s}
}

// Fork returns a store that starts as this one's committed state and then goes its
// own way: writes to either are not seen by the other. It costs O(1), the two sharing
// whatever neither changed (memdb's radix trees and the task table are persistent):
// what a dry run writes to, to see what an entry would do without proposing it.
func (s *Store) Fork() *Store {
	s.rootMu.RLock()
	defer s.rootMu.RUnlock()
	return &Store{db: s.db.Snapshot(), tasks: s.tasks, abandonCh: make(chan struct{})}
}

func (s *Store) committedTasks() *taskTable {
	s.rootMu.RLock()
	defer s.rootMu.RUnlock()
	return s.tasks
}

// WriteTxn opens a write transaction for the raft entry at index. It blocks
// while another write transaction is open: callers must Commit or Abort, and
// should `defer txn.Abort()` (a no-op after Commit) so that an early return
// cannot wedge the store.
//
// The transaction's reads see its own writes.
func (s *Store) WriteTxn(index uint64) *WriteTxn {
	s.writeMu.Lock()
	txn := s.db.Txn(true)
	// The memdb write transaction makes this the only writer: the task table
	// cannot move under it either.
	tasks := *s.committedTasks()
	w := &WriteTxn{ReadTxn: ReadTxn{txn: txn, tasks: &tasks, store: s}, index: index, owner: new(owner)}
	w.tracking = s.nfeeds.Load() > 0
	return w
}

// Update runs fn in a write transaction at index and commits it if fn returns
// nil; otherwise it aborts and returns fn's error.
func (s *Store) Update(index uint64, fn func(*WriteTxn) error) error {
	txn := s.WriteTxn(index)
	defer txn.Abort()
	if err := fn(txn); err != nil {
		return err
	}
	return txn.Commit()
}

// Abandon marks the store as replaced, after the FSM swapped in a restored
// one: blocked readers wake up and get ErrAbandoned. It is idempotent.
func (s *Store) Abandon() { s.abandonOnce.Do(func() { close(s.abandonCh) }) }

// AbandonCh is closed by Abandon.
func (s *Store) AbandonCh() <-chan struct{} { return s.abandonCh }

func (s *Store) abandoned() bool {
	select {
	case <-s.abandonCh:
		return true
	default:
		return false
	}
}

// Blocking runs a blocking query, the basis of `?index=N&wait=30s`.
//
// It runs fn in a fresh read transaction. fn reads what it needs, adding the
// watch channels of its reads to the watch set it is given, and returns the
// index of its answer (usually txn.Index of the tables it read). If that
// index is greater than minIndex, or minIndex is 0, Blocking returns it.
// Otherwise it waits until a watched channel fires (any write to one of
// tables wakes it, whatever fn watched), then runs fn again.
//
// The wait ends when ctx is done or after MaxBlockingWait. Running out of
// time is not an error: Blocking returns the last index, and whatever fn
// captured from its last run is the current answer. If ctx is cancelled it
// returns ctx.Err(); if the store is abandoned, ErrAbandoned. Errors from fn
// are returned as they are.
//
// The returned index is never 0, so that a client that passes it back always
// blocks.
func (s *Store) Blocking(ctx context.Context, minIndex uint64, tables []string,
	fn func(*ReadTxn, memdb.WatchSet) (uint64, error)) (uint64, error) {
	for _, t := range tables {
		if !knownTable(t) {
			return 0, fmt.Errorf("state: blocking query: unknown table %q: %w", t, ErrInvalid)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, MaxBlockingWait)
	defer cancel()
	for {
		if s.abandoned() {
			return 0, ErrAbandoned
		}
		ws := memdb.NewWatchSet()
		ws.Add(s.abandonCh)
		txn := s.ReadTxn()
		for _, t := range tables {
			// Watching the table's index row rather than the table wakes us on
			// deletes too, and costs one channel per table however many rows
			// fn reads.
			ch, _, err := txn.txn.FirstWatch(tableIndex, indexID, t)
			if err != nil {
				return 0, fmt.Errorf("state: blocking query: watch %s: %w", t, err)
			}
			ws.Add(ch)
		}
		idx, err := fn(txn, ws)
		idx = max(idx, 1)
		if err != nil {
			return idx, err
		}
		if minIndex == 0 || idx > minIndex {
			return idx, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return idx, ctx.Err()
			}
			return idx, nil
		}
	}
}
