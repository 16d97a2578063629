package scheduler

// The ranking is a tree: one level of groups per spread preference, the nodes that can
// take a task as leaves. Every group keeps its children in a binary min-heap ordered
// by rank, so the best node is found by following the heads from the root, and after a
// placement only the heaps on that node's path need fixing: O(levels · log N) per task
// instead of re-sorting every node. Without preferences the root holds the leaves.
//
// The heaps are written out rather than built on container/heap: its interface boxes
// every Push and Pop and calls through an interface on every comparison, and these
// heaps are the scheduler's inner loop.

// leaf is a node that passed the filters, with its working counters for this call.
type leaf struct {
	id      string
	node    int32 // index in the caller's slice
	parent  int32 // group
	pos     int32 // index in the parent's heap
	failing bool  // failed this service version recently: ranked last
	svc     int   // tasks of the service on the node
	total   int   // tasks on the node
	free    Resources
}

// group is one label value at one preference level (the root stands for all nodes).
type group struct {
	value    string
	parent   int32 // -1 for the root
	pos      int32 // index in the parent's heap
	leafKids bool  // last level: kids are leaves, not groups
	svc      int   // tasks of the service on the group's nodes
	healthy  int   // leaves below that are not failing
	kids     []int32
}

// groupKey finds a group by parent and label value while the tree is built.
type groupKey struct {
	parent int32
	value  string
}

type tree struct {
	leaves []leaf
	groups []group
}

// build filters nodes, counting each failure in counts (indexed like r.buckets), and
// arranges the nodes that pass in the ranking tree.
func (r *request) build(nodes []NodeInfo, counts []int) *tree {
	t := &tree{leaves: make([]leaf, 0, len(nodes)), groups: make([]group, 1, 1+4*len(r.prefs))}
	t.groups[0] = group{parent: -1, leafKids: len(r.prefs) == 0}
	var index map[groupKey]int32
	if len(r.prefs) > 0 {
		index = make(map[groupKey]int32)
	}
	for i := range nodes {
		n := &nodes[i]
		if f := r.checkNode(n); f.kind != passed {
			counts[r.bucket(f)]++
			continue
		}
		g := int32(0)
		for lvl := range r.prefs {
			k := groupKey{parent: g, value: r.prefs[lvl].value(n)}
			c, ok := index[k]
			if !ok {
				c = int32(len(t.groups))
				t.groups = append(t.groups, group{value: k.value, parent: g, pos: -1, leafKids: lvl == len(r.prefs)-1})
				index[k] = c
			}
			g = c
		}
		svc := n.ServiceTasks[r.serviceID]
		// A full node's tasks still count for its groups: the spread is over where the
		// service runs, not over where it could still go.
		for a := g; a >= 0; a = t.groups[a].parent {
			t.groups[a].svc += svc
		}
		free := Resources{
			NanoCPUs:    n.Total.NanoCPUs - n.Reserved.NanoCPUs,
			MemoryBytes: n.Total.MemoryBytes - n.Reserved.MemoryBytes,
		}
		if f := r.checkCapacity(n, free, svc, false); f.kind != passed {
			counts[r.bucket(f)]++
			continue
		}
		failing := r.failedRecently(n)
		t.leaves = append(t.leaves, leaf{
			id: n.ID, node: int32(i), parent: g, failing: failing,
			svc: svc, total: n.Tasks, free: free,
		})
		t.attach(g, int32(len(t.leaves)-1), !failing)
	}
	for i := range t.groups {
		t.heapify(&t.groups[i])
	}
	return t
}

// attach adds leaf li under group g. A group joins its parent's heap with its first
// leaf, so that no heap ever holds a group with nothing to offer.
func (t *tree) attach(g, li int32, healthy bool) {
	t.groups[g].kids = append(t.groups[g].kids, li)
	for c := g; len(t.groups[c].kids) == 1 && t.groups[c].parent >= 0; c = t.groups[c].parent {
		p := t.groups[c].parent
		t.groups[p].kids = append(t.groups[p].kids, c)
	}
	if healthy {
		for a := g; a >= 0; a = t.groups[a].parent {
			t.groups[a].healthy++
		}
	}
}

// best returns the leaf the next task goes to, or -1 when no node can take one.
func (t *tree) best() int32 {
	g := &t.groups[0]
	if len(g.kids) == 0 {
		return -1
	}
	for !g.leafKids {
		g = &t.groups[g.kids[0]]
	}
	return g.kids[0]
}

// placed re-ranks after a task went to leaf li, whose counters the caller has already
// updated; full says the leaf cannot take another task and leaves the tree.
func (t *tree) placed(li int32, full bool) {
	l := &t.leaves[li]
	g := l.parent
	lostHealthy := false
	if full {
		t.remove(&t.groups[g], int(l.pos))
		lostHealthy = !l.failing
	} else {
		t.fix(&t.groups[g], int(l.pos))
	}
	for g >= 0 {
		gr := &t.groups[g]
		gr.svc++
		if lostHealthy {
			gr.healthy--
		}
		p := gr.parent
		if p >= 0 {
			if len(gr.kids) == 0 {
				t.remove(&t.groups[p], int(gr.pos))
			} else {
				t.fix(&t.groups[p], int(gr.pos))
			}
		}
		g = p
	}
}

// less orders the kids of g: for leaves, not failing first, then fewest tasks of the
// service, fewest tasks, node ID (and input position for duplicate IDs, so the order
// is total); for groups, still holding a node that is not failing first, then fewest
// tasks of the service, then label value.
func (t *tree) less(g *group, a, b int32) bool {
	if g.leafKids {
		x, y := &t.leaves[a], &t.leaves[b]
		if x.failing != y.failing {
			return !x.failing
		}
		if x.svc != y.svc {
			return x.svc < y.svc
		}
		if x.total != y.total {
			return x.total < y.total
		}
		if x.id != y.id {
			return x.id < y.id
		}
		return x.node < y.node
	}
	x, y := &t.groups[a], &t.groups[b]
	if (x.healthy > 0) != (y.healthy > 0) {
		return x.healthy > 0
	}
	if x.svc != y.svc {
		return x.svc < y.svc
	}
	return x.value < y.value
}

func (t *tree) setPos(g *group, i int) {
	if g.leafKids {
		t.leaves[g.kids[i]].pos = int32(i)
	} else {
		t.groups[g.kids[i]].pos = int32(i)
	}
}

func (t *tree) swap(g *group, i, j int) {
	g.kids[i], g.kids[j] = g.kids[j], g.kids[i]
	t.setPos(g, i)
	t.setPos(g, j)
}

func (t *tree) heapify(g *group) {
	for i := range g.kids {
		t.setPos(g, i)
	}
	for i := len(g.kids)/2 - 1; i >= 0; i-- {
		t.down(g, i, len(g.kids))
	}
}

func (t *tree) up(g *group, j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !t.less(g, g.kids[j], g.kids[i]) {
			break
		}
		t.swap(g, i, j)
		j = i
	}
}

// down sinks the element at i0 within the first n kids; it reports whether it moved.
func (t *tree) down(g *group, i0, n int) bool {
	i := i0
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && t.less(g, g.kids[j2], g.kids[j]) {
			j = j2
		}
		if !t.less(g, g.kids[j], g.kids[i]) {
			break
		}
		t.swap(g, i, j)
		i = j
	}
	return i > i0
}

func (t *tree) fix(g *group, i int) {
	if !t.down(g, i, len(g.kids)) {
		t.up(g, i)
	}
}

func (t *tree) remove(g *group, i int) {
	n := len(g.kids) - 1
	if i != n {
		t.swap(g, i, n)
		if !t.down(g, i, n) {
			t.up(g, i)
		}
	}
	g.kids = g.kids[:n]
}
