// Package ipam hands out network subnets and task addresses. Its functions are pure
// and deterministic: the raft leader calls them while it builds a command, and every
// manager replaying the log must come to the same answer.
package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Swarm's default address pool: 10.0.0.0/8 cut into /24s, so that users coming from
// Docker find their networks where they expect them.
var (
	DefaultPool       = netip.MustParsePrefix("10.0.0.0/8")
	DefaultSubnetSize = 24
	// IngressSubnet is the ingress network's (the routing mesh's). Swarm uses
	// 10.0.0.0/24, the first subnet of its own default pool, which the first
	// network of an upgraded cluster may already hold; berth takes a /18 at the
	// start of the default pool's last /16 instead, and whoever assigns subnets
	// counts it as taken (cluster/store), so that no stack network can take it,
	// even before the ingress network exists. A /18, not the whole /16: every
	// node's ingress bridge routes the subnet, and a site's own services at the
	// top of 10.0.0.0/8 (resolvers at 10.255.255.x are common, as on the machines
	// berth is built on) must stay reachable from the nodes. Its 16,382
	// addresses hold a task half and a half for 5,000 nodes' endpoints.
	IngressSubnet = netip.MustParsePrefix("10.255.0.0/18")
)

var (
	// ErrInvalid reports an argument that cannot be used (a malformed prefix, a
	// subnet too small for a gateway and a task, a gateway outside its subnet).
	ErrInvalid = errors.New("invalid address configuration")
	// ErrPoolExhausted reports that every subnet of the requested size in the pool
	// overlaps a subnet in use.
	ErrPoolExhausted = errors.New("address pool exhausted")
	// ErrOverlap reports that a requested subnet overlaps another network's.
	ErrOverlap = errors.New("subnets overlap")
	// ErrSubnetFull reports that a subnet has no free task address left.
	ErrSubnetFull = errors.New("subnet full")
)

// minHostBits keeps room for the network address, the gateway, one task and, in
// IPv4, the broadcast address.
const minHostBits = 2

// AllocateSubnet returns the lowest prefix of length size inside pool that overlaps
// none of used. used holds every subnet already taken, those allocated from the pool
// and those that networks asked for themselves (which may lie anywhere, and be of any
// size); prefixes of the other address family are ignored.
func AllocateSubnet(pool netip.Prefix, size int, used []netip.Prefix) (netip.Prefix, error) {
	if !pool.IsValid() {
		return netip.Prefix{}, fmt.Errorf("%w: address pool %s is not a valid prefix", ErrInvalid, pool)
	}
	if pool != pool.Masked() {
		return netip.Prefix{}, fmt.Errorf("%w: address pool %s has host bits set (did you mean %s?)", ErrInvalid, pool, pool.Masked())
	}
	bitLen := pool.Addr().BitLen()
	if size < pool.Bits() || size > bitLen-minHostBits {
		return netip.Prefix{}, fmt.Errorf("%w: subnet size /%d does not fit address pool %s (want /%d to /%d)",
			ErrInvalid, size, pool, pool.Bits(), bitLen-minHostBits)
	}

	// Sorted by first address, the larger of two prefixes starting at the same
	// address first: a sweep then meets every prefix that can block a candidate
	// before the candidates move past it.
	taken := make([]netip.Prefix, 0, len(used))
	for _, p := range used {
		if p.IsValid() && p.Addr().Is4() == pool.Addr().Is4() {
			taken = append(taken, p.Masked())
		}
	}
	slices.SortFunc(taken, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})

	cand := netip.PrefixFrom(pool.Addr(), size)
	i := 0
	for pool.Contains(cand.Addr()) {
		for i < len(taken) && lastAddr(taken[i]).Less(cand.Addr()) {
			i++
		}
		if i == len(taken) || !taken[i].Overlaps(cand) {
			return cand, nil
		}
		// The blocker either contains the candidate (its end is aligned to a
		// coarser boundary) or lies inside it: resume after whichever ends last.
		end := lastAddr(cand)
		if e := lastAddr(taken[i]); end.Less(e) {
			end = e
		}
		next := end.Next()
		if !next.IsValid() {
			break
		}
		cand = netip.PrefixFrom(next, size)
	}
	return netip.Prefix{}, fmt.Errorf("%w: no /%d left in %s (%d subnets in use)", ErrPoolExhausted, size, pool, len(taken))
}

// Claim is a subnet held by a network, so that an overlap can be reported by name.
type Claim struct {
	Network string
	Subnet  netip.Prefix
}

// CheckSubnet validates a subnet that network asked for itself against the subnets
// other networks hold. The error names the network that holds an overlapping subnet.
func CheckSubnet(network string, subnet netip.Prefix, claims []Claim) error {
	if !subnet.IsValid() {
		return fmt.Errorf("%w: network %q: subnet %s is not a valid prefix", ErrInvalid, network, subnet)
	}
	if subnet != subnet.Masked() {
		return fmt.Errorf("%w: network %q: subnet %s has host bits set (did you mean %s?)", ErrInvalid, network, subnet, subnet.Masked())
	}
	if subnet.Addr().BitLen()-subnet.Bits() < minHostBits {
		return fmt.Errorf("%w: network %q: subnet %s has no room for a gateway and a task", ErrInvalid, network, subnet)
	}
	for _, c := range claims {
		if c.Network != network && c.Subnet.Overlaps(subnet) {
			return fmt.Errorf("%w: network %q asks for subnet %s, which overlaps %s of network %q",
				ErrOverlap, network, subnet, c.Subnet, c.Network)
		}
	}
	return nil
}

// Gateway returns the gateway of subnet: its first address after the network address.
func Gateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// AllocateAddr returns the lowest address of subnet that is not the network address,
// the gateway, the IPv4 broadcast address or taken. Task addresses come from the
// bottom of a subnet.
func AllocateAddr(subnet netip.Prefix, gateway netip.Addr, taken func(netip.Addr) bool) (netip.Addr, error) {
	first, last, err := hostRange(subnet, gateway)
	if err != nil {
		return netip.Addr{}, err
	}
	for a := first; a.IsValid() && !last.Less(a); a = a.Next() {
		if a != gateway && !taken(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fullError(subnet, gateway)
}

// AllocateReserved returns the highest address of subnet that is not the network
// address, the gateway, the IPv4 broadcast address or taken. Services' virtual IPs
// and nodes' endpoints come from the top of a subnet, tasks' addresses from the
// bottom: the two are chosen by different writers (the FSM at a stack write, the
// leader's reconciler in its plans), and starting at opposite ends keeps a plan in
// flight from meeting a VIP committed meanwhile until the subnet is nearly full.
func AllocateReserved(subnet netip.Prefix, gateway netip.Addr, taken func(netip.Addr) bool) (netip.Addr, error) {
	addrs, err := TopFree(subnet, gateway, taken, 1)
	if err != nil {
		return netip.Addr{}, err
	}
	return addrs[0], nil
}

// TopFree returns up to n of the highest addresses AllocateReserved could give,
// highest first: candidates to check against what taken cannot answer cheaply (the
// FSM checks them against every task's address in one pass). It fails only when
// there is none.
func TopFree(subnet netip.Prefix, gateway netip.Addr, taken func(netip.Addr) bool, n int) ([]netip.Addr, error) {
	first, last, err := hostRange(subnet, gateway)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for a := last; a.IsValid() && !a.Less(first) && len(out) < n; a = a.Prev() {
		if a != gateway && !taken(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fullError(subnet, gateway)
	}
	return out, nil
}

// hostRange validates subnet and gateway and returns the first and last addresses a
// host may have: not the network address, nor the IPv4 broadcast address.
func hostRange(subnet netip.Prefix, gateway netip.Addr) (first, last netip.Addr, err error) {
	if !subnet.IsValid() || subnet != subnet.Masked() {
		return first, last, fmt.Errorf("%w: subnet %s is not a network prefix", ErrInvalid, subnet)
	}
	if !subnet.Contains(gateway) {
		return first, last, fmt.Errorf("%w: gateway %s is outside subnet %s", ErrInvalid, gateway, subnet)
	}
	last = lastAddr(subnet)
	if subnet.Addr().Is4() {
		last = last.Prev()
	}
	return subnet.Addr().Next(), last, nil
}

func fullError(subnet netip.Prefix, gateway netip.Addr) error {
	return fmt.Errorf("%w: no free address in %s (gateway %s)", ErrSubnetFull, subnet, gateway)
}

// MAC returns the hardware address Docker derives from an IP address: 02:42 (a
// locally administered unicast prefix) followed by the address's last four bytes. A
// stable MAC per IP keeps neighbour caches valid when a task is replaced by one that
// reuses its address, and lets the overlay program neighbour entries from cluster
// state alone.
func MAC(addr netip.Addr) net.HardwareAddr {
	b := addr.As16()
	return net.HardwareAddr{0x02, 0x42, b[12], b[13], b[14], b[15]}
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		switch {
		case bits >= 8:
			bits -= 8
		case bits > 0:
			b[i] |= 0xff >> bits
			bits = 0
		default:
			b[i] = 0xff
		}
	}
}
