package netstack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/ipam"
)

const (
	// bridgePrefix marks berth's bridges. It differs from Docker's "br-" so that
	// the two can share a node, and berth's rules match only berth's bridges.
	bridgePrefix = "bb-"
	// vethPrefix starts the host end of every task veth.
	vethPrefix = "bv"
	// taskAliasPrefix starts the interface alias of a task veth's host end; the
	// task ID follows. Veth names are hashed, the alias is how a restarted agent
	// learns which task a leftover veth belonged to.
	taskAliasPrefix = "berth-task:"
)

// bridgeName derives the bridge's name from the network ID: the ID's first 12
// characters when they can name an interface (berth's IDs are base36), a hash
// otherwise. Interface names have at most 15 characters.
func bridgeName(networkID string) string {
	if len(networkID) >= 12 && isAlnum(networkID[:12]) {
		return bridgePrefix + networkID[:12]
	}
	sum := sha256.Sum256([]byte(networkID))
	return bridgePrefix + hex.EncodeToString(sum[:])[:12]
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// taskVethPrefix is the start of the host-end names of a task's veths: the task ID
// does not fit in 15 characters, 40 bits of its hash do.
func taskVethPrefix(taskID string) string {
	sum := sha256.Sum256([]byte(taskID))
	return vethPrefix + hex.EncodeToString(sum[:])[:10]
}

// isTaskVethName reports whether name has the shape of a task veth's host end.
func isTaskVethName(name string) bool {
	rest, ok := strings.CutPrefix(name, vethPrefix)
	if !ok || len(rest) < 11 {
		return false
	}
	for i, c := range rest {
		if !(c >= '0' && c <= '9' || i < 10 && c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// ensureBridge makes sure the network's bridge exists with its gateway address, up,
// and with its isolation and egress rules, and that it alone holds the network's
// subnet: it removes the berth bridges that overlap it (with their rules), and
// returns their names. It is the one place bridges are made: an overlay network's
// gets its VXLAN device, and both the overlay's MTU, once the node knows its
// underlay (u).
func (h *hostNS) ensureBridge(nw Network, u underlay) (link netlink.Link, removed []string, err error) {
	link, err = h.bridgeLink(nw)
	if err != nil {
		return nil, nil, err
	}
	gw := netip.PrefixFrom(nw.Gateway, nw.Subnet.Bits())
	if removed, err = h.claimSubnet(link, gw); err != nil {
		return nil, removed, fmt.Errorf("network %s: %w", nw, err)
	}
	if err := h.nl.AddrReplace(link, &netlink.Addr{IPNet: ipNet(gw)}); err != nil {
		return nil, removed, fmt.Errorf("network %s: set gateway %s on bridge %s: %w", nw, nw.Gateway, link.Attrs().Name, err)
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return nil, removed, fmt.Errorf("network %s: bring bridge %s up: %w", nw, link.Attrs().Name, err)
	}
	if err := h.syncRules(bridgeRules(link.Attrs().Name, nw)); err != nil {
		return nil, removed, fmt.Errorf("network %s: %w", nw, err)
	}
	if nw.VNI != 0 && u.known() {
		if err := h.ensureVXLAN(nw, link, u); err != nil {
			return nil, removed, fmt.Errorf("network %s: %w", nw, err)
		}
	}
	return link, removed, nil
}

// bridgeLink returns the network's bridge, made if it is not there.
func (h *hostNS) bridgeLink(nw Network) (netlink.Link, error) {
	name := bridgeName(nw.ID)
	link, err := h.nl.LinkByName(name)
	switch {
	case err == nil:
	case isLinkNotFound(err):
		la := netlink.NewLinkAttrs()
		la.Name = name
		// A fixed MAC keeps the gateway's address stable: a bridge without one
		// takes the lowest of its ports', which changes as tasks come and go and
		// leaves stale neighbour entries in the tasks.
		la.HardwareAddr = ipam.MAC(nw.Gateway)
		if err := h.nl.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return nil, fmt.Errorf("network %s: create bridge %s: %w", nw, name, err)
		}
		if link, err = h.nl.LinkByName(name); err != nil {
			return nil, fmt.Errorf("network %s: bridge %s: %w", nw, name, err)
		}
		// For whoever reads `ip link`; the kernel ignores an alias given at
		// creation.
		if err := h.nl.LinkSetAlias(link, "berth network "+nw.Name); err != nil {
			return nil, fmt.Errorf("network %s: bridge %s: set alias: %w", nw, name, err)
		}
		if err := enableForwarding(h.ns); err != nil {
			return nil, fmt.Errorf("network %s: %w", nw, err)
		}
	default:
		return nil, fmt.Errorf("network %s: bridge %s: %w", nw, name, err)
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("network %s: interface %s exists and is a %s, not a bridge", nw, name, link.Type())
	}
	return link, nil
}

// claimSubnet makes the bridge the only holder of gw's subnet among berth's
// interfaces. A network removed from the cluster can leave its bridge behind (its
// last task's teardown failed, its veths went before, an older berth kept bridges
// until the node left), and its subnet goes to the next network: with two bridges
// holding it the node has two routes for it and reaches the new network's tasks
// through the old, empty bridge, that is not at all. Live networks never overlap
// (the managers' address pool sees to that), so a berth bridge whose addresses all
// overlap is a stale one, and is removed with its rules even if a task not yet torn
// down is still on it. A network's subnet can change: the bridge's addresses of a
// former subnet go, here and on a bridge that has a current one too; a host-length
// address in the subnet (the node's own endpoint on an overlay) stays, the overlay
// keeps it as the view says.
func (h *hostNS) claimSubnet(br netlink.Link, gw netip.Prefix) (removed []string, err error) {
	family := netlink.FAMILY_V4
	if gw.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.nl.AddrList(nil, family) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	overlapping, others := map[int][]netlink.Addr{}, map[int]bool{}
	for _, a := range addrs {
		p, ok := netipPrefix(a.IPNet)
		switch {
		case !ok || p.Addr().IsLinkLocalUnicast():
		case a.LinkIndex == br.Attrs().Index:
			if p != gw && !(p.IsSingleIP() && gw.Masked().Contains(p.Addr())) {
				if err := h.nl.AddrDel(br, &a); err != nil {
					return nil, fmt.Errorf("remove address %s of a former subnet from bridge %s: %w", p, br.Attrs().Name, err)
				}
			}
		case p.Masked().Overlaps(gw.Masked()):
			overlapping[a.LinkIndex] = append(overlapping[a.LinkIndex], a)
		default:
			others[a.LinkIndex] = true
		}
	}
	for index, stale := range overlapping {
		l, err := h.nl.LinkByIndex(index)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("interface %d holding an address in %s: %w", index, gw.Masked(), err)
		}
		name := l.Attrs().Name
		switch {
		case l.Type() != "bridge" || !strings.HasPrefix(name, bridgePrefix):
			// Not berth's to change; the routes it holds are its owner's.
		case !others[index]:
			if err := h.removeBridge(l); err != nil {
				return removed, fmt.Errorf("remove stale bridge %s holding subnet %s: %w", name, gw.Masked(), err)
			}
			removed = append(removed, name)
		default:
			for _, a := range stale {
				if err := h.nl.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					return removed, fmt.Errorf("remove address %s of a former subnet from bridge %s: %w", a.IPNet, name, err)
				}
			}
		}
	}
	return removed, nil
}

// removeBridge removes a bridge, which takes its addresses and routes with it, its
// VXLAN device (which would hold its VNI otherwise) and its rules.
func (h *hostNS) removeBridge(br netlink.Link) error {
	if err := h.nl.LinkDel(br); err != nil && !isLinkNotFound(err) {
		return err
	}
	if err := h.removeVXLANOf(br.Attrs().Name); err != nil {
		return err
	}
	return h.deleteRules(bridgeOwner(br.Attrs().Name))
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), ok
}

// ensureVeth makes sure the task's i-th interface is a veth whose host end is a port
// of br and whose peer, eth<i> in the task's namespace, has the attachment's address
// and MAC and is up. A pair that is there but broken is made anew.
func ensureVeth(h *hostNS, t *taskNS, taskID string, i int, br netlink.Link, att Attachment) error {
	hostName := taskVethPrefix(taskID) + strconv.Itoa(i)
	peerName := "eth" + strconv.Itoa(i)
	where := fmt.Sprintf("network %s: %s (host end %s)", att.Network, peerName, hostName)
	// An overlay's bridge has the overlay's MTU once the node knows its
	// underlay: the task's path takes it (0 keeps the kernel's default).
	mtu := 0
	if att.Network.VNI != 0 {
		mtu = br.Attrs().MTU
	}

	hostEnd, err := linkOrNil(h.nl, hostName)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	peer, err := linkOrNil(t.nl, peerName)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if hostEnd == nil || peer == nil || !paired(hostEnd, peer) {
		if hostEnd != nil {
			if err := h.nl.LinkDel(hostEnd); err != nil && !isLinkNotFound(err) {
				return fmt.Errorf("%s: remove stale host end: %w", where, err)
			}
		}
		if peer, err = linkOrNil(t.nl, peerName); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if peer != nil {
			if err := t.nl.LinkDel(peer); err != nil && !isLinkNotFound(err) {
				return fmt.Errorf("%s: remove stale interface: %w", where, err)
			}
		}
		la := netlink.NewLinkAttrs()
		la.Name = hostName
		la.MasterIndex = br.Attrs().Index
		la.MTU = mtu
		veth := &netlink.Veth{
			LinkAttrs:        la,
			PeerName:         peerName,
			PeerHardwareAddr: att.MAC,
			// Made in the task's namespace directly, the peer never holds a
			// name in the host's, where eth0 would clash.
			PeerNamespace: netlink.NsFd(t.ns),
		}
		if err := h.nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("%s: create veth pair: %w", where, err)
		}
		if hostEnd, err = h.nl.LinkByName(hostName); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		// The kernel ignores an alias given at creation.
		if err := h.nl.LinkSetAlias(hostEnd, taskAliasPrefix+taskID); err != nil {
			return fmt.Errorf("%s: set alias: %w", where, err)
		}
		if peer, err = t.nl.LinkByName(peerName); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if mtu != 0 && (hostEnd.Attrs().MTU != mtu || peer.Attrs().MTU != mtu) {
		if err := t.nl.LinkSetMTU(peer, mtu); err != nil {
			return fmt.Errorf("%s: set MTU %d: %w", where, mtu, err)
		}
		if err := h.nl.LinkSetMTU(hostEnd, mtu); err != nil {
			return fmt.Errorf("%s: set MTU %d on host end: %w", where, mtu, err)
		}
	}
	if hostEnd.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.nl.LinkSetMasterByIndex(hostEnd, br.Attrs().Index); err != nil {
			return fmt.Errorf("%s: attach to bridge %s: %w", where, br.Attrs().Name, err)
		}
	}
	// With br_netfilter on (Docker needs it, so it usually is), a packet that a task
	// sends to its own published port is DNATed while still being bridged and must
	// leave by the port it came in on: the bridge drops that unless the port is in
	// hairpin mode.
	if err := h.nl.LinkSetHairpin(hostEnd, true); err != nil {
		return fmt.Errorf("%s: hairpin mode: %w", where, err)
	}
	if err := h.nl.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("%s: bring host end up: %w", where, err)
	}
	if !bytes.Equal(peer.Attrs().HardwareAddr, att.MAC) {
		// Not every driver changes the address of a running interface.
		if err := t.nl.LinkSetDown(peer); err != nil {
			return fmt.Errorf("%s: bring down to set MAC: %w", where, err)
		}
		if err := t.nl.LinkSetHardwareAddr(peer, att.MAC); err != nil {
			return fmt.Errorf("%s: set MAC %s: %w", where, att.MAC, err)
		}
	}
	if err := t.nl.AddrReplace(peer, &netlink.Addr{IPNet: ipNet(att.Addr)}); err != nil {
		return fmt.Errorf("%s: set address %s: %w", where, att.Addr, err)
	}
	if err := t.nl.LinkSetUp(peer); err != nil {
		return fmt.Errorf("%s: bring up: %w", where, err)
	}
	return nil
}

// paired reports whether two veth ends, seen from their own namespaces, are peers.
func paired(a, b netlink.Link) bool {
	return a.Type() == "veth" && b.Type() == "veth" &&
		a.Attrs().ParentIndex == b.Attrs().Index && b.Attrs().ParentIndex == a.Attrs().Index
}

func linkOrNil(h *netlink.Handle, name string) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil, nil
	}
	return link, err
}

func (t *taskNS) loopbackUp() error {
	lo, err := t.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := t.nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring loopback up: %w", err)
	}
	return nil
}

// ensureDefaultRoute routes the task's traffic through the gateway of its first
// attachment on a non-internal network other than ingress; a task only on internal
// networks gets no default route, which is what keeps it inside them. The ingress
// network is the default only of a task on nothing else: it carries the routing
// mesh's connections to the task, not the task's own. A task on it and on another
// network routes what it sends from its ingress address (its replies to the mesh's
// clients) through the ingress network still, as the mesh needs.
func (t *taskNS) ensureDefaultRoute(atts []Attachment) error {
	def, ingress := -1, -1
	for i, att := range atts {
		switch {
		case att.Network.Internal:
		case att.Network.Ingress:
			if ingress < 0 {
				ingress = i
			}
		case def < 0:
			def = i
		}
	}
	if def < 0 {
		def = ingress
	}
	if def < 0 {
		return nil
	}
	att := atts[def]
	name := "eth" + strconv.Itoa(def)
	link, err := t.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("default route: %s: %w", name, err)
	}
	gw := att.Network.Gateway
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       ipNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)),
		Gw:        gw.AsSlice(),
	}
	if gw.Is6() {
		route.Dst = ipNet(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
	}
	if err := t.nl.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s on %s (network %s): %w", gw, name, att.Network, err)
	}
	if ingress >= 0 && ingress != def {
		return t.ensureIngressReplies(ingress, atts[ingress])
	}
	return nil
}

// deleteTaskVeths removes the host ends of the task's veths, which takes their peers
// with them. Deleting them rather than waiting for the namespace to go keeps a
// replacement task from finding its name taken while the kernel cleans up. It
// reports whether a bridge they were on has no task veth left: the task was its
// network's last on the node.
func (h *hostNS) deleteTaskVeths(taskID string) (emptied bool, err error) {
	links, err := h.links()
	if err != nil {
		return false, fmt.Errorf("list interfaces: %w", err)
	}
	prefix := taskVethPrefix(taskID)
	masters := map[int]bool{}
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		// A crash between creating a veth and setting its alias leaves one
		// without: its name still tells.
		ours := a.Alias == taskAliasPrefix+taskID || a.Alias == "" && strings.HasPrefix(a.Name, prefix)
		if l.Type() != "veth" || !ours {
			continue
		}
		if err := h.nl.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("remove veth %s: %w", a.Name, err))
		}
		if a.MasterIndex != 0 {
			masters[a.MasterIndex] = true
		}
	}
	if err := errors.Join(errs...); err != nil || len(masters) == 0 {
		return false, err
	}
	// Listed again after the deletions: of two last tasks of a network torn down
	// at once, the later listing sees neither.
	if links, err = h.links(); err != nil {
		return false, fmt.Errorf("list interfaces: %w", err)
	}
	used := usedBridges(links)
	for index := range masters {
		if !used[index] {
			return true, nil
		}
	}
	return false, nil
}

// usedBridges are the interface indexes of the bridges that task veths are on.
func usedBridges(links []netlink.Link) map[int]bool {
	used := map[int]bool{}
	for _, l := range links {
		if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Alias, taskAliasPrefix) {
			used[l.Attrs().MasterIndex] = true
		}
	}
	return used
}

// pruneLinks removes berth's bridges that have no task veth and do not hold the
// node's own endpoint (a host-length address the overlay put there), their VXLAN
// devices, and the veths that lost their task before they got its ID as alias. It
// returns the interfaces it removed, and how many bridges it kept.
func (h *hostNS) pruneLinks() (removed []string, kept int, err error) {
	links, err := h.links()
	if err != nil {
		return nil, 0, fmt.Errorf("list interfaces: %w", err)
	}
	endpoints, err := h.nodeEndpointBridges()
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	remove := func(l netlink.Link) {
		if err := h.nl.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("remove %s %s: %w", l.Type(), l.Attrs().Name, err))
			return
		}
		removed = append(removed, l.Attrs().Name)
	}
	for _, l := range links {
		// Setup sets the alias under the lock Prune holds: an alias-less veth
		// is a crash's leftover.
		if a := l.Attrs(); l.Type() == "veth" && a.Alias == "" && isTaskVethName(a.Name) {
			remove(l)
		}
	}
	inUse := usedBridges(links)
	bridges := map[string]bool{}
	for _, l := range links {
		a := l.Attrs()
		if l.Type() != "bridge" || !strings.HasPrefix(a.Name, bridgePrefix) {
			continue
		}
		if inUse[a.Index] || endpoints[a.Index] {
			bridges[a.Name] = true
			continue
		}
		remove(l)
	}
	// After their bridges: a VXLAN device left without one (its bridge removed
	// above, or by a crash before) holds its VNI, and a new device with it would
	// not be made.
	for _, l := range links {
		if br, ok := bridgeOfVXLAN(l.Attrs().Name); ok && l.Type() == "vxlan" && !bridges[br] {
			remove(l)
		}
	}
	return removed, len(bridges), errors.Join(errs...)
}

// nodeEndpointBridges are the interface indexes of berth's interfaces that hold a
// host-length IPv4 address: the bridges the overlay gave the node's own endpoint.
func (h *hostNS) nodeEndpointBridges() (map[int]bool, error) {
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.nl.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := map[int]bool{}
	for _, a := range addrs {
		if p, ok := netipPrefix(a.IPNet); ok && p.IsSingleIP() {
			out[a.LinkIndex] = true
		}
	}
	return out, nil
}

// taskVethIDs adds to ids the tasks that have a veth on the node.
func (h *hostNS) taskVethIDs(ids map[string]bool) error {
	links, err := h.links()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		if id, ok := strings.CutPrefix(l.Attrs().Alias, taskAliasPrefix); ok && l.Type() == "veth" {
			ids[id] = true
		}
	}
	return nil
}

// links lists the host namespace's interfaces. A dump that interfaces changed under
// (tasks set up and torn down at once) is taken again: its result may miss some.
func (h *hostNS) links() ([]netlink.Link, error) { return dump(h.nl.LinkList) }

// dump takes a netlink dump again while what it lists changed under it.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for range 9 {
		got, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return got, err
		}
	}
	return list()
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
