package control

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/state"
)

// NodeNetworkView returns what a node's data plane needs of the cluster's networks:
// the agents' network watch. With thousands of nodes each holding one, a write must
// neither be read by each of them nor wake them all: one loop indexes the networks
// once per state change (buildNetIndex), and a node's query wakes, and answers, only
// when the hash of its own view changed. The answer's index is the raft index of
// that change.
func (c *Control) NodeNetworkView(ctx context.Context, nodeRef string, q api.Query) (*api.NetworkView, api.QueryMeta, error) {
	tx := c.st.State().ReadTxn()
	n, err := resolveNode(tx, nodeRef)
	if err != nil {
		return nil, api.QueryMeta{}, err
	}
	// An index older than what this query read may be one the refresh loop
	// built before it last stopped: the answer waits for a newer one.
	floor := tx.Index(netTables...)
	c.nets.join()
	defer c.nets.leave()
	wait := state.MaxBlockingWait
	if q.Wait > 0 {
		wait = min(q.Wait, wait)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ni, nv, built := c.nets.lookup(n.ID)
		fresh := ni != nil && ni.index >= floor
		wake := built
		switch {
		case fresh && nv == nil:
			return nil, api.QueryMeta{}, &notFoundError{"node", nodeRef}
		case fresh && (q.Index == 0 || nv.index > q.Index):
			return ni.view(n.ID), api.QueryMeta{Index: nv.index}, nil
		case fresh:
			wake = nv.changed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, api.QueryMeta{}, ctx.Err()
		case <-timer.C:
			if nv == nil {
				return nil, api.QueryMeta{}, errors.New("the cluster's networks are not indexed yet; try again")
			}
			return ni.view(n.ID), api.QueryMeta{Index: nv.index}, nil
		}
	}
}

// netViews keeps the network index and each node's view hash. Its refresh loop runs
// while at least one network watch is open.
type netViews struct {
	c *Control

	mu       sync.Mutex
	watchers int
	stop     context.CancelFunc
	cur      *netIndex
	// built is closed, and replaced, whenever a new index is published: what a
	// watch waits on while its node is not in the index yet.
	built chan struct{}
	nodes map[string]*nodeView
}

// nodeView is a node's view as last published: its hash, the raft index at which
// it last changed, and a channel closed when it changes.
type nodeView struct {
	hash    uint64
	index   uint64
	changed chan struct{}
}

func newNetViews(c *Control) *netViews {
	return &netViews{c: c, built: make(chan struct{}), nodes: map[string]*nodeView{}}
}

// join counts a watch, starting the refresh loop for the first.
func (v *netViews) join() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.watchers++
	if v.watchers == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		v.stop = cancel
		go v.refresh(ctx)
	}
}

// leave uncounts a watch, stopping the refresh loop after the last: no watch, no
// indexing.
func (v *netViews) leave() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.watchers--
	if v.watchers == 0 {
		v.stop()
		v.stop = nil
	}
}

// lookup returns the current index, the node's view in it (nil when the node is
// not in it) and the channel closed when the next index is published.
func (v *netViews) lookup(nodeID string) (*netIndex, *nodeView, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur == nil {
		return nil, nil, v.built
	}
	return v.cur, v.nodes[nodeID], v.built
}

// refresh rebuilds the index after every write to the tables views are made of,
// until ctx ends. Writes that land while it builds are taken together by the next
// build.
func (v *netViews) refresh(ctx context.Context) {
	for ctx.Err() == nil {
		st := v.c.st.State()
		var last uint64
		v.mu.Lock()
		if v.cur != nil && v.cur.st == st {
			last = v.cur.index
		}
		v.mu.Unlock()
		var ni *netIndex
		_, err := st.Blocking(ctx, last, netTables, func(tx *state.ReadTxn, _ memdb.WatchSet) (uint64, error) {
			idx := max(tx.Index(netTables...), 1)
			if last != 0 && idx <= last {
				return idx, nil
			}
			var err error
			ni, err = buildNetIndex(tx, st, idx)
			return idx, err
		})
		switch {
		case ctx.Err() != nil || errors.Is(err, state.ErrAbandoned):
		case err != nil:
			v.c.logger.Warn("could not index the cluster's networks; retrying", "error", err)
			sleepCtx(ctx, time.Second)
		case ni != nil:
			v.publish(ni)
		}
	}
}

// publish makes ni the current index, and wakes the watches of the nodes whose view
// it changes.
func (v *netViews) publish(ni *netIndex) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur != nil && v.cur.st == ni.st && ni.index <= v.cur.index {
		return
	}
	v.cur = ni
	for id := range ni.nodes {
		h := ni.nodeHash(id)
		nv := v.nodes[id]
		switch {
		case nv == nil:
			v.nodes[id] = &nodeView{hash: h, index: ni.index, changed: make(chan struct{})}
		case nv.hash != h:
			close(nv.changed)
			// A restored snapshot may come with a lower index: a view's index
			// still only grows, or its watch would never answer again.
			v.nodes[id] = &nodeView{hash: h, index: max(ni.index, nv.index+1), changed: make(chan struct{})}
		}
	}
	for id, nv := range v.nodes {
		if ni.nodes[id] == nil {
			close(nv.changed)
			delete(v.nodes, id)
		}
	}
	close(v.built)
	v.built = make(chan struct{})
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
