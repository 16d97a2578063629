package state

import "sync"

// Change is one row a committed write transaction inserted, changed or deleted.
// Before and After are the stored rows (*Task, *Service, *Node...), shared with
// the store: they must not be modified.
type Change struct {
	Table string
	// Before is the row as it was, nil for an insert.
	Before any
	// After is the row as it is now, nil for a delete.
	After any
}

// Event is what one committed write transaction changed: a row appears once,
// with its first Before and last After.
type Event struct {
	Index   uint64
	Changes []Change
}

// Feed hands the changes of every committed write transaction, in commit order,
// to one consumer: the leader's reconciler, which keeps its view of the cluster
// up to date from them rather than rescanning a million tasks after each write.
// Tracking the changes costs the writer a slice and a map entry per row; a store
// without open feeds does not track them at all.
//
// A feed never blocks the writer: once more than its capacity of changes wait
// unread, it drops them and reports the loss, and its consumer must read the
// whole state again. A feed does not outlive its store: a snapshot restore
// replaces the store (see Store.AbandonCh), and the consumer must open a feed on
// the new one.
type Feed struct {
	s      *Store
	max    int
	notify chan struct{}

	mu     sync.Mutex
	events []Event
	rows   int
	lost   bool
	closed bool
}

// Feed opens a feed that keeps at most maxRows unread changes (at least one
// transaction's worth is always kept). Close it when done: an open feed makes
// every write track its changes. It waits for an open write transaction to end,
// so that every change the consumer's next read does not see reaches the feed.
func (s *Store) Feed(maxRows int) *Feed {
	f := &Feed{s: s, max: maxRows, notify: make(chan struct{}, 1)}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.feedMu.Lock()
	s.feeds = append(s.feeds, f)
	s.nfeeds.Store(int32(len(s.feeds)))
	s.feedMu.Unlock()
	return f
}

// Notify is signalled (without blocking the writer, so possibly once for many
// transactions) when changes are waiting.
func (f *Feed) Notify() <-chan struct{} { return f.notify }

// Take returns the waiting events, oldest first, and whether changes were lost
// since the last Take (the consumer must then read the whole state again; the
// events returned with the loss are those committed after it).
func (f *Feed) Take() (events []Event, lost bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	events, lost = f.events, f.lost
	f.events, f.rows, f.lost = nil, 0, false
	return events, lost
}

// Close stops the feed.
func (f *Feed) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.events = nil
	f.mu.Unlock()
	s := f.s
	s.feedMu.Lock()
	for i, g := range s.feeds {
		if g == f {
			s.feeds = append(s.feeds[:i], s.feeds[i+1:]...)
			break
		}
	}
	s.nfeeds.Store(int32(len(s.feeds)))
	s.feedMu.Unlock()
}

// publish hands a committed transaction's changes (WriteTxn.record's) to the open
// feeds.
func (s *Store) publish(index uint64, raw []Change) {
	s.feedMu.Lock()
	feeds := s.feeds
	s.feedMu.Unlock()
	if len(feeds) == 0 {
		return
	}
	ev := Event{Index: index, Changes: raw[:0]}
	for _, c := range raw {
		// Skip the places a row's earlier writes left, and rows inserted and
		// deleted by the same transaction.
		if c.Before == nil && c.After == nil {
			continue
		}
		ev.Changes = append(ev.Changes, c)
	}
	if len(ev.Changes) == 0 {
		return
	}
	for _, f := range feeds {
		f.push(ev)
	}
}

func (f *Feed) push(ev Event) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	if f.rows > 0 && f.rows+len(ev.Changes) > f.max {
		f.events, f.rows, f.lost = nil, 0, true
	}
	f.events = append(f.events, ev)
	f.rows += len(ev.Changes)
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}
