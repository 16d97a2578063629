package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/berthd/berth/cluster/model"
	"github.com/hashicorp/go-memdb"
)

// ErrNewerSnapshot is a snapshot written by a newer berth than this one, in a format
// it cannot read. Older formats are read (a format change keeps a reader of the old one).
var ErrNewerSnapshot = errors.New("the snapshot was written by a newer berth")

// Snapshot encoding; see the package documentation. snapshotVersion grows when the
// encoding changes, not when a row gains a field: rows are JSON, whose unknown fields
// a reader ignores.
const (
	snapshotFormat  = "berth-state"
	snapshotVersion = 1
)

// Snapshot is a frozen view of a store, taken in O(1): memdb's immutable
// radix trees and the task table's trees are shared, not copied, and writes
// after the snapshot make new nodes instead of changing the snapshot's. It is
// what the FSM hands to raft, which persists it in the background while writes
// go on.
type Snapshot struct {
	db    *memdb.MemDB
	tasks *taskTable
	store *Store
}

// Snapshot freezes the store's committed state.
func (s *Store) Snapshot() *Snapshot {
	s.rootMu.RLock()
	defer s.rootMu.RUnlock()
	return &Snapshot{db: s.db.Snapshot(), tasks: s.tasks, store: s}
}

// ReadTxn reads the snapshot.
func (s *Snapshot) ReadTxn() *ReadTxn {
	return &ReadTxn{txn: s.db.Txn(false), tasks: s.tasks, store: s.store}
}

// Index is the raft index of the last write the snapshot holds.
func (s *Snapshot) Index() uint64 { return s.ReadTxn().Index() }

type snapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// section starts a table's rows, or (End) ends the snapshot.
type section struct {
	Table string `json:"table,omitempty"`
	Rows  int    `json:"rows"`
	End   bool   `json:"end,omitempty"`
}

type endRecord struct {
	End bool `json:"end"`
}

// Persist writes the snapshot to w as JSON Lines: every row of every table,
// then the table indexes. Equal states give equal bytes.
func (s *Snapshot) Persist(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	// Escaping <, > and & only matters inside HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion}); err != nil {
		return fmt.Errorf("state: persist snapshot: header: %w", err)
	}
	txn := s.db.Txn(false)
	for _, table := range append(Tables(), tableIndex) {
		if table == TableTasks {
			if err := s.persistTasks(enc); err != nil {
				return err
			}
			continue
		}
		// Count first, then encode: two walks of the radix tree are cheaper
		// than holding a million row pointers.
		it, err := txn.Get(table, indexID)
		if err != nil {
			return fmt.Errorf("state: persist snapshot: %s: %w", table, err)
		}
		n := 0
		for raw := it.Next(); raw != nil; raw = it.Next() {
			n++
		}
		if err := enc.Encode(section{Table: table, Rows: n}); err != nil {
			return fmt.Errorf("state: persist snapshot: %s: %w", table, err)
		}
		if it, err = txn.Get(table, indexID); err != nil {
			return fmt.Errorf("state: persist snapshot: %s: %w", table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if err := enc.Encode(raw); err != nil {
				return fmt.Errorf("state: persist snapshot: %s %q: %w", table, rowName(raw), err)
			}
		}
	}
	if err := enc.Encode(endRecord{End: true}); err != nil {
		return fmt.Errorf("state: persist snapshot: end: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("state: persist snapshot: %w", err)
	}
	return nil
}

func (s *Snapshot) persistTasks(enc *json.Encoder) error {
	if err := enc.Encode(section{Table: TableTasks, Rows: s.tasks.byID.Len()}); err != nil {
		return fmt.Errorf("state: persist snapshot: %s: %w", TableTasks, err)
	}
	var err error
	s.tasks.byID.each(func(t *model.Task) bool {
		if err = enc.Encode(t); err != nil {
			err = fmt.Errorf("state: persist snapshot: %s %q: %w", TableTasks, t.ID, err)
		}
		return err == nil
	})
	return err
}

func rowName(raw any) string {
	switch r := raw.(type) {
	case row:
		return r.Key()
	case *tableIndexRow:
		return r.Table
	}
	return ""
}

// newRow returns an empty row of table's type to decode into.
func newRow(table string) any {
	switch table {
	case TableCluster:
		return &model.Cluster{}
	case TableNodes:
		return &model.Node{}
	case TableSources:
		return &model.Source{}
	case TableStacks:
		return &model.Stack{}
	case TableServices:
		return &model.Service{}
	case TableTasks:
		return &model.Task{}
	case TableNetworks:
		return &model.Network{}
	case TableSecrets:
		return &model.Secret{}
	case TableConfigs:
		return &model.Config{}
	case TableVolumes:
		return &model.Volume{}
	case tableIndex:
		return &tableIndexRow{}
	}
	return nil
}

// Restore builds a new store from a snapshot written by Persist: rows, their
// Meta and the table indexes come back exactly as they were. The stream must
// hold the snapshot and nothing after it. A snapshot of another format or
// version, a truncated one, or one with a row that breaks the schema's rules
// is refused: the FSM keeps its current store.
func Restore(r io.Reader) (*Store, error) {
	s, err := New()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(r)
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("state: restore snapshot: header: %w", eofIsTruncation(err))
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("state: restore snapshot: format %q is not %q", h.Format, snapshotFormat)
	}
	if h.Version > snapshotVersion {
		return nil, fmt.Errorf("state: restore snapshot: %w: it is format %d, this berth reads formats up to %d: upgrade this manager's binary",
			ErrNewerSnapshot, h.Version, snapshotVersion)
	}
	if h.Version < 1 {
		return nil, fmt.Errorf("state: restore snapshot: version %d is not a version berth ever wrote", h.Version)
	}

	txn := s.WriteTxn(0)
	txn.restoring = true
	defer txn.Abort()
	seen := make(map[string]bool)
	for {
		var sec section
		if err := dec.Decode(&sec); err != nil {
			return nil, fmt.Errorf("state: restore snapshot: %w", eofIsTruncation(err))
		}
		if sec.End {
			break
		}
		if newRow(sec.Table) == nil {
			return nil, fmt.Errorf("state: restore snapshot: unknown table %q", sec.Table)
		}
		if seen[sec.Table] {
			return nil, fmt.Errorf("state: restore snapshot: table %s appears twice", sec.Table)
		}
		seen[sec.Table] = true
		if sec.Rows < 0 {
			return nil, fmt.Errorf("state: restore snapshot: table %s: %d rows", sec.Table, sec.Rows)
		}
		for i := range sec.Rows {
			obj := newRow(sec.Table)
			if err := dec.Decode(obj); err != nil {
				return nil, fmt.Errorf("state: restore snapshot: %s row %d of %d: %w",
					sec.Table, i+1, sec.Rows, eofIsTruncation(err))
			}
			if err := txn.restore(sec.Table, obj); err != nil {
				return nil, fmt.Errorf("state: restore snapshot: %w", err)
			}
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("state: restore snapshot: data after the end record")
	}
	if err := txn.Commit(); err != nil {
		return nil, fmt.Errorf("state: restore snapshot: %w", err)
	}
	return s, nil
}

// restore inserts a decoded row as it is.
func (w *WriteTxn) restore(table string, obj any) error {
	if ix, ok := obj.(*tableIndexRow); ok {
		if !knownTable(ix.Table) {
			return fmt.Errorf("index of unknown table %q", ix.Table)
		}
		if raw, _ := w.txn.First(tableIndex, indexID, ix.Table); raw != nil {
			return fmt.Errorf("index of table %s appears twice", ix.Table)
		}
		return w.txn.Insert(tableIndex, ix)
	}
	r := obj.(row)
	if t, ok := r.(*model.Task); ok {
		if _, dup := w.tasks.byID.get(t.ID); dup {
			return fmt.Errorf("%s %q appears twice", table, t.ID)
		}
	} else if raw, _ := w.txn.First(table, indexID, r.Key()); raw != nil {
		return fmt.Errorf("%s %q appears twice", table, r.Key())
	}
	return w.put(table, r)
}

func eofIsTruncation(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("truncated: %w", io.ErrUnexpectedEOF)
	}
	return err
}
