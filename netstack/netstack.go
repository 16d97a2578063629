// Package netstack is a node's share of berth's networking: a network namespace per
// task, a bridge per network, a veth pair per attachment, the task's /etc/hosts and
// /etc/resolv.conf, the nftables rules that isolate networks, masquerade their
// egress and publish host-mode ports over IPv4, and the relays that publish those
// ports over IPv6, as Docker's docker-proxy does: tasks have IPv4 addresses only, so
// a relay in the daemon takes the connection and opens another to the task, which
// sees it come from the node, not from the client.
//
// Everything netstack makes on a node can be found again from the node alone, so
// that an agent restarted after a crash cleans up what it no longer needs:
//
//   - <root>/netns/<task>: the task's namespace, an nsfs bind mount that outlives the
//     process that made it; containerd joins it by path through the OCI spec;
//   - <root>/tasks/<task>/hosts and resolv.conf, bind-mounted by the agent;
//   - <root>/tasks/<task>/relays.json, the task's relays, which die with the process
//     that runs them: New starts them again;
//   - <root>/tasks/<task>/networks and dns-servers, from which New starts the task's
//     steps again (its resolver, listening in the task's namespace, whose table
//     "inet berth-dns" leads 127.0.0.11:53 there);
//   - bridges named "bb-" + 12 characters of the network ID, carrying the gateway,
//     one per network that has a task on the node (the last task's Teardown takes
//     the bridge with it);
//   - host ends of veth pairs named "bv" + a hash of the task ID + the attachment's
//     index, with the task ID as their interface alias;
//   - on an overlay network's bridge, a VXLAN device named "bx-" + the same 12
//     characters, with the forwarding and neighbour entries of the network's
//     endpoints on other nodes, and the node's own endpoint on the network (the
//     ingress network's) as a host-length address of the bridge, which keeps the
//     bridge when no task is on it (overlay.go);
//   - the nftables table "inet berth", whose rules carry a comment naming the bridge
//     or the task they belong to.
//
// Bridges, rules and the relays' sockets live in the node's ("host") network
// namespace, which tests replace with one of their own (WithHostNetNS).
package netstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthd/berth/netstack/ipam"
)

// ErrInvalid reports a Setup request that cannot be carried out as asked (a bad task
// ID, an address outside its network, a port on a task with no reachable network).
var ErrInvalid = errors.New("invalid network request")

// Network is a stack network as a node sees it.
type Network struct {
	ID, Name string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	// Internal networks reach nothing but themselves: no default route, no
	// masquerade, no traffic to or from other interfaces.
	Internal bool
	// VNI is an overlay network's VXLAN network identifier: its bridge gets a
	// VXLAN device that joins it to the same network's bridges on other nodes.
	// Zero for a network local to the node.
	VNI uint32
	// Ingress is the routing mesh's network: published ports reach tasks on
	// any node over it.
	Ingress bool
}

// String names the network in messages.
func (nw Network) String() string {
	if nw.Name == "" {
		return nw.ID
	}
	return nw.Name + " (" + nw.ID + ")"
}

// Attachment is a task's address on one network.
type Attachment struct {
	Network Network
	// Addr is the task's address with the subnet's length (10.0.1.5/24).
	Addr netip.Prefix
	// MAC is the task's hardware address; nil derives it from Addr (ipam.MAC).
	MAC net.HardwareAddr
	// Aliases are names the task's /etc/hosts gives Addr besides the hostname.
	Aliases []string
}

// PortMapping publishes a task's port on the node it runs on (host mode).
type PortMapping struct {
	Protocol string // "tcp" or "udp"
	// HostIP restricts the mapping to one of the node's addresses; the zero Addr
	// means all of them.
	HostIP    netip.Addr
	Published uint16
	Target    uint16
}

// Sandbox is what the agent hands to containerd for a task.
type Sandbox struct {
	NetNSPath      string
	HostsPath      string
	ResolvConfPath string
}

// Netstack programs one node's networking. Its methods may be called concurrently:
// different tasks' sandboxes are set up and torn down at once, since most of the
// time a sandbox takes is the kernel waiting (for RCU grace periods, as veths move
// between namespaces and nftables commits), not CPU.
type Netstack struct {
	root       string
	hostNS     string
	resolvConf string
	logger     *slog.Logger

	// mu is shared by Setup and Teardown, and held alone by Sandboxes and Prune,
	// which look at every task's share: a bridge must not be pruned while a Setup
	// attaches to it.
	mu sync.RWMutex
	// sharedMu serializes what reads, then changes, the host namespace's shared
	// state: making a bridge, which two tasks of a new network would both try, and
	// nftables rules, whose listing a concurrent commit could make inconsistent.
	sharedMu sync.Mutex
	// bridges are the bridges (with their rules) this Netstack made or checked
	// lately, by network ID, guarded by sharedMu: a burst of tasks on one network
	// checks its bridge once, not at every task (netlink and nftables round trips,
	// each taking the kernel's rtnl lock).
	bridges map[string]checkedBridge
	// overlay is the node's underlay as the last Apply found it, guarded by
	// sharedMu: overlay networks' bridges get their VXLAN devices from it.
	overlay underlay
	// tasks serializes the operations on one task's sandbox.
	tasks taskLocks
	// relays are the tasks' running relays of published ports (over IPv6 and on
	// 127.0.0.1), by task ID, guarded by relaysMu; a task's entry changes only
	// under its task lock, or when another task takes its ports over.
	relaysMu sync.Mutex
	relays   map[string]*taskRelays
	// noIPv6 says once that relays found no IPv6 in the host namespace.
	noIPv6 sync.Once
	// dns is the tasks' embedded resolver.
	dns dnsState
	// lb is the state of the VIPs and the routing mesh.
	lb loadBalancers
}

// checkedBridge is a bridge as ensureBridge last left it.
type checkedBridge struct {
	network Network
	link    netlink.Link
	at      time.Time
}

// bridgeRecheck is how long a checked bridge is trusted: long enough for a burst of
// tasks, short enough that a bridge or rules someone removed come back soon.
const bridgeRecheck = 10 * time.Second

// bridge returns the network's bridge, making or repairing it unless it was
// checked within bridgeRecheck (trusted). Call it with sharedMu held.
func (n *Netstack) bridge(host *hostNS, nw Network) (link netlink.Link, trusted bool, err error) {
	if c, ok := n.bridges[nw.ID]; ok && c.network == nw && time.Since(c.at) < bridgeRecheck {
		return c.link, true, nil
	}
	link, removed, err := host.ensureBridge(nw, n.overlay)
	for _, name := range removed {
		n.logger.Info("removed a stale bridge holding the subnet of a new network", "interface", name, "network", nw.String(), "subnet", nw.Subnet.String())
	}
	for id := range n.bridges {
		if slices.Contains(removed, bridgeName(id)) {
			delete(n.bridges, id)
		}
	}
	if err != nil {
		delete(n.bridges, nw.ID)
		return nil, false, err
	}
	if n.bridges == nil {
		n.bridges = map[string]checkedBridge{}
	}
	n.bridges[nw.ID] = checkedBridge{network: nw, link: link, at: time.Now()}
	return link, false, nil
}

// attach gives the task its i-th interface, on the attachment's bridge. When that
// fails with a bridge taken on trust, the bridge is checked (and made again if
// someone removed it) and the interface tried once more.
func (n *Netstack) attach(host *hostNS, task *taskNS, taskID string, i int, att Attachment) error {
	for {
		n.sharedMu.Lock()
		br, trusted, err := n.bridge(host, att.Network)
		n.sharedMu.Unlock()
		if err != nil {
			return err
		}
		err = ensureVeth(host, task, taskID, i, br, att)
		if err == nil {
			return nil
		}
		n.sharedMu.Lock()
		delete(n.bridges, att.Network.ID)
		n.sharedMu.Unlock()
		if !trusted {
			return err
		}
	}
}

// taskLocks are a lock per task ID, held only while someone uses it.
type taskLocks struct {
	mu    sync.Mutex
	locks map[string]*taskLock
}

type taskLock struct {
	sync.Mutex
	users int
}

// lock locks id's lock and returns its unlock.
func (l *taskLocks) lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*taskLock{}
	}
	tl := l.locks[id]
	if tl == nil {
		tl = &taskLock{}
		l.locks[id] = tl
	}
	tl.users++
	l.mu.Unlock()
	tl.Lock()
	return func() {
		tl.Unlock()
		l.mu.Lock()
		if tl.users--; tl.users == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
}

// Option configures a Netstack.
type Option func(*Netstack)

// WithRoot sets the node's data directory (required): namespaces go under
// <dir>/netns, hosts and resolv.conf files under <dir>/tasks/<task>.
func WithRoot(dir string) Option { return func(n *Netstack) { n.root = dir } }

// WithHostNetNS sets the network namespace that holds bridges and rules, by the path
// of a namespace file (/run/netns/<name>, /proc/<pid>/ns/net). The default is the
// namespace of the calling goroutine's thread, which is the process's.
func WithHostNetNS(path string) Option { return func(n *Netstack) { n.hostNS = path } }

// WithHostResolvConf sets the resolv.conf whose nameservers tasks use (default
// /etc/resolv.conf).
func WithHostResolvConf(path string) Option { return func(n *Netstack) { n.resolvConf = path } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(n *Netstack) {
		if logger != nil {
			n.logger = logger
		}
	}
}

// New returns a Netstack after checking that its directories and host namespace can
// be used. It changes nothing in the host namespace until the first Setup, but
// starts again the relays of the tasks that have a relays file: those of a daemon
// restarted under running tasks. Close stops them.
func New(ctx context.Context, opts ...Option) (*Netstack, error) {
	n := &Netstack{
		// The calling thread's, not /proc/self's: that one is the main thread's,
		// which may be inside a task's namespace for a moment (as netlink opens
		// a socket there) while this looks.
		hostNS:     "/proc/thread-self/ns/net",
		resolvConf: "/etc/resolv.conf",
		logger:     slog.Default(),
	}
	for _, opt := range opts {
		opt(n)
	}
	if n.root == "" {
		return nil, errors.New("netstack: no root directory (WithRoot)")
	}
	for _, dir := range []string{n.netnsDir(), n.tasksDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("netstack: %w", err)
		}
	}
	h, err := openHost(n.hostNS)
	if err != nil {
		return nil, fmt.Errorf("netstack: %w", err)
	}
	h.close()
	n.restartRelays(ctx)
	n.restartTasks(ctx)
	n.logger.DebugContext(ctx, "netstack ready", "root", n.root, "host_netns", n.hostNS)
	return n, nil
}

func (n *Netstack) netnsDir() string { return filepath.Join(n.root, "netns") }
func (n *Netstack) tasksDir() string { return filepath.Join(n.root, "tasks") }

func (n *Netstack) Sandbox(taskID string) Sandbox {
	dir := filepath.Join(n.tasksDir(), taskID)
	return Sandbox{
		NetNSPath:      filepath.Join(n.netnsDir(), taskID),
		HostsPath:      filepath.Join(dir, "hosts"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
	}
}

// Setup makes (or completes, or confirms) the task's sandbox: its namespace with one
// interface per attachment (eth0, eth1, ... in order), its default route through
// the first attachment on a non-internal network, its published ports (rules for
// IPv4, relays for IPv6), its hosts and resolv.conf files, and the steps that serve
// it (its resolver). A Setup that fails leaves what it made for Teardown.
func (n *Netstack) Setup(ctx context.Context, taskID, hostname string, atts []Attachment, ports []PortMapping, opts ...SetupOption) (Sandbox, error) {
	var cfg setupConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	sb, err := n.setup(ctx, taskID, hostname, atts, ports, cfg)
	if err != nil {
		return Sandbox{}, fmt.Errorf("netstack: set up task %s: %w", taskID, err)
	}
	return sb, nil
}

func (n *Netstack) setup(ctx context.Context, taskID, hostname string, atts []Attachment, ports []PortMapping, cfg setupConfig) (Sandbox, error) {
	if err := checkTaskID(taskID); err != nil {
		return Sandbox{}, err
	}
	if hostname != "" {
		if err := checkHostName("hostname", hostname); err != nil {
			return Sandbox{}, err
		}
	}
	atts, err := normalizeAttachments(atts)
	if err != nil {
		return Sandbox{}, err
	}
	if err := cfg.dns.check(); err != nil {
		return Sandbox{}, err
	}
	portRules, relays, err := portTarget(atts, ports)
	if err != nil {
		return Sandbox{}, err
	}
	if err := ctx.Err(); err != nil {
		return Sandbox{}, err
	}

	n.mu.RLock()
	defer n.mu.RUnlock()
	defer n.tasks.lock(taskID)()

	sb := n.Sandbox(taskID)
	if err := os.MkdirAll(filepath.Dir(sb.HostsPath), 0o755); err != nil {
		return Sandbox{}, err
	}
	fresh, err := ensureNetNS(sb.NetNSPath)
	if err != nil {
		return Sandbox{}, err
	}
	host, err := openHost(n.hostNS)
	if err != nil {
		return Sandbox{}, err
	}
	defer host.close()
	task, err := openNS(sb.NetNSPath)
	if err != nil {
		return Sandbox{}, err
	}
	defer task.close()

	if err := task.loopbackUp(); err != nil {
		return Sandbox{}, err
	}
	for i, att := range atts {
		if err := ctx.Err(); err != nil {
			return Sandbox{}, err
		}
		if err := n.attach(host, task, taskID, i, att); err != nil {
			return Sandbox{}, err
		}
	}
	if err := task.ensureDefaultRoute(atts); err != nil {
		return Sandbox{}, err
	}
	// Rules are made after the namespace and deleted before it: a sandbox whose
	// namespace this Setup made has none yet, and a task without published ports
	// needs none (a listing of the table saved at every task start).
	if len(portRules) > 0 || !fresh {
		n.sharedMu.Lock()
		err = host.syncRules(taskRules(taskID, portRules))
		n.sharedMu.Unlock()
		if err != nil {
			return Sandbox{}, err
		}
	}
	if err := n.syncRelays(taskID, relays); err != nil {
		return Sandbox{}, err
	}
	if err := writeFileIfChanged(sb.HostsPath, hostsFile(hostname, atts)); err != nil {
		return Sandbox{}, err
	}
	networks := make([]string, len(atts))
	for i, att := range atts {
		networks[i] = att.Network.ID
	}
	if err := n.writeDNSServers(taskID, cfg.dns.Servers); err != nil {
		return Sandbox{}, err
	}
	if err := n.startTask(ctx, taskID, networks); err != nil {
		return Sandbox{}, err
	}
	resolv, err := n.taskResolvConf(cfg.dns)
	if err != nil {
		return Sandbox{}, err
	}
	if err := writeFileIfChanged(sb.ResolvConfPath, resolv); err != nil {
		return Sandbox{}, err
	}
	n.logger.DebugContext(ctx, "task sandbox set up", "task", taskID, "networks", len(atts), "ports", len(ports))
	return sb, nil
}

// Teardown removes everything Setup made for the task, or whatever is left of it,
// and, when it was the last task of a network on the node, the network's bridge with
// its routes and rules (Prune): a network the cluster removes leaves nothing behind
// on the node, and a new network given its subnet is routed to its own bridge.
// Removing a task that has nothing is not an error.
func (n *Netstack) Teardown(ctx context.Context, taskID string) error {
	if err := checkTaskID(taskID); err != nil {
		return fmt.Errorf("netstack: tear down task %s: %w", taskID, err)
	}
	emptied, err := n.teardown(taskID)
	if err != nil {
		return fmt.Errorf("netstack: tear down task %s: %w", taskID, err)
	}
	n.logger.DebugContext(ctx, "task sandbox torn down", "task", taskID)
	if emptied {
		// With every Setup shut out: one between taking the bridge and
		// attaching to it must not lose it.
		return n.Prune(ctx)
	}
	return nil
}

// teardown is Teardown's share under the shared lock; it reports whether a bridge
// the task was on has no task left.
func (n *Netstack) teardown(taskID string) (emptied bool, err error) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	defer n.tasks.lock(taskID)()

	sb := n.Sandbox(taskID)
	// Relays and rules first: a published port must stop leading to an address
	// the next task may be given.
	n.stopRelays(taskID)
	n.stopTask(taskID)
	relays := n.relaysPath(taskID)
	var errs []error
	host, err := openHost(n.hostNS)
	if err != nil {
		errs = append(errs, err)
	} else {
		defer host.close()
		n.sharedMu.Lock()
		errs = append(errs, host.deleteRules(taskOwner(taskID)))
		n.sharedMu.Unlock()
		emptied, err = host.deleteTaskVeths(taskID)
		errs = append(errs, err)
	}
	errs = append(errs, removeNetNS(sb.NetNSPath))
	// A crash while the relays file was written leaves its temporary file.
	for _, p := range []string{sb.HostsPath, sb.ResolvConfPath, relays, relays + ".tmp", n.networksPath(taskID), n.dnsServersPath(taskID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	// The directory is shared with the agent (secrets, configs): it goes only
	// when netstack's files were the last in it, and is not netstack's to empty.
	_ = os.Remove(filepath.Dir(sb.HostsPath))
	return emptied, errors.Join(errs...)
}

// Sandboxes returns the IDs of the tasks that have anything on this node: a
// namespace, files (a relays file alone stands for relays), a veth or a rule. An
// agent compares them with its tasks after a restart and tears down the others.
func (n *Netstack) Sandboxes(ctx context.Context) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()

	ids := map[string]bool{}
	entries, err := os.ReadDir(n.netnsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("netstack: list sandboxes: %w", err)
	}
	for _, e := range entries {
		ids[e.Name()] = true
	}
	entries, err = os.ReadDir(n.tasksDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("netstack: list sandboxes: %w", err)
	}
	for _, e := range entries {
		sb := n.Sandbox(e.Name())
		for _, p := range []string{sb.HostsPath, sb.ResolvConfPath, n.relaysPath(e.Name()), n.networksPath(e.Name()), n.dnsServersPath(e.Name())} {
			if _, err := os.Lstat(p); err == nil {
				ids[e.Name()] = true
			}
		}
	}
	host, err := openHost(n.hostNS)
	if err != nil {
		return nil, fmt.Errorf("netstack: list sandboxes: %w", err)
	}
	defer host.close()
	if err := host.taskIDs(ids); err != nil {
		return nil, fmt.Errorf("netstack: list sandboxes: %w", err)
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		if checkTaskID(id) == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	n.logger.DebugContext(ctx, "sandboxes listed", "count", len(out))
	return out, nil
}

// Prune removes the bridges no task is attached to (but not one that holds the
// node's own overlay endpoint), with their VXLAN devices and rules, and when no
// task and no bridge is left at all, berth's whole nftables table: what a node leaving the cluster
// calls after tearing its tasks down, and Teardown after a network's last task.
func (n *Netstack) Prune(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()

	host, err := openHost(n.hostNS)
	if err != nil {
		return fmt.Errorf("netstack: prune: %w", err)
	}
	defer host.close()
	clear(n.bridges)
	removed, bridges, err := host.pruneLinks()
	for _, name := range removed {
		n.logger.InfoContext(ctx, "removed unused interface", "interface", name)
	}
	if err != nil {
		return fmt.Errorf("netstack: prune: %w", err)
	}
	tasks := map[string]bool{}
	if err := host.taskIDs(tasks); err != nil {
		return fmt.Errorf("netstack: prune: %w", err)
	}
	// A bridge kept for the node's own endpoint keeps its rules.
	if len(tasks) == 0 && bridges == 0 {
		err = host.deleteTable()
	} else {
		err = host.deleteOrphanBridgeRules()
	}
	if err != nil {
		return fmt.Errorf("netstack: prune: %w", err)
	}
	return nil
}

// checkTaskID keeps task IDs usable as file names and interface aliases.
func checkTaskID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: task ID %q must have 1 to 128 characters", ErrInvalid, id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: task ID %q may hold only letters, digits, '-', '_' and '.'", ErrInvalid, id)
		}
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: task ID %q is not a file name", ErrInvalid, id)
	}
	return nil
}

// maxAttachments keeps veth names within the kernel's 15 characters.
const maxAttachments = 1000

// normalizeAttachments checks the attachments and fills in what can be derived.
func normalizeAttachments(atts []Attachment) ([]Attachment, error) {
	if len(atts) > maxAttachments {
		return nil, fmt.Errorf("%w: %d networks, at most %d", ErrInvalid, len(atts), maxAttachments)
	}
	out := make([]Attachment, len(atts))
	seen := map[string]bool{}
	for i, att := range atts {
		nw := att.Network
		if nw.ID == "" {
			return nil, fmt.Errorf("%w: attachment %d has no network ID", ErrInvalid, i)
		}
		if seen[nw.ID] {
			return nil, fmt.Errorf("%w: network %s is attached twice", ErrInvalid, nw)
		}
		seen[nw.ID] = true
		if !nw.Subnet.IsValid() || nw.Subnet != nw.Subnet.Masked() || !nw.Subnet.Contains(nw.Gateway) {
			return nil, fmt.Errorf("%w: network %s: gateway %s is not in subnet %s", ErrInvalid, nw, nw.Gateway, nw.Subnet)
		}
		if att.Addr.Bits() != nw.Subnet.Bits() || !nw.Subnet.Contains(att.Addr.Addr()) || att.Addr.Addr() == nw.Gateway {
			return nil, fmt.Errorf("%w: network %s: task address %s is not a host address of subnet %s besides gateway %s",
				ErrInvalid, nw, att.Addr, nw.Subnet, nw.Gateway)
		}
		for _, a := range att.Aliases {
			if err := checkHostName("network "+nw.String()+": alias", a); err != nil {
				return nil, err
			}
		}
		if att.MAC == nil {
			att.MAC = ipam.MAC(att.Addr.Addr())
		} else if len(att.MAC) != 6 {
			return nil, fmt.Errorf("%w: network %s: MAC %s is not an Ethernet address", ErrInvalid, nw, att.MAC)
		}
		out[i] = att
	}
	return out, nil
}

// portTarget checks the published ports and returns where they lead: the task's
// address on its first non-internal network, the network its default route and so
// its replies take. A mapping without a host IP becomes a DNAT rule for IPv4, a
// relay on 127.0.0.1 and a relay for IPv6; one on all IPv4 addresses (0.0.0.0) a rule
// and the relay on 127.0.0.1; one on an IPv4 address a rule only, one on an IPv6
// address (:: included) a relay only.
func portTarget(atts []Attachment, ports []PortMapping) ([]dnat, []relaySpec, error) {
	if len(ports) == 0 {
		return nil, nil, nil
	}
	var to netip.Addr
	for _, att := range atts {
		if !att.Network.Internal {
			to = att.Addr.Addr()
			break
		}
	}
	if !to.IsValid() {
		return nil, nil, fmt.Errorf("%w: ports are published but the task is on no non-internal network", ErrInvalid)
	}
	if !to.Is4() {
		return nil, nil, fmt.Errorf("%w: publishing ports to IPv6 address %s is not supported", ErrInvalid, to)
	}
	var rules []dnat
	var relays []relaySpec
	seenRule, seenRelay := map[dnat]bool{}, map[relaySpec]bool{}
	for _, p := range ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, nil, fmt.Errorf("%w: port %d: protocol %q is neither tcp nor udp", ErrInvalid, p.Published, p.Protocol)
		}
		if p.Published == 0 || p.Target == 0 {
			return nil, nil, fmt.Errorf("%w: port mapping %d:%d/%s needs both ports", ErrInvalid, p.Published, p.Target, p.Protocol)
		}
		p.HostIP = p.HostIP.Unmap()
		// As with Docker, 0.0.0.0 is every IPv4 address and :: every IPv6 one;
		// no address at all is both.
		v4, v6 := !p.HostIP.Is6(), !p.HostIP.Is4()
		if p.HostIP.IsUnspecified() {
			p.HostIP = netip.Addr{}
		}
		if p.HostIP.IsLoopback() {
			return nil, nil, fmt.Errorf("%w: port %d/%s: host IP %s must be a non-loopback address of the node (or none)",
				ErrInvalid, p.Published, p.Protocol, p.HostIP)
		}
		relay := func(listen netip.Addr) {
			r := relaySpec{Protocol: p.Protocol, Listen: netip.AddrPortFrom(listen, p.Published), To: netip.AddrPortFrom(to, p.Target)}
			if !seenRelay[r] {
				seenRelay[r] = true
				relays = append(relays, r)
			}
		}
		if d := (dnat{port: p, to: to}); v4 && !seenRule[d] {
			seenRule[d] = true
			rules = append(rules, d)
		}
		if v4 && !p.HostIP.IsValid() {
			relay(loopbackRelayAddr)
		}
		if v6 {
			listen := p.HostIP
			if !listen.IsValid() {
				listen = netip.IPv6Unspecified()
			}
			relay(listen)
		}
	}
	return rules, relays, nil
}
