package netstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/netstack/osthread"
)

// hostNS holds the handles of one operation in the host namespace. They are opened
// per operation rather than kept, so that a host namespace given by path is looked
// up afresh.
type hostNS struct {
	path string
	ns   netns.NsHandle
	nl   *netlink.Handle
	nft  *nftables.Conn
}

func openHost(path string) (*hostNS, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open host network namespace %s: %w", path, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in host network namespace %s: %w", path, err)
	}
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		nl.Close()
		ns.Close()
		return nil, fmt.Errorf("nftables in host network namespace %s: %w", path, err)
	}
	return &hostNS{path: path, ns: ns, nl: nl, nft: nft}, nil
}

func (h *hostNS) close() {
	h.nl.Close()
	h.ns.Close()
}

// taskNS holds the handles of one operation in a task's namespace.
type taskNS struct {
	path string
	ns   netns.NsHandle
	nl   *netlink.Handle
}

func openNS(path string) (*taskNS, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in network namespace %s: %w", path, err)
	}
	return &taskNS{path: path, ns: ns, nl: nl}, nil
}

func (t *taskNS) close() {
	t.nl.Close()
	t.ns.Close()
}

// ensureNetNS makes sure a network namespace is mounted at path, and reports whether
// it made it. A file that is there without its mount (the node rebooted) gets a new
// namespace.
func ensureNetNS(path string) (created bool, err error) {
	mounted, err := isNetNSMount(path)
	if err != nil || mounted {
		return false, err
	}
	return true, createNetNS(path)
}

func isNetNSMount(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("stat network namespace %s: %w", path, err)
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// createNetNS makes a new network namespace and bind-mounts it on path, which keeps
// it alive without a process in it.
func createNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace file: %w", err)
	}
	f.Close()
	err = osthread.Throwaway(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetNS unmounts and removes a namespace file. The namespace itself goes when
// its last user (a container's process, an open handle) does.
func removeNetNS(path string) error {
	// Unmount until nothing is mounted there: a namespace mounted twice (by hand,
	// or by a crash between checks) must not survive its task.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount network namespace %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network namespace file: %w", err)
	}
	return nil
}

// inNetNS runs fn in the network namespace ns, for what only works from inside it
// (sysctls under /proc/sys/net, sockets).
func inNetNS(ns netns.NsHandle, fn func() error) error {
	return osthread.Throwaway(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return fn()
	})
}

// enableForwarding turns on IPv4 forwarding in the host namespace: bridges route
// their tasks' traffic out, and published ports forward into the bridges.
func enableForwarding(host netns.NsHandle) error {
	const knob = "/proc/sys/net/ipv4/ip_forward"
	return inNetNS(host, func() error {
		b, err := os.ReadFile(knob)
		if err != nil {
			return fmt.Errorf("read %s: %w", knob, err)
		}
		if strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		if err := os.WriteFile(knob, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enable IPv4 forwarding: %w", err)
		}
		return nil
	})
}
