package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/control"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
)

// The manager's requests are cluster/control's; this file is what control gets of
// the node: the store, with a missing leader explained, and the node's identity,
// the other managers and the keyring (controlNode).

// newControl returns the manager's control, over its store.
func (m *manager) newControl(revs control.Revisions) *control.Control {
	return control.New(control.Config{Store: controlStore{m}, Raft: m.st, Peers: controlNode{m}, Keyring: controlNode{m},
		Logger: m.logger, ApplyTimeout: m.n.cfg.ApplyTimeout, Revisions: revs, Events: m.events})
}

// controlStore is the manager's store as control uses it: a write that finds no
// leader says how many managers this one can reach.
type controlStore struct{ m *manager }

func (s controlStore) State() *state.Store { return s.m.state() }
func (s controlStore) StateIndex() uint64  { return s.m.st.StateIndex() }
func (s controlStore) Apply(ctx context.Context, t command.Type, body any) (uint64, error) {
	idx, err := s.m.st.Apply(ctx, t, body)
	if errors.Is(err, store.ErrNoLeader) {
		return 0, s.m.noLeader(err)
	}
	return idx, err
}

// controlNode is the node as control reaches it: control.Peers and control.Keyring.
type controlNode struct{ m *manager }

func (c controlNode) Self() (id, addr string) {
	meta := c.m.n.metaCopy()
	if meta == nil {
		return "", ""
	}
	return meta.NodeID, meta.AdvertiseAddr
}

func (c controlNode) KnownManagers() []string                 { return c.m.knownManagers() }
func (c controlNode) Client(addr string) (*api.Client, error) { return c.m.n.client(addr) }
func (c controlNode) Reconcile(row *model.Cluster) error      { return c.m.reconcileKeyring(row) }

// noLeaderError is store.ErrNoLeader with what this manager can see.
type noLeaderError struct {
	reachable, total int
	waited           time.Duration
	cause            error
}

func (e *noLeaderError) Error() string {
	return fmt.Sprintf("no leader: %d of %d managers reachable, and raft needs a majority of %d to elect one (waited %s): start the stopped managers or check the network between them",
		e.reachable, e.total, e.total/2+1, e.waited)
}

func (e *noLeaderError) Is(target error) bool { return target == store.ErrNoLeader }
func (e *noLeaderError) Unwrap() error        { return e.cause }

// noLeader pings the other voters (one second each, at once) to count how many are
// reachable from here.
func (m *manager) noLeader(cause error) error {
	servers, err := m.st.Servers()
	if err != nil {
		return cause
	}
	self := m.n.Status().NodeID
	var (
		mu        sync.Mutex
		wg        sync.WaitGroup
		total     int
		reachable int
	)
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		total++
		if s.ID == self {
			reachable++
			continue
		}
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			c, err := m.n.client(addr)
			if err != nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if c.Ping(ctx) == nil {
				mu.Lock()
				reachable++
				mu.Unlock()
			}
		}(s.Address)
	}
	wg.Wait()
	if total == 0 {
		return cause
	}
	return &noLeaderError{reachable: reachable, total: total, waited: m.st.ApplyTimeout(), cause: cause}
}
