package sealed

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// snapshotStore seals snapshot contents in a streaming format (see
// stream.go) on their way into an inner raft.SnapshotStore and opens them
// in Open. The inner store's metadata (index, term, raft membership, size)
// stays in the clear: it is raft's bookkeeping, not cluster state.
type snapshotStore struct {
	inner raft.SnapshotStore
	kr    *Keyring
}

// NewSnapshotStore wraps inner so that snapshot contents are sealed with
// kr. Sizes reported by List and Open are plaintext sizes, as raft
// expects when it streams a snapshot to a follower.
func NewSnapshotStore(inner raft.SnapshotStore, kr *Keyring) raft.SnapshotStore {
	return &snapshotStore{inner: inner, kr: kr}
}

func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	// Fail before inner leaves a half-made snapshot behind.
	if s.kr.Locked() {
		return nil, ErrLocked
	}
	sink, err := s.inner.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	w, err := s.kr.newStreamWriter(sink)
	if err != nil {
		_ = sink.Cancel()
		return nil, fmt.Errorf("create sealed snapshot: %w", err)
	}
	return &sealedSink{inner: sink, w: w}, nil
}

func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.inner.List()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, 0, len(metas))
	for _, m := range metas {
		c := *m
		// A size no sealed stream can have marks a damaged snapshot;
		// Open will refuse it, List just must not report a wrong size.
		c.Size, _ = plaintextSize(m.Size)
		out = append(out, &c)
	}
	return out, nil
}

func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.inner.Open(id)
	if err != nil {
		return nil, nil, err
	}
	size, ok := plaintextSize(meta.Size)
	if !ok {
		rc.Close()
		return nil, nil, fmt.Errorf("open snapshot %s: %w: stored size %d fits no sealed snapshot", id, ErrTampered, meta.Size)
	}
	r, err := s.kr.newStreamReader(rc)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	c := *meta
	c.Size = size
	return &c, &sealedReader{streamReader: r, closer: rc}, nil
}

type sealedSink struct {
	inner raft.SnapshotSink
	w     *streamWriter
	done  bool
}

func (s *sealedSink) ID() string { return s.inner.ID() }

// Write reports plaintext bytes, which is what raft counts against
// SnapshotMeta.Size.
func (s *sealedSink) Write(p []byte) (int, error) {
	if s.done {
		return 0, fmt.Errorf("snapshot %s: write after close", s.inner.ID())
	}
	return s.w.Write(p)
}

// Close seals the final chunk and commits the inner snapshot. If the final
// chunk cannot be written, the inner snapshot is cancelled: a snapshot
// without its final chunk would never open anyway.
func (s *sealedSink) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	if err := s.w.Close(); err != nil {
		_ = s.inner.Cancel()
		return fmt.Errorf("snapshot %s: %w", s.inner.ID(), err)
	}
	return s.inner.Close()
}

func (s *sealedSink) Cancel() error {
	s.done = true
	return s.inner.Cancel()
}

type sealedReader struct {
	*streamReader
	closer io.Closer
}

func (r *sealedReader) Close() error { return r.closer.Close() }
