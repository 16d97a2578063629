package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/berthd/berth/cluster/state"
	"github.com/berthd/berth/netstack/ipam"
	"github.com/berthd/berth/spec"
)

// IngressName is the name of the routing mesh's network: cluster-wide, outside any
// stack, created by the first stack write that publishes a port in ingress mode.
const IngressName = "ingress"

// addrSpace is the addresses in use on each network, as the FSM sees them while it
// applies one entry: tasks' attachments (until the task is terminal, the leader's
// rule), services' VIPs and nodes' endpoints. It is read on the entry's first
// allocation only: most entries allocate nothing, and reading every task is what
// an allocation costs.
type addrSpace struct {
	tx   *state.WriteTxn
	used map[string]map[netip.Addr]bool // network ID -> addresses; nil until read
}

func newAddrSpace(tx *state.WriteTxn) *addrSpace { return &addrSpace{tx: tx} }

func (s *addrSpace) read() error {
	if s.used != nil {
		return nil
	}
	s.used = map[string]map[netip.Addr]bool{}
	tasks, err := s.tx.Tasks(nil)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if !t.Status.State.Terminal() {
			s.mark(t.Networks)
		}
	}
	svcs, err := s.tx.Services(nil)
	if err != nil {
		return err
	}
	for _, svc := range svcs {
		for _, v := range svc.Endpoint.VIPs {
			s.markAddr(v.Network, v.Addr)
		}
	}
	nodes, err := s.tx.Nodes(nil)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		s.mark(n.Networks)
	}
	return nil
}

func (s *addrSpace) mark(atts []state.Attachment) {
	for _, a := range atts {
		s.markAddr(a.Network, a.Addr)
	}
}

func (s *addrSpace) markAddr(network, cidr string) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return
	}
	m := s.used[network]
	if m == nil {
		m = map[netip.Addr]bool{}
		s.used[network] = m
	}
	m[p.Addr()] = true
}

// take reserves the highest free address of n (ipam.AllocateReserved) and returns
// it with the subnet's length.
func (s *addrSpace) take(n *state.Network) (netip.Prefix, error) {
	if err := s.read(); err != nil {
		return netip.Prefix{}, err
	}
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: network %s has no subnet (%q)", state.ErrInvalid, n.Name, n.Subnet)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		gw = ipam.Gateway(subnet)
	}
	used := s.used[n.ID]
	addr, err := ipam.AllocateReserved(subnet, gw, func(a netip.Addr) bool { return used[a] })
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: network %s: %v", state.ErrConflict, n.Name, err)
	}
	if used == nil {
		used = map[netip.Addr]bool{}
		s.used[n.ID] = used
	}
	used[addr] = true
	return netip.PrefixFrom(addr, subnet.Bits()), nil
}

// ServiceNetworks are the network rows a service's tasks attach to: its own networks
// in the spec's order (the first is the task's default route), then the ingress
// network when it publishes a port in ingress mode, last, so that the task's default
// route stays on its own networks. stack is the spec of the service's stack, which
// defines the networks the service names.
func ServiceNetworks(tx *state.ReadTxn, stack *spec.Stack, svc *spec.Service) ([]*state.Network, error) {
	var out []*state.Network
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
func IngressNetwork(tx *state.ReadTxn) (*state.Network, error) {
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
func serviceVIPs(space *addrSpace, cur []state.VIP, s *spec.Service, nets []*state.Network) ([]state.VIP, error) {
	if !s.Deploy.VIP() {
		return nil, nil
	}
	var out []state.VIP
	for _, n := range nets {
		if i := slices.IndexFunc(cur, func(v state.VIP) bool { return v.Network == n.ID }); i >= 0 {
			out = append(out, cur[i])
			continue
		}
		addr, err := space.take(n)
		if err != nil {
			return nil, fmt.Errorf("service %s: virtual IP: %w", s.Name, err)
		}
		out = append(out, state.VIP{Network: n.ID, Addr: addr.String()})
	}
	return out, nil
}

// endpointOf returns the VIPs svc must have under its current spec, read against the
// stack row; it is for the writes that change a service's spec outside a stack
// deploy (rollbacks).
func endpointOf(tx *state.WriteTxn, space *addrSpace, svc *state.Service) ([]state.VIP, error) {
	stack, err := tx.Stack(nil, svc.Stack)
	if err != nil || stack.Spec == nil {
		return nil, fmt.Errorf("service %s: stack %s: %w", svc.Name, svc.Stack, err)
	}
	nets, err := ServiceNetworks(&tx.ReadTxn, stack.Spec, &svc.Spec)
	if err != nil {
		return nil, err
	}
	return serviceVIPs(space, svc.Endpoint.VIPs, &svc.Spec, nets)
}

// ensureIngress creates the ingress network when a stack first needs it, with an
// endpoint for every node. Its ID is derived from the cluster's, not proposed: the
// proposer of a stack deploy cannot know whether the entry will create it.
func ensureIngress(tx *state.WriteTxn, space *addrSpace) error {
	_, err := IngressNetwork(&tx.ReadTxn)
	if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	clusterID := ""
	if c, err := tx.Cluster(nil); err == nil {
		clusterID = c.ID
	}
	sum := sha256.Sum256([]byte("berth ingress network of cluster " + clusterID))
	row := &state.Network{ID: hex.EncodeToString(sum[:])[:state.IDLength], Name: IngressName, Driver: "overlay",
		Ingress: true, Subnet: ipam.IngressSubnet.String()}
	if row.VNI, err = freeVNI(tx); err != nil {
		return err
	}
	if err := assignSubnet(tx, "", row); err != nil {
		return fmt.Errorf("ingress network: %w", err)
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
func nodeEndpoint(space *addrSpace, n *state.Node, ingress *state.Network) error {
	if slices.ContainsFunc(n.Networks, func(a state.Attachment) bool { return a.Network == ingress.ID }) {
		return nil
	}
	addr, err := space.take(ingress)
	if err != nil {
		return fmt.Errorf("node %s: ingress endpoint: %w", n.Hostname, err)
	}
	n.Networks = append(n.Networks, state.Attachment{Network: ingress.ID, Addr: addr.String(), MAC: ipam.MAC(addr.Addr()).String()})
	return nil
}

// applyNodeUpsert writes a node row. Its network endpoints are the FSM's, whatever
// the proposer sent: a node keeps the ones it has, and gets one on the ingress
// network when that exists.
func applyNodeUpsert(tx *state.WriteTxn, n *state.Node) error {
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
