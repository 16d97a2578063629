package netstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/internal/testenv"
)

// testNode is a node made of namespaces of the test's own: a "host" namespace for
// the bridges and rules, and the tasks' namespaces under the Netstack's root. Traffic
// never leaves them.
type testNode struct {
	t      testing.TB
	dir    string
	hostNS string
	root   string
	resolv string
	n      *Netstack
}

func newTestNode(t testing.TB) *testNode {
	t.Helper()
	testenv.RequireNetNS(t)
	dir := t.TempDir()
	tn := &testNode{t: t, dir: dir, hostNS: filepath.Join(dir, "host.netns"), root: filepath.Join(dir, "root"), resolv: filepath.Join(dir, "resolv.conf")}
	if err := createNetNS(tn.hostNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeNetNS(tn.hostNS); err != nil {
			t.Error(err)
		}
	})
	// Tests fail before tearing down: unmount the namespaces they leave, or
	// the temporary directory cannot go.
	t.Cleanup(func() {
		entries, _ := os.ReadDir(filepath.Join(tn.root, "netns"))
		for _, e := range entries {
			removeNetNS(filepath.Join(tn.root, "netns", e.Name()))
		}
	})
	withHandle(t, tn.hostNS, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
	if err := os.WriteFile(tn.resolv, []byte("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tn.n = tn.open()
	// Before the namespaces go: relays hold sockets there.
	t.Cleanup(func() { tn.n.Close() })
	return tn
}

// open returns a Netstack on the node's root and host namespace, as a restarted
// agent would make.
func (tn *testNode) open() *Netstack {
	tn.t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{tn.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(tn.t.Context(), WithRoot(tn.root), WithHostNetNS(tn.hostNS), WithHostResolvConf(tn.resolv), WithLogger(logger))
	if err != nil {
		tn.t.Fatal(err)
	}
	return n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (tn *testNode) setup(taskID string, atts []Attachment, ports ...PortMapping) Sandbox {
	tn.t.Helper()
	sb, err := tn.n.Setup(tn.t.Context(), taskID, taskID+"-host", atts, ports)
	if err != nil {
		tn.t.Fatal(err)
	}
	return sb
}

func (tn *testNode) teardown(taskID string) {
	tn.t.Helper()
	if err := tn.n.Teardown(tn.t.Context(), taskID); err != nil {
		tn.t.Fatal(err)
	}
}

func withHandle(t testing.TB, nsPath string, fn func(*netlink.Handle) error) {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := fn(h); err != nil {
		t.Fatalf("in %s: %v", nsPath, err)
	}
}

// addClient makes a namespace outside the node, joined to its host namespace by a
// veth: the host has 10.99.0.1/24, 10.99.0.3/24, fd99::1/64 and fd99::3/64 on its
// end, the client 10.99.0.2/24 and fd99::2/64 and no route beyond.
func (tn *testNode) addClient() string {
	tn.t.Helper()
	path := filepath.Join(tn.dir, "client.netns")
	if err := createNetNS(path); err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { removeNetNS(path) })
	client, err := netns.GetFromPath(path)
	if err != nil {
		tn.t.Fatal(err)
	}
	defer client.Close()
	withHandle(tn.t, tn.hostNS, func(h *netlink.Handle) error {
		la := netlink.NewLinkAttrs()
		la.Name = "uplink"
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(client)}); err != nil {
			return err
		}
		up, err := h.LinkByName("uplink")
		if err != nil {
			return err
		}
		for _, a := range []string{"10.99.0.1/24", "10.99.0.3/24", "fd99::1/64", "fd99::3/64"} {
			if err := h.AddrAdd(up, testAddr(a)); err != nil {
				return err
			}
		}
		return h.LinkSetUp(up)
	})
	withHandle(tn.t, path, func(h *netlink.Handle) error {
		for _, name := range []string{"lo", "eth0"} {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, a := range []string{"10.99.0.2/24", "fd99::2/64"} {
			if err := h.AddrAdd(eth0, testAddr(a)); err != nil {
				return err
			}
		}
		return nil
	})
	return path
}

// testAddr is an interface address usable at once: an IPv6 one skips duplicate
// address detection, which would keep it tentative (unusable) for a while.
func testAddr(prefix string) *netlink.Addr {
	return &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix(prefix)), Flags: unix.IFA_F_NODAD}
}

// inNetNSPath runs fn in the network namespace at path.
func inNetNSPath(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNetNS(ns, fn)
}

// serve answers every TCP connection on addr, inside the namespace at nsPath, with
// name and the address the connection came from.
func serve(t testing.TB, nsPath, addr, name string) {
	t.Helper()
	serveTCP(t, nsPath, addr, func(c net.Conn) { fmt.Fprintf(c, "%s %s", name, c.RemoteAddr()) })
}

// serveTCP hands every TCP connection on addr, inside the namespace at nsPath, to
// handle, and closes it after.
func serveTCP(t testing.TB, nsPath, addr string, handle func(net.Conn)) {
	t.Helper()
	var l net.Listener
	if err := inNetNSPath(nsPath, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// serveUDP answers every UDP datagram on addr with name.
func serveUDP(t *testing.T, nsPath, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNetNSPath(nsPath, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name), from)
		}
	}()
}

// serveEcho reads every TCP connection on addr to its end, then sends back what it
// read: it answers only clients whose half-close reached it.
func serveEcho(t *testing.T, nsPath, addr string) {
	t.Helper()
	serveTCP(t, nsPath, addr, func(c net.Conn) {
		if b, err := io.ReadAll(c); err == nil {
			c.Write(b)
		}
	})
}

// dial connects from the namespace at nsPath and returns what the server said.
func dial(nsPath, network, addr string, timeout time.Duration) (string, error) {
	var reply []byte
	err := inNetNSPath(nsPath, func() error {
		c, err := net.DialTimeout(network, addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if strings.HasPrefix(network, "udp") {
			if _, err := c.Write([]byte("ping")); err != nil {
				return err
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			reply = buf[:n]
			return err
		}
		reply, err = io.ReadAll(c)
		return err
	})
	return string(reply), err
}

func mustReach(t *testing.T, nsPath, network, addr, wantName string) string {
	t.Helper()
	reply, err := dial(nsPath, network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("from %s: %s %s: %v", filepath.Base(nsPath), network, addr, err)
	}
	if !strings.HasPrefix(reply, wantName) {
		t.Fatalf("from %s: %s %s answered %q, want %s", filepath.Base(nsPath), network, addr, reply, wantName)
	}
	return reply
}

// mustNotReach gives a connection a second to fail: a dropped packet only shows as
// no answer.
func mustNotReach(t *testing.T, nsPath, network, addr string) {
	t.Helper()
	if reply, err := dial(nsPath, network, addr, time.Second); err == nil {
		t.Fatalf("from %s: %s %s answered %q, want no connection", filepath.Base(nsPath), network, addr, reply)
	}
}

// mustListen checks that nothing holds the port of addr in the namespace at nsPath.
func mustListen(t *testing.T, nsPath, network, addr string) {
	t.Helper()
	if err := inNetNSPath(nsPath, func() error {
		if strings.HasPrefix(network, "udp") {
			pc, err := net.ListenPacket(network, addr)
			if err != nil {
				return err
			}
			return pc.Close()
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			return err
		}
		return l.Close()
	}); err != nil {
		t.Errorf("in %s: %s %s is taken: %v", filepath.Base(nsPath), network, addr, err)
	}
}

// hostState is what the host namespace holds of berth's.
type hostState struct {
	bridges, veths []string
	rules          map[string]int // by owner
	// handles are the kernel's handles of the rules, by owner: a rule replaced by
	// an identical one has a new handle.
	handles map[string][]uint64
	table   bool
}

func (tn *testNode) hostState() hostState {
	tn.t.Helper()
	st := hostState{rules: map[string]int{}, handles: map[string][]uint64{}}
	h, err := openHost(tn.hostNS)
	if err != nil {
		tn.t.Fatal(err)
	}
	defer h.close()
	links, err := h.nl.LinkList()
	if err != nil {
		tn.t.Fatal(err)
	}
	for _, l := range links {
		switch {
		case l.Type() == "bridge":
			st.bridges = append(st.bridges, l.Attrs().Name)
		case l.Type() == "veth" && l.Attrs().Name != "uplink":
			st.veths = append(st.veths, l.Attrs().Name+"="+l.Attrs().Alias)
		}
	}
	slices.Sort(st.bridges)
	slices.Sort(st.veths)
	if st.table, err = h.tableExists(); err != nil {
		tn.t.Fatal(err)
	}
	if st.table {
		if err := h.eachRule(func(r *nftables.Rule) error {
			st.rules[ruleOwner(r)]++
			st.handles[ruleOwner(r)] = append(st.handles[ruleOwner(r)], r.Handle)
			return nil
		}); err != nil {
			tn.t.Fatal(err)
		}
	}
	return st
}

func TestSameNetworkReachable(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("f8m2k4q9x1c7v3b6n5z0p2w8r", "app_front", "10.0.1.0/24")
	a := tn.setup("task-a", []Attachment{attach(front, "10.0.1.2", "api")})
	b := tn.setup("task-b", []Attachment{attach(front, "10.0.1.3")})
	serve(t, a.NetNSPath, ":80", "a")
	serve(t, b.NetNSPath, ":80", "b")

	mustReach(t, a.NetNSPath, "tcp4", "10.0.1.3:80", "b")
	mustReach(t, b.NetNSPath, "tcp4", "10.0.1.2:80", "a")

	if st := tn.hostState(); !slices.Contains(st.bridges, "bb-f8m2k4q9x1c7") {
		t.Errorf("bridges %v, want bb-f8m2k4q9x1c7", st.bridges)
	}
	withHandle(t, a.NetNSPath, func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if got := eth0.Attrs().HardwareAddr.String(); got != "02:42:0a:00:01:02" {
			t.Errorf("eth0 MAC = %s", got)
		}
		addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.1.2/24" {
			t.Errorf("eth0 addresses = %v, want 10.0.1.2/24", addrs)
		}
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.0.1.1"
		}) {
			t.Errorf("routes %v lack the default route via 10.0.1.1", routes)
		}
		return nil
	})

	hosts, err := os.ReadFile(a.HostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(hosts, []byte("10.0.1.2\ttask-a-host api\n")) || !bytes.Contains(hosts, []byte("127.0.0.1\tlocalhost\n")) {
		t.Errorf("hosts file:\n%s", hosts)
	}
	resolv, err := os.ReadFile(a.ResolvConfPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(resolv) != "nameserver 127.0.0.11\nsearch example.com\noptions ndots:0\n" {
		t.Errorf("resolv.conf:\n%s", resolv)
	}
}

func TestNetworksIsolated(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	back := testNetwork("back", "app_back", "10.0.2.0/24")
	a := tn.setup("task-a", []Attachment{attach(front, "10.0.1.2")})
	c := tn.setup("task-c", []Attachment{attach(back, "10.0.2.2")})
	d := tn.setup("task-d", []Attachment{attach(front, "10.0.1.3"), attach(back, "10.0.2.3")})
	for _, sb := range []struct {
		Sandbox
		name string
	}{{a, "a"}, {c, "c"}, {d, "d"}} {
		serve(t, sb.NetNSPath, ":80", sb.name)
	}

	// A task on both networks reaches, and is reached from, each.
	mustReach(t, a.NetNSPath, "tcp4", "10.0.1.3:80", "d")
	mustReach(t, c.NetNSPath, "tcp4", "10.0.2.3:80", "d")
	mustReach(t, d.NetNSPath, "tcp4", "10.0.1.2:80", "a")
	mustReach(t, d.NetNSPath, "tcp4", "10.0.2.2:80", "c")

	// The node routes between its bridges; the rules must not let it.
	mustNotReach(t, a.NetNSPath, "tcp4", "10.0.2.2:80")
	mustNotReach(t, c.NetNSPath, "tcp4", "10.0.1.2:80")
	mustNotReach(t, a.NetNSPath, "tcp4", "10.0.2.3:80")

	// A published port is everyone's: a task of the other network reaches it
	// through a node address, as anyone does.
	tn.addClient()
	e := tn.setup("task-e", []Attachment{attach(back, "10.0.2.4")}, PortMapping{Protocol: "tcp", Published: 8081, Target: 80})
	serve(t, e.NetNSPath, ":80", "e")
	mustReach(t, a.NetNSPath, "tcp4", "10.99.0.1:8081", "e")
	mustNotReach(t, a.NetNSPath, "tcp4", "10.0.2.4:80")
}

func TestEgressMasqueradeAndInternal(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	serve(t, client, "10.99.0.2:9000", "outside")
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	private := testNetwork("private", "app_private", "10.0.3.0/24")
	private.Internal = true
	a := tn.setup("task-a", []Attachment{attach(front, "10.0.1.2")})
	i := tn.setup("task-i", []Attachment{attach(private, "10.0.3.2")})
	j := tn.setup("task-j", []Attachment{attach(private, "10.0.3.3")})
	serve(t, j.NetNSPath, ":80", "j")

	// The client has no route back to the task's subnet: an answer proves the
	// node masqueraded the task's connection.
	if reply := mustReach(t, a.NetNSPath, "tcp4", "10.99.0.2:9000", "outside"); !strings.HasPrefix(reply, "outside 10.99.0.1:") {
		t.Errorf("client saw the connection come from %q, want the node's 10.99.0.1", reply)
	}

	mustReach(t, i.NetNSPath, "tcp4", "10.0.3.3:80", "j")
	mustNotReach(t, i.NetNSPath, "tcp4", "10.99.0.2:9000")
	mustNotReach(t, i.NetNSPath, "tcp4", "10.0.1.2:80")
	withHandle(t, i.NetNSPath, func(h *netlink.Handle) error {
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Gw != nil {
				t.Errorf("task on an internal network has route %v", r)
			}
		}
		return nil
	})
	st := tn.hostState()
	if got := st.rules[bridgeOwner(bridgeName(private.ID))]; got != 2 {
		t.Errorf("internal bridge has %d rules, want 2 (in and out)", got)
	}
}

func TestPublishedPorts(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	ports := []PortMapping{
		{Protocol: "tcp", Published: 8080, Target: 80},
		{Protocol: "udp", Published: 5353, Target: 53},
		{Protocol: "tcp", HostIP: netip.MustParseAddr("10.99.0.1"), Published: 8081, Target: 81},
	}
	web := tn.setup("task-web", []Attachment{attach(front, "10.0.1.2")}, ports...)
	neighbour := tn.setup("task-neighbour", []Attachment{attach(front, "10.0.1.3")})
	serve(t, web.NetNSPath, ":80", "web80")
	serve(t, web.NetNSPath, ":81", "web81")
	serveUDP(t, web.NetNSPath, ":53", "web53")

	mustReach(t, client, "tcp4", "10.99.0.1:8080", "web80")
	mustReach(t, client, "tcp4", "10.99.0.3:8080", "web80")
	mustReach(t, client, "udp4", "10.99.0.1:5353", "web53")
	mustReach(t, client, "tcp4", "10.99.0.1:8081", "web81")
	// Published on 10.99.0.1 only: the node's other address has nothing there.
	mustNotReach(t, client, "tcp4", "10.99.0.3:8081")
	// The node itself reaches its published ports on its own addresses, and so
	// do another task on the published task's network and the task itself.
	mustReach(t, tn.hostNS, "tcp4", "10.99.0.1:8080", "web80")
	mustReach(t, neighbour.NetNSPath, "tcp4", "10.99.0.1:8080", "web80")
	mustReach(t, web.NetNSPath, "tcp4", "10.99.0.1:8080", "web80")
	// The node reaches a port published on all its addresses on 127.0.0.1 too,
	// through a relay, as with Docker; one published on an address only is not.
	if reply := mustReach(t, tn.hostNS, "tcp4", "127.0.0.1:8080", "web80"); !strings.HasPrefix(reply, "web80 10.0.1.1:") {
		t.Errorf("the task saw the connection to 127.0.0.1 come from %q, want its gateway 10.0.1.1", reply)
	}
	mustReach(t, tn.hostNS, "udp4", "127.0.0.1:5353", "web53")
	mustNotReach(t, tn.hostNS, "tcp4", "127.0.0.1:8081")

	if got := tn.hostState().rules[taskOwner("task-web")]; got != 2*len(ports) {
		t.Errorf("%d rules for the task's ports, want %d", got, 2*len(ports))
	}

	tn.teardown("task-web")
	mustNotReach(t, client, "tcp4", "10.99.0.1:8080")
	mustNotReach(t, tn.hostNS, "tcp4", "10.99.0.1:8080")
	mustNotReach(t, tn.hostNS, "tcp4", "127.0.0.1:8080")
	mustListen(t, tn.hostNS, "tcp4", "127.0.0.1:8080")
	mustListen(t, tn.hostNS, "udp4", "127.0.0.1:5353")
}

// A task whose container exited is replaced on its node while its Teardown has not
// come yet (the agent sets the replacement up at the same time): the replacement
// takes the port over, relays and rules, instead of being rejected because berth
// itself still holds it; the old task's Teardown then leaves the new one's alone.
func TestPublishedPortTakenOverByReplacement(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	ports := []PortMapping{
		{Protocol: "tcp", Published: 8080, Target: 80},
		{Protocol: "udp", Published: 5353, Target: 53},
	}
	old := tn.setup("task-old", []Attachment{attach(front, "10.0.1.2")}, ports...)
	// The old task still answers: what reaches it shows which rule or relay won.
	serve(t, old.NetNSPath, ":80", "old80")
	serveUDP(t, old.NetNSPath, ":53", "old53")
	mustReach(t, client, "tcp4", "10.99.0.1:8080", "old80")

	sb, err := tn.n.Setup(t.Context(), "task-new", "new", []Attachment{attach(front, "10.0.1.3")}, ports)
	if err != nil {
		t.Fatalf("Setup of the replacement while the old task's sandbox is still there: %v", err)
	}
	serve(t, sb.NetNSPath, ":80", "new80")
	serveUDP(t, sb.NetNSPath, ":53", "new53")
	check := func() {
		t.Helper()
		mustReach(t, client, "tcp4", "10.99.0.1:8080", "new80")
		mustReach(t, client, "udp4", "10.99.0.1:5353", "new53")
		mustReach(t, client, "tcp6", "[fd99::1]:8080", "new80")
		mustReach(t, client, "udp6", "[fd99::1]:5353", "new53")
		mustReach(t, tn.hostNS, "tcp4", "10.99.0.1:8080", "new80")
		mustReach(t, tn.hostNS, "tcp4", "127.0.0.1:8080", "new80")
		mustReach(t, tn.hostNS, "udp4", "127.0.0.1:5353", "new53")
	}
	check()
	if _, err := os.Lstat(tn.n.relaysPath("task-old")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old task's relays file is left for a restarted daemon to start (%v)", err)
	}
	tn.teardown("task-old")
	check()
	tn.teardown("task-new")
	mustListen(t, tn.hostNS, "tcp4", "127.0.0.1:8080")
	mustListen(t, tn.hostNS, "tcp6", "[::]:8080")
}

// Published ports are reachable over IPv6 too, through relays to the task's IPv4
// address, from the node itself and from outside.
func TestPublishedPortsOverIPv6(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	atts := []Attachment{attach(front, "10.0.1.2")}
	ports := []PortMapping{
		{Protocol: "tcp", Published: 8080, Target: 80},
		{Protocol: "udp", Published: 5353, Target: 53},
		{Protocol: "tcp", Published: 8082, Target: 82},
	}
	web := tn.setup("task-web", atts, ports...)
	serve(t, web.NetNSPath, ":80", "web80")
	serve(t, web.NetNSPath, ":81", "web81")
	serveUDP(t, web.NetNSPath, ":53", "web53")
	serveEcho(t, web.NetNSPath, ":82")

	// The relay connects from the node: the task sees its gateway, not the client.
	if reply := mustReach(t, tn.hostNS, "tcp6", "[::1]:8080", "web80"); !strings.HasPrefix(reply, "web80 10.0.1.1:") {
		t.Errorf("the task saw the relayed connection come from %q, want its gateway 10.0.1.1", reply)
	}
	mustReach(t, tn.hostNS, "udp6", "[::1]:5353", "web53")
	mustReach(t, client, "tcp6", "[fd99::1]:8080", "web80")
	// The kernel would answer the client from fd99::3, the node's newer address
	// on its network: the relay must answer from the address it was asked on.
	mustReach(t, client, "udp6", "[fd99::1]:5353", "web53")
	mustReach(t, client, "tcp4", "10.99.0.1:8080", "web80")
	mustReach(t, client, "udp4", "10.99.0.1:5353", "web53")
	// The client's half-close reaches the task, which answers after it.
	if err := inNetNSPath(client, func() error {
		c, err := net.DialTimeout("tcp6", "[fd99::1]:8082", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		if _, err := io.WriteString(c, "ping"); err != nil {
			return err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		reply, err := io.ReadAll(c)
		if err == nil && string(reply) != "ping" {
			err = fmt.Errorf("answered %q, want ping", reply)
		}
		return err
	}); err != nil {
		t.Errorf("half-closed connection to [fd99::1]:8082: %v", err)
	}

	// Setup again keeps the relays (a second one would find the port taken);
	// other ports replace them.
	tn.setup("task-web", atts, ports...)
	mustReach(t, client, "tcp6", "[fd99::1]:8080", "web80")
	tn.setup("task-web", atts, PortMapping{Protocol: "tcp", Published: 8080, Target: 81})
	mustReach(t, client, "tcp6", "[fd99::1]:8080", "web81")
	mustNotReach(t, client, "udp6", "[fd99::1]:5353")
	tn.setup("task-web", atts, ports...)
	mustReach(t, client, "udp6", "[fd99::1]:5353", "web53")

	tn.teardown("task-web")
	for _, ns := range []string{tn.hostNS, client} {
		addr := "[fd99::1]"
		if ns == tn.hostNS {
			addr = "[::1]"
		}
		mustNotReach(t, ns, "tcp6", addr+":8080")
		mustNotReach(t, ns, "udp6", addr+":5353")
	}
	mustListen(t, tn.hostNS, "tcp6", "[::]:8080")
	mustListen(t, tn.hostNS, "udp6", "[::]:5353")
}

// A port published on one IPv6 address of the node has a relay there and nothing
// else: no relay on the node's other addresses, no IPv4 rule.
func TestPublishedPortOnIPv6HostIP(t *testing.T) {
	tn := newTestNode(t)
	client := tn.addClient()
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	web := tn.setup("task-web", []Attachment{attach(front, "10.0.1.2")},
		PortMapping{Protocol: "tcp", HostIP: netip.MustParseAddr("fd99::1"), Published: 8082, Target: 80})
	serve(t, web.NetNSPath, ":80", "web80")

	mustReach(t, client, "tcp6", "[fd99::1]:8082", "web80")
	mustReach(t, tn.hostNS, "tcp6", "[fd99::1]:8082", "web80")
	mustNotReach(t, tn.hostNS, "tcp6", "[::1]:8082")
	mustNotReach(t, client, "tcp4", "10.99.0.1:8082")
	mustNotReach(t, tn.hostNS, "tcp4", "10.99.0.1:8082")
	if got := tn.hostState().rules[taskOwner("task-web")]; got != 0 {
		t.Errorf("%d rules for a port published on an IPv6 address only, want none", got)
	}
}

// A relay that cannot listen fails Setup, saying which port and what to do.
func TestRelayListenErrors(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	atts := []Attachment{attach(front, "10.0.1.2")}
	var l net.Listener
	if err := inNetNSPath(tn.hostNS, func() (err error) {
		l, err = net.Listen("tcp6", "[::]:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	_, err := tn.n.Setup(t.Context(), "task-web", "web", atts, []PortMapping{{Protocol: "tcp", Published: 8080, Target: 80}})
	if !errors.Is(err, unix.EADDRINUSE) || !strings.Contains(err.Error(), "port 8080/tcp") || !strings.Contains(err.Error(), "publish another port") {
		t.Errorf("Setup with [::]:8080 taken: err = %v, want one that names port 8080/tcp, the cause and the fix", err)
	}
	_, err = tn.n.Setup(t.Context(), "task-web", "web", atts,
		[]PortMapping{{Protocol: "udp", HostIP: netip.MustParseAddr("fd99::5"), Published: 5353, Target: 53}})
	if !errors.Is(err, unix.EADDRNOTAVAIL) || !strings.Contains(err.Error(), "port 5353/udp") || !strings.Contains(err.Error(), "fd99::5 is not an address of this node") {
		t.Errorf("Setup on an address the node lacks: err = %v, want one that names port 5353/udp and the address", err)
	}
	if _, err := os.Lstat(tn.n.relaysPath("task-web")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a Setup whose relays failed left a relays file (%v)", err)
	}
	tn.teardown("task-web")
}

// A restarted daemon starts again the relays of the tasks that ran on: the kernel
// kept their rules, the relays died with the old process.
func TestRelaysSurviveRestart(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	atts := []Attachment{attach(front, "10.0.1.2")}
	ports := []PortMapping{
		{Protocol: "tcp", Published: 8080, Target: 80},
		{Protocol: "udp", Published: 5353, Target: 53},
	}
	web := tn.setup("task-web", atts, ports...)
	serve(t, web.NetNSPath, ":80", "web80")
	serveUDP(t, web.NetNSPath, ":53", "web53")
	mustReach(t, tn.hostNS, "tcp6", "[::1]:8080", "web80")

	// The daemon exits: the relays stop, the rest stays.
	tn.n.Close()
	mustNotReach(t, tn.hostNS, "tcp6", "[::1]:8080")
	mustNotReach(t, tn.hostNS, "udp6", "[::1]:5353")
	mustReach(t, tn.hostNS, "tcp4", "10.0.1.1:8080", "web80")

	// Relays files the next daemon cannot use: one it cannot read, and one of a
	// task whose namespace is gone (the node rebooted).
	for id, data := range map[string]string{
		"task-garbled": "{",
		"task-gone":    `{"relays":[{"protocol":"tcp","listen":"[::]:9090","to":"10.0.1.9:80"}]}`,
	} {
		if err := os.MkdirAll(filepath.Join(tn.root, "tasks", id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tn.n.relaysPath(id), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tn.n = tn.open()
	mustReach(t, tn.hostNS, "tcp6", "[::1]:8080", "web80")
	mustReach(t, tn.hostNS, "udp6", "[::1]:5353", "web53")
	mustListen(t, tn.hostNS, "tcp6", "[::]:9090")
	// Setup finds the relays running.
	tn.setup("task-web", atts, ports...)
	mustReach(t, tn.hostNS, "tcp6", "[::1]:8080", "web80")
	// A task with a relays file only has something on the node, for the agent
	// to tear down.
	if ids, err := tn.n.Sandboxes(t.Context()); err != nil || !slices.Equal(ids, []string{"task-garbled", "task-gone", "task-web"}) {
		t.Errorf("Sandboxes = %v, %v; want [task-garbled task-gone task-web]", ids, err)
	}
	for _, id := range []string{"task-garbled", "task-gone", "task-web"} {
		tn.teardown(id)
	}
	mustNotReach(t, tn.hostNS, "tcp6", "[::1]:8080")
	if ids, err := tn.n.Sandboxes(t.Context()); err != nil || len(ids) != 0 {
		t.Errorf("Sandboxes after teardown = %v, %v; want none", ids, err)
	}
}

func TestTeardownLeavesNothing(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	back := testNetwork("back", "app_back", "10.0.2.0/24")
	a := tn.setup("task-a", []Attachment{attach(front, "10.0.1.2"), attach(back, "10.0.2.2")}, PortMapping{Protocol: "tcp", Published: 8080, Target: 80})
	tn.setup("task-b", []Attachment{attach(back, "10.0.2.3")})

	tn.teardown("task-a")
	tn.teardown("task-a")
	st := tn.hostState()
	if slices.ContainsFunc(st.veths, func(v string) bool { return strings.HasSuffix(v, "=berth-task:task-a") }) {
		t.Errorf("veths after teardown: %v", st.veths)
	}
	if len(st.veths) != 1 {
		t.Errorf("veths %v, want task-b's only", st.veths)
	}
	if st.rules[taskOwner("task-a")] != 0 {
		t.Errorf("rules after teardown: %v", st.rules)
	}
	for _, p := range []string{a.NetNSPath, a.HostsPath, a.ResolvConfPath, tn.n.relaysPath("task-a"), filepath.Dir(a.HostsPath)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after teardown (%v)", p, err)
		}
	}
	if ids, err := tn.n.Sandboxes(t.Context()); err != nil || !slices.Equal(ids, []string{"task-b"}) {
		t.Errorf("Sandboxes = %v, %v; want [task-b]", ids, err)
	}
	// The front network has no task left on the node: its bridge went with its
	// last task; the back one has.
	if !slices.Equal(st.bridges, []string{bridgeName(back.ID)}) || st.rules[bridgeOwner(bridgeName(front.ID))] != 0 {
		t.Errorf("bridges %v and rules %v after teardown, want only %s's", st.bridges, st.rules, bridgeName(back.ID))
	}

	if err := tn.n.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	st = tn.hostState()
	if !slices.Equal(st.bridges, []string{bridgeName(back.ID)}) {
		t.Errorf("bridges after prune %v, want only %s", st.bridges, bridgeName(back.ID))
	}
	if st.rules[bridgeOwner(bridgeName(front.ID))] != 0 || st.rules[bridgeOwner(bridgeName(back.ID))] == 0 {
		t.Errorf("rules after prune: %v", st.rules)
	}

	tn.teardown("task-b")
	// A veth that a crash left before Setup named its task goes too.
	withHandle(t, tn.hostNS, func(h *netlink.Handle) error {
		la := netlink.NewLinkAttrs()
		la.Name = taskVethPrefix("task-crashed") + "0"
		return h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "leftover-peer"})
	})
	if err := tn.n.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	st = tn.hostState()
	if len(st.bridges) != 0 || len(st.veths) != 0 || st.table {
		t.Errorf("after the last teardown and prune: %+v", st)
	}
	if ids, err := tn.n.Sandboxes(t.Context()); err != nil || len(ids) != 0 {
		t.Errorf("Sandboxes = %v, %v; want none", ids, err)
	}
}

func TestSetupIdempotent(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	atts := []Attachment{attach(front, "10.0.1.2")}
	port := PortMapping{Protocol: "tcp", Published: 8080, Target: 80}
	first := tn.setup("task-a", atts, port)
	b := tn.setup("task-b", []Attachment{attach(front, "10.0.1.3")})
	before := tn.hostState()

	if again := tn.setup("task-a", atts, port); again != first {
		t.Errorf("second Setup = %+v, first %+v", again, first)
	}
	// A restarted agent's Netstack finds the sandbox and changes nothing.
	tn.n.Close()
	tn.n = tn.open()
	if ids, err := tn.n.Sandboxes(t.Context()); err != nil || !slices.Equal(ids, []string{"task-a", "task-b"}) {
		t.Errorf("Sandboxes after restart = %v, %v", ids, err)
	}
	tn.setup("task-a", atts, port)
	after := tn.hostState()
	if !slices.Equal(before.veths, after.veths) || !slices.Equal(before.bridges, after.bridges) || fmt.Sprint(before.handles) != fmt.Sprint(after.handles) {
		t.Errorf("Setup again changed the node (rules are compared by handle: rewriting one makes a new one):\nbefore %+v\nafter  %+v", before, after)
	}

	// Other ports replace the task's rules, and only those.
	moved := PortMapping{Protocol: "tcp", Published: 8081, Target: 80}
	tn.setup("task-a", atts, moved)
	changed := tn.hostState()
	owner, bridge := taskOwner("task-a"), bridgeOwner(bridgeName("front"))
	if changed.rules[owner] != before.rules[owner] || slices.Equal(changed.handles[owner], before.handles[owner]) ||
		!slices.Equal(changed.handles[bridge], before.handles[bridge]) {
		t.Errorf("Setup with port 8081 instead of 8080:\nbefore %+v\nafter  %+v", before, changed)
	}
	tn.setup("task-a", atts, port)

	// Setup repairs a sandbox that lost its interface.
	withHandle(t, first.NetNSPath, func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		return h.LinkDel(eth0)
	})
	tn.setup("task-a", atts, port)
	serve(t, first.NetNSPath, ":80", "a")
	mustReach(t, b.NetNSPath, "tcp4", "10.0.1.2:80", "a")
	if got := tn.hostState(); !slices.Equal(before.veths, got.veths) {
		t.Errorf("veths after repair %v, want %v", got.veths, before.veths)
	}
}

// A bridge is checked once for a burst of tasks: one that someone removed meanwhile
// is made again, with its rules, by the next Setup on its network, which succeeds.
func TestSetupRemakesARemovedBridge(t *testing.T) {
	tn := newTestNode(t)
	front := testNetwork("front", "app_front", "10.0.1.0/24")
	a := tn.setup("task-a", []Attachment{attach(front, "10.0.1.2")})
	before := tn.hostState()
	withHandle(t, tn.hostNS, func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeName("front"))
		if err != nil {
			return err
		}
		return h.LinkDel(br)
	})
	h, err := openHost(tn.hostNS)
	if err != nil {
		t.Fatal(err)
	}
	err = h.deleteRules(bridgeOwner(bridgeName("front")))
	h.close()
	if err != nil {
		t.Fatal(err)
	}

	b := tn.setup("task-b", []Attachment{attach(front, "10.0.1.3")})
	after := tn.hostState()
	owner := bridgeOwner(bridgeName("front"))
	if !slices.Equal(after.bridges, before.bridges) || after.rules[owner] != before.rules[owner] {
		t.Fatalf("after the bridge was removed, Setup left bridges %v and %d of its rules, want %v and %d",
			after.bridges, after.rules[owner], before.bridges, before.rules[owner])
	}
	// task-a's veth lost its master with the old bridge; its next Setup attaches it
	// to the new one.
	tn.setup("task-a", []Attachment{attach(front, "10.0.1.2")})
	serve(t, a.NetNSPath, ":80", "a")
	mustReach(t, b.NetNSPath, "tcp4", "10.0.1.2:80", "a")
}

func TestConcurrentSetupAndTeardown(t *testing.T) {
	tn := newTestNode(t)
	nets := []Network{testNetwork("front", "app_front", "10.0.1.0/24"), testNetwork("back", "app_back", "10.0.2.0/24")}
	const tasks = 8
	id := func(i int) string { return fmt.Sprintf("task-%d", i) }
	run := func(fn func(i int) error) {
		t.Helper()
		errc := make(chan error, tasks)
		for i := range tasks {
			go func() { errc <- fn(i) }()
		}
		for range tasks {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	run(func(i int) error {
		nw := nets[i%2]
		addr := nw.Subnet.Addr().As4()
		addr[3] = byte(10 + i)
		_, err := tn.n.Setup(t.Context(), id(i), "", []Attachment{{Network: nw, Addr: netip.PrefixFrom(netip.AddrFrom4(addr), 24)}}, nil)
		return err
	})
	st := tn.hostState()
	if len(st.bridges) != 2 || len(st.veths) != tasks || st.rules[bridgeOwner(bridgeName("front"))] != len(bridgeRules(bridgeName("front"), nets[0]).rules) {
		t.Fatalf("after concurrent setups: %+v", st)
	}
	serve(t, tn.n.Sandbox(id(2)).NetNSPath, ":80", "task-2")
	mustReach(t, tn.n.Sandbox(id(0)).NetNSPath, "tcp4", "10.0.1.12:80", "task-2")

	run(func(i int) error { return tn.n.Teardown(t.Context(), id(i)) })
	if err := tn.n.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := tn.hostState(); len(st.bridges) != 0 || len(st.veths) != 0 || st.table {
		t.Errorf("after concurrent teardowns and prune: %+v", st)
	}
}

// A stack's network is removed and a new one is given the same subnet (the address
// pool hands it out again): the node reaches the new network's tasks, directly and
// through a published port, whatever became of the old network's bridge. Two
// bridges holding one subnet give two routes for it, and the old one wins.
func TestSubnetReusedByANewNetwork(t *testing.T) {
	for _, tc := range []struct {
		name string
		// leave is what happens to the old network's task before the new
		// network's task is set up.
		leave func(tn *testNode)
	}{
		{"last task torn down", func(tn *testNode) { tn.teardown("task-old") }},
		// The veths went before Teardown came (a crash, a node rebooted): it
		// finds no bridge of the task's, and leaves the bridge as an older
		// berth did, with its rules.
		{"veths gone before teardown", func(tn *testNode) {
			withHandle(tn.t, tn.hostNS, func(h *netlink.Handle) error {
				veth, err := h.LinkByName(taskVethPrefix("task-old") + "0")
				if err != nil {
					return err
				}
				return h.LinkDel(veth)
			})
			tn.teardown("task-old")
			if st := tn.hostState(); len(st.bridges) != 1 {
				tn.t.Fatalf("bridges %v, want the old network's left", st.bridges)
			}
		}},
		{"old task not torn down yet", func(*testNode) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNode(t)
			client := tn.addClient()
			old := testNetwork("k3j9x2m1q8w4e5r6t7y8u9i0o", "dpsick_default", "10.0.2.0/24")
			reused := testNetwork("p7c2v9n4b1z6a5s4d3f2g1h0j", "dpsick_default", "10.0.2.0/24")
			tn.setup("task-old", []Attachment{attach(old, "10.0.2.2")})
			tc.leave(tn)

			sb := tn.setup("task-new", []Attachment{attach(reused, "10.0.2.3")}, PortMapping{Protocol: "tcp", Published: 8080, Target: 80})
			serve(t, sb.NetNSPath, ":80", "new")
			mustReach(t, tn.hostNS, "tcp4", "10.0.2.3:80", "new")
			mustReach(t, client, "tcp4", "10.99.0.1:8080", "new")
			st := tn.hostState()
			if !slices.Equal(st.bridges, []string{bridgeName(reused.ID)}) || st.rules[bridgeOwner(bridgeName(old.ID))] != 0 {
				t.Errorf("bridges %v and rules %v, want only %s's", st.bridges, st.rules, bridgeName(reused.ID))
			}

			// The old task's late Teardown leaves the new network alone.
			tn.teardown("task-old")
			mustReach(t, tn.hostNS, "tcp4", "10.0.2.3:80", "new")
		})
	}
}

// A network's subnet changes (its file asks for another): its bridge drops the
// former one, which a new network may then be given, without the network losing its
// bridge to the new one.
func TestNetworkSubnetChanged(t *testing.T) {
	tn := newTestNode(t)
	before := testNetwork("f8m2k4q9x1c7v3b6n5z0p2w8r", "app_front", "10.0.1.0/24")
	after := testNetwork(before.ID, before.Name, "10.0.3.0/24")
	other := testNetwork("q4w8e2r6t0y3u7i1o5p9a2s6d", "app_other", "10.0.1.0/24")
	a := tn.setup("task-a", []Attachment{attach(before, "10.0.1.2")})
	b := tn.setup("task-b", []Attachment{attach(after, "10.0.3.2")})
	c := tn.setup("task-c", []Attachment{attach(other, "10.0.1.2")})
	serve(t, a.NetNSPath, ":80", "a")
	serve(t, b.NetNSPath, ":80", "b")
	serve(t, c.NetNSPath, ":80", "c")

	mustReach(t, tn.hostNS, "tcp4", "10.0.3.2:80", "b")
	mustReach(t, tn.hostNS, "tcp4", "10.0.1.2:80", "c")
	withHandle(t, tn.hostNS, func(h *netlink.Handle) error {
		br, err := h.LinkByName(bridgeName(before.ID))
		if err != nil {
			return err
		}
		addrs, err := h.AddrList(br, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.3.1/24" {
			t.Errorf("bridge %s has addresses %v, want 10.0.3.1/24 only", br.Attrs().Name, addrs)
		}
		return nil
	})
}
