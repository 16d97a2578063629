package netstack

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
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
