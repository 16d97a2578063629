package sealed

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

func newBolt(t testing.TB, path string) *raftboltdb.BoltStore {
	t.Helper()
	b, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func testLog(idx uint64, data string) *raft.Log {
	return &raft.Log{
		Index:      idx,
		Term:       idx/3 + 1,
		Type:       raft.LogCommand,
		Data:       []byte(data),
		AppendedAt: time.Unix(1700000000, int64(idx)).UTC(),
	}
}

// TestLogStoreConformance runs the checks raft-boltdb runs on itself
// (FirstIndex, LastIndex, GetLog, StoreLog(s), DeleteRange) through the
// sealed wrapper.
func TestLogStoreConformance(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, false)
	bolt := newBolt(t, filepath.Join(dir, "raft.db"))
	store := NewLogStore(bolt, kr)

	index := func(f func() (uint64, error)) uint64 {
		t.Helper()
		i, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	if first, last := index(store.FirstIndex), index(store.LastIndex); first != 0 || last != 0 {
		t.Fatalf("empty store: first %d, last %d", first, last)
	}
	var l raft.Log
	if err := store.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on empty store: %v, want raft.ErrLogNotFound itself", err)
	}

	logs := []*raft.Log{testLog(1, "log1"), testLog(2, "log2"), testLog(3, "log3")}
	logs[1].Extensions = []byte("ext2")
	logs[2].Type = raft.LogConfiguration
	if err := store.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := store.StoreLog(testLog(4, "log4")); err != nil {
		t.Fatal(err)
	}
	noop := &raft.Log{Index: 5, Term: 2, Type: raft.LogNoop}
	if err := store.StoreLog(noop); err != nil {
		t.Fatal(err)
	}
	all := append(logs, testLog(4, "log4"), noop)
	if first, last := index(store.FirstIndex), index(store.LastIndex); first != 1 || last != 5 {
		t.Fatalf("first %d, last %d; want 1, 5", first, last)
	}
	for _, want := range all {
		var got raft.Log
		if err := store.GetLog(want.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", want.Index, err)
		}
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
			!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
			!got.AppendedAt.Equal(want.AppendedAt) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", want.Index, got, *want)
		}
	}
	if err := store.GetLog(6, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog past the end: %v, want raft.ErrLogNotFound", err)
	}

	if err := store.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	if first, last := index(store.FirstIndex), index(store.LastIndex); first != 3 || last != 5 {
		t.Fatalf("after DeleteRange(1,2): first %d, last %d; want 3, 5", first, last)
	}
	if err := store.GetLog(2, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog of a deleted entry: %v, want raft.ErrLogNotFound", err)
	}
	if m, ok := store.(raft.MonotonicLogStore); !ok || m.IsMonotonic() {
		t.Fatal("wrapper over bolt must report IsMonotonic() == false")
	}
}

func TestLogStoreSealsOnDiskAndKeepsCallerLogs(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, false)
	bolt := newBolt(t, filepath.Join(dir, "raft.db"))
	store := NewLogStore(bolt, kr)

	in := testLog(1, string(marker))
	in.Extensions = marker
	orig := *in
	if err := store.StoreLog(in); err != nil {
		t.Fatal(err)
	}
	// raft keeps and replicates the logs it stores: they must not change.
	if !reflect.DeepEqual(*in, orig) {
		t.Fatalf("StoreLog modified the caller's log: %+v", *in)
	}

	var raw raft.Log
	if err := bolt.GetLog(1, &raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, marker) || bytes.Contains(raw.Extensions, marker) {
		t.Fatal("inner store holds the plaintext")
	}
	if string(raw.Data[:4]) != envelopeMagic || string(raw.Extensions[:4]) != envelopeMagic {
		t.Fatal("inner store holds unsealed payloads")
	}
	if raw.Index != 1 || raw.Term != in.Term || raw.Type != in.Type {
		t.Fatal("raft bookkeeping fields were not kept in the clear")
	}
}

func TestLogStoreDetectsMovedAndStrippedPayloads(t *testing.T) {
	dir := t.TempDir()
	kr, _ := mustCreate(t, dir, false)
	bolt := newBolt(t, filepath.Join(dir, "raft.db"))
	store := NewLogStore(bolt, kr)
	if err := store.StoreLogs([]*raft.Log{testLog(1, "one"), testLog(2, "two")}); err != nil {
		t.Fatal(err)
	}
	var one raft.Log
	if err := bolt.GetLog(1, &one); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		log  raft.Log
	}{
		{"payload of entry 1 moved to entry 2", raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: one.Data}},
		{"payload kept, term changed", raft.Log{Index: 1, Term: 9, Type: raft.LogCommand, Data: one.Data}},
		{"payload kept, type changed", raft.Log{Index: 1, Term: 1, Type: raft.LogBarrier, Data: one.Data}},
		{"data moved to extensions", raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: one.Data, Extensions: one.Data}},
		{"payload stripped", raft.Log{Index: 1, Term: 1, Type: raft.LogCommand}},
		{"plaintext injected", raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("evil")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.log
			if err := bolt.StoreLog(&l); err != nil {
				t.Fatal(err)
			}
			var got raft.Log
			err := store.GetLog(l.Index, &got)
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrNotSealed) {
				t.Fatalf("GetLog = %v, want ErrTampered or ErrNotSealed", err)
			}
		})
	}
}

func TestLogStoreLocked(t *testing.T) {
	dir := t.TempDir()
	kr, key := mustCreate(t, dir, true)
	bolt := newBolt(t, filepath.Join(dir, "raft.db"))
	if err := NewLogStore(bolt, kr).StoreLog(testLog(1, "x")); err != nil {
		t.Fatal(err)
	}
	locked := mustOpenKeyring(t, dir)
	store := NewLogStore(bolt, locked)
	var l raft.Log
	if err := store.GetLog(1, &l); !errors.Is(err, ErrLocked) {
		t.Fatalf("GetLog while locked: %v, want ErrLocked", err)
	}
	if err := store.StoreLog(testLog(2, "y")); !errors.Is(err, ErrLocked) {
		t.Fatalf("StoreLog while locked: %v, want ErrLocked", err)
	}
	if last, _ := store.LastIndex(); last != 1 {
		t.Fatalf("a refused StoreLog reached the inner store (last index %d)", last)
	}
	if err := locked.Unlock(key); err != nil {
		t.Fatal(err)
	}
	if err := store.GetLog(1, &l); err != nil || string(l.Data) != "x" {
		t.Fatalf("GetLog after Unlock: %q, %v", l.Data, err)
	}
}

type monotonicStore struct{ raft.LogStore }

func (monotonicStore) IsMonotonic() bool { return true }

func TestLogStoreForwardsMonotonic(t *testing.T) {
	kr, _ := mustCreate(t, t.TempDir(), false)
	s := NewLogStore(monotonicStore{raft.NewInmemStore()}, kr)
	if m, ok := s.(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatal("IsMonotonic not forwarded")
	}
}

func TestLogStoreDEKRotation(t *testing.T) {
	dir := t.TempDir()
	kr, key := mustCreate(t, dir, true)
	bolt := newBolt(t, filepath.Join(dir, "raft.db"))
	store := NewLogStore(bolt, kr)
	for i := uint64(1); i <= 9; i++ {
		if i%3 == 1 && i > 1 {
			if err := kr.RotateDEK(); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.StoreLog(testLog(i, fmt.Sprint("entry ", i))); err != nil {
			t.Fatal(err)
		}
	}
	reopened := mustOpenKeyring(t, dir)
	if err := reopened.Unlock(key); err != nil {
		t.Fatal(err)
	}
	store = NewLogStore(bolt, reopened)
	seen := map[uint32]bool{}
	for i := uint64(1); i <= 9; i++ {
		var l, raw raft.Log
		if err := store.GetLog(i, &l); err != nil || string(l.Data) != fmt.Sprint("entry ", i) {
			t.Fatalf("GetLog(%d) = %q, %v", i, l.Data, err)
		}
		_ = bolt.GetLog(i, &raw)
		seen[keyIDOf(t, raw.Data)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("entries used %d data keys, want 3", len(seen))
	}
}
