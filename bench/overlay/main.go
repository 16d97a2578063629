// Command overlay measures task-to-task TCP throughput across two nodes over
// berth's VXLAN overlay (task veth, bridge, VXLAN device, underlay, and back),
// against bare kernel VXLAN between the same two node namespaces set up by hand,
// and against the veth underlay itself, in one run, rounds interleaved so that
// the machine's load weighs on all three alike. It needs root and iperf3.
//
// The nodes are network namespaces of its own (named berth-ovl-<pid>-*) joined by
// veths to a bridge in a third; addresses are in 198.18.0.0/24. It removes them
// when it ends.
//
// It also times Apply on a node whose view has many endpoints on other nodes: the
// first, and then with one endpoint replaced by another, which must cost what
// changed, not the view's size.
//
//	go run ./bench/overlay [-rounds 5] [-seconds 5] [-endpoints 2000] [-no-br-netfilter]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthd/berth/netstack"
	"github.com/berthd/berth/netstack/ipam"
)

func main() {
	rounds := flag.Int("rounds", 5, "Measurements of each path, interleaved")
	seconds := flag.Int("seconds", 5, "Length of one iperf3 measurement")
	endpoints := flag.Int("endpoints", 2000, "Remote endpoints in the view whose Apply is timed")
	noBrNetfilter := flag.Bool("no-br-netfilter", false, "Turn bridge-nf-call-iptables off in the nodes, to see what br_netfilter costs berth's bridged path")
	flag.Parse()
	if *rounds < 1 || *seconds < 1 || *endpoints < 1 {
		fmt.Fprintln(os.Stderr, "overlay: -rounds, -seconds and -endpoints must be at least 1")
		os.Exit(2)
	}
	if err := run(*rounds, *seconds, *endpoints, *noBrNetfilter); err != nil {
		fmt.Fprintln(os.Stderr, "overlay:", err)
		os.Exit(2)
	}
}

// lab is the two nodes and what runs on them.
type lab struct {
	prefix string
	root   string
	nodes  [2]string // namespace names
	under  [2]netip.Addr
	stacks [2]*netstack.Netstack
	tasks  [2]netstack.Sandbox
}

func run(rounds, seconds, applyEndpoints int, noBrNetfilter bool) error {
	if _, err := exec.LookPath("iperf3"); err != nil {
		return errors.New("iperf3 is not installed (scripts/install-test-deps.sh installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "berth-bench-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	l := &lab{prefix: fmt.Sprintf("berth-ovl-%d", os.Getpid()), root: root}
	defer l.cleanup(ctx)
	if err := l.underlay(); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	if noBrNetfilter {
		if err := l.brNetfilterOff(ctx); err != nil {
			return err
		}
	}
	if err := l.bareVXLAN(); err != nil {
		return fmt.Errorf("bare VXLAN: %w", err)
	}
	if err := l.berth(ctx); err != nil {
		return fmt.Errorf("berth overlay: %w", err)
	}
	if err := l.throughput(ctx, rounds, seconds); err != nil {
		return err
	}
	return l.applyCost(ctx, applyEndpoints)
}

// throughput measures the three paths in interleaved rounds and prints each
// measurement, then the medians: of throughput, of the ratio to bare VXLAN within
// a round (the machine's load changes less within one than across), and of
// throughput per CPU (iperf3's sender and receiver processes, in percent of one
// CPU: a measure the other sessions' load weighs on less).
func (l *lab) throughput(ctx context.Context, rounds, seconds int) error {
	paths := []struct {
		name             string
		serverNS, client string
		addr             string
	}{
		{"veth underlay", l.nsPath(1), l.nsPath(0), l.under[1].String()},
		{"bare kernel VXLAN", l.nsPath(1), l.nsPath(0), "10.250.0.2"},
		{"berth overlay", l.tasks[1].NetNSPath, l.tasks[0].NetNSPath, "10.251.0.3"},
	}
	const bare = 1
	gbps, ratio, perCPU := make([][]float64, len(paths)), make([][]float64, len(paths)), make([][]float64, len(paths))
	for r := range rounds {
		round := make([]iperfResult, len(paths))
		for i, p := range paths {
			res, err := iperf(ctx, p.serverNS, p.client, p.addr, seconds)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			round[i] = res
		}
		for i, p := range paths {
			res := round[i]
			gbps[i] = append(gbps[i], res.gbps)
			ratio[i] = append(ratio[i], res.gbps/round[bare].gbps)
			perCPU[i] = append(perCPU[i], res.gbps/(res.cpu/100))
			fmt.Printf("round %d  %-18s %6.2f Gb/s  %4.0f%% of bare VXLAN  CPU %4.0f%%\n", r+1, p.name, res.gbps, 100*res.gbps/round[bare].gbps, res.cpu)
		}
	}
	fmt.Printf("\n%-18s %10s %16s %16s\n", "medians", "Gb/s", "of bare VXLAN", "Gb/s per CPU")
	for i, p := range paths {
		fmt.Printf("%-18s %10.2f %15.0f%% %16.2f\n", p.name, median(gbps[i]), 100*median(ratio[i]), median(perCPU[i]))
	}
	return nil
}

func (l *lab) ns(i int) string     { return l.prefix + "-n" + strconv.Itoa(i) }
func (l *lab) nsPath(i int) string { return "/run/netns/" + l.ns(i) }

// underlay makes the underlay namespace with its bridge and the two nodes joined
// to it (ul0, MTU 1500).
func (l *lab) underlay() error {
	u := l.prefix + "-u"
	cmds := [][]string{
		{"netns", "add", u},
		{"-n", u, "link", "add", "ubr", "type", "bridge"},
		{"-n", u, "link", "set", "ubr", "up"},
	}
	for i := range l.nodes {
		l.nodes[i] = l.ns(i)
		l.under[i] = netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
		port := "p" + strconv.Itoa(i)
		cmds = append(cmds,
			[]string{"netns", "add", l.nodes[i]},
			[]string{"-n", l.nodes[i], "link", "set", "lo", "up"},
			[]string{"-n", l.nodes[i], "link", "add", "ul0", "type", "veth", "peer", "name", port, "netns", u},
			[]string{"-n", u, "link", "set", port, "master", "ubr", "up"},
			[]string{"-n", l.nodes[i], "addr", "add", l.under[i].String() + "/24", "dev", "ul0"},
			[]string{"-n", l.nodes[i], "link", "set", "ul0", "up"},
		)
	}
	return ipAll(cmds)
}

// brNetfilterOff stops bridged IPv4 traffic in the nodes from going through
// netfilter (and conntrack), where the br_netfilter module is loaded.
func (l *lab) brNetfilterOff(ctx context.Context) error {
	for i := range l.nodes {
		out, err := exec.CommandContext(ctx, "nsenter", "--net="+l.nsPath(i), "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=0").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bridge-nf-call-iptables off: %w: %s", err, out)
		}
	}
	return nil
}

// bareVXLAN joins the two node namespaces by a VXLAN device each, as berth's are
// (no learning, proxy ARP, static entries) but with the address on the device
// itself: no bridge, no veth.
func (l *lab) bareVXLAN() error {
	for i, node := range l.nodes {
		peer := 1 - i
		self, other := netip.MustParseAddr("10.250.0."+strconv.Itoa(i+1)), netip.MustParseAddr("10.250.0."+strconv.Itoa(peer+1))
		if err := ipAll([][]string{
			{"-n", node, "link", "add", "vxb", "address", ipam.MAC(self).String(), "mtu", "1450", "type", "vxlan",
				"id", "9000", "local", l.under[i].String(), "dstport", "4789", "nolearning", "proxy"},
			{"-n", node, "addr", "add", self.String() + "/24", "dev", "vxb"},
			{"-n", node, "link", "set", "vxb", "up"},
			{"-n", node, "neigh", "add", other.String(), "lladdr", ipam.MAC(other).String(), "dev", "vxb", "nud", "permanent"},
		}); err != nil {
			return err
		}
		if err := bridgeFDB(node, ipam.MAC(other).String(), l.under[peer].String()); err != nil {
			return err
		}
	}
	return nil
}

// berth makes a Netstack per node, a task on each on one overlay network, and
// applies each node's view.
func (l *lab) berth(ctx context.Context) error {
	nw := netstack.Network{ID: "ovlbench0123456789abcdef", Name: "bench_ov", Subnet: netip.MustParsePrefix("10.251.0.0/24"), VNI: 4242}
	nw.Gateway = ipam.Gateway(nw.Subnet)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var eps []netstack.Endpoint
	for i := range l.nodes {
		addr := netip.AddrFrom4([4]byte{10, 251, 0, byte(i + 2)})
		eps = append(eps, netstack.Endpoint{Network: nw.ID, TaskID: "bench-t" + strconv.Itoa(i), NodeID: l.nodes[i], Addr: addr, Node: l.under[i]})
	}
	for i := range l.nodes {
		n, err := netstack.New(ctx, netstack.WithRoot(filepath.Join(l.root, l.nodes[i])), netstack.WithHostNetNS(l.nsPath(i)), netstack.WithLogger(logger))
		if err != nil {
			return err
		}
		l.stacks[i] = n
		view := netstack.View{Underlay: l.under[i], Networks: []netstack.Network{nw}, Endpoints: eps}
		if err := n.Apply(ctx, view); err != nil {
			return err
		}
		att := netstack.Attachment{Network: nw, Addr: netip.PrefixFrom(eps[i].Addr, nw.Subnet.Bits())}
		if l.tasks[i], err = n.Setup(ctx, eps[i].TaskID, "", []netstack.Attachment{att}, nil); err != nil {
			return err
		}
		if err := n.Apply(ctx, view); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) cleanup(ctx context.Context) {
	for i, n := range l.stacks {
		if n == nil {
			continue
		}
		if err := n.Teardown(ctx, "bench-t"+strconv.Itoa(i)); err != nil {
			fmt.Fprintln(os.Stderr, "overlay: cleanup:", err)
		}
		n.Close()
	}
	for _, ns := range []string{l.ns(0), l.ns(1), l.prefix + "-u"} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// iperf runs an iperf3 server in one namespace and a client in another for the
// given seconds, and returns what the server received, in Gb/s.
// iperfResult is one measurement: throughput, and the CPU that iperf3's two
// processes used, in percent of one CPU.
type iperfResult struct{ gbps, cpu float64 }

func iperf(ctx context.Context, serverNS, clientNS, addr string, seconds int) (iperfResult, error) {
	srv := exec.CommandContext(ctx, "nsenter", "--net="+serverNS, "iperf3", "-s", "-1", "-B", addr)
	if err := srv.Start(); err != nil {
		return iperfResult{}, err
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	// The server takes a moment to listen: the client tries again until it does
	// (iperf3 -J reports a refused connection in its output, exiting 0).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := iperfClient(ctx, clientNS, addr, seconds)
		if err == nil || time.Now().After(deadline) {
			return res, err
		}
	}
}

func iperfClient(ctx context.Context, clientNS, addr string, seconds int) (iperfResult, error) {
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+clientNS, "iperf3", "-J", "-c", addr, "-t", strconv.Itoa(seconds)).Output()
	if err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 client to %s: %w: %s", addr, err, out)
	}
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			CPU struct {
				Host   float64 `json:"host_total"`
				Remote float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if res.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3 client to %s: %s", addr, res.Error)
	}
	return iperfResult{gbps: res.End.SumReceived.BitsPerSecond / 1e9, cpu: res.End.CPU.Host + res.End.CPU.Remote}, nil
}

// applyCost times node 0's Apply of a view with n endpoints on node 1 on a network
// of its own (node 0 has its own endpoint on it, so Apply makes its bridge): the
// first Apply, then Applies that each replace one endpoint.
func (l *lab) applyCost(ctx context.Context, n int) error {
	nw := netstack.Network{ID: "ovlapply0123456789abcdef", Name: "bench_apply", Subnet: netip.MustParsePrefix("10.252.0.0/16"), VNI: 4243}
	nw.Gateway = ipam.Gateway(nw.Subnet)
	eps := []netstack.Endpoint{{Network: nw.ID, NodeID: l.nodes[0], Addr: netip.MustParseAddr("10.252.255.250"), Node: l.under[0]}}
	remote := func(i int) netstack.Endpoint {
		return netstack.Endpoint{Network: nw.ID, TaskID: "remote-" + strconv.Itoa(i), NodeID: l.nodes[1],
			Addr: netip.AddrFrom4([4]byte{10, 252, byte((i + 2) >> 8), byte(i + 2)}), Node: l.under[1]}
	}
	for i := range n {
		eps = append(eps, remote(i))
	}
	apply := func() (time.Duration, error) {
		v := netstack.View{Underlay: l.under[0], Networks: []netstack.Network{nw}, Endpoints: eps}
		start := time.Now()
		err := l.stacks[0].Apply(ctx, v)
		return time.Since(start), err
	}
	first, err := apply()
	if err != nil {
		return err
	}
	var changed []float64
	for i := range min(21, n) {
		eps[1+i] = remote(n + i)
		d, err := apply()
		if err != nil {
			return err
		}
		changed = append(changed, float64(d.Microseconds())/1000)
	}
	fmt.Printf("\nApply, %d endpoints on another node: first %.1f ms; one endpoint replaced: median %.1f ms, max %.1f ms (%d Applies)\n",
		n, float64(first.Microseconds())/1000, median(changed), slices.Max(changed), len(changed))
	// Its bridge goes with the node's endpoint (and the other network's
	// entries, which cleanup's teardown would take anyway).
	return l.stacks[0].Apply(ctx, netstack.View{Underlay: l.under[0]})
}

func ipAll(cmds [][]string) error {
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(c, " "), err, out)
		}
	}
	return nil
}

func bridgeFDB(ns, mac, dst string) error {
	args := []string{"-n", ns, "fdb", "add", mac, "dev", "vxb", "dst", dst, "self", "permanent"}
	if out, err := exec.Command("bridge", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("bridge %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
