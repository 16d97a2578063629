package netstack

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/ipam"
)

// overlayLab is nodes of the test's own joined by an underlay: each node's host
// namespace has a veth (ul0, 198.18.0.<i+1>/24, MTU 1500) whose peer is a port of
// a bridge in an underlay namespace. Traffic never leaves the test's namespaces.
type overlayLab struct {
	t     *testing.T
	nodes []*testNode
	addrs []netip.Addr
}

func newOverlayLab(t *testing.T, n int) *overlayLab {
	t.Helper()
	lab := &overlayLab{t: t}
	underlayNS := filepath.Join(t.TempDir(), "underlay.netns")
	lab.nodes = append(lab.nodes, newTestNode(t)) // checks that namespaces can be made
	if err := createNetNS(underlayNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(underlayNS) })
	withHandle(t, underlayNS, func(h *netlink.Handle) error {
		la := netlink.NewLinkAttrs()
		la.Name = "ubr"
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return err
		}
		return setUp(h, "lo", "ubr")
	})
	for len(lab.nodes) < n {
		lab.nodes = append(lab.nodes, newTestNode(t))
	}
	for i, tn := range lab.nodes {
		addr := netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
		lab.addrs = append(lab.addrs, addr)
		joinUnderlay(t, tn.hostNS, underlayNS, fmt.Sprintf("n%d", i), addr)
	}
	return lab
}

// joinUnderlay joins a node's host namespace to the underlay bridge.
func joinUnderlay(t *testing.T, hostNS, underlayNS, port string, addr netip.Addr) {
	t.Helper()
	u, err := netns.GetFromPath(underlayNS)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	withHandle(t, hostNS, func(h *netlink.Handle) error {
		la := netlink.NewLinkAttrs()
		la.Name = "ul0"
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: port, PeerNamespace: netlink.NsFd(u)}); err != nil {
			return err
		}
		ul, err := h.LinkByName("ul0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(ul, testAddr(netip.PrefixFrom(addr, 24).String())); err != nil {
			return err
		}
		return h.LinkSetUp(ul)
	})
	withHandle(t, underlayNS, func(h *netlink.Handle) error {
		p, err := h.LinkByName(port)
		if err != nil {
			return err
		}
		br, err := h.LinkByName("ubr")
		if err != nil {
			return err
		}
		if err := h.LinkSetMasterByIndex(p, br.Attrs().Index); err != nil {
			return err
		}
		return h.LinkSetUp(p)
	})
}

func setUp(h *netlink.Handle, names ...string) error {
	for _, name := range names {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
	}
	return nil
}

// ep is a task's endpoint on node i of the lab.
func (lab *overlayLab) ep(i int, nw Network, taskID, addr string) Endpoint {
	return Endpoint{Network: nw.ID, TaskID: taskID, NodeID: fmt.Sprintf("node%d", i), Addr: netip.MustParseAddr(addr), Node: lab.addrs[i]}
}

// nodeEP is node i's own endpoint on nw.
func (lab *overlayLab) nodeEP(i int, nw Network, addr string) Endpoint {
	return lab.ep(i, nw, "", addr)
}

// apply applies to node i the view of the given networks and endpoints.
func (lab *overlayLab) apply(i int, nets []Network, eps ...Endpoint) {
	lab.t.Helper()
	v := View{Underlay: lab.addrs[i], Networks: nets, Endpoints: eps}
	if err := lab.nodes[i].n.Apply(lab.t.Context(), v); err != nil {
		lab.t.Fatalf("node %d: %v", i, err)
	}
}

func overlayNetwork(id, name, subnet string, vni uint32) Network {
	nw := testNetwork(id, name, subnet)
	nw.VNI = vni
	return nw
}

// overlayState is what a node's host namespace holds of one overlay network.
type overlayState struct {
	bridge, vxlan  netlink.Link
	bridgeAddrs    []string
	fdb, neighbour []string // "MAC dst" and "addr MAC", sorted
}

func (tn *testNode) overlayState(nw Network) overlayState {
	tn.t.Helper()
	var st overlayState
	withHandle(tn.t, tn.hostNS, func(h *netlink.Handle) error {
		st.bridge, _ = linkOrNil(h, bridgeName(nw.ID))
		st.vxlan, _ = linkOrNil(h, vxlanName(nw.ID))
		if st.bridge != nil {
			addrs, err := h.AddrList(st.bridge, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				st.bridgeAddrs = append(st.bridgeAddrs, a.IPNet.String())
			}
			slices.Sort(st.bridgeAddrs)
		}
		if st.vxlan == nil {
			return nil
		}
		fdb, err := h.NeighList(st.vxlan.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			return err
		}
		for _, e := range fdb {
			if e.LinkIndex == st.vxlan.Attrs().Index && e.Flags&netlink.NTF_SELF != 0 {
				st.fdb = append(st.fdb, e.HardwareAddr.String()+" "+e.IP.String())
			}
		}
		neigh, err := h.NeighList(st.vxlan.Attrs().Index, unix.AF_INET)
		if err != nil {
			return err
		}
		for _, e := range neigh {
			st.neighbour = append(st.neighbour, e.IP.String()+" "+e.HardwareAddr.String())
		}
		slices.Sort(st.fdb)
		slices.Sort(st.neighbour)
		return nil
	})
	return st
}

// entriesFor are the FDB and neighbour entries that endpoints on a node at dst get.
func entriesFor(dst netip.Addr, addrs ...string) (fdb, neighbour []string) {
	for _, a := range addrs {
		mac := ipam.MAC(netip.MustParseAddr(a)).String()
		fdb = append(fdb, mac+" "+dst.String())
		neighbour = append(neighbour, a+" "+mac)
	}
	slices.Sort(fdb)
	slices.Sort(neighbour)
	return fdb, neighbour
}

func (tn *testNode) requireEntries(nw Network, dst netip.Addr, addrs ...string) {
	tn.t.Helper()
	fdb, neighbour := entriesFor(dst, addrs...)
	st := tn.overlayState(nw)
	if !slices.Equal(st.fdb, fdb) || !slices.Equal(st.neighbour, neighbour) {
		tn.t.Errorf("VXLAN entries:\n fdb %q\n neighbour %q\nwant\n fdb %q\n neighbour %q", st.fdb, st.neighbour, fdb, neighbour)
	}
}

// mustEcho sends size bytes over TCP from the namespace at nsPath to an echo
// server and checks they come back: packets of the path's MTU get through.
func mustEcho(t *testing.T, nsPath, addr string, size int) {
	t.Helper()
	sent := bytes.Repeat([]byte("overlay!"), size/8)
	err := inNetNSPath(nsPath, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if _, err := c.Write(sent); err != nil {
			return err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		got, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, sent) {
			return fmt.Errorf("echoed %d bytes, sent %d", len(got), len(sent))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("from %s: echo of %d bytes from %s: %v", filepath.Base(nsPath), size, addr, err)
	}
}

func requireMTU(t *testing.T, nsPath string, want int, names ...string) {
	t.Helper()
	withHandle(t, nsPath, func(h *netlink.Handle) error {
		for _, name := range names {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if l.Attrs().MTU != want {
				t.Errorf("%s in %s: MTU %d, want %d", name, filepath.Base(nsPath), l.Attrs().MTU, want)
			}
		}
		return nil
	})
}

// A task on each of two nodes, one overlay network: they reach each other (large
// transfers too, over the overlay's MTU, set on every interface of the path), an
// endpoint dropped from the view loses its entries, a node's death all of them,
// and the last task's teardown takes the bridge and the VXLAN device.
func TestOverlayAcrossNodes(t *testing.T) {
	lab := newOverlayLab(t, 2)
	nw := overlayNetwork("ov1a2b3c4d5e6f7g8h9i0j1k2", "app_ov", "10.41.0.0/24", 4101)
	nets := []Network{nw}
	a1, a2 := lab.ep(0, nw, "ov-a1", "10.41.0.2"), lab.ep(1, nw, "ov-a2", "10.41.0.3")

	// Node 0's task before its first Apply (1500, corrected by Apply); node 1's
	// after (the VXLAN device made by Setup).
	sb1 := lab.nodes[0].setup("ov-a1", []Attachment{attach(nw, "10.41.0.2")})
	lab.apply(0, nets, a1, a2)
	lab.apply(1, nets, a1, a2)
	sb2 := lab.nodes[1].setup("ov-a2", []Attachment{attach(nw, "10.41.0.3")})
	lab.apply(1, nets, a1, a2)

	serve(t, sb1.NetNSPath, ":80", "a1")
	serve(t, sb2.NetNSPath, ":80", "a2")
	serveEcho(t, sb2.NetNSPath, ":7")
	mustReach(t, sb1.NetNSPath, "tcp4", "10.41.0.3:80", "a2")
	mustReach(t, sb2.NetNSPath, "tcp4", "10.41.0.2:80", "a1")
	mustEcho(t, sb1.NetNSPath, "10.41.0.3:7", 1<<20)

	for i, tn := range lab.nodes {
		st := tn.overlayState(nw)
		vx, ok := st.vxlan.(*netlink.Vxlan)
		if !ok {
			t.Fatalf("node %d: no VXLAN device %s: %v", i, vxlanName(nw.ID), st.vxlan)
		}
		if vx.VxlanId != 4101 || !vx.SrcAddr.Equal(lab.addrs[i].AsSlice()) || vx.Port != 4789 || vx.Learning || !vx.Proxy || vx.MasterIndex != st.bridge.Attrs().Index {
			t.Errorf("node %d: VXLAN device %+v", i, vx)
		}
		requireMTU(t, tn.hostNS, 1450, bridgeName(nw.ID), vxlanName(nw.ID), taskVethPrefix([]string{"ov-a1", "ov-a2"}[i])+"0")
	}
	requireMTU(t, sb1.NetNSPath, 1450, "eth0")
	requireMTU(t, sb2.NetNSPath, 1450, "eth0")
	lab.nodes[0].requireEntries(nw, lab.addrs[1], "10.41.0.3")
	lab.nodes[1].requireEntries(nw, lab.addrs[0], "10.41.0.2")

	t.Run("endpoint removed", func(t *testing.T) {
		a3 := lab.ep(1, nw, "ov-a3", "10.41.0.4")
		lab.apply(0, nets, a1, a2, a3)
		lab.nodes[0].requireEntries(nw, lab.addrs[1], "10.41.0.3", "10.41.0.4")
		lab.apply(0, nets, a1, a2)
		lab.nodes[0].requireEntries(nw, lab.addrs[1], "10.41.0.3")
		mustReach(t, sb1.NetNSPath, "tcp4", "10.41.0.3:80", "a2")
	})
	t.Run("node dead", func(t *testing.T) {
		lab.apply(0, nets, a1)
		lab.nodes[0].requireEntries(nw, lab.addrs[1])
		mustNotReach(t, sb1.NetNSPath, "tcp4", "10.41.0.3:80")
		lab.apply(0, nets, a1, a2)
		mustReach(t, sb1.NetNSPath, "tcp4", "10.41.0.3:80", "a2")
	})
	t.Run("last task torn down", func(t *testing.T) {
		lab.nodes[0].teardown("ov-a1")
		if st := lab.nodes[0].overlayState(nw); st.bridge != nil || st.vxlan != nil {
			t.Errorf("after the last task: bridge %v, VXLAN device %v", st.bridge, st.vxlan)
		}
		if st := lab.nodes[0].hostState(); st.table || len(st.bridges) > 0 {
			t.Errorf("after the last task: %+v", st)
		}
	})
}

// Two overlay networks on two nodes: a task reaches its own network's peer on the
// other node and not the other network's; a frame sent with one network's VNI is
// not delivered to another's bridge even when it has the destination's address;
// an internal overlay reaches its peers across nodes and nothing else.
func TestOverlayIsolation(t *testing.T) {
	lab := newOverlayLab(t, 2)
	a := overlayNetwork("isoa2b3c4d5e6f7g8h9i0j1k2", "app_a", "10.42.1.0/24", 4201)
	b := overlayNetwork("isob2b3c4d5e6f7g8h9i0j1k2", "app_b", "10.42.2.0/24", 4202)
	in := overlayNetwork("isoi2b3c4d5e6f7g8h9i0j1k2", "app_in", "10.42.5.0/24", 4205)
	in.Internal = true
	nets := []Network{a, b, in}
	eps := []Endpoint{
		lab.ep(0, a, "iso-a1", "10.42.1.2"), lab.ep(1, a, "iso-a2", "10.42.1.3"),
		lab.ep(0, b, "iso-b1", "10.42.2.2"), lab.ep(1, b, "iso-b2", "10.42.2.3"),
		lab.ep(0, in, "iso-i1", "10.42.5.2"), lab.ep(1, in, "iso-i2", "10.42.5.3"),
	}
	lab.apply(0, nets, eps...)
	lab.apply(1, nets, eps...)
	sb := map[string]Sandbox{}
	for i, tn := range lab.nodes {
		for _, e := range eps {
			if e.Node == lab.addrs[i] {
				nw := map[string]Network{a.ID: a, b.ID: b, in.ID: in}[e.Network]
				sb[e.TaskID] = tn.setup(e.TaskID, []Attachment{attach(nw, e.Addr.String())})
				serve(t, sb[e.TaskID].NetNSPath, ":80", e.TaskID)
			}
		}
	}
	lab.apply(0, nets, eps...)
	lab.apply(1, nets, eps...)

	mustReach(t, sb["iso-a1"].NetNSPath, "tcp4", "10.42.1.3:80", "iso-a2")
	mustReach(t, sb["iso-b1"].NetNSPath, "tcp4", "10.42.2.3:80", "iso-b2")
	mustNotReach(t, sb["iso-a1"].NetNSPath, "tcp4", "10.42.2.3:80")
	mustNotReach(t, sb["iso-b1"].NetNSPath, "tcp4", "10.42.1.3:80")
	mustNotReach(t, sb["iso-b2"].NetNSPath, "tcp4", "10.42.1.2:80")

	t.Run("VNI", func(t *testing.T) {
		// Node 0 is told (wrongly) that b2's address and MAC are on a: its
		// frames go to node 1 with a's VNI, and land on a's bridge there, not
		// b's.
		wrong := lab.ep(1, a, "iso-b2", "10.42.2.3")
		lab.apply(0, nets, append(slices.Clone(eps), wrong)...)
		withHandle(t, sb["iso-a1"].NetNSPath, func(h *netlink.Handle) error {
			eth0, err := h.LinkByName("eth0")
			if err != nil {
				return err
			}
			return h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("10.42.2.3/32")), Scope: netlink.SCOPE_LINK})
		})
		mustNotReach(t, sb["iso-a1"].NetNSPath, "tcp4", "10.42.2.3:80")
		lab.apply(0, nets, eps...)
	})
	t.Run("internal", func(t *testing.T) {
		mustReach(t, sb["iso-i1"].NetNSPath, "tcp4", "10.42.5.3:80", "iso-i2")
		serve(t, lab.nodes[1].hostNS, "198.18.0.2:80", "node1")
		mustReach(t, sb["iso-a1"].NetNSPath, "tcp4", "198.18.0.2:80", "node1")
		mustNotReach(t, sb["iso-i1"].NetNSPath, "tcp4", "198.18.0.2:80")
		mustNotReach(t, sb["iso-i1"].NetNSPath, "tcp4", "10.42.1.3:80")
	})
}

// A node's own endpoint (the ingress network's): Apply makes the bridge for it on a
// node with no task there, the node answers at that address from a task on another
// node, Prune keeps the bridge while the view has the endpoint, and it goes with
// the endpoint.
func TestOverlayNodeEndpoint(t *testing.T) {
	lab := newOverlayLab(t, 2)
	ing := overlayNetwork("ingr2b3c4d5e6f7g8h9i0j1k2", "ingress", "10.43.0.0/24", 4301)
	ing.Ingress = true
	nets := []Network{ing}
	eps := []Endpoint{lab.nodeEP(0, ing, "10.43.0.250"), lab.nodeEP(1, ing, "10.43.0.251"), lab.ep(1, ing, "ing-t2", "10.43.0.2")}
	lab.apply(0, nets, eps...)
	sb := lab.nodes[1].setup("ing-t2", []Attachment{attach(ing, "10.43.0.2")})
	lab.apply(1, nets, eps...)

	st := lab.nodes[0].overlayState(ing)
	if st.bridge == nil || st.vxlan == nil {
		t.Fatalf("node 0 has no task on the ingress network: bridge %v, VXLAN device %v, want both", st.bridge, st.vxlan)
	}
	if want := []string{"10.43.0.1/24", "10.43.0.250/32"}; !slices.Equal(st.bridgeAddrs, want) {
		t.Errorf("bridge addresses %v, want %v", st.bridgeAddrs, want)
	}
	if got, want := st.bridge.Attrs().HardwareAddr.String(), ipam.MAC(netip.MustParseAddr("10.43.0.250")).String(); got != want {
		t.Errorf("bridge MAC %s, want the endpoint's %s", got, want)
	}
	lab.nodes[0].requireEntries(ing, lab.addrs[1], "10.43.0.2", "10.43.0.251")
	serve(t, lab.nodes[0].hostNS, "10.43.0.250:80", "node0")
	mustReach(t, sb.NetNSPath, "tcp4", "10.43.0.250:80", "node0")

	if err := lab.nodes[0].n.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := lab.nodes[0].hostState(); !slices.Contains(st.bridges, bridgeName(ing.ID)) || st.rules[bridgeOwner(bridgeName(ing.ID))] == 0 {
		t.Fatalf("Prune removed the bridge holding the node's endpoint, or its rules: %+v", st)
	}
	mustReach(t, sb.NetNSPath, "tcp4", "10.43.0.250:80", "node0")

	lab.apply(0, nets, eps[1:]...)
	if st := lab.nodes[0].overlayState(ing); st.bridge != nil || st.vxlan != nil {
		t.Errorf("the view dropped the node's endpoint: bridge %v, VXLAN device %v remain", st.bridge, st.vxlan)
	}
	if st := lab.nodes[0].hostState(); st.table {
		t.Errorf("nftables table remains with no bridge and no task: %+v", st)
	}
}

// Restarted daemons (a new Netstack on the same root) applying the same view keep
// what is there and duplicate nothing: devices, addresses, entries, rules.
func TestOverlayRestartKeepsEntries(t *testing.T) {
	lab := newOverlayLab(t, 2)
	nw := overlayNetwork("rst1a2b3c4d5e6f7g8h9i0j1k", "app_rst", "10.44.0.0/24", 4401)
	ing := overlayNetwork("rsti2b3c4d5e6f7g8h9i0j1k2", "ingress", "10.44.1.0/24", 4402)
	ing.Ingress = true
	nets := []Network{nw, ing}
	eps := []Endpoint{
		lab.ep(0, nw, "rst-a1", "10.44.0.2"), lab.ep(1, nw, "rst-a2", "10.44.0.3"),
		lab.nodeEP(0, ing, "10.44.1.250"), lab.nodeEP(1, ing, "10.44.1.251"),
	}
	sbs := []Sandbox{
		lab.nodes[0].setup("rst-a1", []Attachment{attach(nw, "10.44.0.2")}),
		lab.nodes[1].setup("rst-a2", []Attachment{attach(nw, "10.44.0.3")}),
	}
	lab.apply(0, nets, eps...)
	lab.apply(1, nets, eps...)
	census := func() string { return lab.nodes[0].census(nets) + lab.nodes[1].census(nets) }
	before := census()
	for range 10 {
		for i, tn := range lab.nodes {
			tn.n.Close()
			tn.n = tn.open()
			lab.apply(i, nets, eps...)
		}
	}
	if after := census(); after != before {
		t.Errorf("after 10 restarts:\n%s\nbefore:\n%s", after, before)
	}
	serve(t, sbs[1].NetNSPath, ":80", "a2")
	mustReach(t, sbs[0].NetNSPath, "tcp4", "10.44.0.3:80", "a2")
}

// census counts what a node holds of berth's: interfaces by kind, addresses,
// forwarding and neighbour entries of the overlay networks, and rules by owner.
func (tn *testNode) census(nets []Network) string {
	tn.t.Helper()
	var b strings.Builder
	st := tn.hostState()
	fmt.Fprintf(&b, "bridges %v\nveths %v\nrules %v\n", st.bridges, st.veths, st.rules)
	for _, nw := range nets {
		o := tn.overlayState(nw)
		fmt.Fprintf(&b, "%s: vxlan %v addrs %v fdb %v neighbour %v\n", nw.Name, o.vxlan != nil, o.bridgeAddrs, o.fdb, o.neighbour)
	}
	withHandle(tn.t, tn.hostNS, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		kinds := map[string]int{}
		for _, l := range links {
			kinds[l.Type()]++
		}
		fmt.Fprintf(&b, "interfaces %v\n", kinds)
		return nil
	})
	return b.String()
}

// Applies while tasks of the network are set up and torn down on the node: no
// deadlock, no error, and the tasks that stay end with the overlay's MTU and
// reach their peer on the other node.
func TestOverlayApplyDuringSetups(t *testing.T) {
	lab := newOverlayLab(t, 2)
	nw := overlayNetwork("cnc1a2b3c4d5e6f7g8h9i0j1k", "app_cnc", "10.45.0.0/24", 4501)
	nets := []Network{nw}
	peer := lab.ep(1, nw, "cnc-peer", "10.45.0.200")
	var eps []Endpoint
	for i := range 6 {
		eps = append(eps, lab.ep(0, nw, fmt.Sprintf("cnc-%d", i), fmt.Sprintf("10.45.0.%d", i+2)))
	}
	lab.apply(1, nets, append(slices.Clone(eps), peer)...)
	sbPeer := lab.nodes[1].setup("cnc-peer", []Attachment{attach(nw, "10.45.0.200")})
	serve(t, sbPeer.NetNSPath, ":80", "peer")
	lab.apply(1, nets, append(slices.Clone(eps), peer)...)

	errs := make(chan error, len(eps)+1)
	for i, e := range eps {
		go func() {
			n := lab.nodes[0].n
			_, err := n.Setup(t.Context(), e.TaskID, "", []Attachment{attach(nw, e.Addr.String())}, nil)
			if err == nil && i%2 == 1 {
				err = n.Teardown(t.Context(), e.TaskID)
			}
			errs <- err
		}()
	}
	go func() {
		var err error
		for range 10 {
			v := View{Underlay: lab.addrs[0], Networks: nets, Endpoints: append(slices.Clone(eps), peer)}
			if err = lab.nodes[0].n.Apply(t.Context(), v); err != nil {
				break
			}
		}
		errs <- err
	}()
	for range len(eps) + 1 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	lab.apply(0, nets, append(slices.Clone(eps), peer)...)
	for i, e := range eps {
		if i%2 == 1 {
			continue
		}
		sb := lab.nodes[0].n.Sandbox(e.TaskID)
		requireMTU(t, sb.NetNSPath, 1450, "eth0")
		requireMTU(t, lab.nodes[0].hostNS, 1450, taskVethPrefix(e.TaskID)+"0")
		mustReach(t, sb.NetNSPath, "tcp4", "10.45.0.200:80", "peer")
	}
}
