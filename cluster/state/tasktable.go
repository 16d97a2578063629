package state

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"github.com/berthd/berth/cluster/model"
	"sync"
)

// taskTable is the task table as of one commit (see "Task storage" in the package
// documentation). A committed taskTable is never changed: a write transaction works
// on a copy of the struct, whose trees copy the nodes they change (btree.go), and
// Commit publishes that copy.
type taskTable struct {
	byID idMap[*model.Task]
	// bySlot and byNode hold keys only: a status report, which changes no key,
	// writes byID alone.
	bySlot btree[slotKey, struct{}]
	byNode btree[nodeKey, struct{}]
	// nodeIndex is the raft index of the last write that changed each node's tasks
	// (created, changed, deleted one or moved one away). Nodes are never dropped
	// from it, so that the index of a node whose last task went away still moves.
	nodeIndex idMap[uint64]
}

// MaxIDLength bounds the IDs of tasks and of the services and nodes they name: the
// task table holds them inline (idKey). IDs that NewID makes are IDLength long.
const MaxIDLength = 32

// idKey is an ID held in the key itself: its bytes, zero-padded, as big-endian
// words. Keys without pointers keep the task table out of the garbage collector's
// way: with string keys, copying tree nodes paid a write barrier per key and every
// collection scanned them, nearly half the CPU of a million-task cluster's applies.
// The words compare as the strings do, since IDs hold no NUL byte (keyField).
type idKey [MaxIDLength / 8]uint64

// idKeyOf returns the key of id, and false when id is too long to be one (a lookup
// of such an ID finds nothing: no row can have it).
func idKeyOf(id string) (k idKey, ok bool) {
	if len(id) > MaxIDLength {
		return k, false
	}
	var b [MaxIDLength]byte
	copy(b[:], id)
	for i := range k {
		k[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return k, true
}

// mustIDKey is idKeyOf for an ID of a validated row (Task.validate checks the
// length).
func mustIDKey(id string) idKey {
	k, ok := idKeyOf(id)
	if !ok {
		panic(fmt.Sprintf("state: ID %q of a stored row is longer than %d bytes", id, MaxIDLength))
	}
	return k
}

func (a idKey) compare(b idKey) int {
	for i := range a {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	return 0
}

// idMap is a btree keyed by IDs.
type idMap[V any] struct{ t btree[idKey, V] }

func newIDMap[V any]() idMap[V] { return idMap[V]{newBtree[idKey, V](idKey.compare)} }

func (m *idMap[V]) Len() int { return m.t.Len() }

func (m *idMap[V]) get(id string) (v V, ok bool) {
	k, ok := idKeyOf(id)
	if !ok {
		return v, false
	}
	return m.t.get(k)
}

func (m *idMap[V]) delete(o *owner, id string) (v V, ok bool) {
	k, ok := idKeyOf(id)
	if !ok {
		return v, false
	}
	return m.t.delete(o, k)
}

func (m *idMap[V]) set(o *owner, id string, v V) (V, bool) { return m.t.set(o, mustIDKey(id), v) }

func (m *idMap[V]) update(o *owner, id string, fn func(V) (V, bool)) (found, changed bool) {
	k, ok := idKeyOf(id)
	if !ok {
		return false, false
	}
	return m.t.update(o, k, fn)
}

// each calls fn on every value, in the order of the IDs, until fn returns false.
func (m *idMap[V]) each(fn func(V) bool) {
	m.t.each(func(_ idKey, v V) bool { return fn(v) })
}

type slotKey struct {
	service idKey
	slot    uint64
	id      idKey
}

type nodeKey struct{ node, id idKey }

func newTaskTable() *taskTable {
	return &taskTable{
		byID: newIDMap[*model.Task](),
		bySlot: newBtree[slotKey, struct{}](func(a, b slotKey) int {
			if c := a.service.compare(b.service); c != 0 {
				return c
			}
			if c := cmp.Compare(a.slot, b.slot); c != 0 {
				return c
			}
			return a.id.compare(b.id)
		}),
		byNode: newBtree[nodeKey, struct{}](func(a, b nodeKey) int {
			if c := a.node.compare(b.node); c != 0 {
				return c
			}
			return a.id.compare(b.id)
		}),
		nodeIndex: newIDMap[uint64](),
	}
}

// rows resolves the IDs walk yields (in the order it yields them) to rows.
func (tt *taskTable) rows(walk func(yield func(id idKey) bool)) []*model.Task {
	var out []*model.Task
	walk(func(id idKey) bool {
		if t, ok := tt.byID.t.get(id); ok {
			out = append(out, t)
		}
		return true
	})
	return out
}

func (tt *taskTable) all() []*model.Task {
	var out []*model.Task
	if n := tt.byID.Len(); n > 0 {
		out = make([]*model.Task, 0, n)
	}
	tt.byID.each(func(t *model.Task) bool {
		out = append(out, t)
		return true
	})
	return out
}

func (tt *taskTable) byService(service string) []*model.Task {
	sk, ok := idKeyOf(service)
	if !ok {
		return nil
	}
	return tt.rows(func(yield func(idKey) bool) {
		tt.bySlot.ascend(slotKey{service: sk}, func(k slotKey, _ struct{}) bool {
			return k.service == sk && yield(k.id)
		})
	})
}

func (tt *taskTable) bySlotOf(service string, slot uint64) []*model.Task {
	sk, ok := idKeyOf(service)
	if !ok {
		return nil
	}
	return tt.rows(func(yield func(idKey) bool) {
		tt.bySlot.ascend(slotKey{service: sk, slot: slot}, func(k slotKey, _ struct{}) bool {
			return k.service == sk && k.slot == slot && yield(k.id)
		})
	})
}

func (tt *taskTable) onNode(node string) []*model.Task {
	nk, ok := idKeyOf(node)
	if !ok {
		return nil
	}
	return tt.rows(func(yield func(idKey) bool) {
		tt.byNode.ascend(nodeKey{node: nk}, func(k nodeKey, _ struct{}) bool {
			return k.node == nk && yield(k.id)
		})
	})
}

// put stores t for the write transaction o, keeping the secondary indexes in step,
// and returns the row it replaced.
func (tt *taskTable) put(o *owner, t *model.Task) (old *model.Task, replaced bool) {
	id := mustIDKey(t.ID)
	old, replaced = tt.byID.t.set(o, id, t)
	if replaced && old.ServiceID == t.ServiceID && old.Slot == t.Slot && old.NodeID == t.NodeID {
		return old, true
	}
	if replaced {
		tt.unindex(o, old)
	}
	tt.bySlot.set(o, slotKey{mustIDKey(t.ServiceID), t.Slot, id}, struct{}{})
	if t.NodeID != "" {
		tt.byNode.set(o, nodeKey{mustIDKey(t.NodeID), id}, struct{}{})
	}
	return old, replaced
}

// del deletes the task with the given ID and returns it.
func (tt *taskTable) del(o *owner, id string) (*model.Task, bool) {
	old, ok := tt.byID.delete(o, id)
	if ok {
		tt.unindex(o, old)
	}
	return old, ok
}

func (tt *taskTable) unindex(o *owner, t *model.Task) {
	id := mustIDKey(t.ID)
	tt.bySlot.delete(o, slotKey{mustIDKey(t.ServiceID), t.Slot, id})
	if t.NodeID != "" {
		tt.byNode.delete(o, nodeKey{mustIDKey(t.NodeID), id})
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
