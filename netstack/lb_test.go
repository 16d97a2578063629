package netstack

import (
	"net/netip"
	"slices"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// lbView has service web (VIPs on front and back) with tasks on two nodes,
// service db (dnsrr) and service idle (no task), and node addresses on ingress.
func lbView() View {
	here, there := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ep := func(nw, task, svc, addr string, node netip.Addr, ready bool) Endpoint {
		return Endpoint{Network: nw, TaskID: task, ServiceID: svc, Node: node, Addr: netip.MustParseAddr(addr), Ready: ready}
	}
	return View{
		Underlay: here,
		Networks: []Network{{ID: "front"}, {ID: "back"}, {ID: "ingress", Ingress: true}},
		Services: []Service{
			{ID: "web", Name: "app_web", VIPs: map[string]netip.Addr{"front": netip.MustParseAddr("10.0.1.100"), "back": netip.MustParseAddr("10.0.2.100")},
				IngressPorts: []PortMapping{{Protocol: "tcp", Published: 80, Target: 8080}, {Protocol: "udp", Published: 53, Target: 5353}}},
			{ID: "db", Name: "app_db", DNSRR: true, VIPs: map[string]netip.Addr{"back": netip.MustParseAddr("10.0.2.101")}},
			{ID: "idle", Name: "app_idle", VIPs: map[string]netip.Addr{"front": netip.MustParseAddr("10.0.1.101")},
				IngressPorts: []PortMapping{{Protocol: "tcp", Published: 80, Target: 1}, {Protocol: "tcp", Published: 81, Target: 81}}},
		},
		Endpoints: []Endpoint{
			ep("front", "w1", "web", "10.0.1.3", here, true),
			ep("front", "w2", "web", "10.0.1.2", there, true),
			ep("front", "w3", "web", "10.0.1.4", there, false),
			ep("back", "w1", "web", "10.0.2.3", here, true),
			ep("back", "d1", "db", "10.0.2.9", here, true),
			ep("ingress", "w1", "web", "10.255.0.3", here, true),
			ep("ingress", "w2", "web", "10.255.0.2", there, true),
			ep("ingress", "w3", "web", "10.255.0.4", there, false),
			ep("ingress", "", "", "10.255.0.250", here, true),
			ep("ingress", "", "", "10.255.0.251", there, true),
		},
	}
}

func TestVIPSpec(t *testing.T) {
	fixed := []rule{{}}
	for _, tc := range []struct {
		name     string
		networks []string
		want     map[string][]netip.Addr // backends by chain
	}{
		{"front only", []string{"front"}, map[string][]netip.Addr{
			"vip-10-0-1-100": addrs("10.0.1.2", "10.0.1.3"), // ready, any node, sorted
			"vip-10-0-1-101": nil,                            // no task: rejects
		}},
		{"back: no dnsrr VIP", []string{"back"}, map[string][]netip.Addr{"vip-10-0-2-100": addrs("10.0.2.3")}},
		{"no shared network", []string{"other"}, map[string][]netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := vipSpec(lbView(), tc.networks, fixed)
			if len(spec.balancers) != len(tc.want) {
				t.Fatalf("balancers %v, want %v", spec.balancers, tc.want)
			}
			for name, want := range tc.want {
				b, ok := spec.balancers[name]
				if !ok || !slices.Equal(b.backends, want) || b.dispatch != "vips" || b.port != 0 {
					t.Errorf("%s = %+v, want backends %v to the same port", name, b, want)
				}
			}
			if (len(spec.fixed) > 0) != (len(tc.want) > 0) {
				t.Errorf("fixed rules %v with %d balancers: a table without VIPs is not made", spec.fixed, len(tc.want))
			}
		})
	}
}

func TestIngressSpec(t *testing.T) {
	fixed := []rule{{}}
	v := lbView()
	network, nodeAddr, remote := ingressEndpoints(v)
	if network != "ingress" || nodeAddr != netip.MustParseAddr("10.255.0.250") {
		t.Fatalf("ingress endpoints: network %q, node address %s", network, nodeAddr)
	}
	spec := ingressSpec(v, network, nodeAddr, remote, fixed)
	want := map[string]balancer{
		// Both idle and web publish 80: idle, the lower ID, has it.
		"mesh-tcp-80": {dispatch: "ports-tcp", backends: nil, port: 1},
		"mesh-tcp-81": {dispatch: "ports-tcp", backends: nil, port: 81},
		"mesh-udp-53": {dispatch: "ports-udp", backends: addrs("10.255.0.2", "10.255.0.3"), port: 5353},
	}
	if len(spec.balancers) != len(want) {
		t.Fatalf("balancers %v, want %v", spec.balancers, want)
	}
	for name, w := range want {
		b := spec.balancers[name]
		if b.dispatch != w.dispatch || b.port != w.port || !slices.Equal(b.backends, w.backends) {
			t.Errorf("%s = %+v, want %+v", name, b, w)
		}
	}
	// Only the remote backends are SNATed, not the node's own address.
	if got := spec.sets[remoteBackendsSet]; !slices.Equal(got, addrs("10.255.0.2")) {
		t.Errorf("remote backends %v, want 10.255.0.2", got)
	}

	// Without an ingress address of its own, the node keeps its local tasks.
	noAddr := ingressSpec(v, network, netip.Addr{}, remote, fixed)
	if got := noAddr.balancers["mesh-udp-53"].backends; !slices.Equal(got, addrs("10.255.0.3")) {
		t.Errorf("without a node address: backends %v, want the local 10.255.0.3", got)
	}
	if none := ingressSpec(View{}, "", netip.Addr{}, nil, fixed); len(none.balancers)+len(none.fixed) != 0 {
		t.Errorf("a view without ingress network: %+v, want nothing", none)
	}
}

func TestBalancerFingerprint(t *testing.T) {
	b := balancer{dispatch: "vips", key: []byte{10, 0, 1, 100}, backends: addrs("10.0.1.2", "10.0.1.3")}
	changed := []balancer{b, b, b}
	changed[0].backends = addrs("10.0.1.2")
	changed[1].port = 80
	changed[2].key = []byte{10, 0, 1, 101}
	for i, c := range changed {
		if c.fingerprint() == b.fingerprint() {
			t.Errorf("change %d keeps the fingerprint", i)
		}
	}
	same := b
	same.about = "renamed"
	if same.fingerprint() != b.fingerprint() {
		t.Errorf("the comment changes the fingerprint")
	}
}
