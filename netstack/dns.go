package netstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/dns"
)

// dnsListenAddr is where a task finds its resolver: Docker's address, which
// images and tools expect, on the task's loopback interface (127.0.0.0/8 is all
// local there).
var dnsListenAddr = netip.MustParseAddrPort("127.0.0.11:53")

// dnsState is the embedded resolver's share of a Netstack: the index of the last
// View applied, which every task's resolver reads, and the resolvers serving.
type dnsState struct {
	index atomic.Pointer[dns.Index]
	// mu guards servers, by task ID, and the start and stop of dialer, which the
	// first server starts and Close stops; forwards read it without the lock.
	mu      sync.Mutex
	servers map[string]*taskDNS
	dialer  atomic.Pointer[hostDialer]
}

// taskDNS is one task's resolver being served, with what it was started with.
type taskDNS struct {
	server    *dns.Server
	networks  []string
	upstreams []netip.AddrPort
	// netns is the inode of the namespace its sockets are in: a namespace
	// made again at the same path (its mount was lost) needs a new resolver.
	netns uint64
}

// SetupOption adds to what Setup makes for a task.
type SetupOption func(*setupConfig)

type setupConfig struct {
	dns DNSConfig
}

// WithDNS gives the task its service's DNS settings (dns, dns_search, dns_opt).
func WithDNS(c DNSConfig) SetupOption { return func(s *setupConfig) { s.dns = c } }

// dnsServersPath is the file that lists the servers the task's resolver forwards
// to (its service's dns); none means the node's. A restarted daemon reads it.
func (n *Netstack) dnsServersPath(taskID string) string {
	return filepath.Join(n.tasksDir(), taskID, "dns-servers")
}

// writeDNSServers records the servers of the task's service.
func (n *Netstack) writeDNSServers(taskID string, servers []netip.Addr) error {
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.String() + "\n")
	}
	return writeFileIfChanged(n.dnsServersPath(taskID), []byte(b.String()))
}

// upstreams are where the task's resolver forwards names that are not the
// services': its service's servers, else the node's.
func (n *Netstack) upstreams(taskID string) ([]netip.AddrPort, error) {
	data, err := os.ReadFile(n.dnsServersPath(taskID))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the task's dns servers: %w", err)
	}
	var servers []netip.Addr
	for _, f := range strings.Fields(string(data)) {
		addr, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("the task's dns servers: %w", err)
		}
		servers = append(servers, addr)
	}
	if len(servers) == 0 {
		conf, err := n.nodeResolvConf()
		if err != nil {
			return nil, err
		}
		servers = conf.nameservers
	}
	out := make([]netip.AddrPort, len(servers))
	for i, s := range servers {
		out[i] = netip.AddrPortFrom(s, 53)
	}
	return out, nil
}

// applyDNS swaps in the index of the view's names: the resolvers of every task
// answer from it from their next query on.
func (n *Netstack) applyDNS(_ context.Context, v View) error {
	services := make([]dns.Service, len(v.Services))
	for i, s := range v.Services {
		services[i] = dns.Service{ID: s.ID, Name: s.Name, ShortName: s.ShortName, DNSRR: s.DNSRR, VIPs: s.VIPs, Aliases: s.Aliases}
	}
	endpoints := make([]dns.Endpoint, len(v.Endpoints))
	for i, e := range v.Endpoints {
		endpoints[i] = dns.Endpoint{Network: e.Network, ServiceID: e.ServiceID, Addr: e.Addr, Ready: e.Ready}
	}
	n.dns.index.Store(dns.Build(services, endpoints))
	return nil
}

// startDNS serves the task's resolver on 127.0.0.11:53 in its namespace, unless
// it serves already as asked.
func (n *Netstack) startDNS(_ context.Context, taskID string, networks []string) error {
	upstreams, err := n.upstreams(taskID)
	if err != nil {
		return err
	}
	nsPath := n.Sandbox(taskID).NetNSPath
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return fmt.Errorf("stat network namespace %s: %w", nsPath, err)
	}
	n.dns.mu.Lock()
	old, err := n.startDNSLocked(taskID, nsPath, st.Ino, networks, upstreams)
	n.dns.mu.Unlock()
	// Closed without the lock: its queries under way may be forwarding, which
	// reads the dialer.
	if old != nil {
		old.server.Close()
	}
	return err
}

// startDNSLocked starts the task's resolver, unless one serves already as
// asked, and returns the one it replaces. Call it with dns.mu held.
func (n *Netstack) startDNSLocked(taskID, nsPath string, ino uint64, networks []string, upstreams []netip.AddrPort) (old *taskDNS, err error) {
	old = n.dns.servers[taskID]
	if old != nil && old.netns == ino && slices.Equal(old.networks, networks) && slices.Equal(old.upstreams, upstreams) {
		return nil, nil
	}
	if n.dns.dialer.Load() == nil {
		d, err := startHostDialer(n.hostNS)
		if err != nil {
			return nil, err
		}
		n.dns.dialer.Store(d)
	}
	// The new resolver's ports take over port 53 before the old one goes.
	pc, l, err := listenInNetNS(nsPath)
	if err != nil {
		return nil, err
	}
	r := &dns.Resolver{
		Index:     n.dns.index.Load,
		Networks:  slices.Clone(networks),
		Forwarder: dns.Forwarder{Dial: n.dialHost, Upstreams: upstreams},
		Logger:    n.logger.With("task", taskID),
	}
	if n.dns.servers == nil {
		n.dns.servers = map[string]*taskDNS{}
	}
	n.dns.servers[taskID] = &taskDNS{server: dns.Serve(r, pc, l), networks: r.Networks, upstreams: upstreams, netns: ino}
	return old, nil
}

// stopDNS stops the task's resolver, closing its sockets.
func (n *Netstack) stopDNS(taskID string) {
	n.dns.mu.Lock()
	t := n.dns.servers[taskID]
	delete(n.dns.servers, taskID)
	n.dns.mu.Unlock()
	if t != nil {
		t.server.Close()
	}
}

// closeDNS stops every task's resolver: the daemon's Close.
func (n *Netstack) closeDNS() {
	n.dns.mu.Lock()
	all, dialer := n.dns.servers, n.dns.dialer.Swap(nil)
	n.dns.servers = nil
	n.dns.mu.Unlock()
	for _, t := range all {
		t.server.Close()
	}
	if dialer != nil {
		dialer.stop()
	}
}

// listenInNetNS opens the resolver's UDP socket and TCP listener on 127.0.0.11
// in the namespace, on ports of the kernel's choosing, and leads port 53 to them:
// a socket belongs to the namespace of the thread that made it, and is then
// served from any goroutine.
func listenInNetNS(path string) (net.PacketConn, net.Listener, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	var pc net.PacketConn
	var l net.Listener
	ephemeral := netip.AddrPortFrom(dnsListenAddr.Addr(), 0).String()
	err = inNetNS(ns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", ephemeral); err != nil {
			return fmt.Errorf("listen on udp %s: %w", ephemeral, err)
		}
		if l, err = net.Listen("tcp4", ephemeral); err != nil {
			pc.Close()
			return fmt.Errorf("listen on tcp %s: %w", ephemeral, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	udpPort, tcpPort := pc.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port
	if err := redirectDNS(ns, uint16(udpPort), uint16(tcpPort)); err != nil {
		pc.Close()
		l.Close()
		return nil, nil, err
	}
	return pc, l, nil
}

// dialHost connects to an upstream resolver from the node's namespace, where its
// resolvers (loopback ones too) are. A UDP socket is made by the thread that
// stays there (connecting it sends nothing); a TCP connection, which waits for
// the upstream, on a thread of its own.
func (n *Netstack) dialHost(ctx context.Context, network, address string) (net.Conn, error) {
	if d := n.dns.dialer.Load(); d != nil && network == "udp" {
		return d.dial(ctx, network, address)
	}
	ns, err := netns.GetFromPath(n.hostNS)
	if err != nil {
		return nil, fmt.Errorf("open host network namespace %s: %w", n.hostNS, err)
	}
	defer ns.Close()
	var c net.Conn
	err = inNetNS(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// hostDialer makes sockets on a thread that stays in the node's namespace: a
// thread made for each forwarded query (inNetNS) costs more than the query.
type hostDialer struct {
	reqs       chan func()
	quit, done chan struct{}
}

// startHostDialer starts the dialer's thread in the namespace at path.
func startHostDialer(path string) (*hostDialer, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open host network namespace %s: %w", path, err)
	}
	d := &hostDialer{reqs: make(chan func()), quit: make(chan struct{}), done: make(chan struct{})}
	entered := make(chan error, 1)
	go func() {
		defer close(d.done)
		defer ns.Close()
		err := inNetNS(ns, func() error {
			entered <- nil
			for {
				select {
				case fn := <-d.reqs:
					fn()
				case <-d.quit:
					return nil
				}
			}
		})
		if err != nil {
			entered <- err
		}
	}()
	if err := <-entered; err != nil {
		return nil, fmt.Errorf("resolver's dialer: %w", err)
	}
	return d, nil
}

func (d *hostDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	var err error
	made := make(chan struct{})
	fn := func() {
		var nd net.Dialer
		c, err = nd.DialContext(ctx, network, address)
		close(made)
	}
	select {
	case d.reqs <- fn:
		<-made
		return c, err
	case <-d.quit:
		return nil, errors.New("resolver's dialer: stopped")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop ends the dialer's thread.
func (d *hostDialer) stop() {
	close(d.quit)
	<-d.done
}
