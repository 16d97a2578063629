package sealed

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"
)

// logStore seals the payload of raft log entries on their way into an
// inner raft.LogStore (raftboltdb in berth) and opens it on the way out.
//
// Index, Term, Type and AppendedAt stay in the clear: raft needs them for
// its bookkeeping (FirstIndex, LastIndex, DeleteRange work on the inner
// store directly) and they say nothing about cluster state. Data is always
// sealed, even when empty, so an entry whose payload was stripped on disk
// is detected instead of applied as empty. Extensions are sealed when
// present. Both are bound to the entry's index, term and type, so sealed
// payloads cannot be swapped between entries.
type logStore struct {
	inner raft.LogStore
	kr    *Keyring
}

// NewLogStore wraps inner so that entry payloads are sealed with kr. kr
// must be unlocked before raft starts; while it is locked every read and
// write of an entry fails with ErrLocked. The returned store implements
// raft.MonotonicLogStore by asking inner.
func NewLogStore(inner raft.LogStore, kr *Keyring) raft.LogStore {
	return &logStore{inner: inner, kr: kr}
}

var _ raft.MonotonicLogStore = (*logStore)(nil)

// Field tags for the sealing context: a sealed Data can not pass for
// Extensions, nor a log payload for a value sealed with Keyring.Seal.
const (
	logFieldData       = 'D'
	logFieldExtensions = 'E'
)

func logContext(l *raft.Log, field byte) []byte {
	c := make([]byte, 0, 3+8+8+1)
	c = append(c, 'L', 'G', field)
	c = binary.BigEndian.AppendUint64(c, l.Index)
	c = binary.BigEndian.AppendUint64(c, l.Term)
	return append(c, byte(l.Type))
}

func (s *logStore) FirstIndex() (uint64, error) { return s.inner.FirstIndex() }
func (s *logStore) LastIndex() (uint64, error)  { return s.inner.LastIndex() }

// DeleteRange works on indexes alone and needs no key.
func (s *logStore) DeleteRange(first, last uint64) error { return s.inner.DeleteRange(first, last) }

// GetLog returns inner's errors untouched: raft compares against
// raft.ErrLogNotFound with ==.
func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	if err := s.inner.GetLog(index, log); err != nil {
		return err
	}
	data, err := s.kr.open(log.Data, logContext(log, logFieldData))
	if err != nil {
		return fmt.Errorf("open raft log entry %d: %w", index, err)
	}
	var ext []byte
	if len(log.Extensions) > 0 {
		if ext, err = s.kr.open(log.Extensions, logContext(log, logFieldExtensions)); err != nil {
			return fmt.Errorf("open raft log entry %d extensions: %w", index, err)
		}
	}
	log.Data, log.Extensions = data, ext
	return nil
}

func (s *logStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs seals copies: raft keeps the *raft.Log it hands in (for
// replication and its caches) and must go on seeing plaintext.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	copies := make([]raft.Log, len(logs))
	ptrs := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		var err error
		if c.Data, err = s.kr.seal(l.Data, logContext(l, logFieldData)); err != nil {
			return fmt.Errorf("seal raft log entry %d: %w", l.Index, err)
		}
		if len(l.Extensions) > 0 {
			if c.Extensions, err = s.kr.seal(l.Extensions, logContext(l, logFieldExtensions)); err != nil {
				return fmt.Errorf("seal raft log entry %d extensions: %w", l.Index, err)
			}
		}
		copies[i] = c
		ptrs[i] = &copies[i]
	}
	return s.inner.StoreLogs(ptrs)
}

// IsMonotonic forwards raft.MonotonicLogStore: wrapping must not change
// how raft treats the inner store after a snapshot restore.
func (s *logStore) IsMonotonic() bool {
	m, ok := s.inner.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
