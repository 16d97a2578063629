package command

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack/ipam"
	"github.com/berthd/berth/spec"
)

// IngressName is the name of the routing mesh's network: cluster-wide, outside any
// stack, created by the first stack write that publishes a port in ingress mode.
const IngressName = "ingress"

// addrSpace chooses the addresses of VIPs and node endpoints while the FSM applies
// one entry: the highest addresses of a network's subnet that no VIP, endpoint or
// task holds (until the task is terminal, the leader's rule). The tasks are what
// costs: a network's free addresses are found in one pass over them, which checks a
// few candidates from the top of the subnet, more when tasks hold those.
type addrSpace struct {
	tx   *state.WriteTxn
	nets map[string]*netSpace // network ID ->
}

// netSpace is what an entry knows of one network: free addresses it found, highest
// first, and those it gave.
type netSpace struct {
	free   []netip.Addr
	given  map[netip.Addr]bool
	window int // candidates the last pass checked
}

// firstWindow is how many candidates the first pass over the tasks checks: a
// stack write rarely adds more VIPs to one network.
const firstWindow = 16

func newAddrSpace(tx *state.WriteTxn) *addrSpace {
	return &addrSpace{tx: tx, nets: map[string]*netSpace{}}
}

// TaskRange is the part of a network's subnet its tasks' addresses come from: all
// of it, but the lower half of the ingress network's. Nodes' endpoints and services'
// VIPs on the ingress network come from the upper half, so that the FSM chooses them
// without reading the tasks: a node that joins a cluster of a million tasks must not
// cost a pass over them. In the default ingress subnet (a /18) the half left to tasks
// holds 8,190 of them, the other half 8,191 nodes and VIPs.
func TaskRange(n *model.Network, subnet netip.Prefix) netip.Prefix {
	if !n.Ingress || subnet.Bits() >= subnet.Addr().BitLen()-2 {
		return subnet
	}
	return netip.PrefixFrom(subnet.Addr(), subnet.Bits()+1)
}

// take reserves the highest free address of n and returns it with the subnet's
// length.
func (s *addrSpace) take(n *model.Network) (netip.Prefix, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: network %s has no subnet (%q)", state.ErrInvalid, n.Name, n.Subnet)
	}
	ns := s.nets[n.ID]
	if ns == nil {
		ns = &netSpace{given: map[netip.Addr]bool{}}
		s.nets[n.ID] = ns
	}
	if tasks := TaskRange(n, subnet); tasks != subnet {
		return s.takeOutside(n, subnet, tasks, ns)
	}
	for len(ns.free) == 0 {
		if err := s.refill(n, subnet, ns); err != nil {
			return netip.Prefix{}, err
		}
	}
	addr := ns.free[0]
	ns.free = ns.free[1:]
	ns.given[addr] = true
	return netip.PrefixFrom(addr, subnet.Bits()), nil
}

// takeOutside reserves the highest address of n outside the range its tasks' come
// from that no VIP, endpoint or address given in this entry holds: no task can.
func (s *addrSpace) takeOutside(n *model.Network, subnet, tasks netip.Prefix, ns *netSpace) (netip.Prefix, error) {
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		gw = ipam.Gateway(subnet)
	}
	held, err := s.tx.ReservedAddrs(n.ID)
	if err != nil {
		return netip.Prefix{}, err
	}
	addr, err := ipam.AllocateReserved(subnet, gw, func(a netip.Addr) bool { return tasks.Contains(a) || held[a] != "" || ns.given[a] })
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: network %s: %v", state.ErrConflict, n.Name, err)
	}
	ns.given[addr] = true
	return netip.PrefixFrom(addr, subnet.Bits()), nil
}

// refill finds free addresses of n: the window's highest addresses that no VIP,
// endpoint or address given in this entry holds, less those tasks hold. Each pass
// that finds none checks a window four times larger, up to the whole subnet.
func (s *addrSpace) refill(n *model.Network, subnet netip.Prefix, ns *netSpace) error {
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		gw = ipam.Gateway(subnet)
	}
	held, err := s.tx.ReservedAddrs(n.ID)
	if err != nil {
		return err
	}
	size := 1 << min(subnet.Addr().BitLen()-subnet.Bits(), 30)
	if ns.window >= size {
		return fmt.Errorf("%w: network %s: %v", state.ErrConflict, n.Name, fmt.Errorf("%w: no free address in %s (gateway %s)", ipam.ErrSubnetFull, subnet, gw))
	}
	ns.window = max(firstWindow, 4*ns.window)
	cands, err := ipam.TopFree(subnet, gw, func(a netip.Addr) bool { return held[a] != "" || ns.given[a] }, ns.window)
	if err != nil {
		return fmt.Errorf("%w: network %s: %v", state.ErrConflict, n.Name, err)
	}
	free := make(map[string]netip.Addr, len(cands))
	for _, a := range cands {
		free[a.String()] = a
	}
	tasks, err := s.tx.Tasks(nil)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if t.Status.State.Terminal() {
			continue
		}
		for _, a := range t.Networks {
			// The address alone, whatever the prefix length (a network's subnet may
			// have grown since the task got it): no parse, no allocation per task.
			if ip, _, _ := strings.Cut(a.Addr, "/"); a.Network == n.ID {
				delete(free, ip)
			}
		}
	}
	ns.free = ns.free[:0]
	for _, a := range cands {
		if _, ok := free[a.String()]; ok {
			ns.free = append(ns.free, a)
		}
	}
	return nil
}

// ServiceNetworks are the network rows a service's tasks attach to: its own networks
// in the spec's order (the first is the task's default route), then the ingress
// network when it publishes a port in ingress mode, last, so that the task's default
// route stays on its own networks. stack is the spec of the service's stack, which
// defines the networks the service names.
func ServiceNetworks(tx *state.ReadTxn, stack *spec.Stack, svc *spec.Service) ([]*model.Network, error) {
	var out []*model.Network
	for _, sn := range svc.Networks {
		n := stack.Networks[sn.Name]
		if n == nil {
			return nil, fmt.Errorf("%w: service %s: network %s is not defined by stack %s", state.ErrNotFound, svc.Name, sn.Name, stack.Name)
		}
		row, err := tx.NetworkByName(nil, n.Name)
		if err != nil {
			return nil, fmt.Errorf("service %s: network %s: %w", svc.Name, n.Name, err)
		}
		out = append(out, row)
	}
	if svc.PublishesIngress() {
		row, err := IngressNetwork(tx)
		if err != nil {
			return nil, fmt.Errorf("service %s publishes a port in ingress mode: %w", svc.Name, err)
		}
		out = append(out, row)
	}
	return out, nil
}

// IngressNetwork returns the ingress network's row, or an error wrapping
// state.ErrNotFound when no stack has published a port in ingress mode yet.
func IngressNetwork(tx *state.ReadTxn) (*model.Network, error) {
	row, err := tx.NetworkByName(nil, IngressName)
	if err != nil {
		return nil, fmt.Errorf("ingress network: %w", err)
	}
	if !row.Ingress {
		return nil, fmt.Errorf("%w: network %q is not the ingress network", state.ErrConflict, IngressName)
	}
	return row, nil
}

// serviceVIPs returns the VIPs a service must have on nets: one per network when it
// is reached at virtual IPs, none for dnsrr. A VIP the service holds on a network it
// stays on is kept; a new network gets the highest free address of its subnet.
func serviceVIPs(space *addrSpace, cur []model.VIP, s *spec.Service, nets []*model.Network) ([]model.VIP, error) {
	if !s.Deploy.VIP() {
		return nil, nil
	}
	var out []model.VIP
	for _, n := range nets {
		if i := slices.IndexFunc(cur, func(v model.VIP) bool { return v.Network == n.ID }); i >= 0 {
			out = append(out, cur[i])
			continue
		}
		addr, err := space.take(n)
		if err != nil {
			return nil, fmt.Errorf("service %s: virtual IP: %w", s.Name, err)
		}
		out = append(out, model.VIP{Network: n.ID, Addr: addr.String()})
	}
	return out, nil
}

// ServiceEndpoints gives services the VIPs their spec asks for, without a new spec
// version (their tasks do not change): the leader proposes it for the services that
// lack some, those an older build wrote and those a rollback moved to a network
// (rollbacks allocate nothing, see rolledBack).
type ServiceEndpoints struct {
	IDs []string `json:"ids"`
}

// applyServiceEndpoints skips the services that are gone, and those whose networks
// cannot be had (the stack no longer defines one, a subnet is full): failing would
// fail the others with them, and the next write of their stack says what is wrong.
func applyServiceEndpoints(tx *state.WriteTxn, c *ServiceEndpoints) error {
	space := newAddrSpace(tx)
	for _, id := range c.IDs {
		svc, err := tx.Service(nil, id)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if svc.Spec.PublishesIngress() {
			if err := ensureIngress(tx, space, svc.Stack); err != nil {
				return fmt.Errorf("service %s: %w", svc.Name, err)
			}
		}
		nets, err := networksOf(tx, svc)
		if err != nil {
			continue
		}
		vips, err := serviceVIPs(space, svc.Endpoint.VIPs, &svc.Spec, nets)
		if err != nil || slices.Equal(vips, svc.Endpoint.VIPs) {
			continue
		}
		next := svc.Copy()
		next.Endpoint.VIPs = vips
		if err := tx.UpsertService(next); err != nil {
			return err
		}
	}
	return nil
}

// networksOf returns the networks of svc under its current spec, read against its
// stack's row: for the writes outside a stack deploy.
func networksOf(tx *state.WriteTxn, svc *model.Service) ([]*model.Network, error) {
	sp, err := ServiceStack(&tx.ReadTxn, svc, &svc.Spec)
	if err != nil {
		return nil, err
	}
	return ServiceNetworks(&tx.ReadTxn, sp, &svc.Spec)
}

// ensureIngress creates the ingress network when a stack first needs it, with an
// endpoint for every node. Its ID is derived from the cluster's, not proposed: the
// proposer of a stack deploy cannot know whether the entry will create it.
func ensureIngress(tx *state.WriteTxn, space *addrSpace, stack string) error {
	_, err := IngressNetwork(&tx.ReadTxn)
	if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	clusterID := ""
	if c, err := tx.Cluster(nil); err == nil {
		clusterID = c.ID
	}
	sum := sha256.Sum256([]byte("berth ingress network of cluster " + clusterID))
	row := &model.Network{ID: hex.EncodeToString(sum[:])[:model.IDLength], Name: IngressName, Driver: "overlay",
		Ingress: true, Subnet: ipam.IngressSubnet.String()}
	if row.VNI, err = freeVNI(tx); err != nil {
		return err
	}
	if err := assignSubnet(tx, stack, row, true); err != nil {
		return fmt.Errorf("the ingress network the stack's published ports need: %w", err)
	}
	if err := tx.UpsertNetwork(row); err != nil {
		return err
	}
	nodes, err := tx.Nodes(nil)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		next := n.Copy()
		if err := nodeEndpoint(space, next, row); err != nil {
			return err
		}
		if err := tx.UpsertNode(next); err != nil {
			return err
		}
	}
	return nil
}

// nodeEndpoint gives n an address on the ingress network unless it has one: the
// routing mesh's source address on that node.
func nodeEndpoint(space *addrSpace, n *model.Node, ingress *model.Network) error {
	if slices.ContainsFunc(n.Networks, func(a model.Attachment) bool { return a.Network == ingress.ID }) {
		return nil
	}
	addr, err := space.take(ingress)
	if err != nil {
		return fmt.Errorf("node %s: ingress endpoint: %w", n.Hostname, err)
	}
	n.Networks = append(n.Networks, model.Attachment{Network: ingress.ID, Addr: addr.String(), MAC: ipam.MAC(addr.Addr()).String()})
	return nil
}

// applyNodeUpsert writes a node row. Its network endpoints are the FSM's, whatever
// the proposer sent: a node keeps the ones it has, and gets one on the ingress
// network when that exists.
func applyNodeUpsert(tx *state.WriteTxn, n *model.Node) error {
	n.Networks = nil
	if cur, err := tx.Node(nil, n.ID); err == nil {
		n.Networks = slices.Clone(cur.Networks)
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	ingress, err := IngressNetwork(&tx.ReadTxn)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return err
	default:
		if err := nodeEndpoint(newAddrSpace(tx), n, ingress); err != nil {
			return err
		}
	}
	return tx.UpsertNode(n)
}
