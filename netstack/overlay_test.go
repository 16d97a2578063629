package netstack

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

func TestPlanOverlay(t *testing.T) {
	self, other := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ov := overlayNetwork("ov1a2b3c4d5e6f7g8h9i0j1k2", "app_ov", "10.41.0.0/24", 4101)
	local := testNetwork("lo1a2b3c4d5e6f7g8h9i0j1k2", "app_local", "10.42.0.0/24")
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 9}
	ep := func(nw Network, task, addr string, node netip.Addr) Endpoint {
		return Endpoint{Network: nw.ID, TaskID: task, Addr: netip.MustParseAddr(addr), Node: node}
	}
	withMAC := ep(ov, "t4", "10.41.0.4", other)
	withMAC.MAC = mac
	v := View{
		Underlay: self,
		Networks: []Network{ov, local},
		Endpoints: []Endpoint{
			ep(ov, "t1", "10.41.0.2", self),     // a local task: nothing to program
			ep(ov, "t2", "10.41.0.3", other),    // a remote task
			withMAC,                             // a remote task with its own MAC
			ep(ov, "", "10.41.0.250", self),     // the node's endpoint
			ep(ov, "", "10.41.0.251", other),    // another node's endpoint
			ep(local, "t3", "10.42.0.3", other), // not an overlay
			{Network: "gone", Addr: netip.MustParseAddr("10.9.0.2"), Node: other},
		},
	}
	p := planOverlay(v)
	if p.port != defaultVXLANPort || p.underlay != self || len(p.nets) != 1 {
		t.Fatalf("plan: port %d, underlay %s, %d networks; want 4789, %s, 1", p.port, p.underlay, len(p.nets), self)
	}
	on := p.nets[bridgeName(ov.ID)]
	if on == nil {
		t.Fatalf("no plan for %s: %v", ov, p.nets)
	}
	wantFDB := map[string]netip.Addr{"02:42:0a:29:00:03": other, mac.String(): other, "02:42:0a:29:00:fb": other}
	if len(on.fdb) != len(wantFDB) {
		t.Errorf("fdb %v, want %v", on.fdb, wantFDB)
	}
	for m, dst := range wantFDB {
		if on.fdb[m] != dst {
			t.Errorf("fdb[%s] = %s, want %s", m, on.fdb[m], dst)
		}
	}
	if len(on.neigh) != 3 || on.neigh[netip.MustParseAddr("10.41.0.4")].String() != mac.String() ||
		on.neigh[netip.MustParseAddr("10.41.0.3")].String() != "02:42:0a:29:00:03" {
		t.Errorf("neighbours %v", on.neigh)
	}
	if on.node != netip.MustParseAddr("10.41.0.250") || on.bridgeMAC().String() != "02:42:0a:29:00:fa" {
		t.Errorf("node endpoint %s, bridge MAC %s; want 10.41.0.250, 02:42:0a:29:00:fa", on.node, on.bridgeMAC())
	}

	v.VXLANPort = 8472
	v.Endpoints = nil
	p = planOverlay(v)
	on = p.nets[bridgeName(ov.ID)]
	if p.port != 8472 || on.node.IsValid() || on.bridgeMAC().String() != "02:42:0a:29:00:01" {
		t.Errorf("port %d, node %s, bridge MAC %s; want 8472, none, the gateway's", p.port, on.node, on.bridgeMAC())
	}
}

func TestVXLANNames(t *testing.T) {
	id := "ov1a2b3c4d5e6f7g8h9i0j1k2"
	if got := vxlanName(id); got != "bx-ov1a2b3c4d5e" {
		t.Errorf("vxlanName = %q", got)
	}
	if br, ok := bridgeOfVXLAN(vxlanName(id)); !ok || br != bridgeName(id) {
		t.Errorf("bridgeOfVXLAN = %q, %v; want %q", br, ok, bridgeName(id))
	}
	if _, ok := bridgeOfVXLAN(bridgeName(id)); ok {
		t.Error("a bridge's name is taken for a VXLAN device's")
	}
}

func TestApplyOverlayNeedsAnUnderlay(t *testing.T) {
	n := &Netstack{}
	v := View{Networks: []Network{overlayNetwork("ov1a2b3c4d5e6f7g8h9i0j1k2", "app_ov", "10.41.0.0/24", 4101)}}
	if err := n.applyOverlay(t.Context(), v); !errors.Is(err, ErrInvalid) {
		t.Errorf("overlay network without an underlay: %v, want ErrInvalid", err)
	}
	v.Underlay = netip.MustParseAddr("fd00::1")
	if err := n.applyOverlay(t.Context(), v); !errors.Is(err, ErrInvalid) {
		t.Errorf("IPv6 underlay: %v, want ErrInvalid", err)
	}
}
