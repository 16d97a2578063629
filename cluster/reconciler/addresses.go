package reconciler

import (
	"fmt"
	"net/netip"

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
	if !holds(t) {
		return
	}
	for _, a := range t.Networks {
		if p, err := netip.ParsePrefix(a.Addr); err == nil {
			delete(b.used[a.Network], p.Addr())
		}
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

// assign gives the tasks a plan creates their addresses on nets.
func (b *addressBook) assign(plan *orchestrator.Plan, nets []*state.Network) error {
	type subnet struct {
		id     string
		prefix netip.Prefix
		gw     netip.Addr
	}
	var subnets []subnet
	for _, n := range nets {
		p, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return fmt.Errorf("network %s has no subnet yet (%q)", n.Name, n.Subnet)
		}
		gw, err := netip.ParseAddr(n.Gateway)
		if err != nil {
			gw = ipam.Gateway(p)
		}
		subnets = append(subnets, subnet{n.ID, p, gw})
	}
	for _, t := range plan.Create {
		if len(t.Networks) > 0 {
			continue
		}
		for _, s := range subnets {
			m := b.used[s.id]
			if m == nil {
				m = map[netip.Addr]bool{}
				b.used[s.id] = m
			}
			addr, err := ipam.AllocateAddr(s.prefix, s.gw, m)
			if err != nil {
				return fmt.Errorf("network %s: %w", s.prefix, err)
			}
			m[addr] = true
			t.Networks = append(t.Networks, state.Attachment{Network: s.id,
				Addr: netip.PrefixFrom(addr, s.prefix.Bits()).String(), MAC: ipam.MAC(addr).String()})
		}
	}
	return nil
}
