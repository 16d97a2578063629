package netstack

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// BenchmarkLoadBalancing compares, in one run, connections and throughput through
// a VIP with the same to the task's address, and requests through the routing
// mesh to a task on the node with requests routed by the node to the task's
// address. The mesh's path to a task on another node is bench/netconv's, on the
// multi-node lab.
//
//	sudo go test ./netstack/ -run '^$' -bench BenchmarkLoadBalancing -count 5
func BenchmarkLoadBalancing(b *testing.B) {
	tn := newTestNode(b)
	client := tn.addClient()
	app := testNetwork("lbbenchapp00000000000000e", "app_default", "10.0.7.0/24")
	ingress := testNetwork("lbbenchingress0000000000e", "ingress", "10.0.9.0/24")
	ingress.Ingress = true
	web := tn.setup("web-1", []Attachment{attach(ingress, "10.0.9.11"), attach(app, "10.0.7.11")}).NetNSPath
	caller := tn.setup("caller", []Attachment{attach(app, "10.0.7.2")}).NetNSPath
	// Each path has a server port of its own: a connection reusing the source
	// port of one that went another path (to the same server, with another TCP
	// timestamp offset) would meet the server's TIME_WAIT entry, which drops
	// its SYN (PAWS) until a retransmission a second later.
	serve(b, web, ":80", "web")
	serve(b, web, ":81", "web")
	serveTCP(b, web, ":5001", func(c net.Conn) { io.Copy(io.Discard, c) })
	// The client reaches the tasks' ingress addresses through the node.
	withHandle(b, client, func(h *netlink.Handle) error {
		return h.RouteAdd(&netlink.Route{Dst: ipNet(ingress.Subnet), Gw: net.ParseIP("10.99.0.1")})
	})
	tn.apply(benchView(app, ingress))

	b.Run("connect", func(b *testing.B) {
		benchPaths(b, caller, "conn/s", dialPath("direct", "10.0.7.11:81"), dialPath("vip", "10.0.7.100:80"))
	})
	b.Run("mesh", func(b *testing.B) {
		benchPaths(b, client, "req/s", dialPath("direct", "10.0.9.11:81"),
			dialPath("local", "10.99.0.1:8080"))
	})
	b.Run("throughput", func(b *testing.B) {
		b.SetBytes(streamBlock)
		benchPaths(b, caller, "MB/s", streamPath("direct", "10.0.7.11:5001"), streamPath("vip", "10.0.7.100:5001"))
	})
}

// benchView has service web behind VIP 10.0.7.100 with task web-1, publishing 8080
// in ingress mode to web-1 (on this node).
func benchView(app, ingress Network) View {
	node := netip.MustParseAddr("198.18.0.1")
	return View{
		Underlay: node,
		Networks: []Network{app, ingress},
		Services: []Service{
			{ID: "svc-web", Name: "bench_web", VIPs: map[string]netip.Addr{app.ID: netip.MustParseAddr("10.0.7.100")},
				IngressPorts: []PortMapping{{Protocol: "tcp", Published: 8080, Target: 80}}},
		},
		Endpoints: []Endpoint{
			{Network: app.ID, TaskID: "web-1", ServiceID: "svc-web", Node: node, Addr: netip.MustParseAddr("10.0.7.11"), Ready: true},
			{Network: ingress.ID, TaskID: "web-1", ServiceID: "svc-web", Node: node, Addr: netip.MustParseAddr("10.0.9.11"), Ready: true},
		},
	}
}

// benchPath is one way to the same server: open prepares it in the namespace of
// the benchmark's thread, op takes it once, close ends it.
type benchPath struct {
	name  string
	open  func() error
	op    func() error
	close func()
}

// dialPath is a request: a connection to addr whose server writes a line and
// closes it, as HTTP/1.0 would.
func dialPath(name, addr string) benchPath {
	return benchPath{name: name, open: func() error { return nil }, close: func() {}, op: func() error {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = io.ReadAll(c)
		return err
	}}
}

// streamBlock is what a stream path sends per operation: enough that its time is
// the connection's throughput, not the scheduling of its reader.
const streamBlock = 4 << 20

// streamPath writes streamBlock bytes, 64 KiB at a time, on one connection to
// addr.
func streamPath(name, addr string) benchPath {
	chunk := make([]byte, 64<<10)
	var c net.Conn
	return benchPath{
		name: name,
		open: func() (err error) {
			c, err = net.Dial("tcp4", addr)
			return err
		},
		op: func() error {
			for range streamBlock / len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		},
		close: func() { c.Close() },
	}
}

// benchPaths takes every path once per iteration, in turn, from the namespace at
// nsPath, and reports each path's rate (unit per second, MB/s for bytes) and its
// ratio to the first path's. Taking them in turn exposes them to the same load
// of a shared machine: their ratio holds when the rates swing.
func benchPaths(b *testing.B, nsPath, unit string, paths ...benchPath) {
	spent := make([]time.Duration, len(paths))
	err := inNetNSPath(nsPath, func() error {
		for _, p := range paths {
			if err := p.open(); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			defer p.close()
		}
		b.ResetTimer()
		for range b.N {
			for i, p := range paths {
				start := time.Now()
				if err := p.op(); err != nil {
					return fmt.Errorf("%s: %w", p.name, err)
				}
				spent[i] += time.Since(start)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for i, p := range paths {
		rate := float64(b.N) / spent[i].Seconds()
		if unit == "MB/s" {
			rate *= streamBlock / 1e6
		}
		b.ReportMetric(rate, p.name+"-"+unit)
		if i > 0 {
			b.ReportMetric(spent[0].Seconds()/spent[i].Seconds(), p.name+"/"+paths[0].name)
		}
	}
}

// BenchmarkVIPApply times an Apply that changes one service's backends, seen by
// 50 tasks of the node: a commit in each of their namespaces.
//
//	sudo go test ./netstack/ -run '^$' -bench BenchmarkVIPApply -benchtime 20x
func BenchmarkVIPApply(b *testing.B) {
	tn := newTestNode(b)
	app := testNetwork("lbbenchapply000000000000g", "app_default", "10.0.7.0/24")
	const tasks = 50
	for i := range tasks {
		tn.setup(fmt.Sprintf("task-%d", i), []Attachment{attach(app, fmt.Sprintf("10.0.7.%d", 20+i))})
	}
	views := []View{vipTestView(app, "web-1", "web-2"), vipTestView(app, "web-1", "web-2", "web-3")}
	tn.apply(views[1])
	b.ResetTimer()
	for i := range b.N {
		tn.apply(views[i%2])
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/apply")
}
