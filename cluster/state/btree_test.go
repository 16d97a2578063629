package state

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree verifies the B+tree's shape: sorted keys, separators that bound their
// subtrees, node sizes within bounds (but for the root), leaves at one depth, and the
// item count.
func checkTree[K, V any](t *testing.T, tr *btree[K, V]) {
	t.Helper()
	if tr.root == nil {
		if tr.n != 0 {
			t.Fatalf("empty tree counts %d items", tr.n)
		}
		return
	}
	leafDepth, count := -1, 0
	var walk func(n *bnode[K, V], depth int, lo, hi *K)
	walk = func(n *bnode[K, V], depth int, lo, hi *K) {
		if n != tr.root && (len(n.keys) < n.minKeys() || len(n.keys) > n.maxKeys()) {
			t.Fatalf("node of %d keys at depth %d", len(n.keys), depth)
		}
		if n.leaf() {
			if leafDepth >= 0 && depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			leafDepth = depth
			if len(n.vals) != len(n.keys) {
				t.Fatalf("leaf of %d keys and %d values", len(n.keys), len(n.vals))
			}
			for i, k := range n.keys {
				if i > 0 && tr.cmp(n.keys[i-1], k) >= 0 {
					t.Fatal("leaf keys out of order")
				}
				if (lo != nil && tr.cmp(k, *lo) < 0) || (hi != nil && tr.cmp(k, *hi) >= 0) {
					t.Fatal("leaf key outside its separators")
				}
			}
			count += len(n.keys)
			return
		}
		if len(n.kids) != len(n.keys) || (n == tr.root && len(n.kids) < 2) {
			t.Fatalf("internal node of %d keys and %d children", len(n.keys), len(n.kids))
		}
		for i, c := range n.kids {
			clo, chi := lo, hi
			if i > 0 {
				clo = &n.keys[i]
			}
			if i+1 < len(n.kids) {
				chi = &n.keys[i+1]
			}
			walk(c, depth+1, clo, chi)
		}
	}
	walk(tr.root, 0, nil, nil)
	if count != tr.n {
		t.Fatalf("tree counts %d items, holds %d", tr.n, count)
	}
}

func treeItems(tr *btree[int, int]) map[int]int {
	out := map[int]int{}
	tr.each(func(k, v int) bool { out[k] = v; return true })
	return out
}

// TestBtreeAgainstMap runs random writes in batches, each batch a transaction with its
// own owner, against a map, and checks that every tree committed earlier still holds
// exactly what it held: writes copy what they change.
func TestBtreeAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// A key space of 0 inserts keys in ascending order (a service's slots), which
	// splits nodes unevenly.
	for _, keySpace := range []int{10, 300, 5000, 0} {
		t.Run(fmt.Sprint(keySpace), func(t *testing.T) {
			ascending := 0
			tr := newBtree[int, int](cmp.Compare[int])
			model := map[int]int{}
			type version struct {
				tree  btree[int, int]
				items map[int]int
			}
			var versions []version
			for batch := range 60 {
				o := new(owner)
				// Grow, then shrink, then churn, so that merges and splits all run.
				pDelete := []float64{0.2, 0.8, 0.5}[batch/20]
				for range rng.IntN(400) {
					var k int
					if keySpace == 0 {
						ascending++
						k = ascending
					} else {
						k = rng.IntN(keySpace)
					}
					if keySpace == 0 && rng.Float64() < pDelete/4 {
						k = rng.IntN(ascending)
					}
					if rng.Float64() < pDelete {
						old, ok := tr.delete(o, k)
						want, wantOK := model[k]
						if ok != wantOK || old != want {
							t.Fatalf("delete %d = %d, %v; want %d, %v", k, old, ok, want, wantOK)
						}
						delete(model, k)
						continue
					}
					v := rng.Int()
					if rng.IntN(4) == 0 {
						// update: changes even values only.
						found, changed := tr.update(o, k, func(cur int) (int, bool) { return v, cur%2 == 0 })
						cur, had := model[k]
						if found != had || changed != (had && cur%2 == 0) {
							t.Fatalf("update %d = %v, %v; model has %d, %v", k, found, changed, cur, had)
						}
						if changed {
							model[k] = v
						}
						continue
					}
					old, replaced := tr.set(o, k, v)
					want, wantOK := model[k]
					if replaced != wantOK || old != want {
						t.Fatalf("set %d = %d, %v; want %d, %v", k, old, replaced, want, wantOK)
					}
					model[k] = v
				}
				checkTree(t, &tr)
				if got := treeItems(&tr); !maps.Equal(got, model) {
					t.Fatalf("batch %d: tree holds %d items, model %d", batch, len(got), len(model))
				}
				for range 20 {
					k := rng.IntN(max(keySpace, ascending+1))
					v, ok := tr.get(k)
					if want, wantOK := model[k]; v != want || ok != wantOK {
						t.Fatalf("get %d = %d, %v; want %d, %v", k, v, ok, want, wantOK)
					}
					var got []int
					tr.ascend(k, func(k, _ int) bool { got = append(got, k); return len(got) < 5 })
					var want []int
					for _, mk := range slices.Sorted(maps.Keys(model)) {
						if mk >= k && len(want) < 5 {
							want = append(want, mk)
						}
					}
					if !slices.Equal(got, want) {
						t.Fatalf("ascend from %d = %v, want %v", k, got, want)
					}
				}
				versions = append(versions, version{tr, maps.Clone(model)})
			}
			for i, v := range versions {
				if got := treeItems(&v.tree); !maps.Equal(got, v.items) {
					t.Fatalf("version %d changed after later writes: %d items, had %d", i, len(got), len(v.items))
				}
			}
		})
	}
}
