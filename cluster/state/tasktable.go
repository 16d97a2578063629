package state

import (
	"cmp"
	"encoding/binary"
	"strings"
	"sync"
)

// taskTable is the task table as of one commit (see "Task storage" in the package
// documentation). A committed taskTable is never changed: a write transaction works
// on a copy of the struct, whose trees copy the nodes they change (btree.go), and
// Commit publishes that copy.
type taskTable struct {
	byID strMap[*Task]
	// bySlot and byNode hold keys only: a status report, which changes no key,
	// writes byID alone.
	bySlot btree[slotKey, struct{}]
	byNode btree[nodeKey, struct{}]
	// nodeIndex is the raft index of the last write that changed each node's tasks
	// (created, changed, deleted one or moved one away). Nodes are never dropped
	// from it, so that the index of a node whose last task went away still moves.
	nodeIndex strMap[uint64]
}

// strMap is a btree keyed by strings that keeps each key's first eight bytes in the
// node, so that a search compares integers and reads one string, the match, rather
// than a string (a cache miss away) at every step: with a million random task IDs,
// those reads were a tenth of the apply path's time.
type strMap[V any] struct{ t btree[strKey, V] }

type strKey struct {
	head uint64 // the first eight bytes, big-endian, zero-padded
	s    string
}

func keyOf(s string) strKey {
	var b [8]byte
	copy(b[:], s)
	return strKey{binary.BigEndian.Uint64(b[:]), s}
}

// compare orders keys as their strings: zero padding sorts a short string before
// its extensions, and equal heads fall back to the strings.
func (a strKey) compare(b strKey) int {
	if a.head != b.head {
		return cmp.Compare(a.head, b.head)
	}
	return strings.Compare(a.s, b.s)
}

func newStrMap[V any]() strMap[V] { return strMap[V]{newBtree[strKey, V](strKey.compare)} }

func (m *strMap[V]) Len() int                            { return m.t.Len() }
func (m *strMap[V]) get(k string) (V, bool)              { return m.t.get(keyOf(k)) }
func (m *strMap[V]) delete(o *owner, k string) (V, bool) { return m.t.delete(o, keyOf(k)) }

func (m *strMap[V]) set(o *owner, k string, v V) (V, bool) { return m.t.set(o, keyOf(k), v) }

func (m *strMap[V]) update(o *owner, k string, fn func(V) (V, bool)) (found, changed bool) {
	return m.t.update(o, keyOf(k), fn)
}

func (m *strMap[V]) each(fn func(string, V) bool) {
	m.t.each(func(k strKey, v V) bool { return fn(k.s, v) })
}

type slotKey struct {
	service string
	slot    uint64
	id      string
}

type nodeKey struct{ node, id string }

func newTaskTable() *taskTable {
	return &taskTable{
		byID: newStrMap[*Task](),
		bySlot: newBtree[slotKey, struct{}](func(a, b slotKey) int {
			if c := strings.Compare(a.service, b.service); c != 0 {
				return c
			}
			if c := cmp.Compare(a.slot, b.slot); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		}),
		byNode: newBtree[nodeKey, struct{}](func(a, b nodeKey) int {
			if c := strings.Compare(a.node, b.node); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		}),
		nodeIndex: newStrMap[uint64](),
	}
}

// rows resolves the IDs fn yields (in the order it yields them) to rows.
func (tt *taskTable) rows(walk func(yield func(id string) bool)) []*Task {
	var out []*Task
	walk(func(id string) bool {
		if t, ok := tt.byID.get(id); ok {
			out = append(out, t)
		}
		return true
	})
	return out
}

func (tt *taskTable) all() []*Task {
	var out []*Task
	if n := tt.byID.Len(); n > 0 {
		out = make([]*Task, 0, n)
	}
	tt.byID.each(func(_ string, t *Task) bool {
		out = append(out, t)
		return true
	})
	return out
}

func (tt *taskTable) byService(service string) []*Task {
	return tt.rows(func(yield func(string) bool) {
		tt.bySlot.ascend(slotKey{service: service}, func(k slotKey, _ struct{}) bool {
			return k.service == service && yield(k.id)
		})
	})
}

func (tt *taskTable) bySlotOf(service string, slot uint64) []*Task {
	return tt.rows(func(yield func(string) bool) {
		tt.bySlot.ascend(slotKey{service: service, slot: slot}, func(k slotKey, _ struct{}) bool {
			return k.service == service && k.slot == slot && yield(k.id)
		})
	})
}

func (tt *taskTable) onNode(node string) []*Task {
	return tt.rows(func(yield func(string) bool) {
		tt.byNode.ascend(nodeKey{node: node}, func(k nodeKey, _ struct{}) bool {
			return k.node == node && yield(k.id)
		})
	})
}

// put stores t for the write transaction o, keeping the secondary indexes in step,
// and returns the row it replaced.
func (tt *taskTable) put(o *owner, t *Task) (old *Task, replaced bool) {
	old, replaced = tt.byID.set(o, t.ID, t)
	if replaced && old.ServiceID == t.ServiceID && old.Slot == t.Slot && old.NodeID == t.NodeID {
		return old, true
	}
	if replaced {
		tt.unindex(o, old)
	}
	tt.bySlot.set(o, slotKey{t.ServiceID, t.Slot, t.ID}, struct{}{})
	if t.NodeID != "" {
		tt.byNode.set(o, nodeKey{t.NodeID, t.ID}, struct{}{})
	}
	return old, replaced
}

// del deletes the task with the given ID and returns it.
func (tt *taskTable) del(o *owner, id string) (*Task, bool) {
	old, ok := tt.byID.delete(o, id)
	if ok {
		tt.unindex(o, old)
	}
	return old, ok
}

func (tt *taskTable) unindex(o *owner, t *Task) {
	tt.bySlot.delete(o, slotKey{t.ServiceID, t.Slot, t.ID})
	if t.NodeID != "" {
		tt.byNode.delete(o, nodeKey{t.NodeID, t.ID})
	}
}

// nodeWatches hands out the channels TasksByNode adds to watch sets: one per watched
// node, closed when a commit changes that node's tasks. Agents watch their own node
// (GET /v1/nodes/{ref}/tasks); with thousands of them, a channel per table would wake
// every agent on every write.
type nodeWatches struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// closedCh is a closed channel: the watch of a reader that is already out of date.
var closedCh = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// watch returns the channel for node, for a reader that saw the node's tasks as of
// index seen. A commit publishes its task table before it closes the channels of the
// nodes it changed, so a reader that registers in between would wait on a fresh
// channel for a change it missed: comparing with the committed index catches that.
func (s *Store) nodeWatch(node string, seen uint64) <-chan struct{} {
	w := &s.nodeWatches
	w.mu.Lock()
	defer w.mu.Unlock()
	cur, _ := s.committedTasks().nodeIndex.get(node)
	if cur != seen {
		return closedCh
	}
	c := w.ch[node]
	if c == nil {
		if w.ch == nil {
			w.ch = make(map[string]chan struct{})
		}
		c = make(chan struct{})
		w.ch[node] = c
	}
	return c
}

// wakeNodes closes the channels of the nodes a commit changed.
func (s *Store) wakeNodes(nodes map[string]struct{}) {
	w := &s.nodeWatches
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ch) == 0 {
		return
	}
	for n := range nodes {
		if c, ok := w.ch[n]; ok {
			close(c)
			delete(w.ch, n)
		}
	}
}
