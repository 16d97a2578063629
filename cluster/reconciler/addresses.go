package reconciler

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack/ipam"
)

// addressBook is the leader's view of the addresses tasks hold on each network. New
// tasks get the lowest free address of each of their service's networks
// (netstack/ipam), written into the task with the plan that creates it, so every
// node learns it from the task row and no node allocates anything.
type addressBook struct {
	used map[string]map[netip.Addr]bool // network ID -> addresses
}

func newAddressBook(tasks []*state.Task) *addressBook {
	b := &addressBook{used: map[string]map[netip.Addr]bool{}}
	for _, t := range tasks {
		b.add(t)
	}
	return b
}

// holds: a task keeps its addresses until it is seen terminal; its container is
// gone by then, and so is its sandbox, soon after.
func holds(t *state.Task) bool { return t != nil && len(t.Networks) > 0 && !t.Status.State.Terminal() }

func (b *addressBook) add(t *state.Task) {
	if !holds(t) {
		return
	}
	for _, a := range t.Networks {
		p, err := netip.ParsePrefix(a.Addr)
		if err != nil {
			continue
		}
		m := b.used[a.Network]
		if m == nil {
			m = map[netip.Addr]bool{}
			b.used[a.Network] = m
		}
		m[p.Addr()] = true
	}
}

func (b *addressBook) remove(t *state.Task) {
	if holds(t) {
		b.release(t.Networks)
	}
}

// serviceNetworks are the network rows a service's tasks attach to, in the spec's
// order (the first is the task's default route).
func serviceNetworks(tx *state.ReadTxn, svc *state.Service) ([]*state.Network, error) {
	if len(svc.Spec.Networks) == 0 {
		return nil, nil
	}
	stack, err := tx.Stack(nil, svc.Stack)
	if err != nil || stack.Spec == nil {
		return nil, fmt.Errorf("service %s: stack %s: %w", svc.Name, svc.Stack, err)
	}
	var out []*state.Network
	for _, sn := range svc.Spec.Networks {
		n := stack.Spec.Networks[sn.Name]
		if n == nil {
			return nil, fmt.Errorf("service %s: network %s is not defined by stack %s", svc.Name, sn.Name, svc.Stack)
		}
		row, err := tx.NetworkByName(nil, n.Name)
		if err != nil {
			return nil, fmt.Errorf("service %s: network %s: %w", svc.Name, n.Name, err)
		}
		out = append(out, row)
	}
	return out, nil
}

// addressRecheck is how often a service whose tasks wait for a free address on a
// full network looks again: an address comes free when any task of that network
// ends, whichever service it belongs to.
const addressRecheck = 2 * time.Second

// assign gives the tasks a plan places their addresses on nets: the new tasks, and
// the pending ones it now puts on a node (a task made pending for want of an address
// has none yet). A task that cannot have an address on every network is left pending
// with the reason, holding nothing; assign reports whether that happened, so that the
// service looks again once addresses may have come free. nets is nil with netsErr when
// the service's networks cannot be read. A global service's task waits on its own
// node (perNode); a replicated one waits for the scheduler, without a node.
func (b *addressBook) assign(tx *state.ReadTxn, plan *orchestrator.Plan, nets []*state.Network, netsErr error, perNode bool, now time.Time) (waiting bool) {
	for _, t := range plan.Create {
		if len(t.Networks) > 0 || t.Status.State.Terminal() {
			continue
		}
		atts, err := b.allocate(nets, netsErr)
		if err != nil {
			waiting = true
			if !perNode {
				t.NodeID = ""
			}
			t.Status = pendingForAddress(err, now)
			continue
		}
		t.Networks = atts
	}
	kept := plan.Update[:0]
	for _, u := range plan.Update {
		if u.Status == nil || u.Status.State != state.TaskAssigned {
			kept = append(kept, u)
			continue
		}
		row, err := tx.Task(nil, u.ID)
		if err != nil || len(row.Networks) > 0 {
			kept = append(kept, u)
			continue
		}
		atts, err := b.allocate(nets, netsErr)
		if err == nil {
			u.Networks = atts
			kept = append(kept, u)
			continue
		}
		waiting = true
		st := pendingForAddress(err, now)
		if row.Status.State == state.TaskPending && row.Status.Err == st.Err && u.DesiredState == "" {
			continue // already says so
		}
		// A pending status leaves the row's node as it is (the FSM's rule).
		u.NodeID, u.Status = "", &st
		kept = append(kept, u)
	}
	clear(plan.Update[len(kept):])
	plan.Update = kept
	return waiting
}

// allocate takes the lowest free address of each network, all or none.
func (b *addressBook) allocate(nets []*state.Network, netsErr error) ([]state.Attachment, error) {
	if netsErr != nil {
		return nil, netsErr
	}
	var out []state.Attachment
	for _, n := range nets {
		addr, err := b.take(n)
		if err != nil {
			b.release(out)
			return nil, err
		}
		out = append(out, addr)
	}
	return out, nil
}

func (b *addressBook) take(n *state.Network) (state.Attachment, error) {
	prefix, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return state.Attachment{}, fmt.Errorf("network %s has no subnet yet (%q)", n.Name, n.Subnet)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		gw = ipam.Gateway(prefix)
	}
	m := b.used[n.ID]
	if m == nil {
		m = map[netip.Addr]bool{}
		b.used[n.ID] = m
	}
	addr, err := ipam.AllocateAddr(prefix, gw, m)
	if errors.Is(err, ipam.ErrSubnetFull) {
		return state.Attachment{}, fmt.Errorf("network %s: every address of subnet %s is taken (%d tasks hold one): "+
			"give the network a bigger subnet (networks: ... ipam: config: - subnet:) or run fewer tasks on it", n.Name, prefix, len(m))
	}
	if err != nil {
		return state.Attachment{}, fmt.Errorf("network %s: %w", n.Name, err)
	}
	m[addr] = true
	return state.Attachment{Network: n.ID, Addr: netip.PrefixFrom(addr, prefix.Bits()).String(), MAC: ipam.MAC(addr).String()}, nil
}

func (b *addressBook) release(atts []state.Attachment) {
	for _, a := range atts {
		if p, err := netip.ParsePrefix(a.Addr); err == nil {
			delete(b.used[a.Network], p.Addr())
		}
	}
}

func pendingForAddress(err error, now time.Time) state.TaskStatus {
	return orchestrator.PendingStatus(err.Error(), now)
}
