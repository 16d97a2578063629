package netstack

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nftObjects lists the objects of the table in the namespace at nsPath: every
// rule with its kernel handle, every set element with its value and comment. Two
// equal listings mean nothing was added, removed or replaced in between (a
// replaced rule gets a new handle).
func nftObjects(t *testing.T, nsPath string, table *nftables.Table) []string {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := nft.ListTablesOfFamily(table.Family)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tables, func(tb *nftables.Table) bool { return tb.Name == table.Name }) {
		return nil
	}
	chains, err := nft.ListChainsOfTableFamily(table.Family)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range chains {
		if c.Table.Name != table.Name {
			continue
		}
		rules, err := nft.GetRules(table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			out = append(out, fmt.Sprintf("chain %s rule %d", c.Name, r.Handle))
		}
		if len(rules) == 0 {
			out = append(out, "chain "+c.Name+" empty")
		}
	}
	sets, err := nft.GetSets(table)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sets {
		elems, err := nft.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			out = append(out, fmt.Sprintf("set %s %s:%s %s", s.Name, hex.EncodeToString(e.Key), hex.EncodeToString(e.Val), e.Comment))
		}
		if len(elems) == 0 {
			out = append(out, "set "+s.Name+" empty")
		}
	}
	slices.Sort(out)
	return out
}

// withPrefix keeps the lines that start with prefix.
func withPrefix(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// answers makes n TCP connections from the namespace at nsPath to addr and counts
// the servers' answers ("<name> <client address>") by name; it records every client
// address each server saw.
func answers(t *testing.T, nsPath, addr string, n int) (byName map[string]int, clients map[string][]string) {
	t.Helper()
	byName, clients = map[string]int{}, map[string][]string{}
	for range n {
		reply, err := dial(nsPath, "tcp4", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("tcp %s: %v", addr, err)
		}
		name, client, _ := strings.Cut(reply, " ")
		byName[name]++
		host, _, _ := strings.Cut(client, ":")
		if !slices.Contains(clients[name], host) {
			clients[name] = append(clients[name], host)
		}
	}
	return byName, clients
}

func (tn *testNode) apply(v View) {
	tn.t.Helper()
	if err := tn.n.Apply(tn.t.Context(), v); err != nil {
		tn.t.Fatal(err)
	}
}

// vipTestView is a node with tasks web-1..web-3 of service web behind VIP
// 10.0.7.100, a service "idle" with VIP 10.0.7.101 and no task, and a client
// task; ready says which web tasks are ready.
func vipTestView(app Network, ready ...string) View {
	node := netip.MustParseAddr("198.18.0.1")
	v := View{
		Underlay: node,
		Networks: []Network{app},
		Services: []Service{
			{ID: "svc-web", Name: "app_web", ShortName: "web", VIPs: map[string]netip.Addr{app.ID: netip.MustParseAddr("10.0.7.100")}},
			{ID: "svc-idle", Name: "app_idle", ShortName: "idle", VIPs: map[string]netip.Addr{app.ID: netip.MustParseAddr("10.0.7.101")}},
			{ID: "svc-client", Name: "app_client", ShortName: "client", VIPs: map[string]netip.Addr{app.ID: netip.MustParseAddr("10.0.7.102")}},
		},
		Endpoints: []Endpoint{
			{Network: app.ID, TaskID: "client", ServiceID: "svc-client", NodeID: "n1", Node: node, Addr: netip.MustParseAddr("10.0.7.2"), Ready: true},
		},
	}
	for i, id := range []string{"web-1", "web-2", "web-3"} {
		v.Endpoints = append(v.Endpoints, Endpoint{
			Network: app.ID, TaskID: id, ServiceID: "svc-web", NodeID: "n1", Node: node,
			Addr: netip.MustParseAddr(fmt.Sprintf("10.0.7.%d", 11+i)), Ready: slices.Contains(ready, id),
		})
	}
	return v
}

func TestVIPSpreadsOverReadyBackends(t *testing.T) {
	tn := newTestNode(t)
	app := testNetwork("lbvipnet0000000000000000a", "app_default", "10.0.7.0/24")
	for i, id := range []string{"web-1", "web-2", "web-3"} {
		sb := tn.setup(id, []Attachment{attach(app, fmt.Sprintf("10.0.7.%d", 11+i))})
		serve(t, sb.NetNSPath, ":80", id)
		serve(t, sb.NetNSPath, ":8080", id)
	}
	tn.apply(vipTestView(app, "web-1", "web-2", "web-3"))
	// Set up after the view: Setup programs its VIPs.
	client := tn.setup("client", []Attachment{attach(app, "10.0.7.2")}).NetNSPath

	for _, addr := range []string{"10.0.7.100:80", "10.0.7.100:8080"} {
		if got, _ := answers(t, client, addr, 30); len(got) != 3 {
			t.Errorf("30 connections to %s reached %v, want all of web-1, web-2, web-3", addr, got)
		}
	}
	// The tasks' own conntrack reverses the DNAT: backends see the client.
	_, clients := answers(t, client, "10.0.7.100:80", 3)
	for name, seen := range clients {
		if !slices.Equal(seen, []string{"10.0.7.2"}) {
			t.Errorf("%s saw clients %v, want 10.0.7.2", name, seen)
		}
	}

	before := nftObjects(t, client, vipTable())
	tn.apply(vipTestView(app, "web-1", "web-2"))
	after := nftObjects(t, client, vipTable())
	if got, _ := answers(t, client, "10.0.7.100:80", 30); got["web-3"] != 0 || len(got) != 2 {
		t.Errorf("after web-3 left the view, 30 connections reached %v, want web-1 and web-2 only", got)
	}
	// Only web's objects changed: idle's chain and map, and the dispatch rule,
	// are the same objects.
	for _, prefix := range []string{"chain vip-10-0-7-101 ", "set vip-10-0-7-101 ", "chain output "} {
		if b, a := withPrefix(before, prefix), withPrefix(after, prefix); !slices.Equal(b, a) || len(b) == 0 {
			t.Errorf("%s changed with web's backends: %v, then %v", prefix, b, a)
		}
	}
	if slices.Equal(withPrefix(before, "chain vip-10-0-7-100 "), withPrefix(after, "chain vip-10-0-7-100 ")) {
		t.Errorf("web's chain was not replaced: %v", after)
	}
	tn.apply(vipTestView(app, "web-1", "web-2"))
	if again := nftObjects(t, client, vipTable()); !slices.Equal(again, after) {
		t.Errorf("the same view applied again changed the table: %v, then %v", after, again)
	}

	// No ready backend: refused at once, TCP and UDP (the datagram is rejected
	// on its way out: its send fails).
	if _, err := dial(client, "tcp4", "10.0.7.101:80", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("tcp to a VIP without backends: %v, want connection refused", err)
	}
	if _, err := dial(client, "udp4", "10.0.7.101:53", 5*time.Second); !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udp to a VIP without backends: %v, want the send refused", err)
	}
	tn.apply(vipTestView(app))
	if _, err := dial(client, "tcp4", "10.0.7.100:80", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("tcp to web with no task ready: %v, want connection refused", err)
	}
}

func TestVIPRulesSurviveRestarts(t *testing.T) {
	tn := newTestNode(t)
	app := testNetwork("lbvipnet0000000000000000b", "app_default", "10.0.7.0/24")
	other := testNetwork("lbvipother00000000000000b", "other_default", "10.0.8.0/24")
	web := tn.setup("web-1", []Attachment{attach(app, "10.0.7.11")})
	serve(t, web.NetNSPath, ":80", "web-1")
	client := tn.setup("client", []Attachment{attach(app, "10.0.7.2")}).NetNSPath
	// On another network only: no VIP of app's services, no table.
	loner := tn.setup("loner", []Attachment{attach(other, "10.0.8.2")}).NetNSPath
	v := vipTestView(app, "web-1")
	tn.apply(v)
	want := nftObjects(t, client, vipTable())
	// Three balancers (web, idle, client), each a chain with its rule(s) and a
	// map; the dispatch rule and map.
	if n := len(withPrefix(want, "set vips ")); n != 3 {
		t.Fatalf("vips map %v, want 3 elements", want)
	}
	for range 10 {
		tn.n.Close()
		tn.n = tn.open()
		// Setup again, as an agent does for its running tasks, then the view.
		tn.setup("client", []Attachment{attach(app, "10.0.7.2")})
		tn.apply(v)
	}
	if got := nftObjects(t, client, vipTable()); !slices.Equal(got, want) {
		t.Errorf("after 10 restarts the table holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mustReach(t, client, "tcp4", "10.0.7.100:80", "web-1")
	if got := nftObjects(t, loner, vipTable()); len(got) != 0 {
		t.Errorf("a task sharing no network with a VIP has %v", got)
	}
}

// vipTable is the table the VIP rules live in, for listing.
func vipTable() *nftables.Table {
	l, _ := vipLayout()
	return l.table
}

// meshTestView is a node (198.18.0.1, ingress address 10.0.9.250) running web-1
// and web-2 of service web, which publishes 8080 to 80 in ingress mode, and
// knowing of web-3 on node 198.18.0.2; service idle publishes 7070 and has no
// task. ready says which web tasks are ready.
func meshTestView(ingress, app Network, ready ...string) View {
	node, other := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	v := View{
		Underlay: node,
		Networks: []Network{ingress, app},
		Services: []Service{
			{ID: "svc-web", Name: "app_web", IngressPorts: []PortMapping{{Protocol: "tcp", Published: 8080, Target: 80}}},
			{ID: "svc-idle", Name: "app_idle", IngressPorts: []PortMapping{{Protocol: "tcp", Published: 7070, Target: 80}}},
		},
		Endpoints: []Endpoint{
			{Network: ingress.ID, NodeID: "n1", Node: node, Addr: netip.MustParseAddr("10.0.9.250"), Ready: true},
			{Network: ingress.ID, NodeID: "n2", Node: other, Addr: netip.MustParseAddr("10.0.9.251"), Ready: true},
		},
	}
	for i, id := range []string{"web-1", "web-2", "web-3"} {
		e := Endpoint{
			Network: ingress.ID, TaskID: id, ServiceID: "svc-web", NodeID: "n1", Node: node,
			Addr: netip.MustParseAddr(fmt.Sprintf("10.0.9.%d", 11+i)), Ready: slices.Contains(ready, id),
		}
		if id == "web-3" {
			e.NodeID, e.Node = "n2", other
		}
		v.Endpoints = append(v.Endpoints, e)
	}
	return v
}

func TestRoutingMesh(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	ingress := testNetwork("lbmeshingress0000000000c", "ingress", "10.0.9.0/24")
	ingress.Ingress = true
	app := testNetwork("lbmeshapp000000000000000c", "app_default", "10.0.7.0/24")
	// web-1 is on ingress and app, its default route on app; web-2 on ingress
	// only. web-3 stands for a task on another node: the view says so, and it is
	// on the same bridge, as the overlay would join it.
	tasks := map[string][]Attachment{
		"web-1": {attach(ingress, "10.0.9.11"), attach(app, "10.0.7.11")},
		"web-2": {attach(ingress, "10.0.9.12")},
		"web-3": {attach(ingress, "10.0.9.13")},
	}
	for id, atts := range tasks {
		serve(t, tn.setup(id, atts).NetNSPath, ":80", id)
	}
	// The node's own address on the ingress network, which the overlay gives
	// the ingress bridge.
	withHandle(t, tn.hostNS, func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeName(ingress.ID))
		if err != nil {
			return err
		}
		return h.AddrAdd(br, testAddr("10.0.9.250/24"))
	})
	// A strict rp_filter, as many distributions set: a reply of web-1 that
	// left by its default route (app) would be dropped, its source being routed
	// to the ingress bridge.
	if err := inNetNSPath(tn.hostNS, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/all/rp_filter", []byte("1\n"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	tn.apply(meshTestView(ingress, app, "web-1", "web-2", "web-3"))

	got, clients := answers(t, client, "10.99.0.1:8080", 30)
	if len(got) != 3 {
		t.Errorf("30 connections to the node's 10.99.0.1:8080 reached %v, want web-1, web-2 and web-3", got)
	}
	// Local tasks see the client; the remote one the node's ingress address.
	for id, want := range map[string]string{"web-1": "10.99.0.2", "web-2": "10.99.0.2", "web-3": "10.0.9.250"} {
		if !slices.Equal(clients[id], []string{want}) {
			t.Errorf("%s saw clients %v, want %s", id, clients[id], want)
		}
	}
	// Every address of the node answers, and the node itself reaches it.
	if got, _ := answers(t, client, "10.99.0.3:8080", 9); len(got) == 0 {
		t.Errorf("10.99.0.3:8080 reached nothing")
	}
	mustReach(t, tn.hostNS, "tcp4", "10.99.0.1:8080", "web-")
	if _, err := dial(client, "tcp4", "10.99.0.1:7070", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a published port without ready tasks: %v, want connection refused", err)
	}

	before := nftObjects(t, tn.hostNS, meshTable())
	tn.apply(meshTestView(ingress, app, "web-1", "web-3"))
	after := nftObjects(t, tn.hostNS, meshTable())
	if got, _ := answers(t, client, "10.99.0.1:8080", 30); got["web-2"] != 0 || len(got) != 2 {
		t.Errorf("after web-2 left the view, 30 connections reached %v, want web-1 and web-3", got)
	}
	for _, prefix := range []string{"chain mesh-tcp-7070 ", "set mesh-tcp-7070 ", "chain prerouting ", "chain output ", "chain postrouting "} {
		if b, a := withPrefix(before, prefix), withPrefix(after, prefix); !slices.Equal(b, a) || len(b) == 0 {
			t.Errorf("%s changed with web's backends: %v, then %v", prefix, b, a)
		}
	}

	for range 10 {
		tn.n.Close()
		tn.n = tn.open()
		tn.apply(meshTestView(ingress, app, "web-1", "web-3"))
	}
	if again := nftObjects(t, tn.hostNS, meshTable()); !slices.Equal(again, after) {
		t.Errorf("after 10 restarts the table holds\n%s\nwant\n%s", strings.Join(again, "\n"), strings.Join(after, "\n"))
	}

	tn.apply(View{Underlay: netip.MustParseAddr("198.18.0.1")})
	if got := nftObjects(t, tn.hostNS, meshTable()); len(got) != 0 {
		t.Errorf("a view without ingress ports left %v", got)
	}
}

// A task on the ingress network and another keeps its default route on the
// other, and sends what it sends from its ingress address through ingress.
func TestDefaultRouteAvoidsIngress(t *testing.T) {
	tn := newTestNode(t)
	ingress := testNetwork("lbrouteingress000000000d", "ingress", "10.0.9.0/24")
	ingress.Ingress = true
	app := testNetwork("lbrouteapp00000000000000d", "app_default", "10.0.7.0/24")
	both := tn.setup("both", []Attachment{attach(ingress, "10.0.9.11"), attach(app, "10.0.7.11")}).NetNSPath
	only := tn.setup("only", []Attachment{attach(ingress, "10.0.9.12")}).NetNSPath
	for path, want := range map[string]string{both: "10.0.7.1", only: "10.0.9.1"} {
		withHandle(t, path, func(h *netlink.Handle) error {
			for dst, via := range map[string]string{"192.0.2.1": want, "10.0.9.200": ""} {
				routes, err := h.RouteGetWithOptions(net.ParseIP(dst), &netlink.RouteGetOptions{})
				if err != nil {
					return err
				}
				if got := routes[0].Gw.String(); via != "" && got != via {
					t.Errorf("%s: route to %s via %s, want %s", filepath.Base(path), dst, got, via)
				}
			}
			// From the ingress address: through the ingress gateway.
			routes, err := h.RouteGetWithOptions(net.ParseIP("192.0.2.1"), &netlink.RouteGetOptions{SrcAddr: net.ParseIP("10.0.9.11")})
			if path == both && (err != nil || routes[0].Gw.String() != "10.0.9.1") {
				t.Errorf("both: route from 10.0.9.11 to 192.0.2.1: %v, %v; want via 10.0.9.1", routes, err)
			}
			return nil
		})
	}
	// Setup again changes nothing and adds no rule.
	tn.setup("both", []Attachment{attach(ingress, "10.0.9.11"), attach(app, "10.0.7.11")})
	withHandle(t, both, func(h *netlink.Handle) error {
		rules, err := h.RuleList(syscall.AF_INET)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range rules {
			if r.Table == ingressRepliesTable {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d routing rules to table %d, want 1", n, ingressRepliesTable)
		}
		return nil
	})
}

// meshTable is the routing mesh's table, for listing.
func meshTable() *nftables.Table {
	l, _ := ingressLayout(netip.Addr{})
	return l.table
}
