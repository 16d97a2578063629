package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/internal/ctrtest"
)

// Teardown removes everything lab st made, in the order that lets each step work:
// the daemons (so that nothing makes more), the containerd namespaces with their
// tasks, containers, snapshots and images, the cgroups named after them, the mounts under the data and run dirs
// (tasks' network namespaces, secrets' tmpfs), the node and underlay namespaces
// (which take the nodes' bridges and nftables tables with them), the host leg, the
// directories and the state file. Each step runs even when one before it failed.
func Teardown(ctx context.Context, st *State) error {
	var errs []error
	for _, n := range st.Nodes {
		errs = append(errs, killDaemon(n))
	}
	errs = append(errs, removeNamespaces(ctx, st))
	for _, n := range st.Nodes {
		errs = append(errs, removeCgroups(n.Namespace), unmountUnder(n.RunDir), removeAll(n.RunDir))
	}
	errs = append(errs, unmountUnder(st.Dir))
	for _, n := range st.Nodes {
		errs = append(errs, deleteNetNS(ctx, n.NetNS))
	}
	errs = append(errs, deleteNetNS(ctx, st.Underlay))
	if st.HostLeg != "" {
		errs = append(errs, deleteHostLink(ctx, st.HostLeg))
	}
	errs = append(errs, removeAll(st.Dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down lab %s: %w", st.ID, err)
	}
	if err := os.Remove(statePath(st.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tear down lab %s: %w", st.ID, err)
	}
	return nil
}

// RemoveOrphans tears down the labs whose owner is gone, and returns the IDs it
// removed.
func RemoveOrphans(ctx context.Context) ([]string, error) {
	ids, err := Labs()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, id := range ids {
		st, err := ReadState(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.Orphaned() {
			continue
		}
		if err := Teardown(ctx, st); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

// killDaemon kills the node's daemon if the process with its PID is still it (its
// command line names the node's socket), and waits for it to go.
func killDaemon(n NodeState) error {
	if !DaemonAlive(n) {
		return nil
	}
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s's daemon (pid %d): %w", n.Name, n.PID, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !DaemonAlive(n) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s's daemon (pid %d) did not die within 10s of SIGKILL", n.Name, n.PID)
}

// DaemonAlive reports whether the node's daemon runs: its PID is a live process
// whose command line names the node's socket (not another that took the PID).
func DaemonAlive(n NodeState) bool {
	if n.PID == 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.PID))
	if err != nil || !strings.Contains(string(cmdline), "\x00"+n.Socket+"\x00") {
		return false
	}
	// A zombie (a child of this process not yet waited for) counts as gone.
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.PID))
	return err == nil && !zombie(string(st))
}

func zombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && strings.HasPrefix(strings.TrimSpace(stat[i+1:]), "Z")
}

// removeNamespaces empties and deletes the nodes' containerd namespaces.
func removeNamespaces(ctx context.Context, st *State) error {
	client, err := containerd.New(st.Containerd)
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", st.Containerd, err)
	}
	defer client.Close()
	var errs []error
	for _, n := range st.Nodes {
		errs = append(errs, ctrtest.RemoveNamespace(ctx, client, n.Namespace))
	}
	return errors.Join(errs...)
}

// CgroupRoot is where the cgroup file systems are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// removeCgroups removes the cgroups that runc made for a containerd namespace's
// tasks: containerd puts a task in /<namespace>/<task ID> of every hierarchy
// (cgroup v1) or of the one (v2), and removes the task's cgroup with the task, but
// not its parent. rmdir of a cgroup works on its control files and fails while a
// process is in it; the deepest go first.
func removeCgroups(namespace string) error {
	roots, err := filepath.Glob(filepath.Join(CgroupRoot, "*", namespace))
	if err != nil {
		return err
	}
	roots = append(roots, filepath.Join(CgroupRoot, namespace))
	var errs []error
	for _, root := range roots {
		var dirs []string
		err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if de.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroups of %s: %w", namespace, err))
			continue
		}
		for _, d := range slices.Backward(dirs) {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below dir, the deepest first.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	points, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below dir in this mount namespace,
// deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes of space, tab, newline and
// backslash.
func unescapeMountPath(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func deleteNetNS(ctx context.Context, name string) error {
	if name == "" {
		return nil
	}
	if _, err := os.Stat(NetNSPath(name)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return ip(ctx, "netns", "del", name)
}

func removeAll(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
