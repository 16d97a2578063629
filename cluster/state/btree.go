package state

import "slices"

// btree is a persistent (copy-on-write) B+tree: the task table's storage (see
// tasktable.go). A committed tree is never changed: a write copies the nodes on its
// path, so readers holding an older root go on seeing the tree as it was. Copying the
// path on every write would cost a million-task cluster a leaf and its parents per
// row; instead a write transaction owns the nodes it copied (their owner is the
// transaction's) and changes them in place until it commits, like Clojure's
// transients, so a batch of 1,024 rows copies each node it touches once. A copy
// shares the keys of the node it copies until it changes them: a write that only
// replaces a value (a status report) or a child (every write, on the nodes above)
// copies values or child pointers alone.
//
// Items live in the leaves, in key order. An internal node keeps, for each child but
// the first, the smallest key of that child's subtree (keys[0] is unused), so that
// merging and splitting nodes never needs a key from elsewhere.
type btree[K, V any] struct {
	root *bnode[K, V]
	n    int
	cmp  func(a, b K) int
}

// owner identifies a write transaction: the nodes it made carry it, and only they may
// be changed in place. It has a size so that every owner has its own address.
type owner struct{ _ byte }

const (
	// leafMax and innerMax bound the keys of a leaf and of an internal node. A
	// write copies the leaf it changes (its keys too, for an insert or a delete)
	// but only the child pointers of the internal nodes above it (their keys are
	// shared, see mut): small leaves make the copy small, wide internal nodes keep
	// the tree shallow, five levels at a million rows.
	leafMax  = 16
	innerMax = 32
)

// maxKeys is the most keys n may hold; a node below a quarter of it is merged with
// a neighbour, or shares its keys with it, so that deletes cannot leave a sparse
// tree.
func (n *bnode[K, V]) maxKeys() int {
	if n.leaf() {
		return leafMax
	}
	return innerMax
}

func (n *bnode[K, V]) minKeys() int { return n.maxKeys() / 4 }

type bnode[K, V any] struct {
	owner *owner
	keys  []K
	vals  []V            // leaves only
	kids  []*bnode[K, V] // internal nodes only
	// sharedKeys: keys belongs to the node this one was copied from, and must be
	// copied before it is changed (ownKeys).
	sharedKeys bool
}

func (n *bnode[K, V]) leaf() bool { return n.kids == nil }

// ownKeys gives n, which its writer owns, keys of its own to change.
func (n *bnode[K, V]) ownKeys() {
	if n.sharedKeys {
		n.keys = grown(n.keys)
		n.sharedKeys = false
	}
}

func newBtree[K, V any](cmp func(a, b K) int) btree[K, V] { return btree[K, V]{cmp: cmp} }

// Len returns the number of items.
func (t *btree[K, V]) Len() int { return t.n }

// find returns the index of the first key of a leaf that is >= k, and whether it is k.
func (t *btree[K, V]) find(keys []K, k K) (int, bool) {
	lo, hi := 0, len(keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.cmp(keys[m], k) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(keys) && t.cmp(keys[lo], k) == 0
}

// child returns the index of the child of an internal node whose subtree holds k.
func (t *btree[K, V]) child(keys []K, k K) int {
	lo, hi := 1, len(keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.cmp(keys[m], k) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

func (t *btree[K, V]) get(k K) (v V, ok bool) {
	n := t.root
	if n == nil {
		return v, false
	}
	for !n.leaf() {
		n = n.kids[t.child(n.keys, k)]
	}
	if i, found := t.find(n.keys, k); found {
		return n.vals[i], true
	}
	return v, false
}

// mut returns n if o owns it, else a copy that o owns, which shares n's keys. The
// copy has room for one more item, so that an insert does not copy it again.
func (t *btree[K, V]) mut(n *bnode[K, V], o *owner) *bnode[K, V] {
	if n.owner == o {
		return n
	}
	c := &bnode[K, V]{owner: o, keys: n.keys, sharedKeys: true}
	if n.leaf() {
		c.vals = grown(n.vals)
	} else {
		c.kids = grown(n.kids)
	}
	return c
}

// grown copies s with room for one more element. It is written as make then copy,
// which the compiler turns into one runtime call that, while the GC marks, puts a
// write barrier on the source only: copying nodes is most of what writes cost.
func grown[E any](s []E) []E {
	c := make([]E, len(s)+1)
	copy(c, s)
	return c[:len(s)]
}

// set stores v under k for the write transaction o, and returns the value it
// replaced. An equal key already there stays: replacing it would copy the keys.
func (t *btree[K, V]) set(o *owner, k K, v V) (old V, replaced bool) {
	if t.root == nil {
		t.root = &bnode[K, V]{owner: o, keys: []K{k}, vals: []V{v}}
		t.n = 1
		return old, false
	}
	t.root = t.mut(t.root, o)
	old, replaced, last := t.insert(o, t.root, k, v)
	if !replaced {
		t.n++
	}
	if len(t.root.keys) > t.root.maxKeys() {
		sep, r := t.split(o, t.root, last)
		var unused K
		t.root = &bnode[K, V]{owner: o, keys: []K{unused, sep}, kids: []*bnode[K, V]{t.root, r}}
	}
	return old, replaced
}

// insert puts k in the subtree of n, which o owns, splitting a child that overflows.
// last reports that k went to the end of n's subtree.
func (t *btree[K, V]) insert(o *owner, n *bnode[K, V], k K, v V) (old V, replaced, last bool) {
	if n.leaf() {
		i, found := t.find(n.keys, k)
		if found {
			old = n.vals[i]
			n.vals[i] = v
			return old, true, false
		}
		n.ownKeys()
		n.keys = slices.Insert(n.keys, i, k)
		n.vals = slices.Insert(n.vals, i, v)
		return old, false, i == len(n.keys)-1
	}
	i := t.child(n.keys, k)
	c := t.mut(n.kids[i], o)
	n.kids[i] = c
	old, replaced, last = t.insert(o, c, k, v)
	if len(c.keys) > c.maxKeys() {
		sep, r := t.split(o, c, last)
		n.ownKeys()
		n.keys = slices.Insert(n.keys, i+1, sep)
		n.kids = slices.Insert(n.kids, i+1, r)
	}
	return old, replaced, last && i == len(n.kids)-1
}

// update replaces the value under k, if there is one, with what fn makes of it, for
// the write transaction o, unless fn says to keep it. It searches once, and copies
// the path to the leaf only for a change: a status report finds its row and replaces
// it in one descent.
func (t *btree[K, V]) update(o *owner, k K, fn func(V) (V, bool)) (found, changed bool) {
	n := t.root
	if n == nil {
		return false, false
	}
	var buf [32]int
	path := buf[:0]
	for !n.leaf() {
		i := t.child(n.keys, k)
		path = append(path, i)
		n = n.kids[i]
	}
	i, ok := t.find(n.keys, k)
	if !ok {
		return false, false
	}
	v, change := fn(n.vals[i])
	if !change {
		return true, false
	}
	t.root = t.mut(t.root, o)
	n = t.root
	for _, c := range path {
		n.kids[c] = t.mut(n.kids[c], o)
		n = n.kids[c]
	}
	n.vals[i] = v
	return true, true
}

// split moves the upper part of n, which o owns, to a new node, and returns it with
// its smallest key. It moves half, or, when the key that made n overflow went to its
// end (appending: the task slots of a service, made in order), as little as a node
// may hold, so that keys added in order leave their nodes three quarters full rather
// than half.
func (t *btree[K, V]) split(o *owner, n *bnode[K, V], appending bool) (K, *bnode[K, V]) {
	n.ownKeys()
	m := len(n.keys) / 2
	if appending {
		m = len(n.keys) - n.minKeys()
	}
	sep := n.keys[m]
	r := &bnode[K, V]{owner: o, keys: grown(n.keys[m:])}
	// The overflow that led here grew n's slices to about twice what a node
	// holds; n keeps copies of its part, with room for one more as a copy made
	// by mut has, so that a tree of splits does not keep half of its memory
	// unused (a leaf of the appending split keeps three quarters).
	n.keys = grown(n.keys[:m])
	if n.leaf() {
		r.vals = grown(n.vals[m:])
		n.vals = grown(n.vals[:m])
	} else {
		var unused K
		r.keys[0] = unused
		r.kids = grown(n.kids[m:])
		n.kids = grown(n.kids[:m])
	}
	return sep, r
}

// delete removes k for the write transaction o, and returns the value it had.
func (t *btree[K, V]) delete(o *owner, k K) (old V, ok bool) {
	// Looking first means a miss copies nothing.
	if _, ok := t.get(k); !ok {
		return old, false
	}
	t.root = t.mut(t.root, o)
	old = t.remove(o, t.root, k)
	t.n--
	for !t.root.leaf() && len(t.root.kids) == 1 {
		t.root = t.root.kids[0]
	}
	if t.root.leaf() && len(t.root.keys) == 0 {
		t.root = nil
	}
	return old, true
}

// remove deletes k, which is there, from the subtree of n, which o owns.
func (t *btree[K, V]) remove(o *owner, n *bnode[K, V], k K) V {
	if n.leaf() {
		i, _ := t.find(n.keys, k)
		old := n.vals[i]
		n.ownKeys()
		n.keys = slices.Delete(n.keys, i, i+1)
		n.vals = slices.Delete(n.vals, i, i+1)
		return old
	}
	i := t.child(n.keys, k)
	c := t.mut(n.kids[i], o)
	n.kids[i] = c
	old := t.remove(o, c, k)
	if len(c.keys) < c.minKeys() && len(n.kids) > 1 {
		t.rebalance(o, n, i)
	}
	return old
}

// rebalance merges child i of n, which o owns, with a neighbour, or, when together
// they would overflow, shares their keys evenly between them.
func (t *btree[K, V]) rebalance(o *owner, n *bnode[K, V], i int) {
	j := i + 1
	if j == len(n.kids) {
		i, j = i-1, i
	}
	l := t.mut(n.kids[i], o)
	r := n.kids[j]
	l.ownKeys()
	n.ownKeys()
	if l.leaf() {
		l.keys = append(l.keys, r.keys...)
		l.vals = append(l.vals, r.vals...)
	} else {
		l.keys = append(append(l.keys, n.keys[j]), r.keys[1:]...)
		l.kids = append(l.kids, r.kids...)
	}
	if len(l.keys) <= l.maxKeys() {
		n.kids[i] = l
		n.keys = slices.Delete(n.keys, j, j+1)
		n.kids = slices.Delete(n.kids, j, j+1)
		return
	}
	sep, nr := t.split(o, l, false)
	n.kids[i], n.kids[j], n.keys[j] = l, nr, sep
}

// ascend calls fn on the items from the first key >= from, in order, until fn
// returns false.
func (t *btree[K, V]) ascend(from K, fn func(K, V) bool) {
	if t.root != nil {
		t.ascendNode(t.root, &from, fn)
	}
}

// each calls fn on every item, in order, until fn returns false.
func (t *btree[K, V]) each(fn func(K, V) bool) {
	if t.root != nil {
		t.ascendNode(t.root, nil, fn)
	}
}

func (t *btree[K, V]) ascendNode(n *bnode[K, V], from *K, fn func(K, V) bool) bool {
	if n.leaf() {
		i := 0
		if from != nil {
			i, _ = t.find(n.keys, *from)
		}
		for ; i < len(n.keys); i++ {
			if !fn(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return true
	}
	c := 0
	if from != nil {
		c = t.child(n.keys, *from)
	}
	if !t.ascendNode(n.kids[c], from, fn) {
		return false
	}
	// Every later subtree starts after from.
	for _, k := range n.kids[c+1:] {
		if !t.ascendNode(k, nil, fn) {
			return false
		}
	}
	return true
}
