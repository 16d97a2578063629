package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"

	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
	"github.com/berthd/berth/netstack/osthread"
)

const labImage = "berth.test/netlab:1"

const labStack = `services:
  web:
    image: ` + labImage + `
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    deploy:
      replicas: 3
      placement:
        max_replicas_per_node: 1
`

func requireLab(t *testing.T) string {
	t.Helper()
	addr := testenv.RequireContainerd(t)
	testenv.RequireNetNS(t)
	testenv.RequireCommand(t, "ip", "the lab makes its namespaces and links with iproute2")
	testenv.RequireCommand(t, "nsenter", "the lab starts its daemons in their nodes' namespaces")
	return addr
}

// TestLabProcess starts a lab of 3 nodes (1 manager, 2 workers) on real daemons and
// containerd: every node joins and is ready; a service of 3 replicas with
// max_replicas_per_node 1 runs one task on each node, in that node's containerd
// namespace; each task runs in the network namespace that the node's netstack
// mounted under its data dir (which takes the daemon starting with nsenter --net,
// not ip netns exec), and its veth's other end is in the node's namespace, not the
// host's. Then the harness's failures: a cut link makes a node unreachable from the
// host leg and from another node, a restored one reachable again; a restarted
// daemon finds its task still running; a killed node has no daemon and no running
// task. After Close nothing of the lab is left: namespaces, host links,
// containerd namespaces, cgroups, mounts, directories, state file.
func TestLabProcess(t *testing.T) {
	ctrd := requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := clustertest.Build(ctx, filepath.Join(dir, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := Start(ctx, Config{Nodes: 3, Managers: 1, Bin: bin, Dir: dir, Containerd: ctrd, HostLeg: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("lab %s on %s", lab.ID(), lab.Subnet())

	image := filepath.Join(dir, "image.tar")
	writeImage(t, image)
	if err := lab.LoadImage(ctx, image); err != nil {
		t.Fatal(err)
	}
	compose := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(compose, []byte(labStack), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := lab.CLI(ctx, 0, "stack", "deploy", "-c", compose, "--detach=false", "--timeout", "50s", "lab"); err != nil {
		t.Fatalf("stack deploy: %v\n%s\n%s", err, out, lab.logTails())
	}

	hostLinks := linkListing(t, ctx, nil)
	for i := range lab.Nodes() {
		checkNodeTask(t, ctx, lab, i, hostLinks)
	}

	checkLinks(t, ctx, lab)
	checkRestart(t, ctx, lab, 1)
	checkKill(t, ctx, lab, 2)

	st := lab.State()
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, ctx, st)
}

// checkNodeTask checks that node i runs one task of lab_web, in its own containerd
// namespace, in the network namespace its netstack made, with the veth's other end
// in the node's namespace.
func checkNodeTask(t *testing.T, ctx context.Context, lab *Lab, i int, hostLinks string) {
	t.Helper()
	n := lab.Node(i)
	c, err := ctrtest.New(lab.cfg.Containerd, n.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tasks, err := c.Tasks(ctx, map[string]string{"io.berth.service": "lab_web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].Status != "running" {
		t.Errorf("%s: containerd namespace %s holds %+v, want one running task of lab_web", n.Name, n.Namespace, tasks)
		return
	}
	task := tasks[0]
	taskNS := nsOf(t, fmt.Sprintf("/proc/%d/ns/net", task.Pid))
	if made := nsOf(t, filepath.Join(n.DataDir, "netns", task.ID)); taskNS != made {
		t.Errorf("%s: task %s runs in network namespace %s, netstack made %s for it", n.Name, task.ID, taskNS, made)
	}
	nodeNS := nsOf(t, NetNSPath(n.NetNS))
	if taskNS == nodeNS || taskNS == nsOf(t, "/proc/self/ns/net") {
		t.Errorf("%s: task %s runs in its node's or the host's network namespace", n.Name, task.ID)
	}
	alias := "berth-task:" + task.ID
	if links := linkListing(t, ctx, lab.Exec, i); !strings.Contains(links, alias) {
		t.Errorf("%s: no veth of task %s in the node's namespace:\n%s", n.Name, task.ID, links)
	}
	if strings.Contains(hostLinks, alias) {
		t.Errorf("%s: task %s's veth is in the host's namespace", n.Name, task.ID)
	}
}

// nsOf is the namespace a /proc ns link or an nsfs bind mount stands for, as its
// device and inode.
func nsOf(t *testing.T, path string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("namespace at %s: %v", path, err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// linkListing is `ip -o link show` in the host's namespace (exec nil) or in node i's.
func linkListing(t *testing.T, ctx context.Context, exec func(context.Context, int, ...string) (string, error), i ...int) string {
	t.Helper()
	argv := []string{"ip", "-o", "link", "show"}
	if exec == nil {
		return run(t, ctx, argv...)
	}
	out, err := exec(ctx, i[0], argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, ctx context.Context, argv ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// checkNothingLeft checks that nothing of lab st is on the machine: network
// namespaces, host links, mounts, containerd namespaces, cgroups, directories.
func checkNothingLeft(t *testing.T, ctx context.Context, st State) {
	t.Helper()
	if out := run(t, ctx, "ip", "netns", "list"); strings.Contains(out, st.ID) {
		t.Errorf("network namespaces left:\n%s", out)
	}
	if out := run(t, ctx, "ip", "-o", "link", "show"); strings.Contains(out, st.ID) {
		t.Errorf("host links left:\n%s", out)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, st.Dir) || strings.Contains(line, st.ID) {
			t.Errorf("mount left: %s", line)
		}
	}
	client, err := containerd.New(st.Containerd)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nss, err := client.NamespaceService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if strings.Contains(ns, st.ID) {
			t.Errorf("containerd namespace left: %s", ns)
		}
	}
	for _, pattern := range []string{"*" + st.ID + "*", "*/*" + st.ID + "*"} {
		if left, _ := filepath.Glob(filepath.Join(CgroupRoot, pattern)); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
	paths := []string{st.Dir, statePath(st.ID)}
	for _, n := range st.Nodes {
		paths = append(paths, n.RunDir)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left", p)
		}
	}
}

// TestRemoveOrphansProcess: a lab whose owner is gone (here: a state file naming a
// process that has exited, with an underlay namespace, a node namespace and a dir)
// is torn down by RemoveOrphans, as Start does first; a lab whose owner lives is not.
func TestRemoveOrphansProcess(t *testing.T) {
	ctrd := requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	orphan := fakeLab(t, ctx, ctrd, dead.Process.Pid, 1)
	alive := fakeLab(t, ctx, ctrd, os.Getpid(), self)
	removed, err := RemoveOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, orphan.ID) {
		t.Errorf("RemoveOrphans removed %v, not %s", removed, orphan.ID)
	}
	checkNothingLeft(t, ctx, *orphan)
	if _, err := ReadState(alive.ID); err != nil {
		t.Errorf("the lab of a live owner was removed: %v", err)
	}
}

// fakeLab writes the state of a lab owned by pid and makes its namespaces and dir
// (no daemons), torn down at the end of the test.
func fakeLab(t *testing.T, ctx context.Context, ctrd string, pid int, start uint64) *State {
	t.Helper()
	st, err := newState(Config{Nodes: 1, Dir: t.TempDir(), Containerd: ctrd})
	if err != nil {
		t.Fatal(err)
	}
	st.Owner, st.OwnerStart = pid, start
	t.Cleanup(func() {
		if err := Teardown(context.Background(), st); err != nil {
			t.Error(err)
		}
	})
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	if err := buildUnderlay(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(st.Dir, "node-1", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	return st
}

func writeImage(t *testing.T, path string) {
	t.Helper()
	var buf bytes.Buffer
	if err := testimage.Build(&buf, testimage.Options{Name: labImage}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logTails is the end of every node's daemon log, for a failure message.
func (l *Lab) logTails() string {
	var b strings.Builder
	for _, d := range l.daemons {
		fmt.Fprintf(&b, "--- %s:\n%s\n", d.Name, d.LogTail(30))
	}
	return b.String()
}

// checkLinks checks the underlay: node 1's node port answers from the host (the
// host leg) and from node 2, not while node 1's link is cut, and again once it is
// restored.
func checkLinks(t *testing.T, ctx context.Context, lab *Lab) {
	t.Helper()
	addr := net.JoinHostPort(lab.Node(0).Addr.String(), strconv.Itoa(lab.cfg.Port))
	reach := func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("from the host: %w", err)
		}
		c.Close()
		if err := dialFrom(NetNSPath(lab.Node(1).NetNS), addr); err != nil {
			return fmt.Errorf("from node-2: %w", err)
		}
		return nil
	}
	if err := clustertest.Eventually(ctx, 10*time.Second, reach); err != nil {
		t.Fatalf("node-1's port %s: %v", addr, err)
	}
	if err := lab.CutLink(ctx, 0); err != nil {
		t.Fatal(err)
	}
	err := clustertest.Eventually(ctx, 10*time.Second, func() error {
		if reach() == nil {
			return errors.New("still reachable")
		}
		return nil
	})
	if err != nil {
		t.Errorf("node-1's port %s with its link cut: %v", addr, err)
	}
	if err := lab.RestoreLink(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := clustertest.Eventually(ctx, 10*time.Second, reach); err != nil {
		t.Errorf("node-1's port %s once its link is restored: %v", addr, err)
	}
}

// checkRestart restarts node i's daemon: the same task runs on, with the same
// process, and the node is ready again.
func checkRestart(t *testing.T, ctx context.Context, lab *Lab, i int) {
	t.Helper()
	before := nodeTasks(t, ctx, lab, i)
	if err := lab.Restart(ctx, i); err != nil {
		t.Fatal(err)
	}
	after := nodeTasks(t, ctx, lab, i)
	if len(before) != 1 || len(after) != 1 || before[0].ID != after[0].ID || before[0].Pid != after[0].Pid ||
		after[0].Status != "running" {
		t.Errorf("%s's tasks before a daemon restart %+v, after %+v", lab.Node(i).Name, before, after)
	}
	if err := lab.waitReady(ctx); err != nil {
		t.Errorf("after restarting %s: %v", lab.Node(i).Name, err)
	}
}

// checkKill kills node i: no daemon, no running task.
func checkKill(t *testing.T, ctx context.Context, lab *Lab, i int) {
	t.Helper()
	if err := lab.Kill(ctx, i); err != nil {
		t.Fatal(err)
	}
	if DaemonAlive(lab.st.Nodes[i]) {
		t.Errorf("%s's daemon runs after Kill", lab.Node(i).Name)
	}
	err := clustertest.Eventually(ctx, 10*time.Second, func() error {
		for _, task := range nodeTasks(t, ctx, lab, i) {
			if task.Status == "running" {
				return fmt.Errorf("task %s runs", task.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s after Kill: %v", lab.Node(i).Name, err)
	}
}

func nodeTasks(t *testing.T, ctx context.Context, lab *Lab, i int) []ctrtest.Task {
	t.Helper()
	c, err := ctrtest.New(lab.cfg.Containerd, lab.Node(i).Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tasks, err := c.Tasks(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

// dialFrom connects to addr over TCP from the network namespace at nsPath.
func dialFrom(nsPath, addr string) error {
	return osthread.Throwaway(func() error {
		f, err := os.Open(nsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter %s: %w", nsPath, err)
		}
		// The socket is made on this thread, so in that namespace.
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
