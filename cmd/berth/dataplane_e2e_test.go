package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthd/berth/cluster/api"
	"github.com/berthd/berth/cluster/model"
	"github.com/berthd/berth/internal/clustertest"
	"github.com/berthd/berth/internal/ctrtest"
	"github.com/berthd/berth/internal/testenv"
	"github.com/berthd/berth/internal/testimage"
)

// dataplaneStack is the stack of TestDataPlaneProcess: web serves its hostname and
// mounts a secret and a named volume; client shares web's network (and is healthy),
// outsider does not, and mounts a volume from elsewhere (driver_opts: a bind of a
// directory, as an NFS export would be mounted).
const dataplaneStack = `
services:
  web:
    image: berth.test/busybox:%s
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && echo web started && exec httpd -f -p 8080 -h /www"]
    networks: [front]
    secrets: [token]
    volumes: ["data:/data"]
    stop_grace_period: 1s
    deploy:
      replicas: %d
      restart_policy: {condition: any, delay: 2s}
      update_config: {order: start-first, parallelism: 1}
  client:
    image: berth.test/busybox:1
    command: ["sleep", "100000"]
    networks: [front]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "true"], interval: 1s}
  outsider:
    image: berth.test/busybox:1
    command: ["sleep", "100000"]
    networks: [back]
    volumes: ["shared:/shared"]
    stop_grace_period: 1s
networks:
  front: {}
  back: {}
secrets:
  token:
    file: ./token.txt
volumes:
  data: {}
  shared:
    driver_opts: {type: none, o: bind, device: %s}
`

// sickStack never passes its health check; it is deployed on its own, detached, since
// it never converges.
const sickStack = `
services:
  sick:
    image: berth.test/busybox:1
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD", "false"], interval: 1s, retries: 2}
    deploy:
      restart_policy: {condition: none}
`

// hostPortStack publishes a host-mode port; its task is killed and replaced.
const hostPortStack = `
services:
  hp:
    image: berth.test/busybox:1
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{target: 8080, published: 30080, protocol: tcp, mode: host}]
    stop_grace_period: 1s
    deploy:
      restart_policy: {condition: any, delay: 1s}
`

const dataplaneSecret = "correct horse battery staple"

// TestDataPlaneProcess runs one real daemon whose agent runs the tasks on containerd
// (in a namespace of the test's own), and checks through containerd's own client and
// inside the containers what the issue asks of the data plane.
func TestDataPlaneProcess(t *testing.T) {
	testenv.RequireCommand(t, "nsenter", "the test looks into the tasks' namespaces")
	c, ctr := newDataPlaneNode(t)
	dir := t.TempDir()
	for _, v := range []string{"1", "2"} {
		img := filepath.Join(dir, "image-"+v+".tar")
		f, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		err = testimage.Build(f, testimage.Options{Name: "berth.test/busybox:" + v,
			Extra: map[string]testimage.File{"/etc/image-version": {Content: []byte(v), Mode: 0o644}}})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r := c.must("node-1", "image", "load", img); !strings.Contains(r.Stdout, "Loaded image: berth.test/busybox:"+v) {
			t.Fatalf("image load: %v", r)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte(dataplaneSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	compose := filepath.Join(dir, "compose.yaml")
	export := filepath.Join(dir, "export")
	if err := os.Mkdir(export, 0o755); err != nil {
		t.Fatal(err)
	}
	deploy := func(version string, replicas int) {
		t.Helper()
		if err := os.WriteFile(compose, fmt.Appendf(nil, dataplaneStack, version, replicas, export), 0o644); err != nil {
			t.Fatal(err)
		}
		c.must("node-1", "stack", "deploy", "-c", compose, "--detach=false", "--timeout", "90s", "dp")
	}
	webTasks := func() []ctrtest.Task {
		t.Helper()
		tasks, err := ctr.Tasks(c.ctx, map[string]string{"io.berth.service": "dp_web"})
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(tasks, func(task ctrtest.Task) bool { return task.Status != "running" })
	}

	// Three replicas: three containers running, seen by containerd itself.
	deploy("1", 3)
	if got := webTasks(); len(got) != 3 {
		t.Fatalf("containerd runs %d web tasks, want 3: %+v", len(got), got)
	}
	web := webTasks()[0]
	// Every task's veth is in the node's namespace (this test's): a bridge or veth
	// made in another namespace (a task's, taken for the node's) would still let
	// some tasks reach each other, and hide there.
	// So is the daemon's own: the namespace /proc/PID/ns shows is its main
	// thread's, which a namespace change must never be left on.
	if got, want := netNS(t, c.d("node-1").Pid()), netNS(t, os.Getpid()); got != want {
		t.Errorf("the daemon's main thread is in network namespace %s, the node's is %s", got, want)
	}
	for _, svc := range []string{"dp_web", "dp_client", "dp_outsider"} {
		tasks, err := ctr.Tasks(c.ctx, map[string]string{"io.berth.service": svc})
		if err != nil {
			t.Fatal(err)
		}
		vethTasks := hostVethTasks(t)
		for _, task := range tasks {
			if !vethTasks[task.ID] {
				t.Errorf("task %s of %s has no veth in the node's network namespace (veths of %v)\n%s",
					task.ID, svc, slices.Collect(maps.Keys(vethTasks)), netDiagnostics(task.Pid))
			}
		}
	}

	checkHostPortRestart(t, c, ctr, dir)

	// Health checks: client's passes (it runs), sick's fails twice and the task
	// fails with the reason (restart_policy none: it stays failed).
	sick := filepath.Join(dir, "sick.yaml")
	if err := os.WriteFile(sick, []byte(sickStack), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", sick, "dpsick")
	c.eventually(30*time.Second, func() error {
		if ps := c.must("node-1", "service", "ps", "dpsick_sick").Stdout; !strings.Contains(ps, "task: container unhealthy") {
			return fmt.Errorf("service ps dpsick_sick:\n%s", ps)
		}
		return nil
	})
	c.must("node-1", "stack", "rm", "dpsick")
	if ps := c.must("node-1", "service", "ps", "dp_client").Stdout; !strings.Contains(ps, "Running") {
		t.Errorf("a task whose health check passes does not run:\n%s", ps)
	}

	// The secret's file holds its source's bytes; nothing under the data dir does.
	if got := readInTask(t, web.Pid, "/run/secrets/token"); got != dataplaneSecret {
		t.Errorf("/run/secrets/token in the container: %q", got)
	}
	assertNotUnder(t, c.d("node-1").DataDir, dataplaneSecret)

	// Two services on one network reach each other by address; another network's
	// cannot.
	infos := taskInfos(t, c, "dp_web")
	var webAddr string
	for _, ti := range infos {
		if ti.ID == web.ID && len(ti.Networks) == 1 {
			webAddr = strings.Split(ti.Networks[0].Addr, "/")[0]
		}
	}
	if webAddr == "" {
		t.Fatalf("task %s has no address: %+v", web.ID, infos)
	}
	client := onlyTask(t, ctr, c.ctx, "dp_client")
	outsider := onlyTask(t, ctr, c.ctx, "dp_outsider")
	target := webAddr + ":8080"
	// Retried for a moment: httpd may still be coming up although its task is
	// reported running (the report follows the process's start, not its listen).
	var last string
	err := clustertest.Eventually(c.ctx, 10*time.Second, func() error {
		out, err := httpGet(client.Pid, target)
		if err == nil && strings.TrimSpace(out) == web.ID[:12] {
			return nil
		}
		last = fmt.Sprintf("%q, %v", out, err)
		return errors.New(last)
	})
	if err != nil {
		t.Errorf("client -> web %s: %s (want the task's hostname %s)\n%s", target, last, web.ID[:12], netDiagnostics(client.Pid))
	}
	if out, err := httpGet(outsider.Pid, target); err == nil {
		t.Errorf("a task on another network reached web at %s: %q", target, out)
	}

	// What a task writes to a volume with driver_opts lands on the device.
	writeInTask(t, outsider.Pid, "/shared/from-task", "on the export")
	if b, err := os.ReadFile(filepath.Join(export, "from-task")); err != nil || string(b) != "on the export" {
		t.Errorf("file written to the shared volume, on the export: %q, %v", b, err)
	}

	// A named volume's data outlives the task, and a crash is replaced: 2/3, then
	// 3/3, with the exit code in service ps.
	writeInTask(t, web.Pid, "/data/kept", "still here")
	if err := ctr.Kill(c.ctx, web.ID); err != nil {
		t.Fatal(err)
	}
	c.eventually(10*time.Second, func() error {
		if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "2/3") {
			return fmt.Errorf("service ls:\n%s", out)
		}
		return nil
	})
	c.eventually(30*time.Second, func() error {
		if out := c.must("node-1", "service", "ls").Stdout; !strings.Contains(out, "3/3") {
			return fmt.Errorf("service ls:\n%s", out)
		}
		if n := len(webTasks()); n != 3 {
			return fmt.Errorf("containerd runs %d web tasks", n)
		}
		return nil
	})
	if ps := c.must("node-1", "service", "ps", "dp_web").Stdout; !strings.Contains(ps, "task: non-zero exit (137)") {
		t.Errorf("service ps does not show the killed task's exit code:\n%s", ps)
	}
	for _, task := range webTasks() {
		if task.ID == web.ID {
			t.Fatalf("the killed task %s runs again instead of being replaced", web.ID)
		}
		if got := readInTask(t, task.Pid, "/data/kept"); got != "still here" {
			t.Errorf("volume in the replacement %s: %q", task.ID, got)
		}
	}
	if logs := c.must("node-1", "service", "logs", "dp_web").Stdout; strings.Count(logs, "web started") < 4 {
		t.Errorf("service logs show %d starts, want 4 (3 tasks and the replacement):\n%s", strings.Count(logs, "web started"), logs)
	}

	// Scale 3 -> 1: the containers go.
	c.must("node-1", "service", "scale", "dp_web=1")
	c.eventually(30*time.Second, func() error {
		if n := len(webTasks()); n != 1 {
			return fmt.Errorf("containerd runs %d web tasks, want 1", n)
		}
		return nil
	})

	// A new image rolls the task start-first: the new one ran before the old one
	// stopped.
	old := webTasks()[0]
	deploy("2", 1)
	c.eventually(30*time.Second, func() error {
		got := webTasks()
		if len(got) != 1 || got[0].ID == old.ID {
			return fmt.Errorf("web tasks %+v, want one new", got)
		}
		if v := readInTask(t, got[0].Pid, "/etc/image-version"); v != "2" {
			return fmt.Errorf("image version %q", v)
		}
		return nil
	})
	var oldInfo, newInfo *api.TaskInfo
	for _, ti := range taskInfos(t, c, "dp_web") {
		switch {
		case ti.ID == old.ID:
			oldInfo = ti
		case ti.ID == webTasks()[0].ID:
			newInfo = ti
		}
	}
	if oldInfo == nil || newInfo == nil || oldInfo.Status.State != model.TaskShutdown ||
		newInfo.Status.State != model.TaskRunning || oldInfo.Status.Timestamp.Before(newInfo.Status.Timestamp) {
		t.Errorf("start-first: old %+v, new %+v: the old task must stop after the new one runs", oldInfo, newInfo)
	}

	// A daemon restart adopts the running containers: none restarted, none twice.
	before, err := ctr.Tasks(c.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.d("node-1").Stop(); err != nil {
		t.Fatal(err)
	}
	c.start("node-1")
	c.eventually(60*time.Second, func() error {
		out := c.run("node-1", "service", "ls")
		if out.Code != 0 || strings.Count(out.Stdout, "1/1") != 3 {
			return fmt.Errorf("service ls: %v", out)
		}
		return nil
	})
	after, err := ctr.Tasks(c.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pids(before) != pids(after) {
		t.Errorf("containers changed across a daemon restart:\nbefore %s\nafter  %s", pids(before), pids(after))
	}

	// Leaving removes every container the node ran.
	c.must("node-1", "leave", "--force")
	if left, err := ctr.Tasks(c.ctx, nil); err != nil || len(left) != 0 {
		t.Errorf("after leave: %+v, %v", left, err)
	}
	// The shared volume is unmounted, and its data stays on the export.
	if left, err := filepath.Glob(filepath.Join(c.d("node-1").DataDir, "volumes", "dp_shared", "mount-*")); err != nil || len(left) != 0 {
		t.Errorf("the shared volume's mount points after leave: %v, %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(export, "from-task")); err != nil {
		t.Errorf("the export after leave: %v", err)
	}
}

// containerdNamespace is a containerd namespace of the test's own, removed with
// everything in it when the test ends: its containerd address, name and a client.
func containerdNamespace(t *testing.T) (addr, ns string, ctr *ctrtest.Client) {
	t.Helper()
	addr = testenv.RequireContainerd(t)
	var b [4]byte
	rand.Read(b[:])
	ns = "berth-e2e-" + hex.EncodeToString(b[:])
	ctr, err := ctrtest.New(addr, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ctr.RemoveNamespace(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		ctr.Close()
	})
	return addr, ns, ctr
}

// newDataPlaneNode starts and inits one daemon whose agent runs tasks on containerd,
// in a containerd namespace of the test's own, removed at the end with the node's
// containers, sandboxes, bridges and rules; ctr is containerd's own client on it.
func newDataPlaneNode(t *testing.T) (c *procCluster, ctr *ctrtest.Client) {
	addr, ns, ctr := containerdNamespace(t)
	args := []string{"--heartbeat-period", "500ms", "--apply-timeout", "5s", "--log-level", "debug",
		"--containerd", addr, "--containerd-namespace", ns}
	c = newProcClusterArgs(t, args, "node-1")
	c.start("node-1")
	// Runs before the daemon is killed: whatever happened, the node's containers,
	// sandboxes, bridges and rules go with it.
	t.Cleanup(func() { c.run("node-1", "leave", "--force") })
	c.must("node-1", "init")
	return c, ctr
}

// checkHostPortRestart kills the task of a service publishing a host-mode port: its
// replacement runs without being rejected first (the dead task's relays held the
// port), and the node reaches each task on 127.0.0.1:PORT, as Docker's proxy answers
// there.
func checkHostPortRestart(t *testing.T, c *procCluster, ctr *ctrtest.Client, dir string) {
	t.Helper()
	file := filepath.Join(dir, "hostport.yaml")
	if err := os.WriteFile(file, []byte(hostPortStack), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("node-1", "stack", "deploy", "-c", file, "--detach=false", "--timeout", "60s", "dphost")
	defer c.must("node-1", "stack", "rm", "dphost")
	reachFromNode := func(task ctrtest.Task) {
		t.Helper()
		// httpd may still be coming up although its task is reported running.
		var last string
		if err := clustertest.Eventually(c.ctx, 10*time.Second, func() error {
			body, err := nodeHTTPGet("127.0.0.1:30080")
			if err == nil && strings.TrimSpace(body) == task.ID[:12] {
				return nil
			}
			last = fmt.Sprintf("%q, %v", body, err)
			return errors.New(last)
		}); err != nil {
			t.Errorf("node -> 127.0.0.1:30080: %s (want the task's hostname %s)", last, task.ID[:12])
		}
	}
	first := onlyTask(t, ctr, c.ctx, "dphost_hp")
	reachFromNode(first)
	if err := ctr.Kill(c.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	var second ctrtest.Task
	c.eventually(30*time.Second, func() error {
		tasks, err := ctr.Tasks(c.ctx, map[string]string{"io.berth.service": "dphost_hp"})
		if err != nil {
			return err
		}
		tasks = slices.DeleteFunc(tasks, func(task ctrtest.Task) bool { return task.Status != "running" || task.ID == first.ID })
		if len(tasks) != 1 {
			return fmt.Errorf("replacements running: %+v", tasks)
		}
		second = tasks[0]
		return nil
	})
	reachFromNode(second)
	for _, ti := range taskInfos(t, c, "dphost_hp") {
		if ti.Status.State == model.TaskRejected {
			t.Errorf("task %s of the restarted service was rejected: %s\n%s", ti.ID, ti.Status.Err,
				c.must("node-1", "service", "ps", "--no-trunc", "dphost_hp").Stdout)
		}
	}
}

// nodeHTTPGet fetches / from addr (host:port) from the node's (the test's) network
// namespace and returns the body.
func nodeHTTPGet(addr string) (string, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// taskInfos are the service's tasks as the API has them: `service ps --format json`
// shows Docker's display fields only.
func taskInfos(t *testing.T, c *procCluster, service string) []*api.TaskInfo {
	t.Helper()
	infos, _, err := c.d("node-1").Client().Tasks(c.ctx, api.TaskFilter{Service: service}, api.Query{})
	if err != nil {
		t.Fatalf("tasks of %s: %v", service, err)
	}
	return infos
}

func onlyTask(t *testing.T, ctr *ctrtest.Client, ctx context.Context, service string) ctrtest.Task {
	t.Helper()
	tasks, err := ctr.Tasks(ctx, map[string]string{"io.berth.service": service})
	if err != nil || len(tasks) != 1 || tasks[0].Status != "running" {
		t.Fatalf("tasks of %s: %+v, %v", service, tasks, err)
	}
	return tasks[0]
}

// readInTask reads a file as the container sees it, through its process's root.
func readInTask(t *testing.T, pid uint32, path string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid, path))
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func writeInTask(t *testing.T, pid uint32, path, content string) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/root%s", pid, path), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// httpGet fetches / from addr (host:port) from inside the task with process pid
// (its network and filesystem), with the busybox of its image, and returns the
// body. busybox's nc rather than its wget: Debian's static wget crashes when it
// cannot connect.
func httpGet(pid uint32, addr string) (string, error) {
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("nsenter", "-t", fmt.Sprint(pid), "-n", "-m", "--",
		"/bin/busybox", "nc", "-w", "2", host, port)
	cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	_, body, ok := strings.Cut(string(out), "\r\n\r\n")
	if !ok {
		return "", fmt.Errorf("no HTTP answer from %s: %q", addr, out)
	}
	return body, nil
}

func netNS(t *testing.T, pid int) string {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// hostVethTasks are the task IDs the veths of this test's network namespace carry
// as their alias (netstack's "berth-task:" + ID).
func hostVethTasks(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("ip", "-j", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	var links []struct {
		IfAlias string `json:"ifalias"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j link: %v: %s", err, out)
	}
	ids := map[string]bool{}
	for _, l := range links {
		if id, ok := strings.CutPrefix(l.IfAlias, "berth-task:"); ok {
			ids[id] = true
		}
	}
	return ids
}

// netDiagnostics says what a failed connection test needs: the task's addresses and
// routes, the host's berth links and rules.
func netDiagnostics(pid uint32) string {
	var b strings.Builder
	for _, argv := range [][]string{
		{"nsenter", "-t", fmt.Sprint(pid), "-n", "ip", "-br", "addr"},
		{"nsenter", "-t", fmt.Sprint(pid), "-n", "ip", "route"},
		{"ip", "-br", "addr"},
		{"ip", "route"},
		{"nft", "list", "table", "inet", "berth"},
	} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(argv, " "), err, out)
	}
	return b.String()
}

// assertNotUnder fails if any file under dir holds secret. Mounts under dir (none
// expected) would be walked too.
func assertNotUnder(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret's bytes are in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pids(tasks []ctrtest.Task) string {
	var out []string
	for _, t := range tasks {
		out = append(out, fmt.Sprintf("%s:%d:%s", t.ID[:12], t.Pid, t.Status))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
