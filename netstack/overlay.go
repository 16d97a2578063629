package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/ipam"
)

// The overlay joins a network's bridges on every node into one Ethernet segment:
// each bridge gets a VXLAN device (the network's VNI, sourced from the node's
// underlay address), and Apply programs on it, for every endpoint on another node,
// a static forwarding entry (MAC -> that node) and a permanent neighbour entry
// (address -> MAC) that the device's proxy ARP answers from. Nothing is learned,
// flooded or multicast: what the cluster state does not name does not get through.
//
// The kernel holds all of it, so a restarted daemon finds it again: Apply diffs the
// view against the kernel's entries (two dumps per Apply) and writes only what
// changed.

const (
	// vxlanPrefix starts the name of a network's VXLAN device; the rest is the
	// rest of its bridge's name.
	vxlanPrefix = "bx-"
	// defaultVXLANPort is the IANA port of VXLAN.
	defaultVXLANPort = 4789
	// vxlanOverhead is what VXLAN over IPv4 adds to a frame: outer IPv4 (20),
	// UDP (8), VXLAN (8) and inner Ethernet (14) headers.
	vxlanOverhead = 50
)

// vxlanName is the name of the network's VXLAN device.
func vxlanName(networkID string) string { return vxlanOfBridge(bridgeName(networkID)) }

// vxlanOfBridge is the name of the VXLAN device of the named bridge.
func vxlanOfBridge(bridge string) string {
	return vxlanPrefix + strings.TrimPrefix(bridge, bridgePrefix)
}

// bridgeOfVXLAN is the name of the bridge a VXLAN device of berth's belongs to.
func bridgeOfVXLAN(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, vxlanPrefix)
	return bridgePrefix + rest, ok
}

// underlay is what a node's overlay devices derive from its underlay, as the last
// Apply found it. The zero value means no Apply told it yet: bridges are made
// without their VXLAN devices until one does.
type underlay struct {
	addr netip.Addr
	port uint16
	// mtu is the overlay's MTU: the underlay interface's, less vxlanOverhead.
	mtu int
}

func (u underlay) known() bool { return u.addr.IsValid() }

// overlayNet is what the view asks of one overlay network on this node.
type overlayNet struct {
	network Network
	// node is the node's own endpoint on the network (the ingress network's
	// SNAT source), invalid when it has none; nodeMAC its hardware address.
	node    netip.Addr
	nodeMAC net.HardwareAddr
	// fdb maps the MAC (as text) of every endpoint on another node to that
	// node's underlay address; neigh maps their addresses to their MACs.
	fdb   map[string]netip.Addr
	neigh map[netip.Addr]net.HardwareAddr
}

// overlayPlan is the view's overlay share: its networks by bridge name.
type overlayPlan struct {
	underlay netip.Addr
	port     uint16
	nets     map[string]*overlayNet
}

// planOverlay extracts from the view what the overlay programs on this node.
func planOverlay(v View) overlayPlan {
	p := overlayPlan{underlay: v.Underlay, port: v.VXLANPort, nets: map[string]*overlayNet{}}
	if p.port == 0 {
		p.port = defaultVXLANPort
	}
	byID := map[string]*overlayNet{}
	for _, nw := range v.Networks {
		if nw.VNI == 0 {
			continue
		}
		on := &overlayNet{network: nw, fdb: map[string]netip.Addr{}, neigh: map[netip.Addr]net.HardwareAddr{}}
		byID[nw.ID] = on
		p.nets[bridgeName(nw.ID)] = on
	}
	for _, e := range v.Endpoints {
		on := byID[e.Network]
		if on == nil {
			continue
		}
		mac := e.MAC
		if mac == nil {
			mac = ipam.MAC(e.Addr)
		}
		switch {
		case e.Node != v.Underlay:
			on.fdb[mac.String()] = e.Node
			on.neigh[e.Addr] = mac
		case e.TaskID == "":
			on.node, on.nodeMAC = e.Addr, mac
		}
	}
	return p
}

// bridgeMAC is the hardware address the network's bridge should have: the node's
// endpoint's when it has one (remote nodes' entries for it lead there, and what
// the node sends on the overlay must not carry the gateway's MAC, which is the same
// on every node), else the gateway's.
func (on *overlayNet) bridgeMAC() net.HardwareAddr {
	if on.node.IsValid() {
		return on.nodeMAC
	}
	return ipam.MAC(on.network.Gateway)
}

// overlayStep is Apply's overlay concern.
func (n *Netstack) overlayStep() applyStep {
	return applyStep{name: "overlay", apply: n.applyOverlay}
}

func (n *Netstack) applyOverlay(ctx context.Context, v View) error {
	plan := planOverlay(v)
	if len(plan.nets) > 0 && !plan.underlay.Is4() {
		return fmt.Errorf("%w: the view has overlay networks but no IPv4 underlay address (%s)", ErrInvalid, plan.underlay)
	}
	prune, err := n.applyOverlayShared(plan)
	if prune {
		// A bridge kept only for the node's endpoint lost it: Prune removes it
		// with every Setup shut out, as Teardown does with a last task's bridge.
		err = errors.Join(err, n.Prune(ctx))
	}
	return err
}

// applyOverlayShared programs the plan with Setups and Teardowns running (Prune
// shut out), and reports whether a bridge may have lost its last reason to be.
func (n *Netstack) applyOverlayShared(plan overlayPlan) (prune bool, err error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	host, err := openHost(n.hostNS)
	if err != nil {
		return false, err
	}
	defer host.close()
	n.sharedMu.Lock()
	fixes, prune, err := n.syncOverlay(host, plan)
	n.sharedMu.Unlock()
	// Under the tasks' own locks, which Setup takes before sharedMu.
	for _, f := range fixes {
		err = errors.Join(err, n.fixTaskMTU(host, f))
	}
	return prune, err
}

// syncOverlay brings the node's overlay devices, addresses and entries to the plan;
// it returns the task veths whose MTU is not the overlay's. Call it with sharedMu.
func (n *Netstack) syncOverlay(host *hostNS, plan overlayPlan) (fixes []mtuFix, prune bool, err error) {
	k, err := readKernel(host)
	if err != nil {
		return nil, false, err
	}
	if len(plan.nets) > 0 {
		u, err := k.underlay(plan)
		if err != nil {
			return nil, false, err
		}
		if u != n.overlay {
			// Bridges checked before have VXLAN devices of the old underlay,
			// or none.
			clear(n.bridges)
			n.overlay = u
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(plan.nets)) {
		on := plan.nets[name]
		if k.links[name] == nil && !on.node.IsValid() {
			continue // no task of the network here, and no endpoint of the node
		}
		if err := n.syncOverlayNet(host, k, on); err != nil {
			// Checked again next time, not trusted: someone may have removed
			// its VXLAN device.
			delete(n.bridges, on.network.ID)
			errs = append(errs, fmt.Errorf("network %s: %w", on.network, err))
		}
	}
	errs = append(errs, k.dropStale(host, plan))
	// Interfaces and addresses only: what the MTUs and Prune look at.
	if k, err = readLinks(host); err != nil {
		return nil, false, errors.Join(append(errs, err)...)
	}
	return k.mtuFixes(plan, n.overlay.mtu), k.prunable(), errors.Join(errs...)
}

// syncOverlayNet makes sure the network's bridge and VXLAN device are there, the
// node's endpoint is on the bridge, and the device's entries are the plan's.
func (n *Netstack) syncOverlayNet(host *hostNS, k *kernelState, on *overlayNet) error {
	br, _, err := n.bridge(host, on.network)
	if err != nil {
		return err
	}
	if err := k.syncNodeEndpoint(host, br, on); err != nil {
		return err
	}
	vx, err := host.nl.LinkByName(vxlanName(on.network.ID))
	if err != nil {
		return fmt.Errorf("VXLAN device: %w", err)
	}
	return k.syncEntries(host, vx, on)
}

// kernelState is what Apply reads of the host namespace: interfaces, IPv4
// addresses, forwarding and neighbour entries, by interface index.
type kernelState struct {
	links  map[string]netlink.Link
	addrs  map[int][]netip.Prefix
	fdb    map[int][]netlink.Neigh
	neighs map[int][]netlink.Neigh
}

func readKernel(host *hostNS) (*kernelState, error) {
	k, err := readLinks(host)
	if err != nil {
		return nil, err
	}
	fdb, err := dump(func() ([]netlink.Neigh, error) { return host.nl.NeighList(0, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("list forwarding entries: %w", err)
	}
	for _, e := range fdb {
		// The VXLAN devices' own entries, not the bridges' about their ports.
		if e.Flags&netlink.NTF_SELF != 0 && e.Flags&netlink.NTF_MASTER == 0 {
			k.fdb[e.LinkIndex] = append(k.fdb[e.LinkIndex], e)
		}
	}
	neighs, err := dump(func() ([]netlink.Neigh, error) { return host.nl.NeighList(0, unix.AF_INET) })
	if err != nil {
		return nil, fmt.Errorf("list neighbour entries: %w", err)
	}
	for _, e := range neighs {
		k.neighs[e.LinkIndex] = append(k.neighs[e.LinkIndex], e)
	}
	return k, nil
}

// readLinks reads the host namespace's interfaces and IPv4 addresses.
func readLinks(host *hostNS) (*kernelState, error) {
	k := &kernelState{links: map[string]netlink.Link{}, addrs: map[int][]netip.Prefix{}, fdb: map[int][]netlink.Neigh{}, neighs: map[int][]netlink.Neigh{}}
	links, err := host.links()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		k.links[l.Attrs().Name] = l
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return host.nl.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := netipPrefix(a.IPNet); ok {
			k.addrs[a.LinkIndex] = append(k.addrs[a.LinkIndex], p)
		}
	}
	return k, nil
}

// underlay finds the interface holding the plan's underlay address.
func (k *kernelState) underlay(plan overlayPlan) (underlay, error) {
	for _, l := range k.links {
		for _, p := range k.addrs[l.Attrs().Index] {
			if p.Addr() == plan.underlay {
				return underlay{addr: plan.underlay, port: plan.port, mtu: l.Attrs().MTU - vxlanOverhead}, nil
			}
		}
	}
	return underlay{}, fmt.Errorf("underlay address %s is on no interface of the node's network namespace", plan.underlay)
}

// nodeAddrs are the host-length addresses on a bridge: node endpoints (the gateway
// has the subnet's length).
func (k *kernelState) nodeAddrs(br netlink.Link) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range k.addrs[br.Attrs().Index] {
		if p.IsSingleIP() {
			out = append(out, p)
		}
	}
	return out
}

// syncNodeEndpoint puts the node's endpoint (if any) on the bridge as a /32, and no
// other, and gives the bridge the MAC its endpoints are reached at.
func (k *kernelState) syncNodeEndpoint(host *hostNS, br netlink.Link, on *overlayNet) error {
	want := netip.PrefixFrom(on.node, on.node.BitLen())
	have := false
	for _, p := range k.nodeAddrs(br) {
		if p == want {
			have = true
			continue
		}
		if err := host.nl.AddrDel(br, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove former node address %s from bridge %s: %w", p, br.Attrs().Name, err)
		}
	}
	if on.node.IsValid() && !have {
		if err := host.nl.AddrAdd(br, &netlink.Addr{IPNet: ipNet(want)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add node address %s to bridge %s: %w", want, br.Attrs().Name, err)
		}
	}
	if mac := on.bridgeMAC(); !bytes.Equal(br.Attrs().HardwareAddr, mac) {
		if err := host.setBridgeMAC(br, mac); err != nil {
			return err
		}
	}
	return nil
}

// setBridgeMAC changes a bridge's MAC, and has the kernel announce it (gratuitous
// ARP) so that the tasks behind it do not keep sending to the old one.
func (h *hostNS) setBridgeMAC(br netlink.Link, mac net.HardwareAddr) error {
	name := br.Attrs().Name
	if err := h.sysctl("/proc/sys/net/ipv4/conf/"+name+"/arp_notify", "1"); err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := h.nl.LinkSetHardwareAddr(br, mac); err != nil {
		return fmt.Errorf("set MAC %s on bridge %s: %w", mac, name, err)
	}
	br.Attrs().HardwareAddr = mac
	return nil
}

// syncEntries makes the VXLAN device's forwarding and neighbour entries the plan's:
// it adds or replaces what differs and deletes what the plan does not name.
func (k *kernelState) syncEntries(host *hostNS, vx netlink.Link, on *overlayNet) error {
	index := vx.Attrs().Index
	var errs []error
	fdb := maps.Clone(on.fdb)
	for _, e := range k.fdb[index] {
		dst, ok := netip.AddrFromSlice(e.IP)
		if want, keep := fdb[e.HardwareAddr.String()]; keep && ok && want == dst.Unmap() && e.State&netlink.NUD_PERMANENT != 0 {
			delete(fdb, e.HardwareAddr.String())
			continue
		}
		errs = append(errs, ignoreGone(host.nl.NeighDel(&e)))
	}
	for _, mac := range slices.Sorted(maps.Keys(fdb)) {
		hw, _ := net.ParseMAC(mac)
		errs = append(errs, host.nl.NeighAppend(fdbEntry(index, hw, fdb[mac])))
	}
	neigh := maps.Clone(on.neigh)
	for _, e := range k.neighs[index] {
		addr, ok := netip.AddrFromSlice(e.IP)
		if want, keep := neigh[addr.Unmap()]; keep && ok && bytes.Equal(want, e.HardwareAddr) && e.State == netlink.NUD_PERMANENT {
			delete(neigh, addr.Unmap())
			continue
		}
		errs = append(errs, ignoreGone(host.nl.NeighDel(&e)))
	}
	for addr, mac := range neigh {
		errs = append(errs, host.nl.NeighSet(&netlink.Neigh{LinkIndex: index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: addr.AsSlice(), HardwareAddr: mac}))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("VXLAN device %s: entries: %w", vx.Attrs().Name, err)
	}
	return nil
}

// fdbEntry is a VXLAN device's static forwarding entry: frames to mac go to the
// node at dst.
func fdbEntry(index int, mac net.HardwareAddr, dst netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT, IP: dst.AsSlice(), HardwareAddr: mac}
}

// ignoreGone drops the error of deleting what is already gone.
func ignoreGone(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// dropStale empties the VXLAN devices of networks the view no longer has, and takes
// the node's endpoints off their bridges.
func (k *kernelState) dropStale(host *hostNS, plan overlayPlan) error {
	var errs []error
	for name, l := range k.links {
		if br, ok := bridgeOfVXLAN(name); ok && l.Type() == "vxlan" && plan.nets[br] == nil {
			errs = append(errs, k.syncEntries(host, l, &overlayNet{}))
		}
		if !strings.HasPrefix(name, bridgePrefix) || l.Type() != "bridge" || plan.nets[name] != nil {
			continue
		}
		for _, p := range k.nodeAddrs(l) {
			if err := host.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove node address %s from bridge %s: %w", p, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// prunable reports whether a berth bridge has neither a task nor the node's
// endpoint: Prune removes it (a Setup making it waits for Prune, and attaches).
func (k *kernelState) prunable() bool {
	links := slices.Collect(maps.Values(k.links))
	used := usedBridges(links)
	for name, l := range k.links {
		if strings.HasPrefix(name, bridgePrefix) && l.Type() == "bridge" && !used[l.Attrs().Index] && len(k.nodeAddrs(l)) == 0 {
			return true
		}
	}
	return false
}

// mtuFix is a task veth whose MTU is not its overlay's.
type mtuFix struct {
	taskID, hostEnd, peer string
	mtu                   int
}

// mtuFixes lists the task veths on the plan's bridges whose host end's MTU is not
// the overlay's (mtu; 0 when no Apply found it yet): tasks set up before the node
// knew its underlay.
func (k *kernelState) mtuFixes(plan overlayPlan, mtu int) []mtuFix {
	if mtu <= 0 {
		return nil
	}
	bridges := map[int]bool{}
	for name := range plan.nets {
		if br := k.links[name]; br != nil {
			bridges[br.Attrs().Index] = true
		}
	}
	var fixes []mtuFix
	for name, l := range k.links {
		a := l.Attrs()
		taskID, ok := strings.CutPrefix(a.Alias, taskAliasPrefix)
		if !ok || l.Type() != "veth" || !bridges[a.MasterIndex] || a.MTU == mtu {
			continue
		}
		i, ok := strings.CutPrefix(name, taskVethPrefix(taskID))
		if !ok {
			continue
		}
		fixes = append(fixes, mtuFix{taskID: taskID, hostEnd: name, peer: "eth" + i, mtu: mtu})
	}
	return fixes
}

// fixTaskMTU sets a task veth's MTU, the task's end first: a host end that is
// right says the pair is. A task torn down since its veth was listed has nothing
// left to fix.
func (n *Netstack) fixTaskMTU(host *hostNS, f mtuFix) error {
	defer n.tasks.lock(f.taskID)()
	task, err := openNS(n.Sandbox(f.taskID).NetNSPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", f.taskID, err)
	}
	defer task.close()
	if err := setMTU(task.nl, f.peer, f.mtu); err != nil {
		return fmt.Errorf("task %s: %w", f.taskID, err)
	}
	if err := setMTU(host.nl, f.hostEnd, f.mtu); err != nil {
		return fmt.Errorf("task %s: %w", f.taskID, err)
	}
	return nil
}

// setMTU sets the MTU of the named interface; one that is gone (its task torn
// down meanwhile) is not an error.
func setMTU(h *netlink.Handle, name string, mtu int) error {
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := h.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", mtu, name, err)
	}
	return nil
}

// sysctl writes value to a knob of the host namespace (under /proc/sys/net, which
// shows the namespace of the thread that reads it).
func (h *hostNS) sysctl(knob, value string) error {
	return inNetNS(h.ns, func() error {
		if err := os.WriteFile(knob, []byte(value+"\n"), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", knob, err)
		}
		return nil
	})
}

// ensureVXLAN makes sure the network's bridge has its VXLAN device as u says, and
// that both have the overlay's MTU. A device of another VNI, port or source (the
// network's VNI changed, the node's underlay moved) is made anew.
func (h *hostNS) ensureVXLAN(nw Network, br netlink.Link, u underlay) error {
	name := vxlanName(nw.ID)
	vx, err := linkOrNil(h.nl, name)
	if err != nil {
		return fmt.Errorf("VXLAN device %s: %w", name, err)
	}
	if vx != nil && !vxlanMatches(vx, nw, u) {
		if err := h.nl.LinkDel(vx); err != nil && !isLinkNotFound(err) {
			return fmt.Errorf("remove outdated VXLAN device %s: %w", name, err)
		}
		vx = nil
	}
	if vx == nil {
		if vx, err = h.addVXLAN(name, nw, u); err != nil {
			return err
		}
	}
	for _, l := range []netlink.Link{br, vx} {
		if l.Attrs().MTU == u.mtu {
			continue
		}
		if err := h.nl.LinkSetMTU(l, u.mtu); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", u.mtu, l.Attrs().Name, err)
		}
		l.Attrs().MTU = u.mtu
	}
	if vx.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.nl.LinkSetMasterByIndex(vx, br.Attrs().Index); err != nil {
			return fmt.Errorf("attach VXLAN device %s to bridge %s: %w", name, br.Attrs().Name, err)
		}
	}
	if vx.Attrs().Flags&net.FlagUp == 0 {
		if err := h.nl.LinkSetUp(vx); err != nil {
			return fmt.Errorf("bring VXLAN device %s up: %w", name, err)
		}
	}
	return nil
}

func vxlanMatches(l netlink.Link, nw Network, u underlay) bool {
	vx, ok := l.(*netlink.Vxlan)
	return ok && vx.VxlanId == int(nw.VNI) && vx.SrcAddr.Equal(u.addr.AsSlice()) && vx.Port == int(u.port) && !vx.Learning && vx.Proxy
}

// addVXLAN makes the network's VXLAN device: it learns nothing from the frames it
// receives (the entries Apply programs are all it knows) and answers ARP requests
// from its neighbour entries, so that none is flooded to other nodes.
func (h *hostNS) addVXLAN(name string, nw Network, u underlay) (netlink.Link, error) {
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.MTU = u.mtu
	vx := &netlink.Vxlan{LinkAttrs: la, VxlanId: int(nw.VNI), SrcAddr: u.addr.AsSlice(), Port: int(u.port), Learning: false, Proxy: true}
	if err := h.nl.LinkAdd(vx); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create VXLAN device %s: VNI %d on port %d is taken by another interface of the node: %w", name, nw.VNI, u.port, err)
		}
		return nil, fmt.Errorf("create VXLAN device %s: %w", name, err)
	}
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("VXLAN device %s: %w", name, err)
	}
	// For whoever reads `ip link`; the kernel ignores an alias given at creation.
	if err := h.nl.LinkSetAlias(l, "berth network "+nw.Name); err != nil {
		return nil, fmt.Errorf("VXLAN device %s: set alias: %w", name, err)
	}
	return l, nil
}

// removeVXLANOf removes the VXLAN device of the named bridge, if it has one.
func (h *hostNS) removeVXLANOf(bridge string) error {
	name := vxlanOfBridge(bridge)
	l, err := linkOrNil(h.nl, name)
	if err != nil || l == nil {
		return err
	}
	if err := h.nl.LinkDel(l); err != nil && !isLinkNotFound(err) {
		return fmt.Errorf("remove VXLAN device %s: %w", name, err)
	}
	return nil
}
