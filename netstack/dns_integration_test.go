package netstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/runtime/executor"
	"github.com/berthd/berth/spec"
)

// dnsTestView is a cluster as the client task (10.0.1.5 on front) sees it: web
// (VIP 10.0.1.2, alias www) with one ready task and one starting, db on back
// only, and many, a DNSRR service with more ready tasks than 512 bytes hold.
func dnsTestView(front, back Network) View {
	node := netip.MustParseAddr("198.18.0.1")
	ep := func(nw Network, task, service, addr string, ready bool) Endpoint {
		return Endpoint{Network: nw.ID, TaskID: task, ServiceID: service, NodeID: "n1", Addr: netip.MustParseAddr(addr), Node: node, Ready: ready}
	}
	v := View{
		Underlay: node,
		Networks: []Network{front, back},
		Endpoints: []Endpoint{
			ep(front, "task-client", "s-client", "10.0.1.5", true),
			ep(front, "task-web-1", "s-web", "10.0.1.10", true),
			ep(front, "task-web-2", "s-web", "10.0.1.11", false),
			ep(back, "task-db-1", "s-db", "10.0.2.10", true),
		},
		Services: []Service{
			{ID: "s-client", Name: "i16dns_client", ShortName: "client", Stack: "i16dns", VIPs: map[string]netip.Addr{front.ID: netip.MustParseAddr("10.0.1.3")}},
			{ID: "s-web", Name: "i16dns_web", ShortName: "web", Stack: "i16dns",
				VIPs: map[string]netip.Addr{front.ID: netip.MustParseAddr("10.0.1.2")}, Aliases: map[string][]string{front.ID: {"www"}}},
			{ID: "s-db", Name: "i16dns_db", ShortName: "db", Stack: "i16dns", VIPs: map[string]netip.Addr{back.ID: netip.MustParseAddr("10.0.2.2")}},
			{ID: "s-many", Name: "i16dns_many", ShortName: "many", Stack: "i16dns", DNSRR: true},
		},
	}
	for i := range 60 {
		v.Endpoints = append(v.Endpoints, ep(front, fmt.Sprintf("task-many-%d", i), "s-many", fmt.Sprintf("10.0.1.%d", 100+i), true))
	}
	return v
}

// upstreamAnswer answers as the node's resolver: example.org is 192.0.2.1, any
// other name does not exist.
func upstreamAnswer(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := new(mdns.Msg)
	resp.SetReply(req)
	if q := req.Question[0]; strings.EqualFold(q.Name, "example.org.") && q.Qtype == mdns.TypeA {
		resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 1)})
	} else if !strings.EqualFold(q.Name, "example.org.") {
		resp.Rcode = mdns.RcodeNameError
	}
	w.WriteMsg(resp)
}

// serveUpstream runs the node's resolver on 127.0.0.1:53 of the node's (the
// test's host) namespace, over UDP and TCP.
func (tn *testNode) serveUpstream() {
	t := tn.t
	var pc net.PacketConn
	var l net.Listener
	if err := inNetNSPath(tn.hostNS, func() (err error) {
		if pc, err = net.ListenPacket("udp4", "127.0.0.1:53"); err != nil {
			return err
		}
		l, err = net.Listen("tcp4", "127.0.0.1:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: mdns.HandlerFunc(upstreamAnswer)}, {Listener: l, Handler: mdns.HandlerFunc(upstreamAnswer)}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown(); pc.Close() })
	}
}

// dnsExecutor is an executor on a containerd namespace of the test's own, with
// the busybox test image imported; the namespace goes with the test.
func dnsExecutor(t *testing.T) (*executor.Executor, string) {
	t.Helper()
	addr := testenv.RequireContainerd(t)
	var b [4]byte
	rand.Read(b[:])
	ns := "berth-test-i16dns-" + hex.EncodeToString(b[:])
	ex, err := executor.New(t.Context(), executor.WithAddress(addr), executor.WithNamespace(ns), executor.WithRoot(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ctrtest.New(addr, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := raw.RemoveNamespace(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		raw.Close()
		ex.Close()
	})
	const image = "berth.test/busybox:i16dns"
	var tar bytes.Buffer
	if err := testimage.Build(&tar, testimage.Options{Name: image}); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	if _, err := ex.ImportImage(t.Context(), &tar); err != nil {
		t.Fatal(err)
	}
	return ex, image
}

// dialInNS connects to addr from a socket made in the namespace at path.
func dialInNS(tb testing.TB, path, network, addr string) net.Conn {
	tb.Helper()
	var conn net.Conn
	if err := inNetNSPath(path, func() (err error) {
		conn, err = net.DialTimeout(network, addr, 5*time.Second)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// askInTask asks the task's resolver at 127.0.0.11:53 from a socket made in the
// task's namespace, as a stub resolver in the task would.
func askInTask(t *testing.T, sb Sandbox, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	conn := dialInNS(t, sb.NetNSPath, network, dnsListenAddr.String())
	defer conn.Close()
	req := new(mdns.Msg)
	req.SetQuestion(mdns.Fqdn(name), qtype)
	c := mdns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.ExchangeWithConn(req, &mdns.Conn{Conn: conn})
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	return resp
}

func addrsOf(resp *mdns.Msg) []string {
	var out []string
	for _, rr := range resp.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// TestEmbeddedDNS runs busybox in a task's sandbox and asks its resolver, with
// nslookup and with a Go client in the task's namespace; then restarts the
// daemon under the task and asks again.
func TestEmbeddedDNS(t *testing.T) {
	tn := newTestNode(t)
	ex, image := dnsExecutor(t)
	tn.serveUpstream()
	// The node's resolver is on its loopback: the forwarder reaches it from the
	// node's namespace. No search domain: busybox's nslookup asks a name without
	// a dot with each search domain only, never alone (musl and glibc, told
	// ndots:0, ask it alone first).
	if err := os.WriteFile(tn.resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	front := testNetwork("dnsfront", "i16dns_front", "10.0.1.0/24")
	back := testNetwork("dnsback", "i16dns_back", "10.0.2.0/24")
	view := dnsTestView(front, back)
	if err := tn.n.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	const id = "task-client"
	sb, err := tn.n.Setup(t.Context(), id, "client", []Attachment{attach(front, "10.0.1.5")}, nil,
		WithDNS(DNSConfig{Options: []string{"timeout:2"}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.n.Teardown(context.Background(), id) })
	if err := ex.Create(t.Context(), executor.Container{
		TaskID: id, TaskName: "i16dns_client.1", Stack: "i16dns", Service: "client", SpecHash: "i16dns",
		Spec:      &spec.Service{Name: "client", Image: image, Command: []string{"sleep", "3600"}},
		NetNSPath: sb.NetNSPath,
		Mounts:    []specs.Mount{executor.BindFile(sb.HostsPath, "/etc/hosts", false), executor.BindFile(sb.ResolvConfPath, "/etc/resolv.conf", false)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ex.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}

	nslookup := func(name string, wantOK bool, want []string, absent ...string) {
		t.Helper()
		code, out, err := ex.Exec(t.Context(), id, []string{"nslookup", name})
		if err != nil {
			t.Fatalf("nslookup %s: %v", name, err)
		}
		if (code == 0) != wantOK {
			t.Errorf("nslookup %s: exit code %d, want success %v:\n%s", name, code, wantOK, out)
		}
		for _, w := range want {
			if !bytes.Contains(out, []byte(w)) {
				t.Errorf("nslookup %s: no %q in:\n%s", name, w, out)
			}
		}
		for _, a := range absent {
			if bytes.Contains(out, []byte(a)) {
				t.Errorf("nslookup %s: %q in:\n%s", name, a, out)
			}
		}
	}
	nslookup("web", true, []string{"Address: 10.0.1.2"}, "10.0.1.10", "10.0.1.11")
	nslookup("i16dns_web", true, []string{"Address: 10.0.1.2"})
	nslookup("WWW.", true, []string{"Address: 10.0.1.2"})
	// Only ready tasks: web's second is starting.
	nslookup("tasks.web", true, []string{"Address: 10.0.1.10"}, "10.0.1.11", "10.0.1.2\n")
	nslookup("example.org", true, []string{"Address: 192.0.2.1"})
	nslookup("nope.invalid", false, []string{"NXDOMAIN"})
	// db shares no network with the client: not ours, and upstream does not know it.
	nslookup("db", false, []string{"NXDOMAIN"}, "10.0.2.")

	resolv, err := os.ReadFile(sb.ResolvConfPath)
	if err != nil || string(resolv) != "nameserver 127.0.0.11\noptions ndots:0 timeout:2\n" {
		t.Errorf("resolv.conf = %q, %v", resolv, err)
	}

	checkGoClient(t, sb)
	// The resolver leaves port 53 to the task: a DNS server of its own binds it.
	if err := inNetNSPath(sb.NetNSPath, func() error {
		pc, err := net.ListenPacket("udp4", "0.0.0.0:53")
		if err == nil {
			pc.Close()
		}
		return err
	}); err != nil {
		t.Errorf("a task's own server on port 53: %v", err)
	}

	// A daemon restarted under the task serves it again, from the next View.
	tn.n.Close()
	tn.n = tn.open()
	if err := tn.n.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	nslookup("web", true, []string{"Address: 10.0.1.2"})
	if got := addrsOf(askInTask(t, sb, "tcp", "tasks.web", mdns.TypeA)); fmt.Sprint(got) != "[10.0.1.10]" {
		t.Errorf("after a restart, tasks.web over TCP = %v", got)
	}

	// A task turning ready joins the answers with the next View.
	view.Endpoints[2].Ready = true
	if err := tn.n.Apply(t.Context(), view); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(askInTask(t, sb, "udp", "tasks.web", mdns.TypeA)); fmt.Sprint(got) != "[10.0.1.10 10.0.1.11]" {
		t.Errorf("tasks.web with both ready = %v", got)
	}

	if err := ex.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	tn.teardown(id)
	tn.n.dns.mu.Lock()
	left := len(tn.n.dns.servers)
	tn.n.dns.mu.Unlock()
	if left != 0 {
		t.Errorf("%d resolvers still serve after Teardown", left)
	}
}

// checkGoClient asks what busybox's nslookup cannot show: the transport, the
// TC bit, NODATA.
func checkGoClient(t *testing.T, sb Sandbox) {
	tests := []struct {
		network, name string
		qtype         uint16
		rcode         int
		truncated     bool
		answers       []string // nil: not checked
		count         int
	}{
		{"tcp", "web", mdns.TypeA, mdns.RcodeSuccess, false, []string{"10.0.1.2"}, 1},
		{"udp", "web", mdns.TypeAAAA, mdns.RcodeSuccess, false, nil, 0}, // NODATA
		{"udp", "tasks.many", mdns.TypeA, mdns.RcodeSuccess, true, nil, -1},
		{"tcp", "tasks.many", mdns.TypeA, mdns.RcodeSuccess, false, nil, 60},
		{"udp", "nope.invalid", mdns.TypeA, mdns.RcodeNameError, false, nil, 0},
		{"tcp", "example.org", mdns.TypeA, mdns.RcodeSuccess, false, []string{"192.0.2.1"}, 1},
	}
	for _, tt := range tests {
		resp := askInTask(t, sb, tt.network, tt.name, tt.qtype)
		got := addrsOf(resp)
		bad := resp.Rcode != tt.rcode || resp.Truncated != tt.truncated ||
			(tt.count >= 0 && len(got) != tt.count) || (tt.count < 0 && len(got) >= 60) ||
			(tt.answers != nil && fmt.Sprint(got) != fmt.Sprint(tt.answers))
		if bad {
			t.Errorf("%s %s over %s: rcode %s, truncated %v, answers %v", tt.name, mdns.TypeToString[tt.qtype], tt.network,
				mdns.RcodeToString[resp.Rcode], resp.Truncated, got)
		}
	}
}
