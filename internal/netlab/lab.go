// Package netlab runs a multi-node berth cluster on one machine, for process tests,
// the demo and people (scripts/lab.sh): each node is a `berth daemon` in a network
// namespace of its own, joined to the others by a veth pair to a bridge in an
// underlay namespace, with its own data dir, socket, log and containerd namespace,
// all sharing the host's one containerd. Each lab takes a /24 of 198.18.0.0/15 of
// its own, so that labs run side by side, and writes what it made to a state file
// under StateDir first, so that Close, a later Start (after a crash) or `labctl
// down` removes all of it.
//
// Daemons start with `nsenter --net=` rather than `ip netns exec`: see nsenterNet.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/ctrtest"
)

// Config describes a lab.
type Config struct {
	// Nodes is how many nodes, Managers how many of them are managers (at least 1;
	// the first ones).
	Nodes, Managers int
	// Bin is the berth binary; empty builds one into the lab's dir.
	Bin string
	// Dir is where the lab's directory goes (default os.TempDir()).
	Dir string
	// DaemonArgs are extra flags of every daemon.
	DaemonArgs []string
	// Containerd is containerd's socket (default /run/containerd/containerd.sock).
	Containerd string
	// Port is the node port on each node's underlay address (default 4270).
	Port int
	// HostLeg joins the host's namespace to the underlay (address .254), so that the
	// host reaches the nodes' addresses: curl from a shell, the demo.
	HostLeg bool
	// Keep makes a lab that outlives the process that started it: its daemons run
	// in sessions of their own and a later Start does not take it for a crashed
	// run's. `labctl down` removes it.
	Keep bool
	// Name tells kept labs apart, so that two people's (or the demo's and a
	// person's) do not take each other for their own.
	Name string
}

// DefaultContainerd is where Debian's containerd listens.
const DefaultContainerd = "/run/containerd/containerd.sock"

// Node is one node of a lab.
type Node struct {
	Name    string
	Manager bool
	// Addr is the node's underlay address, NetNS its network namespace's name.
	Addr  netip.Addr
	NetNS string
	// Socket is the daemon's API socket (Host is the CLI's -H for it).
	Socket, Host string
	// Namespace is the node's containerd namespace.
	Namespace string
	DataDir   string
	Log       string
}

// Lab is a running lab.
type Lab struct {
	cfg     Config
	st      *State
	daemons []*clustertest.Daemon
	closed  bool
}

// Start removes the labs of processes that are gone, then builds a lab of cfg.Nodes
// nodes, starts their daemons, inits the cluster on the first node and joins the
// others, and returns once every node is ready. On failure it removes what it made.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := claim(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, st: st}
	if err := l.start(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (c *Config) defaults() error {
	if c.Nodes < 1 {
		return fmt.Errorf("a lab needs at least one node, not %d", c.Nodes)
	}
	c.Managers = max(c.Managers, 1)
	if c.Managers > c.Nodes {
		return fmt.Errorf("%d managers of %d nodes", c.Managers, c.Nodes)
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Containerd == "" {
		c.Containerd = DefaultContainerd
	}
	if c.Port == 0 {
		c.Port = 4270
	}
	return nil
}

// claim removes the labs of crashed runs and writes the new lab's state, holding
// the state dir's lock: two labs starting at once neither tear down the same
// orphan together nor take the same /24.
func claim(ctx context.Context, cfg Config) (*State, error) {
	unlock, err := lockStateDir()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := RemoveOrphans(ctx); err != nil {
		return nil, fmt.Errorf("remove the labs of crashed runs: %w", err)
	}
	st, err := newState(cfg)
	if err != nil {
		return nil, err
	}
	return st, writeState(st)
}

// newState names everything the lab will make and picks its subnet: from a random
// start, the first /24 no other lab on the machine holds.
func newState(cfg Config) (*State, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	id := "bl" + hex.EncodeToString(r[:3])[:5]
	used, err := usedSubnets()
	if err != nil {
		return nil, err
	}
	subnet, err := pickSubnet(int(binary.BigEndian.Uint32(r[:])%512), used)
	if err != nil {
		return nil, err
	}
	st := &State{ID: id, Name: cfg.Name, Subnet: subnet, Dir: filepath.Join(cfg.Dir, "berth-lab-"+id),
		Underlay: "berthlab-" + id + "-underlay", Containerd: cfg.Containerd}
	if cfg.HostLeg {
		st.HostLeg = id + "h"
	}
	if !cfg.Keep {
		st.Owner = os.Getpid()
		if st.OwnerStart, err = processStart(st.Owner); err != nil {
			return nil, fmt.Errorf("own start time: %w", err)
		}
	}
	for i := range cfg.Nodes {
		name := fmt.Sprintf("node-%d", i+1)
		ns := "berthlab-" + id + "-" + name
		st.Nodes = append(st.Nodes, NodeState{Name: name, Manager: i < cfg.Managers, NetNS: ns, Namespace: ns,
			Addr: hostAddr(subnet, i+1).String(),
			// The daemon's default for its containerd namespace (runtime/agent).
			RunDir: filepath.Join("/run/berth", ns)})
	}
	return st, nil
}

func (l *Lab) start(ctx context.Context) error {
	if err := os.MkdirAll(l.st.Dir, 0o755); err != nil {
		return fmt.Errorf("lab dir: %w", err)
	}
	if l.cfg.Bin == "" {
		bin, err := clustertest.Build(ctx, filepath.Join(l.st.Dir, "bin"))
		if err != nil {
			return err
		}
		l.cfg.Bin = bin
	}
	if err := buildUnderlay(ctx, l.st); err != nil {
		return err
	}
	for i := range l.st.Nodes {
		if err := l.startDaemon(ctx, i); err != nil {
			return err
		}
	}
	if err := l.join(ctx); err != nil {
		return err
	}
	return l.waitReady(ctx)
}

// startDaemon starts node i's daemon in its namespace, and records its PID.
func (l *Lab) startDaemon(ctx context.Context, i int) error {
	n := &l.st.Nodes[i]
	addr := net.JoinHostPort(n.Addr, strconv.Itoa(l.cfg.Port))
	args := append([]string{"--advertise-addr", addr, "--containerd", l.cfg.Containerd,
		"--containerd-namespace", n.Namespace}, l.cfg.DaemonArgs...)
	d := clustertest.NewDaemon(l.cfg.Bin, l.st.Dir, n.Name, l.cfg.Port, args...)
	d.Addr, d.Wrap, d.Detach = addr, nsenterNet(n.NetNS), l.cfg.Keep
	n.DataDir, n.Socket, n.Log = d.DataDir, d.Socket, d.LogPath
	if err := writeState(l.st); err != nil { // before the daemon makes anything
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	l.daemons = append(l.daemons, d)
	n.PID = d.Pid()
	return writeState(l.st)
}

// join inits the cluster on node 1 and joins the others, the first Managers as
// managers.
func (l *Lab) join(ctx context.Context) error {
	first := l.daemons[0]
	init, err := first.Client().Init(ctx, api.InitRequest{AdvertiseAddr: first.Addr})
	if err != nil {
		return fmt.Errorf("init on %s: %w", first.Name, err)
	}
	for i, d := range l.daemons[1:] {
		token := init.WorkerToken
		if l.st.Nodes[i+1].Manager {
			token = init.ManagerToken
		}
		req := api.JoinRequest{RemoteAddr: init.ManagerAddr, Token: token, AdvertiseAddr: d.Addr}
		if _, err := d.Client().Join(ctx, req); err != nil {
			return fmt.Errorf("join %s: %w", d.Name, err)
		}
	}
	return nil
}

// waitReady waits until the first node sees every node ready.
func (l *Lab) waitReady(ctx context.Context) error {
	return clustertest.AllReady(ctx, l.daemons[0].Client(), len(l.st.Nodes))
}

// ID is the lab's ID, which its namespaces' names and its state file carry.
func (l *Lab) ID() string { return l.st.ID }

// Subnet is the lab's underlay /24.
func (l *Lab) Subnet() netip.Prefix { return l.st.Subnet }

// State is what the lab made, as its state file holds it.
func (l *Lab) State() State { return *l.st }

// Bin is the berth binary the lab runs.
func (l *Lab) Bin() string { return l.cfg.Bin }

// Nodes is how many nodes the lab has.
func (l *Lab) Nodes() int { return len(l.st.Nodes) }

// Node describes node i (0-based).
func (l *Lab) Node(i int) Node { return nodeOf(l.st.Nodes[i]) }

func nodeOf(n NodeState) Node {
	return Node{Name: n.Name, Manager: n.Manager, Addr: netip.MustParseAddr(n.Addr), NetNS: n.NetNS, Socket: n.Socket,
		Host: "unix://" + n.Socket, Namespace: n.Namespace, DataDir: n.DataDir, Log: n.Log}
}

// CLI runs `berth -H <node i> args...` and returns its standard output, or an error
// with its exit code and standard error.
func (l *Lab) CLI(ctx context.Context, i int, args ...string) (string, error) {
	r := l.daemons[i].CLI(ctx, "", args...)
	return r.Stdout, r.Err()
}

// Exec runs argv in node i's network namespace (nsenter --net, as the daemon runs)
// and returns its combined output.
func (l *Lab) Exec(ctx context.Context, i int, argv ...string) (string, error) {
	full := append(nsenterNet(l.st.Nodes[i].NetNS), argv...)
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", argv[0], l.st.Nodes[i].Name, err, out)
	}
	return string(out), nil
}

// LoadImage loads an image archive into every node.
func (l *Lab) LoadImage(ctx context.Context, tar string) error {
	for i := range l.daemons {
		if _, err := l.CLI(ctx, i, "image", "load", tar); err != nil {
			return err
		}
	}
	return nil
}

// Kill makes node i a dead node: SIGKILL to its daemon, then to its task
// containers.
func (l *Lab) Kill(ctx context.Context, i int) error {
	if err := l.daemons[i].Kill(); err != nil {
		return err
	}
	c, err := ctrtest.New(l.cfg.Containerd, l.st.Nodes[i].Namespace)
	if err != nil {
		return err
	}
	defer c.Close()
	tasks, err := c.Tasks(ctx, nil)
	if err != nil {
		return fmt.Errorf("list %s's tasks: %w", l.st.Nodes[i].Name, err)
	}
	for _, t := range tasks {
		if t.Status != "running" {
			continue
		}
		if err := c.Kill(ctx, t.ID); err != nil {
			return fmt.Errorf("kill task %s on %s: %w", t.ID, l.st.Nodes[i].Name, err)
		}
	}
	return nil
}

// CutLink takes node i's underlay link down, RestoreLink up again.
func (l *Lab) CutLink(ctx context.Context, i int) error { return setLink(ctx, l.st, i, "down") }

// RestoreLink brings node i's underlay link up again.
func (l *Lab) RestoreLink(ctx context.Context, i int) error { return setLink(ctx, l.st, i, "up") }

// Restart stops node i's daemon (SIGTERM) and starts it again; its tasks keep
// running.
func (l *Lab) Restart(ctx context.Context, i int) error {
	d := l.daemons[i]
	if err := d.Stop(); err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	l.st.Nodes[i].PID = d.Pid()
	return writeState(l.st)
}

// Close tears the lab down (see Teardown), also after a failed test or start. A
// second Close does nothing.
func (l *Lab) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	for _, d := range l.daemons {
		_ = d.Kill() // reaps this process's children; Teardown kills by PID too
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return Teardown(ctx, l.st)
}
