package netlab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The underlay's links, named inside the underlay namespace (one per lab, so the
// names need not be unique on the machine): the bridge, and per node the bridge's
// end of its veth pair. A node's end is eth0 in its own namespace.
const (
	underlayBridge = "br0"
	nodeIfName     = "eth0"
	hostLegPeer    = "host"
)

func underlayPort(i int) string { return fmt.Sprintf("n%d", i+1) }

// buildUnderlay makes the underlay namespace with its bridge, one namespace per
// node joined to it by a veth pair, and the host leg if st has one. Names and
// addresses come from st, which is on disk already, so that a failure half way is
// torn down like a whole lab.
func buildUnderlay(ctx context.Context, st *State) error {
	u := st.Underlay
	steps := [][]string{
		{"netns", "add", u},
		{"-n", u, "link", "set", "lo", "up"},
		{"-n", u, "link", "add", underlayBridge, "type", "bridge"},
		{"-n", u, "link", "set", underlayBridge, "up"},
	}
	prefix := fmt.Sprintf("/%d", st.Subnet.Bits())
	for i, n := range st.Nodes {
		port := underlayPort(i)
		steps = append(steps,
			[]string{"netns", "add", n.NetNS},
			[]string{"-n", n.NetNS, "link", "set", "lo", "up"},
			[]string{"-n", u, "link", "add", port, "type", "veth", "peer", "name", nodeIfName, "netns", n.NetNS},
			[]string{"-n", u, "link", "set", port, "master", underlayBridge, "up"},
			[]string{"-n", n.NetNS, "addr", "add", n.Addr + prefix, "dev", nodeIfName},
			[]string{"-n", n.NetNS, "link", "set", nodeIfName, "up"},
		)
	}
	if st.HostLeg != "" {
		steps = append(steps,
			[]string{"link", "add", st.HostLeg, "type", "veth", "peer", "name", hostLegPeer, "netns", u},
			[]string{"-n", u, "link", "set", hostLegPeer, "master", underlayBridge, "up"},
			[]string{"addr", "add", hostAddr(st.Subnet, 254).String() + prefix, "dev", st.HostLeg},
			[]string{"link", "set", st.HostLeg, "up"},
		)
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// setLink sets node i's port on the underlay bridge up or down: a cut cable.
func setLink(ctx context.Context, st *State, i int, state string) error {
	return ip(ctx, "-n", st.Underlay, "link", "set", underlayPort(i), state)
}

// ip runs iproute2's ip. The harness drives the network with the command line, as a
// person would, and leaves netlink to netstack.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deleteHostLink deletes a link of the host's namespace, if it is there.
func deleteHostLink(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return ip(ctx, "link", "del", name)
}

// NetNSPath is where `ip netns` mounts a named namespace: what nsenter --net= takes.
func NetNSPath(name string) string { return filepath.Join("/run/netns", name) }

// nsenterNet is the argv prefix that runs a program in a node's network namespace
// and nothing else. Not `ip netns exec`: that also unshares the mount namespace
// (to bind /etc/netns/NAME files and remount /sys), so the nsfs bind mounts that
// the daemon makes under its data dir for its tasks' namespaces would exist only in
// that private mount namespace, and containerd's shims, in the host's, would find
// an empty file where the task's namespace should be.
func nsenterNet(netns string) []string {
	return []string{"nsenter", "--net=" + NetNSPath(netns), "--"}
}
