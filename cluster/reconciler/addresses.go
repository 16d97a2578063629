package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/berthd/berth/cluster/command"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/orchestrator"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/cluster/store"
	"github.com/berthd/berth/netstack/ipam"
	"github.com/berthd/berth/spec"
)

// addressBook is the leader's view of the addresses in use on each network. New
// tasks get the lowest free address of each of their service's networks
// (netstack/ipam), written into the task with the plan that creates it, so every
// node learns it from the task row and no node allocates anything. Services' VIPs
// and nodes' ingress endpoints are the FSM's (cluster/store), taken from the top of
// the subnet; the book only keeps tasks off them.
type addressBook struct {
	used     map[string]map[netip.Addr]bool // network ID -> tasks' addresses
	reserved map[string]map[netip.Addr]bool // network ID -> VIPs and node endpoints
}

func newAddressBook(tasks []*model.Task, svcs []*model.Service, nodes []*model.Node) *addressBook {
	b := &addressBook{used: map[string]map[netip.Addr]bool{}, reserved: map[string]map[netip.Addr]bool{}}
	for _, t := range tasks {
		b.add(t)
	}
	for _, s := range svcs {
		b.serviceChanged(nil, s)
	}
	for _, n := range nodes {
		b.nodeChanged(nil, n)
	}
	return b
}

// serviceChanged follows a service's VIPs from its row before a write to its row
// after it (either nil). It reports a clash: a new VIP on an address the book gave a
// task. The FSM gives a VIP no address a written task holds, so that task's plan
// was still in flight, and the FSM skips it (reservedAddrs in cluster/store): the
// caller must read its view anew, which forgets the addresses of the unwritten plan.
func (b *addressBook) serviceChanged(before, after *model.Service) (clash bool) {
	if before != nil {
		for _, v := range before.Endpoint.VIPs {
			setAddr(b.reserved, v.Network, v.Addr, false)
		}
	}
	if after != nil {
		for _, v := range after.Endpoint.VIPs {
			clash = b.reserve(v.Network, v.Addr) || clash
		}
	}
	return clash
}

// nodeChanged follows a node's endpoints as serviceChanged follows VIPs.
func (b *addressBook) nodeChanged(before, after *model.Node) (clash bool) {
	if before != nil {
		for _, a := range before.Networks {
			setAddr(b.reserved, a.Network, a.Addr, false)
		}
	}
	if after != nil {
		for _, a := range after.Networks {
			clash = b.reserve(a.Network, a.Addr) || clash
		}
	}
	return clash
}

// reserve marks a VIP's or an endpoint's address, and reports whether the book gave
// it to a task.
func (b *addressBook) reserve(network, cidr string) (clash bool) {
	setAddr(b.reserved, network, cidr, true)
	p, err := netip.ParsePrefix(cidr)
	return err == nil && b.used[network][p.Addr()]
}

// holds: a task keeps its addresses until it is seen terminal; its container is
// gone by then, and so is its sandbox, soon after.
func holds(t *model.Task) bool { return t != nil && len(t.Networks) > 0 && !t.Status.State.Terminal() }

func (b *addressBook) add(t *model.Task) {
	if !holds(t) {
		return
	}
	for _, a := range t.Networks {
		setAddr(b.used, a.Network, a.Addr, true)
	}
}

// setAddr marks or unmarks the address of cidr on network in book.
func setAddr(book map[string]map[netip.Addr]bool, network, cidr string, on bool) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return
	}
	m := book[network]
	switch {
	case !on:
		delete(m, p.Addr())
	case m == nil:
		book[network] = map[netip.Addr]bool{p.Addr(): true}
	default:
		m[p.Addr()] = true
	}
}

func (b *addressBook) remove(t *model.Task) {
	if holds(t) {
		b.release(t.Networks)
	}
}

// serviceNetworks are the network rows a service's tasks attach to, in the spec's
// order (the first is the task's default route), the ingress network last
// (command.ServiceNetworks).
func serviceNetworks(tx *state.ReadTxn, svc *model.Service) ([]*model.Network, error) {
	if !attaches(&svc.Spec) {
		return nil, nil
	}
	stack, err := command.ServiceStack(tx, svc, &svc.Spec)
	if err != nil {
		return nil, err
	}
	return command.ServiceNetworks(tx, stack, &svc.Spec)
}

// lacksVIPs reports whether a service reached at VIPs has fewer than one per
// network: written by an older build, or rolled back onto a network (rollbacks
// allocate nothing, see command.ServiceEndpoints).
func lacksVIPs(s *model.Service) bool {
	want := len(s.Spec.Networks)
	if s.Spec.PublishesIngress() {
		want++
	}
	return s.Spec.Deploy.VIP() && len(s.Endpoint.VIPs) < want
}

// askEndpoints has the FSM give the lacking services their VIPs, before the pass
// that places their tasks reads the state. A service it cannot serve (its stack no
// longer defines one of its networks, a subnet is full) is skipped without a write,
// so it is not asked for again until it changes; it is named in the log.
func (l *loop) askEndpoints(ctx context.Context) error {
	if len(l.lacking) == 0 {
		return nil
	}
	body := &command.ServiceEndpoints{IDs: slices.Sorted(maps.Keys(l.lacking))}
	clear(l.lacking)
	if _, err := l.cfg.Store.ApplyLeader(ctx, command.CmdServiceEndpoints, body); err != nil {
		if errors.Is(err, store.ErrNotLeader) || ctx.Err() != nil {
			return err
		}
		l.cfg.Logger.Error("could not give services their VIPs; their next stack write will", "services", len(body.IDs), "error", err)
		return nil
	}
	tx := l.st.ReadTxn()
	for _, id := range body.IDs {
		if s, err := tx.Service(nil, id); err == nil && lacksVIPs(s) {
			l.cfg.Logger.Warn("service has fewer VIPs than networks: the next write of its stack says why", "service", s.Name)
		}
	}
	return nil
}

// attaches reports whether a service's tasks have addresses on any network.
func attaches(s *spec.Service) bool { return len(s.Networks) > 0 || s.PublishesIngress() }

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
func (b *addressBook) assign(tx *state.ReadTxn, plan *orchestrator.Plan, nets []*model.Network, netsErr error, perNode bool, now time.Time) (waiting bool) {
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
		if u.Status == nil || u.Status.State != model.TaskAssigned {
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
		if row.Status.State == model.TaskPending && row.Status.Err == st.Err && u.DesiredState == "" {
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
func (b *addressBook) allocate(nets []*model.Network, netsErr error) ([]model.Attachment, error) {
	if netsErr != nil {
		return nil, netsErr
	}
	var out []model.Attachment
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

func (b *addressBook) take(n *model.Network) (model.Attachment, error) {
	prefix, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return model.Attachment{}, fmt.Errorf("network %s has no subnet yet (%q)", n.Name, n.Subnet)
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
	r := b.reserved[n.ID]
	addr, err := ipam.AllocateAddr(command.TaskRange(n, prefix), gw, func(a netip.Addr) bool { return m[a] || r[a] })
	if errors.Is(err, ipam.ErrSubnetFull) {
		return model.Attachment{}, fmt.Errorf("network %s: every address of subnet %s is taken (%d tasks hold one): "+
			"give the network a bigger subnet (networks: ... ipam: config: - subnet:) or run fewer tasks on it", n.Name, prefix, len(m))
	}
	if err != nil {
		return model.Attachment{}, fmt.Errorf("network %s: %w", n.Name, err)
	}
	m[addr] = true
	return model.Attachment{Network: n.ID, Addr: netip.PrefixFrom(addr, prefix.Bits()).String(), MAC: ipam.MAC(addr).String()}, nil
}

func (b *addressBook) release(atts []model.Attachment) {
	for _, a := range atts {
		setAddr(b.used, a.Network, a.Addr, false)
	}
}

func pendingForAddress(err error, now time.Time) model.TaskStatus {
	return orchestrator.PendingStatus(err.Error(), now)
}
